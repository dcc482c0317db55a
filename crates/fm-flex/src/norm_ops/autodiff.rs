//! The backward pass of the fused group norm (and SiLU) for burn's autodiff decorator.

use super::GroupNormOps;
use crate::tape::untape;
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

/// The graph node of one group norm (with its SiLU where it has one); it keeps `x`, `gamma`,
/// `beta` (shared buffers), the statistics `mu`, `r` (`[n, groups, 1]`), from which backward
/// recomputes the normalised values, and the spec.
#[derive(Debug)]
struct GroupNormBackward;

impl<B: Backend + GroupNormOps> Backward<B, 3> for GroupNormBackward {
    type State = ([FloatTensor<B>; 5], [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let ([x, gamma, beta, mu, r], spec) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        let (dx, dgamma, dbeta) = B::group_norm_backward(x, gamma, beta, mu, r, g, spec);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + GroupNormOps, C: CheckpointStrategy> GroupNormOps for Autodiff<B, C> {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: [usize; 2],
        epsilon: [f32; 1],
    ) -> FloatTensor<Self> {
        let ([x, gamma, beta], nodes) = untape::<B, C>(x, gamma, beta);
        // Memory-bound, but its recomputation needs the statistics: the state is kept.
        match GroupNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let parts =
                    B::group_norm_parts(x.clone(), gamma.clone(), beta.clone(), spec, epsilon);
                let (h, mu, r) = parts;
                prep.finish(([x, gamma, beta, mu, r], spec), h)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_group_norm(x, gamma, beta, spec, epsilon))
            }
        }
    }
}
