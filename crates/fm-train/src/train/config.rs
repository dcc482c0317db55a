//! The configuration of a training run, saved as `config.json` in the run folder.

use super::TrainError;
use crate::data::{DataSource, Split};
use burn::tensor::FloatDType;
use fm_models::{NetConfig, TimeMlpConfig, UNetConfig};
use fm_paths::scheduler::SchedulerName;
use fm_paths::{AnyScheduler, Coupling, Parametrization, ParseError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Everything that determines a run (with the seed, bit for bit on the CPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The data spec (`checkerboard`, `8gaussians`, ..., `file:PATH`; a file's path is stored
    /// absolute, so the run reads the same file from any working directory).
    pub data: String,
    /// The size and CRC-32 of a `file:` data set when the run began: a run refuses to go on
    /// (or be evaluated on its own data) with a file that has changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_file: Option<FileCheck>,
    /// The probability path: `ot`, `vp`, `ve`, `cosine`, `linear-vp` or `poly:N`.
    #[serde(with = "by_name")]
    pub path: SchedulerName,
    /// `sigma_min` of the OT path.
    pub sigma_min: f64,
    /// The velocity network.
    pub model: NetConfig,
    /// What the network predicts: `v` (the velocity, the paper), `x1`, `eps` (the source
    /// sample) or `score` (trained by denoising score matching with `sigma_t^2` weighting);
    /// sampling converts the prediction to a velocity (the probability-flow ODE for the score).
    #[serde(default = "velocity", with = "by_name")]
    pub predict: Parametrization,
    /// How a batch's noise and data are paired: `independent` (the paper), `ot` (exact minibatch
    /// optimal transport) or `sinkhorn[:REG]`; class-aware for class-conditional networks.
    #[serde(default = "independent", with = "by_name")]
    pub coupling: Coupling,
    /// Optimizer steps in total.
    pub steps: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay (AdamW); 0 selects plain Adam.
    pub weight_decay: f64,
    /// Adam's epsilon, added to the root of the second moment: PyTorch's, Meta's and TorchCFM's
    /// 1e-8 by default. Runs saved before this field existed trained with burn's 1e-5 and keep it.
    #[serde(default = "burn_adam_epsilon")]
    pub adam_epsilon: f64,
    /// Steps of linear learning-rate warmup from 0.
    pub warmup_steps: usize,
    /// Cosine decay of the learning rate to 0 after warmup (otherwise constant).
    pub cosine_decay: bool,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Decay of the exponential moving average of the weights (evaluated by default).
    pub ema_decay: f64,
    /// Seed of the weights and of every batch.
    pub seed: u64,
    /// For a class-conditional network: the probability of training a sample on the null class
    /// instead of its own (classifier-free guidance needs both fields).
    #[serde(default)]
    pub label_dropout: f64,
    /// Mirror training images left-right with probability 1/2.
    #[serde(default)]
    pub flip: bool,
    /// On a non-finite loss or gradient, skip the step (logged as `"skipped": true`) instead of
    /// stopping the run.
    #[serde(default)]
    pub skip_nonfinite: bool,
    /// The float type of the forward and backward passes: `f32`, `f16` or `bf16`. The weights,
    /// Adam's moments and the EMA stay in f32 whatever it is (mixed precision, as
    /// `torch.autocast`); the training devices make f32 tensors.
    #[serde(default, with = "by_name")]
    pub dtype: FloatType,
    /// Read the loss back and write a metrics line every this many steps (the mean loss since
    /// the last line), and at checkpoints. Reading the loss waits for the device: on a GPU a
    /// larger interval keeps the host ahead of it.
    #[serde(default = "every_step")]
    pub log_every: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Checkpoints to keep.
    pub keep_checkpoints: usize,
}

/// What a run remembers of its data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheck {
    /// Bytes.
    pub size: u64,
    /// CRC-32 of the contents.
    pub crc32: u32,
}

impl FileCheck {
    /// The size and checksum of `path` now.
    pub fn of(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        })
    }
}

/// The fields that are choices are saved by name, as the command line spells them, so a
/// `config.json` reads like the command that made it (and files from before the typed fields
/// load unchanged).
mod by_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// A float type by name: `f32`, `f16` or `bf16`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FloatType {
    /// IEEE single precision.
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16: f32's exponent range with 8 bits of mantissa.
    Bf16,
}

