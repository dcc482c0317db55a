//! `fm`: train, sample and evaluate flow matching models (Lipman et al., ICLR 2023).

mod device;
mod plot;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand};
use fm_models::{Activation, TimeEmbedding};
use fm_ode::{Divergence, Method, SolverConfig, Stats};
use fm_train::data::{DataSource, Points, write_npy};
use fm_train::eval::{TrainedRun, energy_distance, load_run, sliced_w1, straightness};
use fm_train::train::{TrainConfig, train};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "fm",
    version,
    about = "Flow Matching for Generative Modeling: train, sample, evaluate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a velocity network with conditional flow matching.
    Train(TrainArgs),
    /// Draw samples from a trained run.
    Sample(SampleArgs),
    /// Negative log-likelihood of points under a trained run.
    Nll(NllArgs),
    /// NLL, entropy gap, energy distance, sliced W1 and NFE of a trained run.
    Eval(EvalArgs),
    /// Train on the checkerboard, sample, evaluate and write pictures to runs/demo.
    Demo(DemoArgs),
    /// List the devices this build can use.
    Devices {
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Backend: cpu (default), ndarray, wgpu, vulkan, cuda or cuda:N, as compiled in.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object as the last line of stdout, and no progress bar.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct TrainArgs {
    /// Data: checkerboard, 8gaussians, rings, moons, spirals, or file:PATH (.csv / .npy).
    #[arg(long)]
    data: Option<String>,
    /// Probability path: ot, vp, ve, cosine, linear-vp, poly:N.
    #[arg(long, default_value = "ot")]
    path: String,
    /// sigma_min of the OT path (paper eq. 20).
    #[arg(long, default_value_t = 1e-4)]
    sigma_min: f64,
    /// Total optimizer steps (with --resume: train until this step).
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// Peak learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Decoupled weight decay; > 0 switches Adam to AdamW.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Linear learning-rate warmup steps.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Cosine decay of the learning rate to 0 after warmup.
    #[arg(long)]
    cosine: bool,
    /// Clip the global gradient norm.
    #[arg(long)]
    grad_clip: Option<f64>,
    /// EMA decay of the evaluated weights.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Hidden units per layer of the MLP.
    #[arg(long, default_value_t = 512)]
    hidden: usize,
    /// Hidden layers of the MLP (the paper: 4, i.e. 5 linear layers).
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Time features: raw (t itself) or sinusoidal.
    #[arg(long, default_value = "raw")]
    time_embedding: String,
    /// Seed of the weights and of every batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: usize,
    /// Continue the run in --out from its newest checkpoint, up to --steps (the other settings
    /// come from the run's config.json).
    #[arg(long)]
    resume: bool,
    /// The run folder (config, checkpoints, metrics).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Clone)]
struct SolverArgs {
    /// ODE solver: dopri5 (adaptive), euler, midpoint, heun, rk4 (fixed steps).
    #[arg(long, default_value = "dopri5")]
    solver: Method,
    /// Relative tolerance of dopri5.
    #[arg(long, default_value_t = 1e-5)]
    rtol: f64,
    /// Absolute tolerance of dopri5.
    #[arg(long, default_value_t = 1e-5)]
    atol: f64,
    /// Steps of a fixed-step solver.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Points per solve (bounds memory).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Use the raw weights instead of their EMA.
    #[arg(long)]
    raw_weights: bool,
}

impl SolverArgs {
    fn config(&self) -> SolverConfig {
        match self.solver {
            Method::Dopri5 => SolverConfig::dopri5(self.rtol, self.atol),
            m => SolverConfig::fixed(m, self.steps),
        }
    }
}

#[derive(Args, Clone)]
struct SampleArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    n: usize,
    /// Write the samples as an .npy file ([n, D] float32).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write a picture of the samples beside data (2-D only).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Seed of the source noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also follow up to 1000 of the samples from noise to data, save their paths at 41 times as
    /// an .npy file ([41, n, D] float32), and report their straightness.
    #[arg(long)]
    save_trajectories: Option<PathBuf>,
    /// Draw the saved paths (2-D only).
    #[arg(long, requires = "save_trajectories")]
    trajectory_png: Option<PathBuf>,
    #[command(flatten)]
    solver: SolverArgs,
    #[command(flatten)]
    common: Common,
}

/// `k + 1` evenly spaced times from 0 to 1.
fn trajectory_times(k: usize) -> Vec<f64> {
    (0..=k).map(|i| i as f64 / k as f64).collect()
}

#[derive(Args, Clone)]
struct NllArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Points to evaluate (default: the run's own data); file:PATH evaluates a file's points.
    #[arg(long)]
    data: Option<String>,
    /// Number of points.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    n: usize,
    /// Divergence: exact, hutchinson, hutchinson:K, gaussian or gaussian:K (K probes).
    #[arg(long, default_value = "exact")]
    divergence: Divergence,
    /// Seed of the evaluation points and probes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    solver: SolverArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Clone)]
struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Points for NLL and samples for the distances.
    #[arg(long, default_value_t = 5000, value_parser = at_least_one())]
    n: usize,
    /// Seed of the evaluation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    solver: SolverArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Clone)]
struct DemoArgs {
    /// Training steps (2000 reached an entropy gap of 0.22 nats in 160 s in all on 2 cores).
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Where the run and the pictures go (an earlier demo run there is replaced).
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// A count that must be positive (`--n`).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => cmd_train(&a).map(|v| finish(&a.common, v)),
        Command::Sample(a) => cmd_sample(&a).map(|v| finish(&a.common, v)),
        Command::Nll(a) => cmd_nll(&a).map(|v| finish(&a.common, v)),
        Command::Eval(a) => cmd_eval(&a).map(|v| finish(&a.common, v)),
        Command::Demo(a) => cmd_demo(&a).map(|v| finish(&a.common, v)),
        Command::Devices { json } => {
            let common = Common {
                device: "cpu".into(),
                json,
            };
            finish(&common, json!({ "devices": device::available() }));
            Ok(())
        }
    }
}

/// Prints the result: a JSON line under --json, readable lines otherwise.
fn finish(common: &Common, value: Value) {
    if common.json {
        println!("{value}");
    } else if let Value::Object(map) = value {
        for (k, v) in map {
            println!("{k:>18}: {v}");
        }
    }
}

fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
    let time_embedding = match a.time_embedding.as_str() {
        "raw" => TimeEmbedding::Raw,
        "sinusoidal" => TimeEmbedding::Sinusoidal {
            dim: 32,
            max_frequency: 100.0,
        },
        other => bail!("--time-embedding {other}: expected raw or sinusoidal"),
    };
    let data_spec = a
        .data
        .clone()
        .context("--data is required for a new run (e.g. --data checkerboard)")?;
    let dim = DataSource::parse(&data_spec)?.dim();
    let mut config = TrainConfig::new(&data_spec, dim);
    config.path = a.path.clone();
    config.sigma_min = a.sigma_min;
    config.model = config
        .model
        .with_hidden(a.hidden)
        .with_depth(a.depth)
        .with_activation(Activation::Silu)
        .with_time_embedding(time_embedding);
    config.steps = a.steps;
    config.batch_size = a.batch_size;
    config.lr = a.lr;
    config.weight_decay = a.weight_decay;
    config.warmup_steps = a.warmup;
    config.cosine_decay = a.cosine;
    config.grad_clip = a.grad_clip;
    config.ema_decay = a.ema;
    config.seed = a.seed;
    config.checkpoint_every = a.checkpoint_every;
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(config)
}

