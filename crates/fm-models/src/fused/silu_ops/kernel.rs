//! Element-wise SiLU kernels over `f32` slices: a branch-free `exp` the compiler vectorises,
//! compiled for the best SIMD level the CPU has (pulp's runtime dispatch), split into chunks
//! over rayon's pool.

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per rayon task: large enough to amortise a task (about 10 us of work), small enough
/// to balance an activation of a few million elements over the cores.
const CHUNK: usize = 1 << 15;

/// `y <- y sigmoid(y)` in place.
pub fn silu_inplace(y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).for_each(|y| {
        Arch::new().dispatch(Zip(y, None, |_, x| silu_of(x)));
    });
}

/// `y <- x sigmoid(x)` into uninitialised `y` of the length of `x`; every element is written.
pub fn silu(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), y.len(), "silu: input and output lengths differ");
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| Arch::new().dispatch(Fill(y, x, silu_of)));
}

/// `g <- g s (1 + x (1 - s))` with `s = sigmoid(x)`, in place in the upstream gradient `g`.
pub fn silu_backward_inplace(x: &[f32], g: &mut [f32]) {
    assert_eq!(x.len(), g.len(), "silu: input and gradient lengths differ");
    g.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(g, x)| Arch::new().dispatch(Zip(g, Some(x), silu_grad)));
}

/// `z[i, j] <- v sigmoid(v)` with `v = z[i, j] + b[j]`, in place, for row-major `z`: `[m, n]`
/// with `n = b.len()`: the bias and SiLU after a linear layer's product, in one pass.
pub fn bias_silu_inplace(z: &mut [f32], b: &[f32]) {
    z.par_chunks_mut(row_chunk(b.len())).for_each(|z| {
        Arch::new().dispatch(BiasZip(z, None, b, |_, v| silu_of(v), None));
    });
}

/// [`bias_silu_inplace`] into uninitialised `h` of the length of `z`; every element is written.
pub fn bias_silu(z: &[f32], b: &[f32], h: &mut [MaybeUninit<f32>]) {
    assert_eq!(z.len(), h.len(), "silu: input and output lengths differ");
    let rows = row_chunk(b.len());
    h.par_chunks_mut(rows)
        .zip(z.par_chunks(rows))
        .for_each(|(h, z)| Arch::new().dispatch(BiasFill(h, z, b, silu_of)));
}

/// The backward pass of [`bias_silu`]: `g[i, j] <- g s (1 + v (1 - s))` with
/// `v = z[i, j] + b[j]` and `s = sigmoid(v)`, in place in the upstream gradient `g`, and the
/// bias gradient `sum_i g[i, :]` of the result, summed while each block of rows is in cache.
pub fn bias_silu_backward_inplace(z: &[f32], b: &[f32], g: &mut [f32]) -> Vec<f32> {
    assert_eq!(z.len(), g.len(), "silu: input and gradient lengths differ");
    let n = b.len();
    let rows = row_chunk(n);
    g.par_chunks_mut(rows)
        .zip(z.par_chunks(rows))
        .map(|(g, z)| {
            let mut sums = vec![0.0; n];
            Arch::new().dispatch(BiasZip(g, Some(z), b, silu_grad, Some(&mut sums)));
            sums
        })
        .reduce(
            || vec![0.0; n],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// Elements per rayon task for rows of `n`: about [`CHUNK`], in whole rows.
fn row_chunk(n: usize) -> usize {
    assert!(n > 0, "silu: rows of no columns");
    (CHUNK / n).max(1) * n
}

/// One chunk of rows: `dst[i, j] <- f(dst[i, j], src[i, j] + b[j])` (`src` is `dst` when
/// `None`), adding each result into `sums[j]` when given.
struct BiasZip<'a, F>(
    &'a mut [f32],
    Option<&'a [f32]>,
    &'a [f32],
    F,
    Option<&'a mut [f32]>,
);

impl<F: Fn(f32, f32) -> f32> WithSimd for BiasZip<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let BiasZip(dst, src, b, f, mut sums) = self;
        let n = b.len();
        for (i, row) in dst.chunks_mut(n).enumerate() {
            match src {
                Some(src) => {
                    let src = &src[i * n..(i + 1) * n];
                    row.iter_mut()
                        .zip(src)
                        .zip(b)
                        .for_each(|((d, &s), &b)| *d = f(*d, s + b));
                }
                None => row.iter_mut().zip(b).for_each(|(d, &b)| *d = f(*d, *d + b)),
            }
            if let Some(sums) = sums.as_deref_mut() {
                sums.iter_mut().zip(row.iter()).for_each(|(s, &d)| *s += d);
            }
        }
    }
}

