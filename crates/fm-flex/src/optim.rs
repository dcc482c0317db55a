//! Adam whose update of each parameter is one fused pass ([`crate::adam_update`]).
//!
//! burn's `Adam` updates a parameter in a dozen element-wise operations, each a pass over the
//! parameter on one thread; for the 4x512 MLP that was 3.5 % of a one-thread training step,
//! and on two threads the other core waits through it. The arithmetic, its order and the state
//! (burn's [`AdamState`], so checkpoints are unchanged) are burn's.

use crate::{AdamStep, adam_update};
use burn::config::Config;
use burn::optim::Optimizer;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

/// [`FusedAdam`]'s settings, with the defaults of burn's `AdamConfig`.
#[derive(Config, Debug)]
pub struct FusedAdamConfig {
    /// Decay of the first moment.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Decay of the second moment.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Added to the root of the second moment.
    #[config(default = 1e-5)]
    pub epsilon: f32,
}

impl FusedAdamConfig {
    /// The optimizer for modules.
    pub fn init(&self) -> ModuleOptimizer {
        ModuleOptimizer::from(FusedAdam {
            config: self.clone(),
        })
    }
}

/// Adam (Kingma and Ba) without weight decay or AMSGrad, as burn computes it.
#[derive(Clone)]
pub struct FusedAdam {
    config: FusedAdamConfig,
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let FusedAdamConfig {
            beta_1,
            beta_2,
            epsilon,
        } = self.config;
        // A first step starts from zero moments: `0 beta + g (1 - beta)` is burn's `g (1 - beta)`.
        let (time, m1, m2) = match state {
            Some(AdamState { momentum }) => {
                (momentum.time + 1, momentum.moment_1, momentum.moment_2)
            }
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        // burn's bias corrections, in f32 as it computes them.
        let t = time as i32;
        let correction_2 = (1.0 - beta_2.powi(t)).sqrt();
        let step = AdamStep {
            beta_1,
            beta_2,
            factor: correction_2 / (1.0 - beta_1.powi(t)),
            epsilon: epsilon * correction_2,
            lr: lr as f32,
        };
        let (tensor, m1, m2) = adam_update(tensor, grad, m1, m2, step);
        let momentum = AdaptiveMomentumState::new(time, m1, m2);
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <burn::optim::Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;

    /// Five steps of each optimizer from the same weights on the same data: the weights agree
    /// (burn's order of operations), for a parameter of several chunks and a small bias.
    #[test]
    fn matches_burn_adam_step_by_step() {
        let dev = Device::flex().autodiff();
        dev.seed(11);
        let start = LinearConfig::new(300, 200).init(&dev);
        let inputs: Vec<Tensor<2>> = (0..5)
            .map(|_| Tensor::random([64, 300], Distribution::Normal(0.0, 1.0), &dev))
            .collect();
        let train = |mut optim: ModuleOptimizer| {
            let mut layer: Linear = start.clone();
            for x in &inputs {
                let loss = layer.forward(x.clone()).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &layer);
                layer = optim.step(1e-2, layer, grads);
            }
            layer
        };
        let fused = train(FusedAdamConfig::new().init());
        let burn = train(AdamConfig::new().init());
        let diff = |a: Tensor<2>, b: Tensor<2>| (a - b).abs().max().into_scalar::<f32>();
        let moved = diff(fused.weight.val(), start.weight.val());
        assert!(moved > 1e-3, "the weights moved by {moved}");
        assert!(diff(fused.weight.val(), burn.weight.val()) <= 1e-6);
        let bias = |l: &Linear| l.bias.as_ref().expect("a bias").val().unsqueeze::<2>();
        assert!(diff(bias(&fused), bias(&burn)) <= 1e-6);
    }
}
