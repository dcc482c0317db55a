//! Element-wise SiLU kernels over `f32` slices, split into chunks over rayon's pool. Each chunk
//! runs the AVX-512 kernels when the CPU has them (`avx512.rs`), and otherwise a branch-free
//! scalar `exp` the compiler vectorises for the best SIMD level the CPU has (pulp's runtime
//! dispatch).

#[cfg(target_arch = "x86_64")]
use super::avx512;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per rayon task: large enough to amortise a task (about 10 us of work), small enough
/// to balance an activation of a few million elements over the cores.
const CHUNK: usize = 1 << 15;

/// `y <- y sigmoid(y)` in place.
pub fn silu_inplace(y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).for_each(|y| {
        let p = y.as_mut_ptr();
        // SAFETY: in place over the chunk.
        if !unsafe { fast_forward(p, p, y.len(), None) } {
            Arch::new().dispatch(Zip(y, None, |m, _, x| silu_of(m, x)));
        }
    });
}

/// `y <- x sigmoid(x)` into uninitialised `y` of the length of `x`; every element is written.
pub fn silu(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), y.len(), "silu: input and output lengths differ");
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            // SAFETY: `y` and `x` are chunks of the same length of distinct buffers.
            if !unsafe { fast_forward(y.as_mut_ptr().cast(), x.as_ptr(), x.len(), None) } {
                Arch::new().dispatch(Fill(y, x, silu_of));
            }
        });
}

/// `g <- g s (1 + x (1 - s))` with `s = sigmoid(x)`, in place in the upstream gradient `g`.
pub fn silu_backward_inplace(x: &[f32], g: &mut [f32]) {
    assert_eq!(x.len(), g.len(), "silu: input and gradient lengths differ");
    g.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(g, x)| {
            // SAFETY: as in `silu`.
            if !unsafe { fast_backward(g.as_mut_ptr(), x.as_ptr(), x.len(), None, None) } {
                Arch::new().dispatch(Zip(g, Some(x), silu_grad));
            }
        });
}

/// `h[i] <- silu(a x[i] + b)` on the calling thread (the caller splits the work): a
/// normalised channel's scale, shift and activation in one pass.
pub fn affine_silu(x: &[f32], a: f32, b: f32, h: &mut [MaybeUninit<f32>]) {
    assert_eq!(
        x.len(),
        h.len(),
        "affine_silu: input and output lengths differ"
    );
    Arch::new().dispatch(Fill(h, x, move |m, v| silu_of(m, m.apply(a, v, b))));
}

/// `g[i] <- g[i] silu'(a x[i] + b)` in place, on the calling thread: the gradient of
/// [`affine_silu`]'s output with respect to `a x + b`.
pub fn affine_silu_backward_inplace(x: &[f32], a: f32, b: f32, g: &mut [f32]) {
    assert_eq!(
        x.len(),
        g.len(),
        "affine_silu: input and gradient lengths differ"
    );
    Arch::new().dispatch(Zip(g, Some(x), move |m, g, v| {
        silu_grad(m, g, m.apply(a, v, b))
    }));
}

/// `z[i, j] <- v sigmoid(v)` with `v = z[i, j] + b[j]`, in place, for row-major `z`: `[m, n]`
/// with `n = b.len()`: the bias and SiLU after a linear layer's product, in one pass.
pub fn bias_silu_inplace(z: &mut [f32], b: &[f32]) {
    z.par_chunks_mut(row_chunk(b.len())).for_each(|z| {
        let p = z.as_mut_ptr();
        // SAFETY: in place over a chunk of whole rows.
        if !unsafe { fast_forward(p, p, z.len(), Some(b)) } {
            Arch::new().dispatch(BiasZip(z, None, b, |m, _, v| silu_of(m, v), None));
        }
    });
}

