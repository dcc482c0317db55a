//! `fm train`: one training run from flags (or a run folder's config, with `--resume`).

use crate::group::Group;
use crate::{Common, device};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use fm_models::{Activation, NetConfig, TimeEmbedding, TimeMlpConfig, UNetConfig};
use fm_paths::scheduler::SchedulerName;
use fm_paths::{Coupling, Parametrization};
use fm_train::collective::Collective;
use fm_train::data::DataSource;
use fm_train::train::{FloatType, TrainConfig, train_in_group};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Data: checkerboard, 8gaussians, rings, moons, spirals, file:PATH (.csv / .npy), or images:
    /// mnist:DIR (IDX files, also idx:DIR), cifar10:DIR (binary version), images:DIR (PNGs).
    #[arg(long)]
    data: Option<String>,
    /// Network: mlp, or a U-Net preset for images: tiny, mnist (1.11 M parameters on 28x28
    /// gray), cifar10 (the paper's 143 M). [default: mlp for points, mnist for images]
    #[arg(long)]
    model: Option<String>,
    /// Train a class-conditional U-Net on the data's labels, with a null class for
    /// classifier-free guidance.
    #[arg(long)]
    conditional: bool,
    /// With --conditional: the probability of training a sample on the null class.
    /// [default: 0.1]
    #[arg(long)]
    label_dropout: Option<f64>,
    /// Dropout inside the U-Net's residual blocks. [default: the preset's, 0.1 (tiny: 0)]
    #[arg(long)]
    dropout: Option<f64>,
    /// Mirror training images left-right with probability 1/2.
    #[arg(long)]
    flip: bool,
    /// What the network predicts: v (the velocity, the paper), x1 (the data point), eps (the
    /// source noise) or score (denoising score matching, sigma_t^2 weighting); sampling converts
    /// it to a velocity (for the score, the probability-flow ODE).
    #[arg(long, default_value = "v")]
    predict: Parametrization,
    /// The paper's Table 1 objectives by name, setting --path and --predict: fm-ot (OT path,
    /// velocity), fm-vp (VP path, velocity: "FM w/ diffusion"), score (VP path, score matching),
    /// ddpm (VP path, noise prediction).
    #[arg(long)]
    objective: Option<Objective>,
    /// Pairing of noise and data in a batch: independent (the paper), ot (exact minibatch
    /// optimal transport: straighter paths, lower NFE), sinkhorn or sinkhorn:REG (entropic, REG relative
    /// to the largest cost, 0.05 by default). Pairs stay within a class for --conditional.
    #[arg(long, default_value = "independent")]
    coupling: Coupling,
    /// Probability path: ot, vp, ve, cosine, linear-vp, poly:N.
    #[arg(long, default_value = "ot")]
    path: SchedulerName,
    /// sigma_min of the OT path (paper eq. 20).
    #[arg(long, default_value_t = 1e-4)]
    sigma_min: f64,
    /// Total optimizer steps (with --resume: train until this step; without it a resumed run
    /// finishes its own plan).
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    /// Samples per step. [default: 4096 for points, 128 for images]
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (Adam). [default: 1e-3 for points, 5e-4 for images]
    #[arg(long)]
    lr: Option<f64>,
    /// Decoupled weight decay; > 0 switches Adam to AdamW.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Adam's epsilon (PyTorch's default). Saved with the run.
    #[arg(long, default_value_t = fm_train::train::ADAM_EPSILON)]
    adam_eps: f64,
    /// Linear learning-rate warmup steps. [default: 0 for points, 500 for images]
    #[arg(long)]
    warmup: Option<usize>,
    /// Cosine decay of the learning rate to 0 after warmup.
    #[arg(long)]
    cosine: bool,
    /// Clip the global gradient norm (over all parameters at once, as PyTorch's
    /// clip_grad_norm_). [default: none for points, 1 for images]
    #[arg(long)]
    grad_clip: Option<f64>,
    /// EMA decay of the evaluated weights. [default: 0.999 for points, 0.9999 for images]
    #[arg(long)]
    ema: Option<f64>,
    /// Hidden units per layer of the MLP.
    #[arg(long, default_value_t = 512)]
    hidden: usize,
    /// Hidden layers of the MLP (the paper: 4, i.e. 5 linear layers).
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Time features of the MLP: raw (t itself) or sinusoidal.
    #[arg(long, value_enum, default_value_t = TimeFeatureKind::Raw)]
    time_embedding: TimeFeatureKind,
    /// Seed of the weights and of every batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: usize,
    /// On a non-finite loss or gradient, skip the step (logged in metrics.jsonl) instead of
    /// stopping with an error that names the step and the last good checkpoint.
    #[arg(long)]
    skip_nonfinite: bool,
    /// Checkpoints to keep (the newest; older ones are deleted once a new one is in place).
    #[arg(long, default_value_t = 3)]
    keep_checkpoints: usize,
    /// Continue the run in --out from its newest checkpoint. The run keeps its config.json;
    /// only --steps, --checkpoint-every, --keep-checkpoints, --log-every, --skip-nonfinite and
    /// the devices may be given with it (any other flag is an error).
    #[arg(long)]
    resume: bool,
    /// The run folder (config, checkpoints, metrics).
    #[arg(long)]
    out: PathBuf,
    /// Replace the run already in --out (its config.json, metrics.jsonl and checkpoint
    /// folders; other files there are kept). Without it, a folder holding a run is refused.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Float type of the forward and backward passes: f32, f16 or bf16 (mixed precision, as
    /// torch.autocast: the weights, Adam's moments and the EMA stay f32). Saved with the run.
    #[arg(long, default_value = "f32")]
    dtype: FloatType,
    /// Write the mean loss to metrics.jsonl every N steps (and at checkpoints). Each line reads
    /// the loss back from the device: on a GPU, 10 to 100 keeps the host ahead of it.
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one())]
    log_every: usize,
    /// Train data-parallel on several devices, comma-separated (e.g. cuda:0,cuda:1 or
    /// vulkan,cpu): each takes an equal share of --batch-size, which stays the global batch, so
    /// the learning rate means what it means on one device. Overrides --device.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// Train as one rank of an MPI job, `mpirun -np N fm train --mpi ...` (a build with the
    /// mpi feature): each rank takes an equal share of --batch-size (the global batch) on its
    /// devices, gradients are summed over the ranks every step, and rank 0 writes the run
    /// folder, which every rank must see (docs/scaling.md).
    #[arg(long)]
    mpi: bool,
    /// With --mpi: seconds a rank waits in an all-reduce for the others before it ends the job
    /// (a rank that died or stalls); continue with --resume.
    #[arg(long, default_value_t = 300.0)]
    collective_timeout: f64,
    #[command(flatten)]
    pub common: Common,
}

