//! The global gradient norm, computed once per step: it clips (as
//! `torch.nn.utils.clip_grad_norm_`) and detects non-finite gradients with one read-back.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// `sqrt(sum |g|^2)` over every parameter's gradient, summed on the device and read back once:
/// NaN or infinite when any entry is.
pub fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct Squares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Squares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut squares = Squares { grads, total: None };
    model.visit(&mut squares);
    squares.total.map_or(0.0, |t| t.into_scalar::<f64>()).sqrt()
}

/// Scales every gradient by `max_norm / norm` when the global `norm` exceeds `max_norm`, so the
/// clipped gradients have global norm `max_norm` and keep their direction.
pub fn clip_to_norm<M: Module>(
    model: &M,
    mut grads: GradientsParams,
    norm: f64,
    max_norm: f64,
) -> GradientsParams {
    if norm <= max_norm {
        return grads;
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    model.visit(&mut Scale {
        grads: &mut grads,
        factor: max_norm / norm,
    });
    grads
}
