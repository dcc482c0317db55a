//! One training run: data, path, model, optimizer, EMA, metrics and checkpoints.

use super::adam::FusedAdamConfig;
use super::batch::BatchPlan;
use super::checkpoint::{
    CheckpointState, holds_run, latest_checkpoint, load_optimizer, load_weights, save_checkpoint,
};
use super::config::{TrainConfig, learning_rate, parse_dtype};
use super::ema::{ema_decay_at, ema_update};
use super::gradients::{clip_to_norm, global_norm};
use super::lock::RunLock;
use super::replicas::{Objective, Replicas, StepOutput};
use super::{TrainError, file_err};
use crate::data::{DataSource, Split};
use burn::module::Module;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::tensor::{Device, FloatDType, Tensor};
use fm_models::NetConfig;
use fm_paths::AffinePath;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Reported after every step; the callback's answer says whether to go on
/// (`ControlFlow::Break` checkpoints the step just taken and ends with
/// [`TrainError::Interrupted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps completed.
    pub step: usize,
    /// Steps in the run.
    pub steps: usize,
    /// The mean loss over the steps of the last metrics line (read every `log_every` steps).
    pub loss: f64,
    /// This step's learning rate.
    pub lr: f64,
    /// Seconds since this invocation started.
    pub elapsed_s: f64,
}

/// The outcome of [`train`].
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Steps completed.
    pub step: usize,
    /// The mean loss of the last metrics line (the last step's with `log_every` 1).
    pub loss: f64,
    /// Steps per second in this invocation.
    pub steps_per_s: f64,
    /// The step this invocation started from (0 unless resumed).
    pub resumed_from: usize,
    /// The final checkpoint.
    pub checkpoint: PathBuf,
    /// Checkpoints skipped while resuming, with the reason.
    pub skipped_checkpoints: Vec<String>,
    /// What the data loader had to say (e.g. which file stood in for a missing split).
    pub data_note: Option<String>,
}

/// The RNG of step `step`: every batch depends on `(seed, step)` alone, so a resumed run draws
/// exactly the batches the uninterrupted one would have.
pub fn batch_rng(seed: u64, step: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step as u64);
    rng
}

/// Adam (AdamW with weight decay), without clipping of its own: the training loop clips by the
/// global norm before the step.
fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    if config.weight_decay > 0.0 {
        AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_epsilon(config.adam_epsilon as f32)
            .init()
    } else {
        FusedAdamConfig::new()
            .with_epsilon(config.adam_epsilon as f32)
            .init()
    }
}

