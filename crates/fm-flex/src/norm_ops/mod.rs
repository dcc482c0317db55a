//! Group normalisation, optionally followed by SiLU (`silu(gamma gn(x) + beta)`, or without
//! it `gamma gn(x) + beta`), as one fused operation per direction: the residual blocks of the
//! U-Nets normalise and activate before each convolution, their attention blocks normalise
//! alone.
//!
//! burn composes group norm from about nine operations (reshape, two means, a subtraction, a
//! square, a square root, a division, the affine product and sum), each a pass over the
//! activation with a graph node of its own, and SiLU from two more. Here the forward pass is one
//! task per image and group (the statistics, then the normalised, scaled, shifted and activated
//! values), and the backward pass two sweeps per task that also give the `gamma` and `beta`
//! gradients.

mod autodiff;
mod flex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

/// Fused group norm, with or without SiLU, for `x`: `[n, c, ...]` (any trailing dimensions,
/// `s` elements per channel) in `groups` groups of `c / groups` channels, with `gamma`, `beta`:
/// `[c]`: `y = gamma (x - mu) / sqrt(var + epsilon) + beta`, where `mu` and `var` (biased) are
/// the mean and variance of each image's group, and `h = silu(y)` or `h = y`. `spec = [groups,
/// silu]` with `silu` 1 for the activation and 0 without; `epsilon = [epsilon]`. The default
/// bodies compose burn's primitives.
#[backend_extension(Flex, Autodiff)]
pub trait GroupNormOps: Backend {
    /// `h`: the shape of `x`.
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: [usize; 2],
        epsilon: [f32; 1],
    ) -> FloatTensor<Self> {
        composed::forward::<Self>(x, gamma, beta, spec, epsilon).0
    }

    /// `(h, mu, r)` with each image's and group's mean `mu` and `r = 1 / sqrt(var + epsilon)`,
    /// both `[n, groups, 1]`: what the backward pass needs besides the inputs.
    fn group_norm_parts(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: [usize; 2],
        epsilon: [f32; 1],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::forward::<Self>(x, gamma, beta, spec, epsilon)
    }

    /// `(dL/dx, dL/dgamma, dL/dbeta)` from the upstream gradient `g = dL/dh`: with
    /// `x^ = (x - mu) r`, `y = gamma x^ + beta` and `dy = g silu'(y)` (`dy = g` without SiLU),
    /// `dL/dbeta = sum dy`, `dL/dgamma = sum dy x^` (over images and positions), and
    /// `dL/dx = r (d - mean(d) - x^ mean(d x^))` with `d = gamma dy` and means over the group.
    /// `spec` as in the forward pass.
    fn group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mu: FloatTensor<Self>,
        r: FloatTensor<Self>,
        g: FloatTensor<Self>,
        spec: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::backward::<Self>(x, gamma, beta, [mu, r], g, spec)
    }
}

/// `silu(gamma gn(x) + beta)` on Flex tensors: `x`: `[n, c, ...]`, `gamma`, `beta`: `[c]`, in
/// `groups` groups (which must divide `c`).
pub fn group_norm_silu<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    epsilon: f64,
) -> Tensor<D> {
    fused(x, gamma, beta, [groups, 1], epsilon)
}

/// `gamma gn(x) + beta` on Flex tensors, as [`group_norm_silu`] without the activation.
pub fn group_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    epsilon: f64,
) -> Tensor<D> {
    fused(x, gamma, beta, [groups, 0], epsilon)
}

fn fused<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    spec: [usize; 2],
    epsilon: f64,
) -> Tensor<D> {
    let h = <Dispatch as GroupNormOps>::fused_group_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        spec,
        [epsilon as f32],
    );
    Tensor::from_dispatch(h)
}

