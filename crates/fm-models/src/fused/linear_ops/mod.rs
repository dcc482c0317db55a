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

/// The operations composed from burn's primitives: the trait's defaults, and Flex's path for
/// what its fused kernels do not cover.
mod composed {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata};

    pub fn linear<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        b: FloatTensor<B>,
    ) -> FloatTensor<B> {
        let n = b.shape()[0];
        B::float_add(B::float_matmul(x, w), B::float_reshape(b, [1, n].into()))
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