/// The paper's Table 1 objectives.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Objective {
    /// OT path, velocity.
    FmOt,
    /// VP path, velocity ("FM w/ diffusion").
    FmVp,
    /// VP path, score matching.
    Score,
    /// VP path, noise prediction.
    Ddpm,
}

impl Objective {
    fn path_and_prediction(self) -> (SchedulerName, Parametrization) {
        match self {
            Self::FmOt => (SchedulerName::Ot, Parametrization::Velocity),
            Self::FmVp => (SchedulerName::Vp, Parametrization::Velocity),
            Self::Score => (SchedulerName::Vp, Parametrization::Score),
            Self::Ddpm => (SchedulerName::Vp, Parametrization::Epsilon),
        }
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

/// The MLP's time features.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TimeFeatureKind {
    /// t itself.
    Raw,
    /// Sinusoidal features (32, frequencies up to 100).
    Sinusoidal,
}

/// The network for `data`: the MLP for points, a U-Net preset for images.
fn network(a: &TrainArgs, data: &DataSource) -> Result<NetConfig> {
    let Some([channels, height, width]) = data.image_shape() else {
        match a.model.as_deref() {
            None | Some("mlp") => {}
            Some(m @ ("tiny" | "mnist" | "cifar10")) => {
                bail!("--model {m} is a U-Net for images; this data holds points: use --model mlp")
            }
            Some(m) => bail!(
                "--model {m}: unknown network; expected mlp for points, or tiny, mnist or cifar10 for images"
            ),
        }
        if a.conditional {
            bail!("--conditional needs labelled image data");
        }
        if a.dropout.is_some() {
            bail!("--dropout applies to the U-Net's blocks; the MLP for points has none");
        }
        let time_embedding = match a.time_embedding {
            TimeFeatureKind::Raw => TimeEmbedding::Raw,
            TimeFeatureKind::Sinusoidal => TimeEmbedding::Sinusoidal {
                dim: 32,
                max_frequency: 100.0,
            },
        };
        return Ok(NetConfig::Mlp(
            TimeMlpConfig::new(data.dim())
                .with_hidden(a.hidden)
                .with_depth(a.depth)
                .with_activation(Activation::Silu)
                .with_time_embedding(time_embedding),
        ));
    };
    if height != width {
        bail!("the U-Net takes square images; the data's are {height} x {width}");
    }
    let name = a.model.as_deref().unwrap_or("mnist");
    let mut unet = UNetConfig::preset(name, channels, height).with_context(|| {
        format!("--model {name}: expected tiny, mnist or cifar10 for image data")
    })?;
    if let Some(p) = a.dropout {
        unet = unet.with_dropout(p);
    }
    if a.conditional {
        let classes = data
            .num_classes()
            .context("--conditional: the data set has no labels")?;
        unet = unet.with_num_classes(Some(classes));
    }
    Ok(NetConfig::Unet(unet))
}

/// The run's configuration from the flags (`given`: those typed on the command line).
fn train_config(a: &TrainArgs, given: &[String]) -> Result<TrainConfig> {
    let spec = a
        .data
        .clone()
        .context("--data is required for a new run (e.g. --data checkerboard)")?;
    let data = DataSource::parse(&spec)?;
    let mut config = TrainConfig::for_model(&spec, network(a, &data)?);
    let (path, predict) = match a.objective {
        None => (a.path, a.predict),
        Some(objective) => objective.path_and_prediction(),
    };
    if let Some(objective) = a.objective
        && let Some(flag) = ["path", "predict"]
            .iter()
            .find(|f| given.iter().any(|g| g == *f))
    {
        bail!(
            "--objective {objective} sets --path {path} and --predict {predict}: drop --{flag}, or drop --objective and give both"
        );
    }
    config.path = path;
    config.predict = predict;
    config.coupling = a.coupling;
    config.sigma_min = a.sigma_min;
    config.steps = a.steps;
    config.batch_size = a.batch_size.unwrap_or(config.batch_size);
    config.lr = a.lr.unwrap_or(config.lr);
    config.weight_decay = a.weight_decay;
    config.adam_epsilon = a.adam_eps;
    config.warmup_steps = a.warmup.unwrap_or(config.warmup_steps);
    config.cosine_decay = a.cosine;
    config.grad_clip = a.grad_clip.or(config.grad_clip);
    config.ema_decay = a.ema.unwrap_or(config.ema_decay);
    config.label_dropout = a.label_dropout.unwrap_or(config.label_dropout);
    config.flip = a.flip;
    config.seed = a.seed;
    config.checkpoint_every = a.checkpoint_every;
    config.keep_checkpoints = a.keep_checkpoints;
    config.skip_nonfinite = a.skip_nonfinite;
    config.dtype = a.dtype;
    config.log_every = a.log_every;
    config
        .pin_data_file()
        .map_err(|e| anyhow::anyhow!("--data: {e}"))?;
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(config)
}

/// The flags `--resume` accepts (as clap's ids): the run's plan and bookkeeping, not what it
/// learns; every other setting comes from the run's config.json.
const RESUMABLE: [&str; 13] = [
    "steps",
    "checkpoint_every",
    "keep_checkpoints",
    "log_every",
    "skip_nonfinite",
    "resume",
    "out",
    "devices",
    "device",
    "mpi",
    "collective_timeout",
    "json",
    "force",
];

/// The run's config for `--resume`, with the flags it may change (`given`: those typed); any
/// other flag is an error that names it.
fn resumed_config(a: &TrainArgs, given: &[String]) -> Result<TrainConfig> {
    if let Some(flag) = given.iter().find(|id| !RESUMABLE.contains(&id.as_str())) {
        bail!(
            "--{} cannot change with --resume: the run keeps the settings in its config.json (with --resume only --steps, --checkpoint-every, --keep-checkpoints, --log-every, --skip-nonfinite and the devices may be given)",
            flag.replace('_', "-")
        );
    }
    let file = a.out.join("config.json");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("--resume: cannot read {}", file.display()))?;
    let mut config: TrainConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a run config", file.display()))?;
    let has = |id: &str| given.iter().any(|g| g == id);
    // Without --steps a resumed run finishes its own plan.
    if has("steps") {
        config.steps = a.steps;
    }
    if has("checkpoint_every") {
        config.checkpoint_every = a.checkpoint_every;
    }
    if has("keep_checkpoints") {
        config.keep_checkpoints = a.keep_checkpoints;
    }
    if has("log_every") {
        config.log_every = a.log_every;
    }
    config.skip_nonfinite |= a.skip_nonfinite;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(config)
}

