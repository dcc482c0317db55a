//! The fused group norm (and SiLU) on burn's Flex CPU backend: one rayon task per image and
//! group (`c / groups` channels of `s` values each, contiguous in `[n, c, ...]`); other dtypes
//! take the composition.

use super::{GroupNormOps, composed};
use crate::buffer::{contiguous, dense, from_vec, offsets, vec_f32};
use crate::silu_ops::kernel::{affine_silu, affine_silu_backward_inplace};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{DType, Shape, TensorMetadata};
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
                    let (mu, r) = moments(x, epsilon);
                    *stat = (mu, r);
                    let first = (i % self.groups) * self.per;
                    for ((h, x), c) in h.chunks_mut(self.s).zip(x.chunks(self.s)).zip(first..) {
                        let a = r * gamma[c];
                        let b = beta[c] - mu * a;
                        if self.silu {
                            affine_silu(x, a, b, h);
                        } else {
                            h.iter_mut()
                                .zip(x)
                                .for_each(|(h, &v)| *h = MaybeUninit::new(a * v + b));
                        }
                    }
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
                let (mu, r) = (mu[i], r[i]);
                let first = (i % self.groups) * self.per;
                let (mut sum_d, mut sum_dx) = (0.0f64, 0.0f64);
                for (((dy, x), sum), c) in dx
                    .chunks_mut(self.s)
                    .zip(x.chunks(self.s))
                    .zip(sums.iter_mut())
                    .zip(first..)
                {
                    let a = r * gamma[c];
                    if self.silu {
                        affine_silu_backward_inplace(x, a, beta[c] - mu * a, dy);
                    }
                    let [sdy, sdyx] =
                        sum_f64(dy, x, |d, v| [f64::from(d), f64::from(d * (v - mu) * r)]);
                    *sum = [sdyx as f32, sdy as f32];
                    sum_d += f64::from(gamma[c]) * sdy;
                    sum_dx += f64::from(gamma[c]) * sdyx;
                }
                let len = self.len() as f64;
                let (mean_d, mean_dx) = ((sum_d / len) as f32, (sum_dx / len) as f32);
                for ((dy, x), c) in dx.chunks_mut(self.s).zip(x.chunks(self.s)).zip(first..) {
                    for (d, &v) in dy.iter_mut().zip(x) {
                        let xhat = (v - mu) * r;
                        *d = r * (gamma[c] * *d - mean_d - xhat * mean_dx);
                    }
                }
            });
        let channel_totals = |k: usize| -> Vec<f32> {
            (0..self.c)
                .map(|c| (0..self.n).map(|n| sums[n * self.c + c][k]).sum())
                .collect()
        };
        (channel_totals(0), channel_totals(1))
    }
}

/// The mean of `x` and `1 / sqrt(var + epsilon)` (the biased variance), summed in `f64`.
fn moments(x: &[f32], epsilon: f32) -> (f32, f32) {
    let n = x.len() as f64;
    let [sum, _] = sum_f64(x, x, |v, _| [f64::from(v), 0.0]);
    let mean = sum / n;
    let [squares, _] = sum_f64(x, x, |v, _| [(f64::from(v) - mean).powi(2), 0.0]);
    let var = squares / n;
    (
        mean as f32,
        (1.0 / (var + f64::from(epsilon)).sqrt()) as f32,
    )
}

/// `sum_i f(a_i, b_i)`, two sums in `f64`, each in eight independent lanes: the compiler
/// vectorises them, where one running sum is a chain of dependent adds (the statistics took
/// ~4 % of a U-Net training step that way).
fn sum_f64(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f64; 2]) -> [f64; 2] {
    const LANES: usize = 8;
    let mut acc = [[0.0f64; LANES]; 2];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca.remainder().iter().zip(cb.remainder());
    for (a, b) in ca.zip(cb) {
        for l in 0..LANES {
            let [u, v] = f(a[l], b[l]);
            acc[0][l] += u;
            acc[1][l] += v;
        }
    }
    let mut total = acc.map(|lanes| lanes.iter().sum::<f64>());
    for (&a, &b) in tail {
        let [u, v] = f(a, b);
        total[0] += u;
        total[1] += v;
    }
    total
}
