//! What a run learns and carries from step to step: the network, its EMA and the optimizer,
//! started fresh or from the newest checkpoint, stepped, and checkpointed.

use super::TrainError;
use super::checkpoint::{
    CheckpointState, latest_checkpoint, load_optimizer, load_weights, save_checkpoint,
};
use super::config::{TrainConfig, learning_rate};
use super::ema::{ema_decay_at, ema_update};
use super::gradients::{clip_to_norm, global_norm};
use super::replicas::{Probe, StepOutput};
use burn::module::Module;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use fm_models::VelocityNet;
use std::path::{Path, PathBuf};

/// The trained state of a run.
pub(super) struct Learner {
    /// The network, on the autodiff device.
    pub model: VelocityNet,
    /// The exponential moving average of its weights (what evaluation uses).
    pub ema: VelocityNet,
    optim: ModuleOptimizer,
    /// The newest checkpoint written or resumed from.
    pub last_checkpoint: Option<PathBuf>,
}

/// Where a run starts: its learner, the step it has done, the last logged loss (NaN when there
/// is none), and the checkpoints skipped as unusable on the way to the newest good one.
pub(super) struct Start {
    pub learner: Learner,
    pub step: usize,
    pub loss: f64,
    pub skipped: Vec<String>,
}

/// What one step did.
pub(super) struct Stepped {
    /// The step's learning rate.
    pub lr: f64,
    /// The step's loss (on the device), or `None` when it was skipped as non-finite.
    pub loss: Option<Tensor<1>>,
}

impl Learner {
    /// A new network seeded by `config.seed` on `device`'s autodiff twin, or, with `resume`,
    /// the newest usable checkpoint in `run`.
    pub fn start(
        config: &TrainConfig,
        run: &Path,
        device: &Device,
        resume: bool,
    ) -> Result<Start, TrainError> {
        let dev = device.clone().autodiff();
        dev.seed(config.seed);
        let model = config.model.init(&dev);
        let mut learner = Self {
            ema: model.valid(),
            model,
            optim: optimizer(config),
            last_checkpoint: None,
        };
        let mut skipped = Vec::new();
        let (mut step, mut loss) = (0, f64::NAN);
        if resume && let Some(ck) = latest_checkpoint(run, &mut skipped)? {
            learner.model = load_weights(learner.model, &ck.model_file())?;
            learner.ema = load_weights(learner.ema, &ck.ema_file())?;
            learner.optim = load_optimizer(&ck, learner.optim)?;
            step = ck.state.step;
            loss = ck.state.loss.unwrap_or(f64::NAN);
            learner.last_checkpoint = Some(ck.dir);
        }
        Ok(Start {
            learner,
            step,
            loss,
            skipped,
        })
    }

    /// Applies the gradients of step `step` (0-based): clipped to the global norm, the
    /// optimizer's update, then the EMA's. A non-finite norm skips the step when the config
    /// allows it and is an error otherwise. Takes the learner by value so that the optimizer
    /// holds the only reference to each parameter and can update it in place.
    pub fn step(
        mut self,
        config: &TrainConfig,
        step: usize,
        output: StepOutput,
    ) -> Result<(Self, Stepped), TrainError> {
        let StepOutput { loss, grads, .. } = output;
        // The one read-back of every step: the global gradient norm, which clips and shows
        // non-finite losses and gradients alike.
        let norm = global_norm(&self.model, &grads);
        let lr = learning_rate(config, step);
        if !norm.is_finite() {
            if config.skip_nonfinite {
                return Ok((self, Stepped { lr, loss: None }));
            }
            return Err(TrainError::NonFinite {
                step: step + 1,
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        let grads = match config.grad_clip {
            Some(max_norm) => clip_to_norm(&self.model, grads, norm, max_norm),
            None => grads,
        };
        self.model = self.optim.step(lr, self.model, grads);
        let decay = ema_decay_at(config.ema_decay, step);
        self.ema = ema_update(self.ema, &self.model, decay);
        let stepped = Stepped {
            lr,
            loss: Some(loss),
        };
        Ok((self, stepped))
    }

    /// Writes the checkpoint of step `done` with the logged `loss`, after checking that both
    /// networks still give finite outputs on `probe`: a finite loss does not prove finite
    /// gradients, and weights a non-finite update broke are never written.
    pub fn checkpoint(
        &mut self,
        config: &TrainConfig,
        run: &Path,
        done: usize,
        loss: f64,
        probe: &Probe,
    ) -> Result<(), TrainError> {
        let (x, t, y) = probe;
        let outputs_finite = [self.model.valid(), self.ema.clone()].iter().all(|net| {
            let out = net.forward(x.clone(), t.clone(), y.clone());
            out.abs().sum().into_scalar::<f64>().is_finite()
        });
        if !outputs_finite {
            return Err(TrainError::NonFinite {
                step: done,
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        let state = CheckpointState {
            step: done,
            loss: loss.is_finite().then_some(loss),
            checksums: Default::default(),
        };
        let dir = save_checkpoint(
            run,
            &state,
            &self.model,
            &self.ema,
            &self.optim,
            config.keep_checkpoints,
        )?;
        self.last_checkpoint = Some(dir);
        Ok(())
    }
}

/// Adam (AdamW with weight decay), without clipping of its own: the training loop clips by the
/// global norm before the step. With the `flex` feature, plain Adam is `fm-flex`'s one-pass
/// update (burn's arithmetic and state, so checkpoints are the same either way).
fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let epsilon = config.adam_epsilon as f32;
    if config.weight_decay > 0.0 {
        return AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_epsilon(epsilon)
            .init();
    }
    #[cfg(feature = "flex")]
    return fm_flex::FusedAdamConfig::new().with_epsilon(epsilon).init();
    #[cfg(not(feature = "flex"))]
    burn::optim::AdamConfig::new().with_epsilon(epsilon).init()
}
