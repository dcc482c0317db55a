//! The fused group norm (and SiLU) on burn's Flex CPU backend: one rayon task per image and
//! group (`c / groups` channels of `s` values each, contiguous in `[n, c, ...]`); other dtypes
//! take the composition.

use super::{GroupNormOps, composed};
use crate::buffer::{contiguous, dense, from_vec, offsets, vec_f32};
use crate::silu_ops::kernel::{affine_silu, affine_silu_backward_inplace};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{DType, Shape, TensorMetadata};
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use std::mem::MaybeUninit;

impl GroupNormOps for Flex {
    fn fused_group_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        spec: [usize; 2],
        epsilon: [f32; 1],
    ) -> FlexTensor {
        Self::group_norm_parts(x, gamma, beta, spec, epsilon).0
    }

    fn group_norm_parts(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        spec: [usize; 2],
        epsilon: [f32; 1],
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let Some(sh) = Groups::of(&[&x, &gamma, &beta], spec) else {
            return composed::forward::<Self>(x, gamma, beta, spec, epsilon);
        };
        let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
        let (h, mu, r) = sh.forward(dense(&x), dense(&gamma), dense(&beta), epsilon[0]);
        let stats: Shape = [sh.n, sh.groups, 1].into();
        (
            from_vec(h, x.shape()),
            from_vec(mu, stats.clone()),
            from_vec(r, stats),
        )
    }

    fn group_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mu: FlexTensor,
        r: FlexTensor,
        g: FlexTensor,
        spec: [usize; 2],
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let fits = Groups::of(&[&x, &gamma, &beta, &mu, &r, &g], spec).filter(|sh| {
            g.shape() == x.shape()
                && [&mu, &r]
                    .iter()
                    .all(|t| t.shape().as_slice() == [sh.n, sh.groups, 1])
        });
        let Some(sh) = fits else {
            return composed::backward::<Self>(x, gamma, beta, [mu, r], g, spec);
        };
        let [x, gamma, beta, mu, r, mut g] = [x, gamma, beta, mu, r, g].map(contiguous);
        let (start, end) = offsets(&g);
        // Copy-on-write: an owned upstream gradient (the usual case) becomes dx in place.
        let (dgamma, dbeta) = sh.backward(
            dense(&x),
            &mut g.storage_mut::<f32>()[start..end],
            [dense(&gamma), dense(&beta)],
            [dense(&mu), dense(&r)],
        );
        let c: Shape = [sh.c].into();
        (g, from_vec(dgamma, c.clone()), from_vec(dbeta, c))
    }
}

/// The sizes of one group norm: `n` images of `c` channels of `s` values, in `groups` groups of
/// `per = c / groups` channels; and whether SiLU follows.
struct Groups {
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
    per: usize,
    silu: bool,
}

impl Groups {
    /// The sizes when every tensor in `tensors` is `f32`, `tensors[0]` (`x`) is `[n, c, ...]`
    /// with `groups` dividing `c`, `tensors[1..3]` (`gamma`, `beta`) are `[c]`, and the
    /// activation is SiLU (`silu = 1`) or none (0).
    fn of(tensors: &[&FlexTensor], [groups, silu]: [usize; 2]) -> Option<Self> {
        if tensors.iter().any(|t| t.dtype() != DType::F32) {
            return None;
        }
        let shape = tensors[0].shape();
        let (n, c) = (*shape.as_slice().first()?, *shape.as_slice().get(1)?);
        let fits = groups > 0
            && silu <= 1
            && c % groups == 0
            && shape.num_elements() > 0
            && tensors[1..3].iter().all(|t| t.shape().as_slice() == [c]);
        fits.then(|| Self {
            n,
            c,
            s: shape.num_elements() / (n * c),
            groups,
            per: c / groups,
            silu: silu == 1,
        })
    }

    /// Elements of one image's group.
    fn len(&self) -> usize {
        self.per * self.s
    }

    /// `(h, mu, r)`: each task computes its group's statistics, then scales, shifts and
    /// activates each channel in one pass.
    fn forward(
        &self,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut stats = vec![(0.0, 0.0); self.n * self.groups];
        let h = vec_f32(x.len(), |h| {
            h.par_chunks_mut(self.len())
                .zip(x.par_chunks(self.len()))
                .zip(stats.par_iter_mut())
                .enumerate()
                .for_each(|(i, ((h, x), stat))| {
                    let task = ForwardGroup {
                        sh: self,
                        i,
                        x,
                        h,
                        gamma,
                        beta,
                        epsilon,
                    };
                    *stat = Arch::new().dispatch(task);
                })
        });
        let (mu, r) = stats.into_iter().unzip();
        (h, mu, r)
    }