/// One chunk of rows: `out[i, j] <- f(src[i, j] + b[j])` into uninitialised `out`.
struct BiasFill<'a, F>(&'a mut [MaybeUninit<f32>], &'a [f32], &'a [f32], F);

impl<F: Fn(f32) -> f32> WithSimd for BiasFill<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let BiasFill(out, src, b, f) = self;
        for (out, src) in out.chunks_mut(b.len()).zip(src.chunks(b.len())) {
            out.iter_mut()
                .zip(src)
                .zip(b)
                .for_each(|((o, &s), &b)| *o = MaybeUninit::new(f(s + b)));
        }
    }
}

/// One chunk of `dst[i] <- f(dst[i], src[i])` (`src` is `dst` when `None`). Monomorphised per
/// SIMD level, so the compiler vectorises the scalar loop with that level's instructions.
struct Zip<'a, F>(&'a mut [f32], Option<&'a [f32]>, F);

impl<F: Fn(f32, f32) -> f32> WithSimd for Zip<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Zip(dst, src, f) = self;
        match src {
            Some(src) => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = f(*d, s)),
            None => dst.iter_mut().for_each(|d| *d = f(*d, *d)),
        }
    }
}

/// One chunk of `out[i] <- f(src[i])` into uninitialised `out`, as [`Zip`].
struct Fill<'a, F>(&'a mut [MaybeUninit<f32>], &'a [f32], F);

impl<F: Fn(f32) -> f32> WithSimd for Fill<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Fill(out, src, f) = self;
        out.iter_mut()
            .zip(src)
            .for_each(|(o, &s)| *o = MaybeUninit::new(f(s)));
    }
}

/// `x sigmoid(x)`: what every forward kernel here computes per element.
#[inline(always)]
fn silu_of(x: f32) -> f32 {
    x * sigmoid(x)
}

/// `g s (1 + x (1 - s))` with `s = sigmoid(x)`: the upstream gradient `g` times SiLU's
/// derivative at `x`, what every backward kernel here computes per element.
#[inline(always)]
fn silu_grad(g: f32, x: f32) -> f32 {
    let s = sigmoid(x);
    g * s * (1.0 + x * (1.0 - s))
}

