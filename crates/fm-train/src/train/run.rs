//! One training run: data, path, model, optimizer, EMA, metrics and checkpoints.

use super::batch::BatchPlan;
use super::checkpoint::holds_run;
use super::config::TrainConfig;
use super::learner::{Learner, Start};
use super::lock::RunLock;
use super::metrics::{Line, Metrics};
use super::replicas::{Objective, Replicas};
use super::{TrainError, file_err};
use crate::data::{DataSource, Split};
use burn::tensor::{Device, FloatDType};
use fm_models::NetConfig;
use fm_paths::{AffinePath, AnyScheduler};
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
///
/// ```
/// use burn::tensor::Device;
/// use fm_models::{NetConfig, TimeMlpConfig};
/// use fm_train::train::{TrainConfig, train};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut config = TrainConfig::new("moons", 2); // the paper's 2-D setting, OT path
/// config.model = NetConfig::Mlp(TimeMlpConfig::new(2).with_hidden(32).with_depth(2));
/// (config.steps, config.batch_size, config.checkpoint_every) = (30, 256, 10);
/// let summary = train(&config, dir.path(), &[Device::flex()], false, &mut |_| {
///     std::ops::ControlFlow::Continue(())
/// })
/// .unwrap();
/// assert_eq!(summary.step, 30);
/// assert!(summary.checkpoint.ends_with("checkpoints/step-00000030"));
/// ```
///
/// The phases, a function each: checking the settings (before anything is touched), setting up
/// (data, lock, `config.json`), starting the learner (fresh or resumed), then per step the
/// replicas' gradients, the learner's update, the metrics line and the checkpoint; the
/// [`TrainSummary`] at the end.
pub fn train(
    config: &TrainConfig,
    run: &Path,
    devices: &[Device],
    resume: bool,
    on_step: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<TrainSummary, TrainError> {
    check_settings(config, devices)?;
    let SetUp { data, path, _lock } = set_up(config, run, resume)?;
    let Start {
        mut learner,
        step: start,
        loss,
        skipped,
    } = Learner::start(config, run, &devices[0], resume)?;
    let mut metrics = Metrics::open(run, start, loss)?;
    let objective = Objective {
        dim: data.dim(),
        compute: config.dtype.dtype(),
    };
    let data_note = data.note().map(str::to_string);
    let batches = BatchPlan {
        data,
        config: config.clone(),
        coupling: config.coupling,
        null_class: learner.model.null_class(),
        path,
        predict: config.predict,
    }
    .spawn(start..config.steps);
    let replicas = Replicas::new(devices, config.batch_size);
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
        let output = replicas.step(&learner.model, drawn, &objective);
        let probe = output.probe.clone();
        let (next, stepped) = learner.step(config, step, output)?;
        learner = next;
        let skipped = stepped.loss.is_none();
        if let Some(loss) = stepped.loss {
            metrics.add(loss);
        }
        let done = step + 1;
        let elapsed_s = began.elapsed().as_secs_f64();
        // Asked to stop (a signal, in fm train): this step is done; checkpoint it and return.
        let progress = Progress {
            step: done,
            steps: config.steps,
            loss: metrics.loss,
            lr: stepped.lr,
            elapsed_s,
        };
        let stop = on_step(&progress).is_break();
        let checkpoint_due = stop || done % config.checkpoint_every == 0 || done == config.steps;
        let line = Line {
            lr: stepped.lr,
            elapsed_s,
            skipped,
            log_every: config.log_every,
        };
        metrics.record(done, line, checkpoint_due)?;
        if checkpoint_due {
            learner.checkpoint(config, run, done, metrics.loss, &probe)?;
        }
        if stop {
            return Err(TrainError::Interrupted {
                step: done,
                checkpoint: learner.last_checkpoint.unwrap_or_else(|| run.to_path_buf()),
            });
        }
    }
    let Some(checkpoint) = learner.last_checkpoint else {
        return Err(file_err(run)("no checkpoint was written"));
    };
    let ran = config.steps.saturating_sub(start);
    Ok(TrainSummary {
        step: config.steps.max(start),
        loss: metrics.loss,
        steps_per_s: ran as f64 / began.elapsed().as_secs_f64().max(1e-9),
        resumed_from: start,
        checkpoint,
        skipped_checkpoints: skipped,
        data_note,
    })
}

/// The settings and devices a run needs, checked before anything is read or written: a
/// valid config, a device per sample at most, devices that make f32 tensors (the weights stay
/// f32; `config.dtype` is the compute type), and memory enough on the CPU.
fn check_settings(config: &TrainConfig, devices: &[Device]) -> Result<(), TrainError> {
    if devices.is_empty() {
        return Err(TrainError::Config("no device to train on".into()));
    }
    if devices.len() > config.batch_size {
        return Err(TrainError::Config(format!(
            "{} devices need a batch of at least {} (one sample each), not {}",
            devices.len(),
            devices.len(),
            config.batch_size
        )));
    }
    config.validate().map_err(TrainError::Config)?;
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
    check_memory(config, devices)
}

/// What a run holds while it trains: its data, its path, and the lock on its folder.
struct SetUp {
    data: DataSource,
    path: AffinePath<AnyScheduler>,
    _lock: RunLock,
}

/// Opens the data, locks the run folder, refuses a folder that holds a run unless resuming,
/// and writes `config.json`.
fn set_up(config: &TrainConfig, run: &Path, resume: bool) -> Result<SetUp, TrainError> {
    let data = config.data_source(Split::Train)?;
    check_model_fits_data(config, &data)?;
    let path = AffinePath::new(config.scheduler());
    let lock = RunLock::acquire(run)?;
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
    Ok(SetUp {
        data,
        path,
        _lock: lock,
    })
}

/// Refuses a run on the Flex CPU backend whose estimated memory
/// ([`TrainConfig::memory_estimate`]) exceeds the machine's, before anything is allocated (an
/// allocation that fails aborts the process). A GPU's memory is its own and not known here:
/// other devices are not checked (nor is any device in a build without the `flex` feature,
/// which must not name the Flex backend at all).
fn check_memory(config: &TrainConfig, devices: &[Device]) -> Result<(), TrainError> {
    #[cfg(feature = "flex")]
    let on_cpu = devices.iter().all(fm_flex::is_flex);
    #[cfg(not(feature = "flex"))]
    let on_cpu = {
        let _ = devices;
        false
    };
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
