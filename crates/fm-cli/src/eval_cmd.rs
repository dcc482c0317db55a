//! `fm nll` and `fm eval`: likelihoods (nats for points, bits per dimension for images), sample
//! distances and NFE of a trained run.

use crate::fid_cmd::{Images, Meter, fid_of_samples};
use crate::{Common, at_least_one, device};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use fm_ode::{Divergence, ErrorNorm, Method, SolverConfig, Stats};
use fm_paths::scheduler::SchedulerName;
use fm_train::data::{DataSource, Points, Split, to_pixels_nhwc};
use fm_train::eval::{BpdEstimator, TrainedRun, energy_distance, load_run, sliced_w1};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args, Clone)]
pub struct SolverArgs {
    /// ODE method: dopri5, euler, midpoint, heun, rk4. dopri5 takes adaptive steps unless
    /// --steps is given; the others always take fixed steps.
    #[arg(long, default_value = "dopri5")]
    pub solver: Method,
    /// Relative tolerance of adaptive dopri5.
    #[arg(long, default_value_t = 1e-5)]
    pub rtol: f64,
    /// Absolute tolerance of adaptive dopri5.
    #[arg(long, default_value_t = 1e-5)]
    pub atol: f64,
    /// How adaptive dopri5 measures a step's error: rms (one root-mean-square over the whole
    /// batch, torchdiffeq's, so NFE compares with the paper) or per-sample (the largest of the
    /// samples' own: stricter, every sample held to the tolerance, more evaluations).
    #[arg(long, default_value = "rms")]
    pub error_norm: ErrorNorm,
    /// Fixed steps (default 20 for euler, midpoint, heun, rk4; dopri5 runs adaptive without it).
    #[arg(long, value_parser = at_least_one())]
    pub steps: Option<usize>,
    /// Points per solve (bounds memory).
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    pub batch: usize,
    /// Use the raw weights instead of their EMA.
    #[arg(long)]
    pub raw_weights: bool,
    /// Sample along another scheduler than the trained one (the schedule transform: the same
    /// marginal path re-timed): ot, vp, cosine, linear-vp, poly:N.
    #[arg(long)]
    pub schedule: Option<SchedulerName>,
}

/// Fixed steps of euler, midpoint, heun and rk4 when `--steps` is not given.
const DEFAULT_STEPS: usize = 20;

impl SolverArgs {
    /// dopri5 at `tol` (relative and absolute), in batches of `batch`, EMA weights.
    pub fn dopri5(tol: f64, batch: usize) -> Self {
        Self {
            solver: Method::Dopri5,
            rtol: tol,
            atol: tol,
            error_norm: ErrorNorm::Rms,
            steps: None,
            batch,
            raw_weights: false,
            schedule: None,
        }
    }

    /// The newest checkpoint of `run` with these weights and this schedule.
    pub fn load(&self, run: &Path, device: &Device) -> Result<TrainedRun> {
        let trained = load_run(run, device, self.raw_weights)?;
        for why in &trained.skipped_checkpoints {
            eprintln!(
                "warning: skipped checkpoint {why}; using the older step {}",
                trained.checkpoint.state.step
            );
        }
        Ok(match self.schedule {
            Some(name) => {
                let target = name.scheduler(trained.config.sigma_min);
                trained.with_schedule(target)
            }
            None => trained,
        })
    }

    pub fn config(&self) -> SolverConfig {
        match (self.solver, self.steps) {
            (Method::Dopri5, None) => {
                SolverConfig::dopri5(self.rtol, self.atol).with_error_norm(self.error_norm)
            }
            (m, steps) => SolverConfig::fixed(m, steps.unwrap_or(DEFAULT_STEPS)),
        }
    }
}