/// `1 / (1 + exp(-x))`, with `exp` from [`exp`]; exact limits 0 and 1 far out.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `e^z` within about 2 ulp for `z` in `[-87, 88]`; `z` is clamped to that range, so the result
/// never overflows to infinity (1.7e38 at most) and far-negative `z` gives about 1.6e-38.
///
/// Cody-Waite range reduction `z = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6 minimax
/// polynomial for `e^r` (Cephes' `expf` coefficients), and `2^n` built from its exponent bits.
/// No branches and no calls, so a loop of it vectorises.
#[inline(always)]
pub fn exp(z: f32) -> f32 {
    // Adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let z = z.clamp(-87.0, 88.0);
    let shifted = z * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = z - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // The integer n sits in the low bits of `shifted`; move it into the exponent field.
    let bits = (shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    er * f32::from_bits(bits as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error of [`exp`] against the standard library over its whole range.
    #[test]
    fn exp_matches_std_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut z = -87.0f32;
        while z <= 88.0 {
            let want = f64::from(z).exp();
            let rel = ((f64::from(exp(z)) - want) / want).abs();
            worst = worst.max(rel);
            z += 0.001_37;
        }
        assert!(
            worst < 3.0 * f64::from(f32::EPSILON),
            "worst relative error {worst:e}"
        );
    }

    #[test]
    fn exp_saturates_instead_of_overflowing() {
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        assert!(exp(-1000.0) >= 0.0 && exp(-1000.0) < 1e-37);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!(sigmoid(-1000.0) < 1e-37);
    }

    /// The chunked kernels agree with a scalar `f64` reference on every element, across chunk
    /// boundaries and a ragged tail.
    #[test]
    fn kernels_match_f64_reference() {
        let n = 3 * CHUNK + 77;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.618_034).sin() * 20.0)
            .collect();
        let g: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.414_213).cos()).collect();
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());

        let mut y = vec![MaybeUninit::uninit(); n];
        silu(&x, &mut y);
        // SAFETY: `silu` writes every element.
        let y: Vec<f32> = y.into_iter().map(|v| unsafe { v.assume_init() }).collect();
        let mut y2 = x.clone();
        silu_inplace(&mut y2);
        let mut dx = g.clone();
        silu_backward_inplace(&x, &mut dx);

        for i in 0..n {
            let (xi, gi) = (f64::from(x[i]), f64::from(g[i]));
            let s = sig(xi);
            let want_y = xi * s;
            let want_dx = gi * s * (1.0 + xi * (1.0 - s));
            assert!(
                (f64::from(y[i]) - want_y).abs() <= 1e-6 * (1.0 + want_y.abs()),
                "y at {i}"
            );
            assert_eq!(y[i], y2[i], "in-place and out-of-place differ at {i}");
            assert!(
                (f64::from(dx[i]) - want_dx).abs() <= 1e-6 * (1.0 + want_dx.abs()),
                "dx at {i}"
            );
        }
    }

    /// The bias variants agree with the same reference on `z + b`, across row chunks, and the
    /// backward pass's column sums with the sums of its output.
    #[test]
    fn bias_kernels_match_f64_reference() {
        let n = 37;
        let m = 2 * CHUNK / n + 5;
        let z: Vec<f32> = (0..m * n)
            .map(|i| ((i as f32) * 0.618_034).sin() * 20.0)
            .collect();
        let b: Vec<f32> = (0..n).map(|j| (j as f32 - 18.0) * 0.5).collect();
        let g: Vec<f32> = (0..m * n).map(|i| ((i as f32) * 0.414_213).cos()).collect();
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());

        let mut h = vec![MaybeUninit::uninit(); m * n];
        bias_silu(&z, &b, &mut h);
        // SAFETY: `bias_silu` writes every element.
        let h: Vec<f32> = h.into_iter().map(|v| unsafe { v.assume_init() }).collect();
        let mut h2 = z.clone();
        bias_silu_inplace(&mut h2, &b);
        let mut dz = g.clone();
        let sums = bias_silu_backward_inplace(&z, &b, &mut dz);

        let mut want_sums = vec![0.0f64; n];
        for i in 0..m * n {
            let v = f64::from(z[i]) + f64::from(b[i % n]);
            let s = sig(v);
            let want_h = v * s;
            let want_dz = f64::from(g[i]) * s * (1.0 + v * (1.0 - s));
            want_sums[i % n] += want_dz;
            assert!(
                (f64::from(h[i]) - want_h).abs() <= 1e-5 * (1.0 + want_h.abs()),
                "h at {i}"
            );
            assert_eq!(h[i], h2[i], "in-place and out-of-place differ at {i}");
            assert!(
                (f64::from(dz[i]) - want_dz).abs() <= 1e-5 * (1.0 + want_dz.abs()),
                "dz at {i}"
            );
        }
        for j in 0..n {
            let tol = 1e-4 * (1.0 + want_sums[j].abs());
            assert!((f64::from(sums[j]) - want_sums[j]).abs() <= tol, "sum {j}");
        }
    }
}
