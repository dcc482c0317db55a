//! The backward pass of the fused linear layer for burn's autodiff decorator.

use super::LinearOps;
use crate::tape::untape;
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

/// The graph node of one linear layer; it keeps `x` and `w` (shared buffers, not copies), which
/// the weight and input gradients need.
#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + LinearOps> Backward<B, 3> for LinearBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        // Only the tracked inputs get a gradient: the first layer's input is data.
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::linear_grad_input(g.clone(), w));
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::linear_grad_weight(x, g.clone()));
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::linear_grad_bias(g));
        }
    }
}

/// The graph node of one linear layer with its SiLU, `h = silu(x w + b)`: it keeps `x`, `w`,
/// `b` and the product `z = x w`, from which backward recomputes the sigmoid.
#[derive(Debug)]
struct LinearSiluBackward;

impl<B: Backend + LinearOps> Backward<B, 3> for LinearSiluBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w, b, z) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        let (gz, gb) = B::bias_silu_backward(z, b, g);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::linear_grad_input(gz.clone(), w));
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::linear_grad_weight(x, gz));
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, gb);
        }
    }
}

impl<B: Backend + LinearOps, C: CheckpointStrategy> LinearOps for Autodiff<B, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let ([x, w, b], nodes) = untape::<B, C>(x, w, b);
        // Compute-bound: the state is kept rather than recomputed under checkpointing.
        match LinearBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::fused_linear(x.clone(), w.clone(), b);
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_linear(x, w, b)),
        }
    }

    fn fused_linear_silu(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let ([x, w, b], nodes) = untape::<B, C>(x, w, b);
        match LinearSiluBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (z, h) = B::linear_silu_parts(x.clone(), w.clone(), b.clone());
                prep.finish((x, w, b, z), h)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_linear_silu(x, w, b)),
        }
    }
}
