//! Splitting autodiff tensors into their inner tensors and graph nodes, for the fused
//! operations' backward passes.

use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::ops::NodeGuard;
use burn::backend::tensor::FloatTensor;

/// The inner tensors of an operation's input, weight and bias, and their graph nodes.
pub(crate) fn untape<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    w: FloatTensor<Autodiff<B, C>>,
    b: FloatTensor<Autodiff<B, C>>,
) -> ([FloatTensor<B>; 3], [NodeGuard; 3]) {
    let (x, node_x) = x.into_parts();
    let (w, node_w) = w.into_parts();
    let (b, node_b) = b.into_parts();
    ([x, w, b], [node_x, node_w, node_b])
}