/// Trains `config` into the run folder `run` on `devices`, resuming from its newest checkpoint
/// when `resume` is set. Without `resume`, a folder that already holds a run is refused
/// ([`holds_run`]; [`clear_run`](super::clear_run) replaces it), and so is a folder another
/// process is training into ([`RunLock`]). `on_step` sees every step (for progress bars) and
/// may stop the run after it.
///
/// With several devices, training is data-parallel (docs/scaling.md): every step splits its
/// batch (`config.batch_size`, the global batch) into one shard per device, and the gradients of
/// the shards add up to the gradient of the global batch's loss; the learning rate means the
/// same as on one device, and checkpoints are the same. The first device holds the weights, the
/// optimizer and the EMA.
pub fn train(
    config: &TrainConfig,
    run: &Path,
    devices: &[Device],
    resume: bool,
    on_step: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<TrainSummary, TrainError> {
    let Some(device) = devices.first() else {
        return Err(TrainError::Config("no device to train on".into()));
    };
    if devices.len() > config.batch_size {
        return Err(TrainError::Config(format!(
            "{} devices need a batch of at least {} (one sample each), not {}",
            devices.len(),
            devices.len(),
            config.batch_size
        )));
    }
    config.validate().map_err(TrainError::Config)?;
    let compute = parse_dtype(&config.dtype).map_err(TrainError::Config)?;
    if let Some(d) = devices
        .iter()
        .find(|d| d.settings().float_dtype != FloatDType::F32)
    {
        return Err(TrainError::Config(format!(
            "{d:?} makes {:?} tensors: training keeps its weights in f32 (the run's dtype, {}, is the compute type), so leave the device's float type at f32",
            d.settings().float_dtype,
            config.dtype
        )));
    }
    check_memory(config, devices)?;
    let data = config.data_source(Split::Train)?;
    check_model_fits_data(config, &data)?;
    let path = AffinePath::new(config.scheduler().map_err(TrainError::Config)?);
    let _lock = RunLock::acquire(run)?;
    if !resume && holds_run(run)? {
        return Err(TrainError::Config(format!(
            "{} already holds a run (config.json, metrics.jsonl or checkpoints): continue it with --resume, replace it with --force, or choose another output folder",
            run.display()
        )));
    }
    std::fs::create_dir_all(run).map_err(file_err(run))?;
    write_atomically(
        &run.join("config.json"),
        &serde_json::to_vec_pretty(config).expect("config serialises"),
    )?;

    let dev = device.clone().autodiff();
    dev.seed(config.seed);
    let mut model = config.model.init(&dev);
    let mut ema = model.valid();
    let mut optim = optimizer(config);
    let mut start = 0;
    let mut skipped = Vec::new();
    let mut last_checkpoint = None;
    // The last logged (mean) loss, in this invocation or (resumed) in the checkpoint.
    let mut loss_value = f64::NAN;
    if resume && let Some(ck) = latest_checkpoint(run, &mut skipped)? {
        model = load_weights(model, &ck.model_file())?;
        ema = load_weights(ema, &ck.ema_file())?;
        optim = load_optimizer(&ck, optim)?;
        start = ck.state.step;
        loss_value = ck.state.loss.unwrap_or(f64::NAN);
        last_checkpoint = Some(ck.dir);
    }
    let metrics_file = run.join("metrics.jsonl");
    truncate_metrics(&metrics_file, start)?;
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_file)
        .map_err(file_err(&metrics_file))?;

    let (batch, dim) = (config.batch_size, data.dim());
    let data_note = data.note().map(str::to_string);
    let null_class = model.null_class();
    let coupling = config.coupling().map_err(TrainError::Config)?;
    let predict = config.prediction().map_err(TrainError::Config)?;
    let batches = BatchPlan {
        data,
        config: config.clone(),
        coupling,
        null_class,
        path,
        predict,
    }
    .spawn(start..config.steps);
    let objective = Objective { dim, compute };
    // The losses of the steps since the last metrics line, summed on the device.
    let mut pending = LossLog::default();
    let replicas = Replicas::new(devices, batch);
    let began = Instant::now();
    for step in start..config.steps {
        let drawn = batches
            .recv()
            .expect("the batch thread draws every step until the loop ends");
        // Dropout masks come from the device's generator: seeding it per step makes a resumed
        // run draw the masks the uninterrupted one would have.
        replicas.seed(
            config
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(step as u64),
        );
        let StepOutput { loss, grads, probe } = replicas.step(&model, drawn, &objective);
        // The one read-back of every step: the global gradient norm, which clips and shows
        // non-finite losses and gradients alike.
        let norm = global_norm(&model, &grads);
        let lr = learning_rate(config, step);
        let skipped = if norm.is_finite() {
            let grads = match config.grad_clip {
                Some(max_norm) => clip_to_norm(&model, grads, norm, max_norm),
                None => grads,
            };
            model = optim.step(lr, model, grads);
            ema = ema_update(ema, &model, ema_decay_at(config.ema_decay, step));
            pending.add(loss);
            false
        } else if config.skip_nonfinite {
            true
        } else {
            return Err(TrainError::NonFinite {
                step: step + 1,
                last_checkpoint,
            });
        };

        let done = step + 1;
        let elapsed_s = began.elapsed().as_secs_f64();
        // Asked to stop (a signal, in fm train): this step is done; checkpoint it and return.
        let stop = on_step(&Progress {
            step: done,
            steps: config.steps,
            loss: loss_value,
            lr,
            elapsed_s,
        })
        .is_break();
        let checkpoint_due = stop || done % config.checkpoint_every == 0 || done == config.steps;
        let line = if skipped {
            Some(format!(
                "{{\"step\":{done},\"loss\":null,\"skipped\":true,\"lr\":{lr},\"wall_s\":{elapsed_s:.3}}}"
            ))
        } else if done % config.log_every == 0 || checkpoint_due {
            loss_value = pending.take_mean();
            Some(format!(
                "{{\"step\":{done},\"loss\":{loss_value},\"lr\":{lr},\"wall_s\":{elapsed_s:.3}}}"
            ))
        } else {
            None
        };
        if let Some(line) = line {
            writeln!(metrics, "{line}").map_err(file_err(&metrics_file))?;
        }
        if checkpoint_due {
            metrics.flush().map_err(file_err(&metrics_file))?;
            // A finite loss does not prove finite gradients: weights a non-finite update broke
            // would give non-finite outputs here, and are never written.
            let (x, t, y) = probe;
            let outputs_finite = [model.valid(), ema.clone()].iter().all(|net| {
                let out = net.forward(x.clone(), t.clone(), y.clone());
                out.abs().sum().into_scalar::<f64>().is_finite()
            });
            if !outputs_finite {
                return Err(TrainError::NonFinite {
                    step: done,
                    last_checkpoint,
                });
            }
            let state = CheckpointState {
                step: done,
                loss: loss_value.is_finite().then_some(loss_value),
                checksums: Default::default(),
            };
            last_checkpoint = Some(save_checkpoint(
                run,
                &state,
                &model,
                &ema,
                &optim,
                config.keep_checkpoints,
            )?);
        }
        if stop {
            return Err(TrainError::Interrupted {
                step: done,
                checkpoint: last_checkpoint.unwrap_or_else(|| run.to_path_buf()),
            });
        }
    }
    let ran = config.steps.saturating_sub(start);
    let checkpoint = match last_checkpoint {
        Some(c) => c,
        None => return Err(file_err(run)("no checkpoint was written")),
    };
    Ok(TrainSummary {
        step: config.steps.max(start),
        loss: loss_value,
        steps_per_s: ran as f64 / began.elapsed().as_secs_f64().max(1e-9),
        resumed_from: start,
        checkpoint,
        skipped_checkpoints: skipped,
        data_note,
    })
}