/// The operations composed from burn's primitives: the trait's defaults, and Flex's path for
/// what its fused kernels do not cover.
mod composed {
    use crate::silu_ops::{composed_silu, composed_silu_backward};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, Shape, TensorMetadata};

    /// `x` as `[n, groups, c / groups * s]`, and its own shape.
    fn grouped<B: Backend>(x: FloatTensor<B>, groups: usize) -> (FloatTensor<B>, Shape) {
        let shape = x.shape();
        let n = shape[0];
        let per = shape.num_elements() / (n * groups);
        (B::float_reshape(x, [n, groups, per].into()), shape)
    }

    /// `v`: `[c]` as `[1, c, 1, ...]` against `shape`.
    fn per_channel<B: Backend>(v: FloatTensor<B>, shape: &Shape) -> FloatTensor<B> {
        let mut dims = vec![1; shape.num_dims()];
        dims[1] = shape[1];
        B::float_reshape(v, Shape::from(dims))
    }

    /// `x^ = (x - mu) r` in `x`'s shape, from the grouped `x`.
    fn normalised<B: Backend>(
        x3: FloatTensor<B>,
        mu: FloatTensor<B>,
        r: FloatTensor<B>,
        shape: &Shape,
    ) -> FloatTensor<B> {
        B::float_reshape(B::float_mul(B::float_sub(x3, mu), r), shape.clone())
    }

    /// `y = gamma x^ + beta`.
    fn affine<B: Backend>(
        xhat: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        shape: &Shape,
    ) -> FloatTensor<B> {
        let scaled = B::float_mul(xhat, per_channel::<B>(gamma, shape));
        B::float_add(scaled, per_channel::<B>(beta, shape))
    }

    pub fn forward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        [groups, silu]: [usize; 2],
        [epsilon]: [f32; 1],
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let (x3, shape) = grouped::<B>(x, groups);
        let mu = B::float_mean_dim(x3.clone(), 2);
        let centred = B::float_sub(x3.clone(), mu.clone());
        let var = B::float_mean_dim(B::float_mul(centred.clone(), centred), 2);
        let r = B::float_powf_scalar(B::float_add_scalar(var, epsilon.into()), (-0.5).into());
        let xhat = normalised::<B>(x3, mu.clone(), r.clone(), &shape);
        let y = affine::<B>(xhat, gamma, beta, &shape);
        let h = if silu == 1 { composed_silu::<B>(y) } else { y };
        (h, mu, r)
    }

    pub fn backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        [mu, r]: [FloatTensor<B>; 2],
        g: FloatTensor<B>,
        [groups, silu]: [usize; 2],
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let (x3, shape) = grouped::<B>(x, groups);
        let xhat = normalised::<B>(x3, mu, r.clone(), &shape);
        let dy = if silu == 1 {
            let y = affine::<B>(xhat.clone(), gamma.clone(), beta, &shape);
            composed_silu_backward::<B>(y, g)
        } else {
            g
        };
        let channel_sums = |t: FloatTensor<B>| {
            let (n, c) = (shape[0], shape[1]);
            let t = B::float_reshape(t, [n, c, shape.num_elements() / (n * c)].into());
            let t = B::float_sum_dim(B::float_sum_dim(t, 2), 0);
            B::float_reshape(t, [c].into())
        };
        let dbeta = channel_sums(dy.clone());
        let dgamma = channel_sums(B::float_mul(dy.clone(), xhat.clone()));
        let (d, _) = grouped::<B>(B::float_mul(dy, per_channel::<B>(gamma, &shape)), groups);
        let (xhat, _) = grouped::<B>(xhat, groups);
        let mean_d = B::float_mean_dim(d.clone(), 2);
        let mean_dx = B::float_mean_dim(B::float_mul(d.clone(), xhat.clone()), 2);
        let inner = B::float_sub(B::float_sub(d, mean_d), B::float_mul(xhat, mean_dx));
        let dx = B::float_reshape(B::float_mul(inner, r), shape);
        (dx, dgamma, dbeta)
    }
}
