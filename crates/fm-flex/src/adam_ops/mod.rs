//! The fused Adam update as a burn backend extension.

mod flex;

use super::adam::composed;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};

/// Fused Adam update. The default body composes burn's primitives in the same order.
#[backend_extension(Flex, Autodiff)]
pub trait AdamOps: Backend {
    /// `(p, m1, m2)` after one step from the parameter `p`, its gradient `g` and its moments
    /// `m1`, `m2`, all of one shape, with the scalars `[beta_1, beta_2, factor, epsilon, lr]`
    /// of [`super::AdamStep`].
    fn adam_update(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m1: FloatTensor<Self>,
        m2: FloatTensor<Self>,
        step: [f32; 5],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::<Self>(p, g, m1, m2, step)
    }
}

/// Optimizer updates are not differentiated: autodiff tensors take the composition.
impl<B: Backend + AdamOps, C: CheckpointStrategy> AdamOps for Autodiff<B, C> {}