pub fn cmd_train(a: &TrainArgs, given: &[String]) -> Result<Value> {
    let group = Group::join(a.mpi, a.collective_timeout)?;
    let report = train_as(a, given, group.collective());
    if let Err(e) = &report {
        group.end_job_on_failure(e);
    }
    report
}

/// `fm train` as one rank of `group`; only rank 0 clears a run for --force and reports.
fn train_as(a: &TrainArgs, given: &[String], group: &dyn Collective) -> Result<Value> {
    let config = if a.resume {
        resumed_config(a, given)?
    } else {
        train_config(a, given)?
    };
    let writer = group.rank() == 0;
    if a.force && writer {
        fm_train::train::clear_run(&a.out)?;
    }
    // The devices hold the f32 weights; the run's dtype is its compute type.
    let names = if a.devices.is_empty() {
        std::slice::from_ref(&a.common.device)
    } else {
        &a.devices[..]
    };
    let devices = names
        .iter()
        .map(|d| device::parse(d))
        .collect::<Result<Vec<_>>>()?;
    let quiet = a.common.json || !writer;
    let report = run_training(&config, &a.out, &devices, a.resume, quiet, group)?;
    Ok(if writer { report } else { Value::Null })
}

/// A flag raised by the first SIGINT or SIGTERM, so training finishes its step and writes a
/// checkpoint; a second signal ends the process at once (exit code 130).
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("installing the signal handlers")?;
        flag::register(signal, Arc::clone(&stop)).context("installing the signal handlers")?;
    }
    Ok(stop)
}