/// The losses of the steps since the last metrics line, summed where they were computed.
#[derive(Default)]
struct LossLog {
    sum: Option<Tensor<1>>,
    steps: usize,
}

impl LossLog {
    fn add(&mut self, loss: Tensor<1>) {
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
        self.steps += 1;
    }

    /// The mean loss since the last call (one read-back), or NaN when no step was taken.
    fn take_mean(&mut self) -> f64 {
        let steps = std::mem::take(&mut self.steps);
        self.sum
            .take()
            .map_or(f64::NAN, |sum| sum.into_scalar::<f64>() / steps as f64)
    }
}

/// Refuses a run on the CPU whose estimated memory ([`TrainConfig::memory_estimate`]) exceeds
/// the machine's, before anything is allocated (an allocation that fails aborts the process).
/// A GPU's memory is its own and not known here: other devices are not checked.
fn check_memory(config: &TrainConfig, devices: &[Device]) -> Result<(), TrainError> {
    let on_cpu = devices.iter().all(|d| d.clone().inner() == Device::flex());
    let Some(total) = machine_memory().filter(|_| on_cpu) else {
        return Ok(());
    };
    let need = config.memory_estimate();
    if need > total as f64 {
        return Err(TrainError::Config(format!(
            "this run needs about {:.3} GB (weights, Adam and EMA, and batch {} of activations), more than the machine's {:.1} GB: lower --batch-size or the network's size",
            need / 1e9,
            config.batch_size,
            total as f64 / 1e9
        )));
    }
    Ok(())
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo; unknown elsewhere).
fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Checks that the network takes the data's points (and classes, when it has them).
fn check_model_fits_data(config: &TrainConfig, data: &DataSource) -> Result<(), TrainError> {
    let fault = |msg: String| Err(TrainError::Config(msg));
    match (&config.model, data.image_shape()) {
        (NetConfig::Unet(u), Some(shape)) => {
            let want = [u.in_channels, u.image_size, u.image_size];
            if shape != want {
                return fault(format!(
                    "the U-Net takes images of {want:?} (channels, rows, columns) but '{}' holds {shape:?}",
                    config.data
                ));
            }
        }
        (NetConfig::Unet(_), None) => {
            return fault(format!(
                "the U-Net needs image data (mnist:DIR, cifar10:DIR, images:DIR), not '{}'",
                config.data
            ));
        }
        (model, _) if model.data_dim() != data.dim() => {
            return fault(format!(
                "the model's input dimension {} differs from the data's {}",
                model.data_dim(),
                data.dim()
            ));
        }
        _ => {}
    }
    match (config.model.num_classes(), data.num_classes()) {
        (Some(_), None) => fault(format!(
            "the network is class-conditional but '{}' has no labels",
            config.data
        )),
        (Some(n), Some(m)) if m > n => fault(format!(
            "the network has {n} classes but the data has labels up to {}",
            m - 1
        )),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(file_err(path))
}

/// Drops metric lines beyond `step` (left by a run that stopped between checkpoints).
fn truncate_metrics(file: &Path, step: usize) -> Result<(), TrainError> {
    if !file.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(file).map_err(file_err(file))?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomically(file, kept.as_bytes())
}