    /// `(dgamma, dbeta)`, turning the upstream gradient `dx` into `dL/dx` in place: per task, a
    /// sweep that turns it into `dy` per channel and sums `dy` and `dy x^` (the channel's `beta`
    /// and `gamma` gradients, and with `gamma` the group's means of `d`, `d x^`), then a sweep
    /// that writes `dx`.
    fn backward(
        &self,
        x: &[f32],
        dx: &mut [f32],
        [gamma, beta]: [&[f32]; 2],
        [mu, r]: [&[f32]; 2],
    ) -> (Vec<f32>, Vec<f32>) {
        let mut sums = vec![[0.0f32; 2]; self.n * self.c];
        dx.par_chunks_mut(self.len())
            .zip(x.par_chunks(self.len()))
            .zip(sums.par_chunks_mut(self.per))
            .enumerate()
            .for_each(|(i, ((dx, x), sums))| {
                let task = BackwardGroup {
                    sh: self,
                    i,
                    x,
                    dx,
                    sums,
                    gamma,
                    beta,
                    stats: (mu[i], r[i]),
                };
                Arch::new().dispatch(task);
            });
        let channel_totals = |k: usize| -> Vec<f32> {
            (0..self.c)
                .map(|c| (0..self.n).map(|n| sums[n * self.c + c][k]).sum())
                .collect()
        };
        (channel_totals(0), channel_totals(1))
    }
}

/// One image's group `i` of [`Groups::forward`]: its statistics `(mu, r)`, and `h`, compiled
/// for the CPU's SIMD level so that the sums and the scale-and-shift vectorise (a closure
/// passed to pulp's dispatch is not inlined into it).
struct ForwardGroup<'a> {
    sh: &'a Groups,
    i: usize,
    x: &'a [f32],
    h: &'a mut [MaybeUninit<f32>],
    gamma: &'a [f32],
    beta: &'a [f32],
    epsilon: f32,
}

impl WithSimd for ForwardGroup<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> (f32, f32) {
        let Self {
            sh,
            i,
            x,
            h,
            gamma,
            beta,
            epsilon,
        } = self;
        let (mu, r) = moments(x, epsilon);
        let first = (i % sh.groups) * sh.per;
        for ((h, x), c) in h.chunks_mut(sh.s).zip(x.chunks(sh.s)).zip(first..) {
            let a = r * gamma[c];
            let b = beta[c] - mu * a;
            if sh.silu {
                affine_silu(x, a, b, h);
            } else {
                h.iter_mut()
                    .zip(x)
                    .for_each(|(h, &v)| *h = MaybeUninit::new(a * v + b));
            }
        }
        (mu, r)
    }
}

/// One image's group `i` of [`Groups::backward`], with its statistics `(mu, r)`: `dx` (the
/// upstream gradient, `x`'s gradient on return) and each channel's `[sum dy x^, sum dy]` into
/// `sums`, compiled for the CPU's SIMD level as [`ForwardGroup`].
struct BackwardGroup<'a> {
    sh: &'a Groups,
    i: usize,
    x: &'a [f32],
    dx: &'a mut [f32],
    sums: &'a mut [[f32; 2]],
    gamma: &'a [f32],
    beta: &'a [f32],
    stats: (f32, f32),
}