/// Trains (as one rank of `group`) with a progress bar (hidden when `quiet`) and reports the
/// summary.
pub fn run_training(
    config: &TrainConfig,
    out: &Path,
    devices: &[Device],
    resume: bool,
    quiet: bool,
    group: &dyn Collective,
) -> Result<Value> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.steps as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} [{elapsed_precise}<{eta_precise}] {per_sec} {msg}",
        )
        .expect("valid template"),
    );
    let stop = stop_on_signals()?;
    let summary = train_in_group(config, out, devices, resume, group, &mut |p| {
        bar.set_position(p.step as u64);
        if p.step % 10 == 0 || p.step == p.steps {
            bar.set_message(format!("loss {:.4}", p.loss));
        }
        if stop.load(Ordering::Relaxed) {
            bar.abandon_with_message("interrupted: writing a checkpoint");
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    bar.finish_and_clear();
    if let Some(note) = &summary.data_note {
        eprintln!("note: {note}");
    }
    for s in &summary.skipped_checkpoints {
        eprintln!("warning: skipped checkpoint {s}");
    }
    Ok(json!({
        "step": summary.step,
        "loss": summary.loss,
        "steps_per_s": summary.steps_per_s,
        "resumed_from": summary.resumed_from,
        "checkpoint": summary.checkpoint.display().to_string(),
    }))
}
