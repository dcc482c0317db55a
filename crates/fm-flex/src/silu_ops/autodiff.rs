//! The backward pass of the fused SiLU for burn's autodiff decorator.

use super::SiluOps;
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;

/// The graph node of one SiLU: it keeps its input, from which backward recomputes the sigmoid
/// (cheaper than storing a second activation-sized tensor).
#[derive(Debug)]
struct SiluBackward;

impl<B: Backend + SiluOps> Backward<B, 1> for SiluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::silu_backward(x, grad)
        });
    }
}

impl<B: Backend + SiluOps, C: CheckpointStrategy> SiluOps for Autodiff<B, C> {
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        // Compute-bound: the state (the input) is kept rather than recomputed under checkpointing.
        match SiluBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::silu(x.clone());
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::silu(x)),
        }
    }
}
