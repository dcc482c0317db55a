//! A linear layer `y = x w + b` as one fused operation, with its three gradients.

mod autodiff;
mod flex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

/// Fused linear layer on rank-2 tensors: `x`: `[m, k]`, `w`: `[k, n]`, `b`: `[n]`. The default
/// bodies compose burn's primitives.
#[backend_extension(Flex, Autodiff)]
pub trait LinearOps: Backend {
    /// `y = x w + b`: `[m, n]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::linear::<Self>(x, w, b)
    }

    /// `h = silu(x w + b)`: `[m, n]`, the layer and its activation as one operation.
    fn fused_linear_silu(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (_, h) = composed::linear_silu::<Self>(x, w, b);
        h
    }

    /// [`Self::fused_linear_silu`] keeping what its backward pass needs: `(z, h)` with the
    /// product `z = x w` (without the bias) and `h = silu(z + b)`, both `[m, n]`.
    fn linear_silu_parts(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed::linear_silu::<Self>(x, w, b)
    }

    /// The activation's backward pass and the bias gradient: from `z = x w`, `b` and
    /// `g = dL/dh`, `(dL/dz, dL/db)` with `dL/dz = g s (1 + v (1 - s))`, `v = z + b`,
    /// `s = sigmoid(v)`, and `dL/db = sum_i dL/dz[i, :]`.
    fn bias_silu_backward(
        z: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed::bias_silu_backward::<Self>(z, b, g)
    }

    /// `dL/dx = g w^T`: `[m, k]`, from the upstream gradient `g = dL/dy`: `[m, n]`.
    fn linear_grad_input(g: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::grad_input::<Self>(g, w)
    }

    /// `dL/dw = x^T g`: `[k, n]`.
    fn linear_grad_weight(x: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::grad_weight::<Self>(x, g)
    }

    /// `dL/db = sum_i g[i, :]`: `[n]`.
    fn linear_grad_bias(g: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::grad_bias::<Self>(g)
    }
}

/// `x w + b` on Flex tensors: `[m, k]`, `[k, n]`, `[n]` -> `[m, n]`.
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    let y = <Dispatch as LinearOps>::fused_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
    );
    Tensor::from_dispatch(y)
}

/// `silu(x w + b)` on Flex tensors: `[m, k]`, `[k, n]`, `[n]` -> `[m, n]`.
pub fn linear_silu(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    let h = <Dispatch as LinearOps>::fused_linear_silu(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
    );
    Tensor::from_dispatch(h)
}

/// The operations composed from burn's primitives: the trait's defaults, and Flex's path for
/// what its fused kernels do not cover.
mod composed {
    use crate::silu_ops::{composed_silu, composed_silu_backward};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata};

    pub fn linear<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        b: FloatTensor<B>,
    ) -> FloatTensor<B> {
        add_bias::<B>(B::float_matmul(x, w), b)
    }

    /// `(x w, silu(x w + b))`.
    pub fn linear_silu<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        b: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let z = B::float_matmul(x, w);
        (z.clone(), composed_silu::<B>(add_bias::<B>(z, b)))
    }

    /// `(dL/dz, dL/db)` of `silu(z + b)`.
    pub fn bias_silu_backward<B: Backend>(
        z: FloatTensor<B>,
        b: FloatTensor<B>,
        g: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let gz = composed_silu_backward::<B>(add_bias::<B>(z, b), g);
        (gz.clone(), grad_bias::<B>(gz))
    }

    /// `z + b` with `b`: `[n]` broadcast over the rows of `z`: `[m, n]`.
    fn add_bias<B: Backend>(z: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
        let n = b.shape()[0];
        B::float_add(z, B::float_reshape(b, [1, n].into()))
    }

    pub fn grad_input<B: Backend>(g: FloatTensor<B>, w: FloatTensor<B>) -> FloatTensor<B> {
        B::float_matmul(g, B::float_transpose(w))
    }

    pub fn grad_weight<B: Backend>(x: FloatTensor<B>, g: FloatTensor<B>) -> FloatTensor<B> {
        B::float_matmul(B::float_transpose(x), g)
    }

    pub fn grad_bias<B: Backend>(g: FloatTensor<B>) -> FloatTensor<B> {
        let n = g.shape()[1];
        B::float_reshape(B::float_sum_dim(g, 0), [n].into())
    }
}
