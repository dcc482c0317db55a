//! `fm demo`: the whole job in one command: train, sample, evaluate and write pictures.
//! On the checkerboard by default; on an image set (e.g. `--data mnist:DIR`) it trains a small
//! class-conditional U-Net and writes a grid of samples, one row per class.

use crate::eval_cmd::{SolverArgs, evaluate};
use crate::sample_cmd::trajectory_times;
use crate::train_cmd::run_training;
use crate::{Common, device, plot};
use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use fm_models::UNetConfig;
use fm_ode::{Divergence, Method, SaveAt, SolveError, SolverConfig};
use fm_train::data::{DataSource, Points, to_pixels_nhwc};
use fm_train::eval::{Guidance, Paths, load_run, straightness};
use fm_train::train::TrainConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Clone)]
pub struct DemoArgs {
    /// Data: checkerboard, or an image set such as mnist:DIR (IDX files).
    #[arg(long, default_value = "checkerboard")]
    data: String,
    /// Training steps. [default: 2000 for the checkerboard (an entropy gap of 0.22 nats in
    /// 160 s in all on 2 cores), 1750 for images (about 30 minutes of training on 2 cores for
    /// MNIST)]
    #[arg(long)]
    steps: Option<usize>,
    /// Where the run and the pictures go. An earlier demo run there is replaced; any other run
    /// is refused unless --force.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Replace a run in --out that `fm demo` did not make (its config, metrics and checkpoint
    /// folders; other files stay).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Marks a run folder as the demo's own, so a later `fm demo` may replace it.
const DEMO_MARKER: &str = "fm-demo";

pub fn cmd_demo(a: &DemoArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    let began = Instant::now();
    let data = DataSource::parse(&a.data)?;
    let config = match data.image_shape() {
        Some(shape) => image_config(a, &data, shape)?,
        None => points_config(a),
    };
    if !a.common.json {
        eprintln!(
            "training OT flow matching on {} ({} steps) into {}",
            a.data,
            config.steps,
            a.out.display()
        );
    }
    let marker = a.out.join(DEMO_MARKER);
    if fm_train::train::holds_run(&a.out)? {
        if !(a.force || marker.is_file()) {
            anyhow::bail!(
                "{} holds a run that fm demo did not make: choose another --out, or replace it with --force",
                a.out.display()
            );
        }
        fm_train::train::clear_run(&a.out)?;
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    std::fs::write(
        &marker,
        "this run folder was made by fm demo, which may replace it\n",
    )
    .with_context(|| format!("writing {}", marker.display()))?;
    let train_report = run_training(
        &config,
        &a.out,
        std::slice::from_ref(&device),
        false,
        a.common.json,
        &fm_train::collective::Alone,
    )?;
    let mut report = if data.image_shape().is_some() {
        image_results(a, &device)?
    } else {
        points_results(a, &device)?
    };
    report["train_steps_per_s"] = train_report["steps_per_s"].clone();
    report["seconds"] = json!(began.elapsed().as_secs_f64());
    Ok(report)
}

/// MLP 4x256, batch 2048, Adam 2e-3 with warmup and cosine decay, EMA 0.99.
fn points_config(a: &DemoArgs) -> TrainConfig {
    let mut config = TrainConfig::new(&a.data, 2);
    if let fm_models::NetConfig::Mlp(mlp) = &mut config.model {
        mlp.hidden = 256;
    }
    config.steps = a.steps.unwrap_or(2000);
    config.batch_size = 2048;
    config.lr = 2e-3;
    config.warmup_steps = 100;
    config.cosine_decay = true;
    config.ema_decay = 0.99;
    config.checkpoint_every = 500;
    config
}

/// The `mnist` U-Net preset (class-conditional when the data has labels, label dropout 0.1),
/// batch 32, Adam 1e-3 with 100 warmup steps and cosine decay, gradient clipping at 1, EMA 0.999:
/// the settings of the MNIST figures in the README.
fn image_config(a: &DemoArgs, data: &DataSource, [c, h, _]: [usize; 3]) -> Result<TrainConfig> {
    let unet = UNetConfig::preset("mnist", c, h)
        .expect("a known preset")
        .with_num_classes(data.num_classes());
    let mut config = TrainConfig::images(&a.data, unet);
    config.steps = a.steps.unwrap_or(1750);
    config.batch_size = 32;
    config.lr = 1e-3;
    config.warmup_steps = 100;
    config.cosine_decay = true;
    config.ema_decay = 0.999;
    config.checkpoint_every = 250;
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(config)
}

/// Samples, trajectories and the model density of a 2-D run, with its evaluation.
fn points_results(a: &DemoArgs, device: &Device) -> Result<Value> {
    device.seed(1);
    let trained = load_run(&a.out, device, false)?;
    let solver = SolverArgs::dopri5(1e-5, 10_000);
    let (mut report, _) = evaluate(&trained, 4000, 1, &solver, device)?;
    let data = DataSource::parse(&a.data)?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (more, _) = trained.sample(20_000, 10_000, &solver.config(), device, None)?;
    plot::samples_beside_data(
        &more,
        &data.sample(more.len(), &mut rng),
        &a.out.join("samples.png"),
    )?;
    // Trajectories of 400 points saved at 41 times.
    let times = trajectory_times(40);
    let mut paths = Paths::new(400);
    let saving = solver.config().saving(SaveAt::Times(times.clone()));
    trained.sample_each(400, 400, &saving, device, None, |batch| {
        paths.add(&batch.saved);
        Ok::<(), SolveError>(())
    })?;
    let states = paths.states;
    plot::trajectories(&states, &a.out.join("trajectories.png"))?;
    report["straightness"] = json!(straightness(&states, &times));
    // Model log-density on a 80 x 80 grid.
    let k = 80;
    let (grid, _) = Points::grid(plot::LIMIT, k);
    let coarse = SolverArgs::dopri5(1e-4, 6400);
    let (nll, _) = trained.nll(&grid, 6400, Divergence::Exact, &coarse.config(), device)?;
    let logp: Vec<f64> = nll.iter().map(|v| -v).collect();
    plot::log_density(&logp, k, &a.out.join("density.png"))?;
    report["pictures"] = json!(
        ["samples.png", "trajectories.png", "density.png"].map(|f| a
            .out
            .join(f)
            .display()
            .to_string())
    );
    Ok(report)
}

/// The bpd of 20 test images (dopri5 at 1e-5, Hutchinson, one dequantization: about 10 minutes
/// on 2 cores for MNIST) and a grid of 100 samples (ten per class when conditional) by the
/// midpoint rule with 20 steps (dopri5 at 1e-5 needs NFE near 280 on this model).
fn image_results(a: &DemoArgs, device: &Device) -> Result<Value> {
    device.seed(1);
    let trained = load_run(&a.out, device, false)?;
    let shape = trained.config.model.image_shape().expect("an image run");
    let solver = SolverArgs::dopri5(1e-5, 100);
    let (mut report, _) = evaluate(&trained, 20, 1, &solver, device)?;
    let grid_solver = SolverConfig::fixed(Method::Midpoint, 20);
    let guide = trained.config.model.num_classes().map(|classes| Guidance {
        classes: (0..100).map(|i| (i / 10) % classes).collect(),
        weight: 1.0,
    });
    let (samples, _) = trained.sample(100, 100, &grid_solver, device, guide.as_ref())?;
    let [c, h, w] = shape;
    let png = a.out.join("samples.png");
    plot::image_grid(&to_pixels_nhwc(&samples.values, shape), [h, w, c], 10, &png)?;
    report["pictures"] = json!([png.display().to_string()]);
    Ok(report)
}
