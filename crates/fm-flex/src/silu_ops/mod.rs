//! SiLU as one fused operation per direction.

mod autodiff;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod flex;
pub(crate) mod kernel;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

/// Fused SiLU: the forward pass and its derivative as single operations. The default bodies
/// compose burn's primitives.
#[backend_extension(Flex, Autodiff)]
pub trait SiluOps: Backend {
    /// `y = x sigmoid(x)`, element-wise.
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        composed_silu::<Self>(x)
    }

    /// `dL/dx = g s (1 + x (1 - s))` with `s = sigmoid(x)` and `g = dL/dy`, element-wise.
    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed_silu_backward::<Self>(x, grad)
    }
}

/// `x sigmoid(x)` on a Flex tensor, any shape.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as SiluOps>::silu(x.into_dispatch()))
}

/// `x sigmoid(x)` from burn's primitives.
pub(crate) fn composed_silu<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(x.clone(), B::sigmoid(x))
}

/// `g s (1 + x (1 - s))` from burn's primitives.
pub(crate) fn composed_silu_backward<B: Backend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let s = B::sigmoid(x.clone());
    let one_minus_s = B::float_neg(B::float_add_scalar(s.clone(), (-1.0).into()));
    let inner = B::float_add_scalar(B::float_mul(x, one_minus_s), 1.0.into());
    B::float_mul(grad, B::float_mul(s, inner))
}