impl FloatType {
    /// burn's float dtype.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

impl FromStr for FloatType {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            _ => Err(ParseError::new("float type", s, "f32, f16 or bf16")),
        }
    }
}

impl fmt::Display for FloatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

fn velocity() -> Parametrization {
    Parametrization::Velocity
}

fn independent() -> Coupling {
    Coupling::Independent
}

/// burn's `AdamConfig` default, which runs saved without `adam_epsilon` used.
fn burn_adam_epsilon() -> f64 {
    1e-5
}

/// Adam's epsilon in PyTorch (`torch.optim.Adam`), Meta's examples and TorchCFM.
pub const ADAM_EPSILON: f64 = 1e-8;

fn every_step() -> usize {
    1
}

impl TrainConfig {
    /// The paper's 2-D setting: MLP 4x512 (SiLU), Adam 1e-3, batch 4096, OT path.
    pub fn new(data: &str, dim: usize) -> Self {
        Self {
            data: data.to_string(),
            data_file: None,
            path: SchedulerName::Ot,
            sigma_min: 1e-4,
            model: NetConfig::Mlp(TimeMlpConfig::new(dim)),
            predict: velocity(),
            coupling: independent(),
            steps: 20_000,
            batch_size: 4096,
            lr: 1e-3,
            weight_decay: 0.0,
            adam_epsilon: ADAM_EPSILON,
            warmup_steps: 0,
            cosine_decay: false,
            grad_clip: None,
            ema_decay: 0.999,
            seed: 0,
            label_dropout: 0.0,
            flip: false,
            skip_nonfinite: false,
            dtype: FloatType::F32,
            log_every: every_step(),
            checkpoint_every: 1000,
            keep_checkpoints: 3,
        }
    }

    /// An image setting for `unet`: Adam 5e-4 with 500 warmup steps, batch 128, gradient
    /// clipping at 1, EMA 0.9999, label dropout 0.1 when the network has classes, OT path.
    pub fn images(data: &str, unet: UNetConfig) -> Self {
        let label_dropout = if unet.num_classes.is_some() { 0.1 } else { 0.0 };
        Self {
            model: NetConfig::Unet(unet),
            steps: 100_000,
            batch_size: 128,
            lr: 5e-4,
            warmup_steps: 500,
            grad_clip: Some(1.0),
            ema_decay: 0.9999,
            label_dropout,
            ..Self::new(data, 1)
        }
    }

    /// The defaults for `model` on `data`: [`TrainConfig::images`] for a U-Net,
    /// [`TrainConfig::new`] with the network for the MLP.
    pub fn for_model(data: &str, model: NetConfig) -> Self {
        match model {
            NetConfig::Unet(unet) => Self::images(data, unet),
            mlp => {
                let dim = mlp.data_dim();
                Self {
                    model: mlp,
                    ..Self::new(data, dim)
                }
            }
        }
    }