fn cmd_train(a: &TrainArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    let config = if a.resume {
        let file = a.out.join("config.json");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("--resume: cannot read {}", file.display()))?;
        let mut config: TrainConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run config", file.display()))?;
        config.steps = a.steps;
        config
    } else {
        train_config(a)?
    };
    run_training(&config, &a.out, &device, a.resume, a.common.json)
}

fn run_training(
    config: &TrainConfig,
    out: &Path,
    device: &Device,
    resume: bool,
    quiet: bool,
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
    let summary = train(config, out, device, resume, &mut |p| {
        bar.set_position(p.step as u64);
        if p.step % 10 == 0 || p.step == p.steps {
            bar.set_message(format!("loss {:.4}", p.loss));
        }
    })?;
    bar.finish_and_clear();
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

fn mean_nfe(stats: &[Stats]) -> f64 {
    stats.iter().map(|s| s.nfe as f64).sum::<f64>() / stats.len().max(1) as f64
}

fn cmd_sample(a: &SampleArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    device.seed(a.seed);
    let trained = load_run(&a.run, &device, a.solver.raw_weights)?;
    let began = Instant::now();
    let (samples, stats) = trained.sample(a.n, a.solver.batch, &a.solver.config(), &device)?;
    let secs = began.elapsed().as_secs_f64();
    if let Some(out) = &a.out {
        write_npy(out, &samples.values, &[samples.len(), samples.dim])
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(png) = &a.png {
        if samples.dim != 2 {
            bail!(
                "--png draws 2-D points; this run's data has {} dimensions",
                samples.dim
            );
        }
        let data = DataSource::parse(&trained.config.data)?;
        let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
        plot::samples_beside_data(&samples, &data.sample(samples.len(), &mut rng), png)?;
    }
    let mut report = json!({ "n": a.n, "nfe": mean_nfe(&stats), "samples_per_s": a.n as f64 / secs, "seconds": secs });
    if let Some(path) = &a.save_trajectories {
        let times = trajectory_times(40);
        let (states, _) =
            trained.trajectories(a.n.min(1000), &times, &a.solver.config(), &device)?;
        let values: Vec<f32> = states
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .collect();
        write_npy(
            path,
            &values,
            &[states.len(), states[0].len(), states[0].dim],
        )
        .with_context(|| format!("writing {}", path.display()))?;
        if let Some(png) = &a.trajectory_png {
            plot::trajectories(&states, png)?;
        }
        report["straightness"] = json!(straightness(&states, &times));
    }
    Ok(report)
}

/// NLL of `points`, with the entropy gap when `data` knows its entropy.
fn nll_report(
    trained: &TrainedRun,
    data: &DataSource,
    points: &Points,
    divergence: Divergence,
    solver: &SolverArgs,
    device: &Device,
) -> Result<Value> {
    let (nll, stats) = trained.nll(points, solver.batch, divergence, &solver.config(), device)?;
    let mean = nll.iter().sum::<f64>() / nll.len() as f64;
    let sd = (nll.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nll.len() as f64).sqrt();
    Ok(json!({
        "nll_nats": mean,
        "nll_stderr": sd / (nll.len() as f64).sqrt(),
        "entropy_nats": data.entropy(),
        "entropy_gap_nats": data.entropy().map(|h| mean - h),
        "nll_nfe": mean_nfe(&stats),
    }))
}

fn cmd_nll(a: &NllArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    device.seed(a.seed);
    let trained = load_run(&a.run, &device, a.solver.raw_weights)?;
    let data = DataSource::parse(a.data.as_deref().unwrap_or(&trained.config.data))?;
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let points = data.evaluation_points(a.n, &mut rng);
    nll_report(&trained, &data, &points, a.divergence, &a.solver, &device)
}

/// The full evaluation of a run: NLL, entropy gap, distances, NFE.
fn evaluate(
    trained: &TrainedRun,
    n: usize,
    seed: u64,
    solver: &SolverArgs,
    device: &Device,
) -> Result<(Value, Points)> {
    let data = DataSource::parse(&trained.config.data)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let points = data.evaluation_points(n, &mut rng);
    let mut report = nll_report(trained, &data, &points, Divergence::Exact, solver, device)?;
    let (samples, stats) = trained.sample(n, solver.batch, &solver.config(), device)?;
    let fresh = data.sample(samples.len(), &mut rng);
    report["energy_distance"] = json!(energy_distance(&samples, &fresh));
    if samples.dim == 2 {
        report["sw1"] = json!(sliced_w1(&samples, &fresh, 500));
    }
    report["nfe"] = json!(mean_nfe(&stats));
    Ok((report, samples))
}

fn cmd_eval(a: &EvalArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    device.seed(a.seed);
    let trained = load_run(&a.run, &device, a.solver.raw_weights)?;
    Ok(evaluate(&trained, a.n, a.seed, &a.solver, &device)?.0)
}

fn cmd_demo(a: &DemoArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    let began = Instant::now();
    let mut config = TrainConfig::new("checkerboard", 2);
    config.model = config.model.with_hidden(256).with_depth(4);
    config.steps = a.steps;
    config.batch_size = 2048;
    config.lr = 2e-3;
    config.warmup_steps = 100;
    config.cosine_decay = true;
    config.ema_decay = 0.99;
    config.checkpoint_every = 500;
    if !a.common.json {
        eprintln!(
            "training OT flow matching on the checkerboard ({} steps, MLP 4x256, batch 2048) into {}",
            a.steps,
            a.out.display()
        );
    }
    let old = a.out.join("checkpoints");
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the earlier demo run in {}", old.display()))?;
    }
    let train_report = run_training(&config, &a.out, &device, false, a.common.json)?;
    device.seed(1);
    let trained = load_run(&a.out, &device, false)?;
    let solver = SolverArgs {
        solver: Method::Dopri5,
        rtol: 1e-5,
        atol: 1e-5,
        steps: 20,
        batch: 10_000,
        raw_weights: false,
    };
    let (mut report, _) = evaluate(&trained, 4000, 1, &solver, &device)?;
    let data = DataSource::parse("checkerboard")?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (more, _) = trained.sample(20_000, 10_000, &solver.config(), &device)?;
    plot::samples_beside_data(
        &more,
        &data.sample(more.len(), &mut rng),
        &a.out.join("samples.png"),
    )?;
    // Trajectories of 400 points saved at 41 times.
    let times = trajectory_times(40);
    let (states, _) = trained.trajectories(400, &times, &solver.config(), &device)?;
    plot::trajectories(&states, &a.out.join("trajectories.png"))?;
    report["straightness"] = json!(straightness(&states, &times));
    // Model log-density on a 80 x 80 grid.
    let k = 80;
    let (grid, _) = Points::grid(plot::LIMIT, k);
    let coarse = SolverArgs {
        rtol: 1e-4,
        atol: 1e-4,
        ..solver
    };
    let (nll, _) = trained.nll(&grid, 6400, Divergence::Exact, &coarse.config(), &device)?;
    let logp: Vec<f64> = nll.iter().map(|v| -v).collect();
    plot::log_density(&logp, k, &a.out.join("density.png"))?;
    report["train_steps_per_s"] = train_report["steps_per_s"].clone();
    report["seconds"] = json!(began.elapsed().as_secs_f64());
    report["pictures"] = json!(
        ["samples.png", "trajectories.png", "density.png"].map(|f| a
            .out
            .join(f)
            .display()
            .to_string())
    );
    Ok(report)
}
