//! The backward pass of the fused convolution for burn's autodiff decorator.

use super::ConvOps;
use crate::tape::untape;
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

/// The graph node of one convolution; it keeps `x`, `w` and `b` (shared buffers, not copies)
/// and the geometry, which the gradients need.
#[derive(Debug)]
struct Conv2dBackward;

impl<B: Backend + ConvOps> Backward<B, 3> for Conv2dBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, [usize; 3]);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w, b, geometry) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        // Only the tracked inputs get a gradient: the first convolution's input is data.
        if let Some(node) = node_x {
            let gx = B::conv2d_grad_input(x.clone(), w.clone(), g.clone(), geometry);
            grads.register::<B>(node.id, gx);
        }
        if let Some(node) = node_w {
            let gw = B::conv2d_grad_weight(x.clone(), w, g.clone(), geometry);
            grads.register::<B>(node.id, gw);
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::conv2d_grad_bias(x, b, g));
        }
    }
}

impl<B: Backend + ConvOps, C: CheckpointStrategy> ConvOps for Autodiff<B, C> {
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        geometry: [usize; 3],
    ) -> FloatTensor<Self> {
        let ([x, w, b], nodes) = untape::<B, C>(x, w, b);
        // Compute-bound: the state is kept rather than recomputed under checkpointing.
        match Conv2dBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::fused_conv2d(x.clone(), w.clone(), b.clone(), geometry);
                prep.finish((x, w, b, geometry), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_conv2d(x, w, b, geometry)),
        }
    }
}