impl WithSimd for BackwardGroup<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Self {
            sh,
            i,
            x,
            dx,
            sums,
            gamma,
            beta,
            stats: (mu, r),
        } = self;
        let first = (i % sh.groups) * sh.per;
        let (mut sum_d, mut sum_dx) = (0.0f64, 0.0f64);
        for (((dy, x), sum), c) in dx
            .chunks_mut(sh.s)
            .zip(x.chunks(sh.s))
            .zip(sums.iter_mut())
            .zip(first..)
        {
            let a = r * gamma[c];
            if sh.silu {
                affine_silu_backward_inplace(x, a, beta[c] - mu * a, dy);
            }
            // Two vectorised passes over the channel (in cache) beat one that sums both.
            let sdy = sum_lanes(dy, dy, |d, _| d);
            let sdyx = sum_lanes(dy, x, |d, v| d * (v - mu) * r);
            *sum = [sdyx as f32, sdy as f32];
            sum_d += f64::from(gamma[c]) * sdy;
            sum_dx += f64::from(gamma[c]) * sdyx;
        }
        let len = sh.len() as f64;
        let (mean_d, mean_dx) = ((sum_d / len) as f32, (sum_dx / len) as f32);
        for ((dy, x), c) in dx.chunks_mut(sh.s).zip(x.chunks(sh.s)).zip(first..) {
            for (d, &v) in dy.iter_mut().zip(x) {
                let xhat = (v - mu) * r;
                *d = r * (gamma[c] * *d - mean_d - xhat * mean_dx);
            }
        }
    }
}

/// The mean of `x` and `1 / sqrt(var + epsilon)` (the biased variance), in two passes: the
/// mean, then the squares about it (one pass's `E[x^2] - E[x]^2` loses the variance of an input
/// far from zero).
#[inline(always)]
fn moments(x: &[f32], epsilon: f32) -> (f32, f32) {
    let n = x.len() as f64;
    let sum = sum_lanes(x, x, |v, _| v);
    let mean = (sum / n) as f32;
    let squares = sum_lanes(x, x, |v, _| (v - mean) * (v - mean));
    let var = squares / n;
    (mean, (1.0 / (var + f64::from(epsilon)).sqrt()) as f32)
}

/// Independent `f32` running sums in [`sum_lanes`]: two 8-lane vectors (one 16-lane), so that
/// consecutive adds do not wait on each other.
const LANES: usize = 16;
/// Elements summed in `f32` before the lanes join the `f64` total: a block's rounding error is
/// that of `BLOCK / LANES` terms, whatever the length.
const BLOCK: usize = 256;

/// `sum_i f(a_i, b_i)`: in [`LANES`] `f32` lanes within blocks of [`BLOCK`] elements, which
/// vectorise at the caller's SIMD level (see [`ForwardGroup`]), and in `f64` across blocks. One
/// running sum is a chain of dependent adds (the statistics took ~4 % of a U-Net training step
/// that way); `f64` lanes compiled outside the dispatch, or two sums in one loop, kept the loop
/// in SSE2 or scalar (the group norm's forward at 96 x 28x28 took 4.6-4.7 ms that way, 3.7-4.4
/// ms now).
#[inline(always)]
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut total = 0.0f64;
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail = ca.remainder().iter().zip(cb.remainder());
        for (a, b) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] += f(a[l], b[l]);
            }
        }
        for (acc, (&a, &b)) in acc.iter_mut().zip(tail) {
            *acc += f(a, b);
        }
        total += acc.iter().map(|&x| f64::from(x)).sum::<f64>();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values `offset + sin(i)`: a spread of about 0.7 about a mean far from zero.
    fn shifted(n: usize, offset: f32) -> Vec<f32> {
        (0..n).map(|i| offset + (i as f32 * 0.7).sin()).collect()
    }

    /// The blocked `f32` sums agree with `f64` sums on lengths off the lane and block sizes,
    /// to a relative error that does not grow with the length.
    #[test]
    fn lane_sums_match_f64_sums() {
        for n in [1, 15, 17, 255, 257, 100_003] {
            let (a, b) = (shifted(n, 100.0), shifted(n, -3.0));
            let want: f64 = a.iter().zip(&b).map(|(&a, &b)| f64::from(a * b)).sum();
            let got = sum_lanes(&a, &b, |a, b| a * b);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{n} values: {got} against {want}"
            );
        }
    }

    /// The statistics of an input whose mean is 10^4 times its spread: the two passes keep the
    /// variance that `E[x^2] - E[x]^2` in `f32` would lose.
    #[test]
    fn moments_keep_the_variance_far_from_zero() {
        let x = shifted(12_345, 1.0e4);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let (mu, r) = moments(&x, 1e-5);
        assert!(
            (f64::from(mu) - mean).abs() <= 1e-6 * mean,
            "{mu} against {mean}"
        );
        let want_r = 1.0 / (var + 1e-5).sqrt();
        assert!(
            (f64::from(r) - want_r).abs() <= 1e-3 * want_r,
            "{r} against {want_r}"
        );
    }
}