    /// Checks the settings, saying which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.steps == 0, "steps must be at least 1"),
            (self.batch_size == 0, "batch size must be at least 1"),
            (
                !(self.lr > 0.0 && self.lr.is_finite()),
                "learning rate must be positive",
            ),
            (
                !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()),
                "weight decay must be a finite number, 0 or more",
            ),
            (
                !(self.adam_epsilon > 0.0 && self.adam_epsilon.is_finite()),
                "Adam epsilon must be positive",
            ),
            (
                !(0.0..1.0).contains(&self.ema_decay),
                "EMA decay must be in [0, 1)",
            ),
            (self.log_every == 0, "log interval must be at least 1"),
            (
                self.checkpoint_every == 0,
                "checkpoint interval must be at least 1",
            ),
            (self.keep_checkpoints == 0, "keep at least 1 checkpoint"),
            (
                self.grad_clip
                    .is_some_and(|c| c.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)),
                "gradient clip must be positive",
            ),
            (
                !(self.sigma_min >= 0.0 && self.sigma_min < 1.0),
                "sigma_min must be in [0, 1)",
            ),
            (
                matches!(&self.model, NetConfig::Mlp(m) if m.hidden == 0),
                "hidden width must be at least 1",
            ),
            (
                !(0.0..1.0).contains(&self.label_dropout),
                "label dropout must be in [0, 1)",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(bad, _)| *bad) {
            return Err(msg.to_string());
        }
        if let NetConfig::Unet(unet) = &self.model {
            unet.validate()?;
        }
        Ok(())
    }

    /// A rough upper estimate of the memory a training step needs, in bytes: the weights with
    /// their gradients, Adam's two moments and the EMA (5 copies in f32), and per sample the
    /// network's activations kept for the backward pass and their gradients. Computed in f64,
    /// so absurd sizes give a large number rather than an overflow.
    pub fn memory_estimate(&self) -> f64 {
        const F32: f64 = 4.0;
        let (params, per_sample) = match &self.model {
            NetConfig::Mlp(m) => {
                let (d, h, depth) = (m.input_dim as f64, m.hidden as f64, m.depth as f64);
                let t = m.time_embedding.output_dim() as f64;
                let params = (d + t + 1.0) * h + (depth - 1.0).max(0.0) * (h * h + h) + h * d + d;
                // Each hidden layer keeps its product and activation; gradients double that.
                (params, 4.0 * depth * h + 4.0 * (d + t))
            }
            NetConfig::Unet(u) => {
                let side = u.image_size as f64;
                let ch = u.base_channels as f64;
                let levels: f64 = u
                    .channel_mult
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| m as f64 * (side / 2f64.powi(i as i32)).powi(2))
                    .sum();
                // About a dozen tensors of a level's size per residual block, both ways.
                let blocks = (2 * u.res_blocks + 1) as f64;
                let widths: f64 = u.channel_mult.iter().map(|&m| m as f64).sum::<f64>();
                (
                    ch * ch * widths * widths * 9.0 * blocks,
                    24.0 * blocks * ch * levels,
                )
            }
        };
        let data = 3.0 * self.model.data_dim() as f64;
        F32 * (5.0 * params + self.batch_size as f64 * (per_sample + data))
    }

    /// For `file:` data: stores the file's absolute path in `data` and its size and checksum
    /// in `data_file` (other data specs are left alone).
    pub fn pin_data_file(&mut self) -> Result<(), String> {
        let Some(path) = self.data.strip_prefix("file:") else {
            return Ok(());
        };
        let absolute = std::fs::canonicalize(path).map_err(|e| format!("data file {path}: {e}"))?;
        self.data_file = Some(FileCheck::of(&absolute)?);
        self.data = format!("file:{}", absolute.display());
        Ok(())
    }

    /// The run's own data (the `split` of an image set), refused when a `file:` data set is not
    /// the one the run began with (see `data_file`).
    pub fn data_source(&self, split: Split) -> Result<DataSource, TrainError> {
        self.check_data_file().map_err(TrainError::Config)?;
        Ok(DataSource::parse_split(&self.data, split)?)
    }

    /// Checks that a `file:` data set is the one the run began with (see `data_file`).
    fn check_data_file(&self) -> Result<(), String> {
        let (Some(path), Some(want)) = (self.data.strip_prefix("file:"), self.data_file) else {
            return Ok(());
        };
        let now = FileCheck::of(Path::new(path))?;
        if now != want {
            return Err(format!(
                "the run's data file {path} has changed since the run began ({} bytes, CRC-32 {:08x}; now {} bytes, {:08x}): restore it, or start a new run",
                want.size, want.crc32, now.size, now.crc32
            ));
        }
        Ok(())
    }

    /// The scheduler of `path` (with `sigma_min` for the OT path).
    pub fn scheduler(&self) -> AnyScheduler {
        self.path.scheduler(self.sigma_min)
    }
}

/// The learning rate at `step`: linear warmup to `lr`, then constant or cosine decay to 0.
pub fn learning_rate(config: &TrainConfig, step: usize) -> f64 {
    if step < config.warmup_steps {
        return config.lr * (step + 1) as f64 / config.warmup_steps as f64;
    }
    if !config.cosine_decay {
        return config.lr;
    }
    let span = config.steps.saturating_sub(config.warmup_steps).max(1) as f64;
    let progress = (step - config.warmup_steps) as f64 / span;
    0.5 * config.lr * (1.0 + (std::f64::consts::PI * progress).cos())
}
