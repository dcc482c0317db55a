//! One training step's loss and gradients, on one device or data-parallel over several.
//!
//! The global batch is split into contiguous shards, one per device. Each device runs the
//! network (a copy of the main weights, `Module::fork`) on its shard; the shard loss is the sum of
//! its squared residuals over `B D` (the global batch's size), so the shard losses add up to the
//! global mean loss (eq. 9) and their gradients, moved to the main device and added with burn's
//! `GradientsAccumulator` (the mechanism of burn-train's multi-device strategy), to its gradient.
//! One device is the special case of one shard.
//!
//! Every replica runs on a thread of its own (`std::thread::scope`), so the devices compute at
//! the same time; the main device's on the calling thread. Not rayon tasks: an earlier attempt
//! with replicas as rayon tasks deadlocked with four replicas on two threads, most likely
//! because a worker waiting inside one replica's burn call stole another replica's task, which
//! then waited on the first on the same stack. OS threads only submit kernels to the pool and
//! wait outside it (docs/scaling.md). The gradients are added
//! in device order after the threads join, so the sum is the same bits whatever finishes first.

use super::batch::HostBatch;
use super::precision::{cast, cast_module};
use crate::collective::share;
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use fm_models::VelocityNet;
use std::ops::Range;

/// What the network computes in.
pub(crate) struct Objective {
    /// Data dimension `D`.
    pub dim: usize,
    /// The type of the forward and backward passes (the weights stay f32: `precision`).
    pub compute: FloatDType,
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

/// One step's outcome: the global mean loss (left on the main device: reading it back is a host
/// sync, done only when the loss is logged), its gradients on the main device, and the probe.
pub(crate) struct StepOutput {
    pub loss: Tensor<1>,
    pub grads: GradientsParams,
    pub probe: Probe,
}

impl Replicas {
    /// The `rows` of the global batch that this process takes (all of them unless it is one
    /// rank of a group) over `devices` (at most one device per row), as evenly as possible.
    pub fn new(devices: &[Device], rows: Range<usize>) -> Self {
        let k = devices.len();
        let shards = (0..k)
            .map(|i| {
                let part = share(rows.len(), i, k);
                (rows.start + part.start)..(rows.start + part.end)
            })
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

    /// The loss and gradients of `model` (on the main device) on the batch `drawn`. Non-finite
    /// values are not looked for here: they reach the gradients, whose global norm shows them.
    pub fn step(&self, model: &VelocityNet, drawn: HostBatch, objective: &Objective) -> StepOutput {
        let batch = drawn.t.len();
        let scale = 1.0 / (batch * objective.dim) as f64;
        let mut shards = self.devices.iter().zip(drawn.split(&self.shards));
        let (main, main_shard) = shards.next().expect("at least one device");
        let results: Vec<Shard> = std::thread::scope(|scope| {
            let others: Vec<_> = shards
                .map(|(dev, shard)| {
                    let replica = if dev == main {
                        model.clone()
                    } else {
                        model.clone().fork(dev)
                    };
                    scope.spawn(move || self.shard_step(replica, shard, dev, objective, scale))
                })
                .collect();
            let first = self.shard_step(model.clone(), main_shard, main, objective, scale);
            std::iter::once(first)
                .chain(
                    others
                        .into_iter()
                        .map(|h| h.join().expect("a replica thread panicked")),
                )
                .collect()
        });
        let mut acc = GradientsAccumulator::new();
        let mut total: Option<Tensor<1>> = None;
        let mut probe = None;
        for shard in results {
            total = Some(match total.take() {
                Some(t) => t + shard.loss,
                None => shard.loss,
            });
            acc.accumulate(model, shard.grads);
            probe.get_or_insert(shard.probe);
        }
        StepOutput {
            loss: total.expect("at least one device"),
            grads: acc.grads(),
            probe: probe.expect("at least one device"),
        }
    }

    /// One replica's part: its shard's loss (scaled to the global mean) and gradients, both
    /// moved to the main device.
    fn shard_step(
        &self,
        replica: VelocityNet,
        shard: HostBatch,
        dev: &Device,
        objective: &Objective,
        scale: f64,
    ) -> Shard {
        let main = self.main();
        let (loss, probe) = objective.shard_loss(&replica, shard, dev);
        let loss = loss.mul_scalar(scale);
        let value = loss.clone().detach().to_device(main);
        let grads = GradientsParams::from_grads(loss.backward(), &replica);
        Shard {
            loss: value,
            grads: grads.to_device(main, &replica),
            probe,
        }
    }
}

/// What one replica returns from a step.
struct Shard {
    loss: Tensor<1>,
    grads: GradientsParams,
    probe: Probe,
}

impl Objective {
    /// The sum over the rows of `shard` of `|w out - target|^2` ([`HostBatch`]), with the
    /// network run in the compute type on `dev`; and the shard's network inputs.
    fn shard_loss(
        &self,
        model: &VelocityNet,
        shard: HostBatch,
        dev: &Device,
    ) -> (Tensor<1>, Probe) {
        let (n, dim) = (shard.t.len(), self.dim);
        let x_t = Tensor::<2>::from_data(TensorData::new(shard.x_t, [n, dim]), dev);
        let target = Tensor::<2>::from_data(TensorData::new(shard.target, [n, dim]), dev);
        let t = Tensor::<1>::from_data(TensorData::new(shard.t, [n]), dev);
        let labels = shard
            .labels
            .map(|y| Tensor::<1, Int>::from_data(TensorData::new(y, [n]), dev));
        let probe = (
            x_t.clone().inner(),
            t.clone().inner(),
            labels.clone().map(|y| y.inner()),
        );
        let net = cast_module(model.clone(), self.compute);
        let out = net.forward(cast(x_t, self.compute), cast(t, self.compute), labels);
        // The loss is summed in the master type (f32), as autocast does for MSE.
        let out = cast(out, FloatDType::F32);
        let out = match shard.weight {
            Some(w) => out * Tensor::<2>::from_data(TensorData::new(w, [n, 1]), dev),
            None => out,
        };
        ((out - target).square().sum(), probe)
    }
}