/// [`bias_silu_inplace`] into uninitialised `h` of the length of `z`; every element is written.
pub fn bias_silu(z: &[f32], b: &[f32], h: &mut [MaybeUninit<f32>]) {
    assert_eq!(z.len(), h.len(), "silu: input and output lengths differ");
    let rows = row_chunk(b.len());
    h.par_chunks_mut(rows)
        .zip(z.par_chunks(rows))
        .for_each(|(h, z)| {
            // SAFETY: chunks of the same whole rows of distinct buffers.
            if !unsafe { fast_forward(h.as_mut_ptr().cast(), z.as_ptr(), z.len(), Some(b)) } {
                Arch::new().dispatch(BiasFill(h, z, b, silu_of));
            }
        });
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
            // SAFETY: as in `bias_silu`.
            if !unsafe {
                fast_backward(
                    g.as_mut_ptr(),
                    z.as_ptr(),
                    z.len(),
                    Some(b),
                    Some(&mut sums),
                )
            } {
                Arch::new().dispatch(BiasZip(g, Some(z), b, silu_grad, Some(&mut sums)));
            }
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

/// [`avx512::forward`] on one chunk when the CPU has AVX-512; `false` (nothing done) otherwise.
///
/// # Safety
/// As [`avx512::forward`], less its availability.
#[allow(unused_variables)]
unsafe fn fast_forward(dst: *mut f32, src: *const f32, len: usize, b: Option<&[f32]>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: available, and the caller's bounds.
        unsafe { avx512::forward(dst, src, len, b) };
        return true;
    }
    false
}

/// [`avx512::backward`] on one chunk when the CPU has AVX-512; `false` otherwise.
///
/// # Safety
/// As [`avx512::backward`], less its availability.
#[allow(unused_variables)]
unsafe fn fast_backward(
    g: *mut f32,
    src: *const f32,
    len: usize,
    b: Option<&[f32]>,
    sums: Option<&mut [f32]>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: available, and the caller's bounds.
        unsafe { avx512::backward(g, src, len, b, sums) };
        return true;
    }
    false
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

impl<F: Fn(MulAdd, f32, f32) -> f32> WithSimd for BiasZip<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let BiasZip(dst, src, b, f, mut sums) = self;
        let m = MulAdd::of::<S>();
        let n = b.len();
        for (i, row) in dst.chunks_mut(n).enumerate() {
            match src {
                Some(src) => {
                    let src = &src[i * n..(i + 1) * n];
                    row.iter_mut()
                        .zip(src)
                        .zip(b)
                        .for_each(|((d, &s), &b)| *d = f(m, *d, s + b));
                }
                None => row
                    .iter_mut()
                    .zip(b)
                    .for_each(|(d, &b)| *d = f(m, *d, *d + b)),
            }
            if let Some(sums) = sums.as_deref_mut() {
                sums.iter_mut().zip(row.iter()).for_each(|(s, &d)| *s += d);
            }
        }
    }
}

/// One chunk of rows: `out[i, j] <- f(src[i, j] + b[j])` into uninitialised `out`.
struct BiasFill<'a, F>(&'a mut [MaybeUninit<f32>], &'a [f32], &'a [f32], F);

impl<F: Fn(MulAdd, f32) -> f32> WithSimd for BiasFill<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let BiasFill(out, src, b, f) = self;
        let m = MulAdd::of::<S>();
        for (out, src) in out.chunks_mut(b.len()).zip(src.chunks(b.len())) {
            out.iter_mut()
                .zip(src)
                .zip(b)
                .for_each(|((o, &s), &b)| *o = MaybeUninit::new(f(m, s + b)));
        }
    }
}

/// One chunk of `dst[i] <- f(dst[i], src[i])` (`src` is `dst` when `None`). Monomorphised per
/// SIMD level, so the compiler vectorises the scalar loop with that level's instructions.
struct Zip<'a, F>(&'a mut [f32], Option<&'a [f32]>, F);

impl<F: Fn(MulAdd, f32, f32) -> f32> WithSimd for Zip<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Zip(dst, src, f) = self;
        let m = MulAdd::of::<S>();
        match src {
            Some(src) => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = f(m, *d, s)),
            None => dst.iter_mut().for_each(|d| *d = f(m, *d, *d)),
        }
    }
}

/// One chunk of `out[i] <- f(src[i])` into uninitialised `out`, as [`Zip`].
struct Fill<'a, F>(&'a mut [MaybeUninit<f32>], &'a [f32], F);

