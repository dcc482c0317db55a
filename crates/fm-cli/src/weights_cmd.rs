//! `fm export` and `fm import`: a run's weights as safetensors in PyTorch's layout, and weights
//! from PyTorch as a run (`fm_train::weights`).

use crate::{Common, device};
use anyhow::{Context, Result, bail};
use clap::Args;
use fm_models::{NetConfig, TimeMlpConfig, UNetConfig};
use fm_paths::Parametrization;
use fm_paths::scheduler::SchedulerName;
use fm_train::data::DataSource;
use fm_train::eval::load_run;
use fm_train::train::TrainConfig;
use fm_train::weights::{export_safetensors, exported_config, import_safetensors};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct ExportArgs {
    /// The run folder (its newest checkpoint is exported).
    #[arg(long)]
    run: PathBuf,
    /// Which weights: ema (what sampling uses) or model (the raw weights).
    #[arg(long, value_enum, default_value_t = Weights::Ema)]
    weights: Weights,
    /// The safetensors file to write (never overwritten).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Weights {
    /// The exponential moving average of the weights.
    Ema,
    /// The raw weights of the last step.
    Model,
}

#[derive(Args, Clone)]
pub struct ImportArgs {
    /// The safetensors file (PyTorch names and layouts, as `fm export` writes them).
    #[arg(long)]
    weights: PathBuf,
    /// The run folder to create.
    #[arg(long)]
    out: PathBuf,
    /// Replace the run already in --out (its config.json, metrics.jsonl and checkpoints).
    #[arg(long)]
    force: bool,
    /// The network: mlp, or unet:PRESET (tiny, mnist, cifar10). Not needed for a file written
    /// by `fm export`, whose metadata holds its run's config.
    #[arg(long)]
    arch: Option<String>,
    /// With --arch: the data the network models (as `fm train --data`), which sets its input
    /// size and is what `fm nll` and `fm eval` read.
    #[arg(long)]
    data: Option<String>,
    /// With --arch: the probability path the network was trained on.
    #[arg(long, default_value = "ot")]
    path: SchedulerName,
    /// With --arch: sigma_min of the OT path.
    #[arg(long, default_value_t = 1e-4)]
    sigma_min: f64,
    /// With --arch: what the network predicts (v, x1, eps, score).
    #[arg(long, default_value = "v")]
    predict: Parametrization,
    /// With --arch mlp: hidden units per layer.
    #[arg(long, default_value_t = 512)]
    hidden: usize,
    /// With --arch mlp: hidden layers.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// With --arch unet:PRESET: a class-conditional U-Net over the data's labels.
    #[arg(long)]
    conditional: bool,
    #[command(flatten)]
    pub common: Common,
}

pub fn cmd_export(a: &ExportArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    let trained = load_run(&a.run, &device, a.weights == Weights::Model)?;
    export_safetensors(&trained.model, &trained.config, &a.out)?;
    let bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    Ok(json!({
        "out": a.out,
        "weights": if a.weights == Weights::Model { "model" } else { "ema" },
        "step": trained.checkpoint.state.step,
        "parameters": burn::module::Module::num_params(&trained.model),
        "bytes": bytes,
    }))
}

pub fn cmd_import(a: &ImportArgs) -> Result<Value> {
    let device = device::parse(&a.common.device)?;
    let config = match &a.arch {
        Some(arch) => config_from_flags(a, arch)?,
        None => exported_config(&a.weights)?.with_context(|| {
            format!(
                "{}: no run config in its metadata (not written by fm export): give --arch and --data",
                a.weights.display()
            )
        })?,
    };
    let model = import_safetensors(&a.weights, &config, &a.out, &device, a.force)?;
    Ok(json!({
        "run": a.out,
        "parameters": burn::module::Module::num_params(&model),
        "path": config.path.to_string(),
        "predict": config.predict.to_string(),
        "data": config.data,
    }))
}

/// The config of an imported network from `--arch` and the flags beside it.
fn config_from_flags(a: &ImportArgs, arch: &str) -> Result<TrainConfig> {
    let spec = a
        .data
        .clone()
        .context("--arch needs --data (e.g. --data checkerboard)")?;
    let data = DataSource::parse(&spec)?;
    let model = match (arch, data.image_shape()) {
        ("mlp", None) => NetConfig::Mlp(
            TimeMlpConfig::new(data.dim())
                .with_hidden(a.hidden)
                .with_depth(a.depth),
        ),
        ("mlp", Some(_)) => bail!("--arch mlp: the data holds images; use --arch unet:PRESET"),
        (unet, Some([c, h, w])) if unet.starts_with("unet:") => {
            if h != w {
                bail!("the U-Net takes square images; the data's are {h} x {w}");
            }
            let preset = &unet["unet:".len()..];
            let mut config = UNetConfig::preset(preset, c, h).with_context(|| {
                format!("--arch {unet}: expected unet:tiny, unet:mnist or unet:cifar10")
            })?;
            if a.conditional {
                config = config.with_num_classes(Some(
                    data.num_classes()
                        .context("--conditional: the data set has no labels")?,
                ));
            }
            NetConfig::Unet(config)
        }
        (unet, None) if unet.starts_with("unet:") => {
            bail!("--arch {unet}: the data holds points; use --arch mlp")
        }
        (other, _) => bail!("--arch {other}: expected mlp or unet:PRESET"),
    };
    let mut config = TrainConfig::for_model(&spec, model);
    config.path = a.path;
    config.sigma_min = a.sigma_min;
    config.predict = a.predict;
    config
        .pin_data_file()
        .map_err(|e| anyhow::anyhow!("--data: {e}"))?;
    Ok(config)
}
