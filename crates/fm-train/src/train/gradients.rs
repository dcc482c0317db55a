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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Distribution};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f32>().map(f64::from).collect()
    }

    /// The norm is that of all gradient entries together (weight and bias), computed here by
    /// hand; clipping scales every tensor by the same factor, to exactly `max_norm`, unlike
    /// clipping each tensor by its own norm.
    #[test]
    fn clipping_uses_one_norm_over_all_parameters() {
        let dev = Device::flex().autodiff();
        dev.seed(3);
        let layer: Linear = LinearConfig::new(4, 3).init(&dev);
        let x = Tensor::<2>::random([8, 4], Distribution::Normal(0.0, 3.0), &dev);
        let grads = || {
            let loss = layer.forward(x.clone()).powi_scalar(2).sum();
            GradientsParams::from_grads(loss.backward(), &layer)
        };
        let bias_id = layer.bias.as_ref().unwrap().id;
        let w: Vec<f64> = values(grads().get::<2>(layer.weight.id).unwrap());
        let b: Vec<f64> = values(grads().get::<1>(bias_id).unwrap());
        let by_hand = w.iter().chain(&b).map(|g| g * g).sum::<f64>().sqrt();
        let norm = global_norm(&layer, &grads());
        assert!(
            (norm - by_hand).abs() < 1e-5 * by_hand,
            "{norm} vs {by_hand}"
        );

        let max_norm = by_hand / 4.0;
        let clipped = clip_to_norm(&layer, grads(), norm, max_norm);
        assert!((global_norm(&layer, &clipped) - max_norm).abs() < 1e-5 * max_norm);
        let w2 = values(clipped.get::<2>(layer.weight.id).unwrap());
        let b2 = values(clipped.get::<1>(bias_id).unwrap());
        for (a, c) in w.iter().chain(&b).zip(w2.iter().chain(&b2)) {
            assert!(
                (c - a / 4.0).abs() <= 1e-5 * a.abs().max(1e-6),
                "{c} vs {a} / 4"
            );
        }
        // Below the threshold nothing changes.
        let kept = clip_to_norm(&layer, grads(), norm, 2.0 * by_hand);
        assert_eq!(values(kept.get::<2>(layer.weight.id).unwrap()), w);
    }
}