impl<F: Fn(MulAdd, f32) -> f32> WithSimd for Fill<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Fill(out, src, f) = self;
        let m = MulAdd::of::<S>();
        out.iter_mut()
            .zip(src)
            .for_each(|(o, &s)| *o = MaybeUninit::new(f(m, s)));
    }
}

/// How the kernels compute `a b + c`: fused (one instruction, one rounding) at the SIMD levels
/// that have FMA (x86-64's AVX2 and AVX-512 levels, aarch64's NEON), as two operations in the
/// scalar fallback and on wasm, where a fused multiply-add is a library call. The fused form
/// made SiLU 1.15-1.2x faster here.
#[derive(Clone, Copy)]
pub struct MulAdd(bool);

impl MulAdd {
    /// The form for pulp's SIMD level `S`.
    #[inline(always)]
    pub fn of<S: Simd>() -> Self {
        Self(!S::IS_SCALAR && !cfg!(target_arch = "wasm32"))
    }

    /// `a b + c`.
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32, c: f32) -> f32 {
        if self.0 { a.mul_add(b, c) } else { a * b + c }
    }
}

/// `x sigmoid(x)`: what every forward kernel here computes per element.
#[inline(always)]
fn silu_of(m: MulAdd, x: f32) -> f32 {
    x * sigmoid(m, x)
}

/// `g s (1 + x (1 - s))` with `s = sigmoid(x)`: the upstream gradient `g` times SiLU's
/// derivative at `x`, what every backward kernel here computes per element.
#[inline(always)]
fn silu_grad(m: MulAdd, g: f32, x: f32) -> f32 {
    let s = sigmoid(m, x);
    g * s * (1.0 + x * (1.0 - s))
}

/// `1 / (1 + exp(-x))`, with `exp` from [`exp`]; exact limits 0 and 1 far out.
#[inline(always)]
pub fn sigmoid(m: MulAdd, x: f32) -> f32 {
    1.0 / (1.0 + exp(m, -x))
}