#[derive(Args, Clone)]
pub struct NllArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Points to evaluate (default: the run's own data; the test split of an image set);
    /// file:PATH evaluates a file's points.
    #[arg(long)]
    data: Option<String>,
    /// Number of points (images: the first N of the split).
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    n: usize,
    /// Divergence: exact, hutchinson, hutchinson:K, gaussian or gaussian:K (K probes).
    /// [default: exact for points, hutchinson for images]
    #[arg(long)]
    divergence: Option<Divergence>,
    /// Images: uniform dequantizations per image in the importance-weighted bpd estimate. Above
    /// 1 with Hutchinson's divergence the estimate is biased low and no longer a bound (the JSON
    /// says so in `estimator` and `upper_bound`).
    #[arg(long, default_value_t = 1, value_parser = at_least_one())]
    dequant_samples: usize,
    /// Seed of the evaluation points, dequantization and probes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    solver: SolverArgs,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Points for NLL and samples for the distances (images: test images for bpd and samples
    /// for NFE).
    #[arg(long, default_value_t = 5000, value_parser = at_least_one())]
    n: usize,
    /// Seed of the evaluation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Image runs: also the FID of this many samples (the run's solver) against as many test
    /// images, or against --fid-ref: the paper's third column beside bpd and NFE.
    #[arg(long, value_parser = at_least_one())]
    fid: Option<usize>,
    /// With --fid: the FID Inception's weights (see fm fid). [env: FM_INCEPTION]
    #[arg(long, env = crate::fid_cmd::INCEPTION_ENV)]
    inception: Option<PathBuf>,
    /// With --fid: reference statistics (fm fid --out) instead of the run's test images.
    #[arg(long)]
    fid_ref: Option<PathBuf>,
    #[command(flatten)]
    solver: SolverArgs,
    #[command(flatten)]
    pub common: Common,
}

pub fn mean_nfe(stats: &[Stats]) -> f64 {
    stats.iter().map(|s| s.nfe as f64).sum::<f64>() / stats.len().max(1) as f64
}

fn mean_and_stderr(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, sd / n.sqrt())
}

/// NLL of the first `n` evaluation points of `data`, batch by batch (memory does not grow with
/// `n`), with the entropy gap when `data` knows its entropy.
fn nll_report(
    trained: &TrainedRun,
    data: &DataSource,
    n: usize,
    rng: &mut ChaCha8Rng,
    divergence: Divergence,
    solver: &SolverArgs,
    device: &Device,
) -> Result<Value> {
    let n = data.evaluation_len(n);
    let (mut count, mut sum, mut sum_sq, mut nfe) = (0usize, 0.0f64, 0.0f64, Vec::new());
    for start in (0..n).step_by(solver.batch.max(1)) {
        let points = data.evaluation_slice(start, solver.batch.min(n - start), rng);
        let (nll, stats) =
            trained.nll(&points, solver.batch, divergence, &solver.config(), device)?;
        count += nll.len();
        sum += nll.iter().sum::<f64>();
        sum_sq += nll.iter().map(|v| v * v).sum::<f64>();
        nfe.extend(stats);
    }
    let mean = sum / count as f64;
    let var = (sum_sq / count as f64 - mean * mean).max(0.0);
    Ok(json!({
        "nll_nats": mean,
        "nll_stderr": (var / count as f64).sqrt(),
        "points": count,
        "entropy_nats": data.entropy(),
        "entropy_gap_nats": data.entropy().map(|h| mean - h),
        "nll_nfe": mean_nfe(&nfe),
    }))
}

/// Settings of a bits-per-dimension estimate.
struct BpdSettings {
    n: usize,
    dequant_samples: usize,
    divergence: Divergence,
    seed: u64,
}

/// Bits per dimension of the first `n` images of `data` (an image set).
fn bpd_report(
    trained: &TrainedRun,
    data: &DataSource,
    s: &BpdSettings,
    solver: &SolverArgs,
    device: &Device,
) -> Result<Value> {
    let DataSource::Images { set, .. } = data else {
        anyhow::bail!("bits per dimension need image data");
    };
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let (bpd, stats) = trained.bpd(
        set,
        s.n,
        s.dequant_samples,
        solver.batch,
        s.divergence,
        &solver.config(),
        device,
        &mut rng,
    )?;
    let (mean, stderr) = mean_and_stderr(&bpd);
    let estimator = BpdEstimator::new(s.divergence, s.dequant_samples);
    if !estimator.upper_bound {
        eprintln!(
            "note: {} is biased low and is not an upper bound on the bpd \
             (use --dequant-samples 1 or --divergence exact for a bound)",
            estimator.name
        );
    }
    Ok(json!({
        "bpd": mean,
        "bpd_stderr": stderr,
        "images": bpd.len(),
        "dequant_samples": s.dequant_samples,
        "divergence": s.divergence.to_string(),
        "estimator": estimator.name,
        "upper_bound": estimator.upper_bound,
        "rtol": solver.rtol,
        "atol": solver.atol,
        "error_norm": solver.error_norm.to_string(),
        "nll_nfe": mean_nfe(&stats),
        "data_note": data.note(),
    }))
}

