//! One training step's loss and gradients, on one device or data-parallel over several.
//!
//! The global batch is split into contiguous shards, one per device. Each device runs the
//! network (a copy of the main weights, `Module::fork`) on its shard; the shard loss is the sum of
//! its squared residuals over `B D` (the global batch's size), so the shard losses add up to the
//! global mean loss (eq. 9) and their gradients, moved to the main device and added with burn's
//! `GradientsAccumulator` (the mechanism of burn-train's multi-device strategy), to its gradient.
//! One device is the special case of one shard.

use super::batch::HostBatch;
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use fm_models::VelocityNet;
use fm_paths::{AffinePath, AnyScheduler, Parametrization};
use std::ops::Range;

/// What the network learns: the path and the prediction.
pub(crate) struct Objective {
    pub path: AffinePath<AnyScheduler>,
    pub predict: Parametrization,
    /// Data dimension `D`.
    pub dim: usize,
}

/// Inputs of the network on the main device, kept to check the updated weights before a
/// checkpoint: `x_t`, `t` and the classes, without autodiff.
pub(crate) type Probe = (Tensor<2>, Tensor<1>, Option<Tensor<1, Int>>);

/// The devices of a run and the rows of the batch each one takes.
pub(crate) struct Replicas {
    /// Autodiff devices; the first holds the weights.
    devices: Vec<Device>,
    shards: Vec<Range<usize>>,
}

/// One step's outcome: the global mean loss, its gradients on the main device (none when the
/// loss is not finite: no backward pass is run), and the probe.
pub(crate) struct StepOutput {
    pub loss: f64,
    pub grads: Option<GradientsParams>,
    pub probe: Probe,
}

impl Replicas {
    /// `batch` rows over `devices` (at most one device per row), as evenly as possible.
    pub fn new(devices: &[Device], batch: usize) -> Self {
        let k = devices.len();
        let shards = (0..k)
            .map(|i| (i * batch / k)..((i + 1) * batch / k))
            .collect();
        Self {
            devices: devices.iter().map(|d| d.clone().autodiff()).collect(),
            shards,
        }
    }

    /// The main (first) device, with autodiff.
    pub fn main(&self) -> &Device {
        &self.devices[0]
    }

    /// Seeds every device's generator (dropout masks) for a step; the main device gets `seed`.
    pub fn seed(&self, seed: u64) {
        for (i, dev) in self.devices.iter().enumerate() {
            dev.seed(seed.wrapping_add((i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)));
        }
    }

    /// The loss and gradients of `model` (on the main device) on the batch `drawn`.
    pub fn step(&self, model: &VelocityNet, drawn: HostBatch, objective: &Objective) -> StepOutput {
        let batch = drawn.t.len();
        let scale = 1.0 / (batch * objective.dim) as f64;
        let mut parts = Vec::with_capacity(self.devices.len());
        let mut probe = None;
        for (dev, shard) in self.devices.iter().zip(drawn.split(&self.shards)) {
            let replica = if dev == self.main() {
                model.clone()
            } else {
                model.clone().fork(dev)
            };
            let (loss, shard_probe) = objective.shard_loss(&replica, shard, dev);
            probe.get_or_insert(shard_probe);
            parts.push((replica, loss.mul_scalar(scale)));
        }
        // Reading the losses waits for every device's forward pass, which were all queued first.
        let loss: f64 = parts
            .iter()
            .map(|(_, l)| l.clone().into_scalar::<f64>())
            .sum();
        let grads = loss.is_finite().then(|| {
            let mut acc = GradientsAccumulator::new();
            for (replica, l) in parts {
                let g = GradientsParams::from_grads(l.backward(), &replica);
                acc.accumulate(model, g.to_device(self.main(), model));
            }
            acc.grads()
        });
        StepOutput {
            loss,
            grads,
            probe: probe.expect("at least one device"),
        }
    }
}

impl Objective {
    /// The sum over the rows of `shard` of the squared residual of what `model` predicts
    /// (eq. 9 for the velocity), computed on `dev`; and the shard's network inputs.
    fn shard_loss(
        &self,
        model: &VelocityNet,
        shard: HostBatch,
        dev: &Device,
    ) -> (Tensor<1>, Probe) {
        let (n, dim) = (shard.t.len(), self.dim);
        let x1 = Tensor::<2>::from_data(TensorData::new(shard.x1, [n, dim]), dev);
        let x0 = Tensor::<2>::from_data(TensorData::new(shard.x0, [n, dim]), dev);
        let t = Tensor::<1>::from_data(TensorData::new(shard.t, [n]), dev);
        let labels = shard
            .labels
            .map(|y| Tensor::<1, Int>::from_data(TensorData::new(y, [n]), dev));
        let sample = self.path.sample(x0.clone(), x1.clone(), t.clone());
        let probe = (
            sample.x_t.clone().inner(),
            t.clone().inner(),
            labels.clone().map(|y| y.inner()),
        );
        // For the score, `sigma_t` weights the residual: denoising score matching with the
        // usual `lambda(t) = sigma_t^2` weighting.
        let sigma = (self.predict == Parametrization::Score)
            .then(|| self.path.coefficients_like(t.clone(), &x0).sigma);
        let out = model.forward(sample.x_t, t, labels);
        let residual = match (self.predict, sigma) {
            (Parametrization::X1, _) => out - x1,
            (Parametrization::Epsilon, _) => out - x0,
            // The conditional score is -x0 / sigma_t: sigma_t (s - (-x0 / sigma_t)).
            (Parametrization::Score, Some(sigma)) => out * sigma + x0,
            _ => out - sample.target,
        };
        (residual.square().sum(), probe)
    }
}