/// `e^z` within about 2 ulp for `z` in [`EXP_RANGE`]; `z` is clamped to that range, so the
/// result never overflows to infinity (1.7e38 at most) and far-negative `z` gives about 1.6e-38.
///
/// Cody-Waite range reduction `z = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6 minimax
/// polynomial for `e^r` (Cephes' `expf` coefficients), and `2^n` built from its exponent bits.
/// No branches and no calls, so a loop of it vectorises.
#[inline(always)]
pub fn exp(m: MulAdd, z: f32) -> f32 {
    // Adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let z = z.clamp(EXP_RANGE[0], EXP_RANGE[1]);
    let shifted = m.apply(z, std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = m.apply(-n, LN2_LO, m.apply(-n, LN2_HI, z));
    let [first, rest @ ..] = EXP_POLY;
    let p = rest.iter().fold(first, |p, &c| m.apply(p, r, c));
    let er = m.apply(p * r, r, r + 1.0);
    // The integer n sits in the low bits of `shifted`; move it into the exponent field.
    let bits = (shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    er * f32::from_bits(bits as u32)
}

/// The arguments [`exp`] clamps to: `e^z` stays a normal, finite `f32`.
pub(super) const EXP_RANGE: [f32; 2] = [-87.0, 88.0];
/// `ln 2` in two parts for the range reduction: `LN2_HI` has few mantissa bits, so `n LN2_HI`
/// is exact for the `n` that occur.
pub(super) const LN2_HI: f32 = 0.693_359_4;
pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes' `expf` coefficients, highest degree first: `e^r ~ 1 + r + r^2 p(r)`.
pub(super) const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms of `a b + c`: fused and not.
    const FORMS: [MulAdd; 2] = [MulAdd(true), MulAdd(false)];

    /// Relative error of [`exp`] against the standard library over its whole range, with and
    /// without fused multiply-adds.
    #[test]
    fn exp_matches_std_within_a_few_ulp() {
        for m in FORMS {
            let mut worst = 0.0f64;
            let mut z = -87.0f32;
            while z <= 88.0 {
                let want = f64::from(z).exp();
                let rel = ((f64::from(exp(m, z)) - want) / want).abs();
                worst = worst.max(rel);
                z += 0.001_37;
            }
            assert!(
                worst < 3.0 * f64::from(f32::EPSILON),
                "fused {}: worst relative error {worst:e}",
                m.0
            );
        }
    }

    #[test]
    fn exp_saturates_instead_of_overflowing() {
        for m in FORMS {
            assert!(exp(m, 1000.0).is_finite() && exp(m, 1000.0) > 1e38);
            assert!(exp(m, -1000.0) >= 0.0 && exp(m, -1000.0) < 1e-37);
            assert_eq!(sigmoid(m, 1000.0), 1.0);
            assert!(sigmoid(m, -1000.0) < 1e-37);
        }
    }

    /// `got` within `tol (1 + |want|)` of `want` on every element.
    fn assert_close(name: &str, got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{name}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (f64::from(g) - w).abs();
            assert!(err <= tol * (1.0 + w.abs()), "{name} at {i}: {g} vs {w}");
        }
    }

    /// The elements of an output every element of which a kernel wrote.
    fn init(y: Vec<MaybeUninit<f32>>) -> Vec<f32> {
        // SAFETY: the kernels write every element (the length is checked by the comparison).
        y.into_iter().map(|v| unsafe { v.assume_init() }).collect()
    }

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// The chunked kernels (the AVX-512 path on a CPU that has it) and the portable kernels
    /// (run directly, as on one that does not) agree with a scalar `f64` reference on every
    /// element, across chunk boundaries and a ragged tail.
    #[test]
    fn kernels_match_f64_reference() {
        let n = 3 * CHUNK + 77;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.618_034).sin() * 20.0)
            .collect();
        let g: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.414_213).cos()).collect();
        let want_y: Vec<f64> = x.iter().map(|&x| f64::from(x) * sig(x.into())).collect();
        let want_dx: Vec<f64> = x
            .iter()
            .zip(&g)
            .map(|(&x, &g)| {
                let (x, s) = (f64::from(x), sig(x.into()));
                f64::from(g) * s * (1.0 + x * (1.0 - s))
            })
            .collect();

        let mut y = vec![MaybeUninit::uninit(); n];
        silu(&x, &mut y);
        let mut y_inplace = x.clone();
        silu_inplace(&mut y_inplace);
        let mut dx = g.clone();
        silu_backward_inplace(&x, &mut dx);
        let mut y_portable = vec![MaybeUninit::uninit(); n];
        Arch::new().dispatch(Fill(&mut y_portable, &x, silu_of));
        let mut y_portable_inplace = x.clone();
        Arch::new().dispatch(Zip(&mut y_portable_inplace, None, |m, _, x| silu_of(m, x)));
        let mut dx_portable = g.clone();
        Arch::new().dispatch(Zip(&mut dx_portable, Some(&x), silu_grad));

        let y = init(y);
        assert_close("silu", &y, &want_y, 1e-6);
        assert_close("silu_inplace", &y_inplace, &want_y, 1e-6);
        assert_close("silu_backward_inplace", &dx, &want_dx, 1e-6);
        assert_close("portable silu", &init(y_portable), &want_y, 1e-6);
        assert_close("portable in place", &y_portable_inplace, &want_y, 1e-6);
        assert_close("portable backward", &dx_portable, &want_dx, 1e-6);
        assert_eq!(y, y_inplace, "in-place and out-of-place differ");
    }

    /// The bias variants, both paths, agree with the same reference on `z + b`, across row
    /// chunks and rows of 37 (two full vectors and a masked one), and the backward pass's
    /// column sums with the sums of the reference.
    #[test]
    fn bias_kernels_match_f64_reference() {
        let n = 37;
        let m = 2 * CHUNK / n + 5;
        let z: Vec<f32> = (0..m * n)
            .map(|i| ((i as f32) * 0.618_034).sin() * 20.0)
            .collect();
        let b: Vec<f32> = (0..n).map(|j| (j as f32 - 18.0) * 0.5).collect();
        let g: Vec<f32> = (0..m * n).map(|i| ((i as f32) * 0.414_213).cos()).collect();
        let v = |i: usize| f64::from(z[i]) + f64::from(b[i % n]);
        let want_h: Vec<f64> = (0..m * n).map(|i| v(i) * sig(v(i))).collect();
        let want_dz: Vec<f64> = (0..m * n)
            .map(|i| {
                let s = sig(v(i));
                f64::from(g[i]) * s * (1.0 + v(i) * (1.0 - s))
            })
            .collect();
        let mut want_sums = vec![0.0f64; n];
        want_dz
            .iter()
            .enumerate()
            .for_each(|(i, d)| want_sums[i % n] += d);

        let mut h = vec![MaybeUninit::uninit(); m * n];
        bias_silu(&z, &b, &mut h);
        let mut h_inplace = z.clone();
        bias_silu_inplace(&mut h_inplace, &b);
        let mut dz = g.clone();
        let sums = bias_silu_backward_inplace(&z, &b, &mut dz);
        let mut h_portable = vec![MaybeUninit::uninit(); m * n];
        Arch::new().dispatch(BiasFill(&mut h_portable, &z, &b, silu_of));
        let mut h_portable_inplace = z.clone();
        let silu_in_place = |m, _, v| silu_of(m, v);
        Arch::new().dispatch(BiasZip(
            &mut h_portable_inplace,
            None,
            &b,
            silu_in_place,
            None,
        ));
        let mut dz_portable = g.clone();
        let mut sums_portable = vec![0.0; n];
        let sums_out = Some(sums_portable.as_mut_slice());
        Arch::new().dispatch(BiasZip(&mut dz_portable, Some(&z), &b, silu_grad, sums_out));

        let h = init(h);
        assert_close("bias_silu", &h, &want_h, 1e-5);
        assert_close("bias_silu_inplace", &h_inplace, &want_h, 1e-5);
        assert_close("bias_silu_backward_inplace", &dz, &want_dz, 1e-5);
        assert_close("column sums", &sums, &want_sums, 1e-4);
        assert_close("portable bias_silu", &init(h_portable), &want_h, 1e-5);
        assert_close("portable in place", &h_portable_inplace, &want_h, 1e-5);
        assert_close("portable backward", &dz_portable, &want_dz, 1e-5);
        assert_close("portable column sums", &sums_portable, &want_sums, 1e-4);
        assert_eq!(h, h_inplace, "in-place and out-of-place differ");
    }

    /// The AVX-512 `exp` and `sigmoid` against `f64` over the whole clamped range and beyond
    /// it (skipped, with a message, on a CPU without AVX-512).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_exp_and_sigmoid_match_f64() {
        use std::arch::x86_64::{_mm512_loadu_ps, _mm512_storeu_ps};
        if !avx512::available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let zs: Vec<f32> = (0..160_000).map(|i| -100.0 + i as f32 * 0.001_25).collect();
        let (mut worst_exp, mut worst_sig) = (0.0f64, 0.0f64);
        for z in zs.chunks_exact(16) {
            let (mut e, mut s) = ([0.0f32; 16], [0.0f32; 16]);
            // SAFETY: AVX-512 is available; the arrays hold 16 lanes.
            unsafe {
                let v = _mm512_loadu_ps(z.as_ptr());
                _mm512_storeu_ps(e.as_mut_ptr(), avx512::exp(v));
                _mm512_storeu_ps(s.as_mut_ptr(), avx512::sigmoid(v));
            }
            for ((&z, &e), &s) in z.iter().zip(&e).zip(&s) {
                let zc = f64::from(z.clamp(EXP_RANGE[0], EXP_RANGE[1]));
                worst_exp = worst_exp.max(((f64::from(e) - zc.exp()) / zc.exp()).abs());
                // `exp(-z)` is clamped too: the same range, mirrored.
                let want = sig(f64::from(z.clamp(-EXP_RANGE[1], -EXP_RANGE[0])));
                worst_sig = worst_sig.max(((f64::from(s) - want) / want).abs());
            }
        }
        let eps = f64::from(f32::EPSILON);
        assert!(
            worst_exp < 3.0 * eps,
            "exp: worst relative error {worst_exp:e}"
        );
        assert!(
            worst_sig < 4.0 * eps,
            "sigmoid: worst relative error {worst_sig:e}"
        );
    }
}