pub fn cmd_nll(a: &NllArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    device.seed(a.seed);
    let trained = a.solver.load(&a.run, &device)?;
    let spec = a.data.as_deref().unwrap_or(&trained.config.data);
    let data = match &a.data {
        Some(spec) => DataSource::parse_split(spec, Split::Test)?,
        None => trained.config.data_source(Split::Test)?,
    };
    let model = &trained.config.model;
    if data.image_shape() != model.image_shape() || data.dim() != model.data_dim() {
        anyhow::bail!(
            "--data {spec}: holds {}, but the run's network takes {}",
            shape_words(data.image_shape(), data.dim()),
            shape_words(model.image_shape(), model.data_dim())
        );
    }
    if data.image_shape().is_some() {
        let settings = BpdSettings {
            n: a.n,
            dequant_samples: a.dequant_samples,
            divergence: a.divergence.unwrap_or(Divergence::HUTCHINSON),
            seed: a.seed,
        };
        let report = bpd_report(&trained, &data, &settings, &a.solver, &device)?;
        return Ok(with_checkpoint(report, &trained));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let divergence = a.divergence.unwrap_or(Divergence::Exact);
    let report = nll_report(
        &trained, &data, a.n, &mut rng, divergence, &a.solver, &device,
    )?;
    Ok(with_checkpoint(report, &trained))
}

/// "images of C x H x W" or "points of dimension D".
fn shape_words(image: Option<[usize; 3]>, dim: usize) -> String {
    match image {
        Some([c, h, w]) => format!("images of {c} x {h} x {w} (channels x rows x columns)"),
        None => format!("points of dimension {dim}"),
    }
}

/// `report` with the step of the checkpoint whose weights made it.
pub fn with_checkpoint(mut report: Value, trained: &TrainedRun) -> Value {
    report["checkpoint_step"] = json!(trained.checkpoint.state.step);
    report
}

/// The full evaluation of a run: NLL (bpd for images), entropy gap, distances, NFE; returns the
/// report and the samples it drew.
pub fn evaluate(
    trained: &TrainedRun,
    n: usize,
    seed: u64,
    solver: &SolverArgs,
    device: &Device,
) -> Result<(Value, Points)> {
    let data = trained.config.data_source(Split::Test)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut report = if data.image_shape().is_some() {
        let settings = BpdSettings {
            n,
            dequant_samples: 1,
            divergence: Divergence::HUTCHINSON,
            seed,
        };
        bpd_report(trained, &data, &settings, solver, device)?
    } else {
        nll_report(
            trained,
            &data,
            n,
            &mut rng,
            Divergence::Exact,
            solver,
            device,
        )?
    };
    let (samples, stats) = trained.sample(n, solver.batch, &solver.config(), device, None)?;
    if data.image_shape().is_none() {
        let fresh = data.sample(samples.len(), &mut rng);
        report["energy_distance"] = json!(energy_distance(&samples, &fresh));
        if samples.dim == 2 {
            report["sw1"] = json!(sliced_w1(&samples, &fresh, 500));
        }
    }
    report["nfe"] = json!(mean_nfe(&stats));
    Ok((report, samples))
}

pub fn cmd_eval(a: &EvalArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    device.seed(a.seed);
    let trained = a.solver.load(&a.run, &device)?;
    let mut report = evaluate(&trained, a.n, a.seed, &a.solver, &device)?.0;
    if let Some(n) = a.fid {
        let fid = run_fid(&trained, n, a, &device)?;
        for (key, value) in fid.as_object().expect("a JSON object") {
            report[key] = value.clone();
        }
    }
    Ok(with_checkpoint(report, &trained))
}

/// `--fid N`: the FID of `n` samples of the run against its test images (or `--fid-ref`).
fn run_fid(trained: &TrainedRun, n: usize, a: &EvalArgs, device: &Device) -> Result<Value> {
    let Some([c, h, w]) = trained.config.model.image_shape() else {
        bail!("--fid measures images; this run models points");
    };
    let inception = a.inception.as_deref().with_context(|| {
        format!(
            "--fid needs the FID network's weights: --inception FILE or {}",
            crate::fid_cmd::INCEPTION_ENV
        )
    })?;
    let mut meter = Meter::new(inception, device.clone(), 50, a.common.json)?;
    let (samples, stats) = trained.sample(n, a.solver.batch, &a.solver.config(), device, None)?;
    let images = Images {
        pixels: to_pixels_nhwc(&samples.values, [c, h, w]),
        shape: [h, w, c],
    };
    let mut report = fid_of_samples(
        &mut meter,
        images,
        &trained.config.data,
        a.fid_ref.as_deref(),
    )?;
    report["fid_nfe"] = json!(mean_nfe(&stats));
    Ok(report)
}
