//! One training run: data, path, model, optimizer, EMA, metrics and checkpoints.

use super::all_reduce::{StartCheck, agree_to_start, any_stops, sum_step, weight_sum};
use super::batch::BatchPlan;
use super::checkpoint::{checkpoint_dir, holds_run};
use super::config::TrainConfig;
use super::learner::{Learner, Start};
use super::lock::RunLock;
use super::metrics::{Line, Metrics};
use super::replicas::{Objective, Replicas};
use super::{TrainError, file_err};
use crate::collective::{Alone, Collective, share};
use crate::data::{DataSource, Split};
use burn::module::Module;
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
    train_in_group(config, run, devices, resume, &Alone, on_step)
}

/// [`train`] as one rank of a `group` of processes that train the run together (`mpirun`,
/// docs/scaling.md). Every rank draws each step's whole global batch from `(seed, step)`,
/// takes its share of the rows ([`share`]) over its own `devices`, and sums loss and gradients
/// with the others before the optimizer step; so every rank holds the same weights, and the
/// run is the one-process run (to f32 rounding) whatever the number of ranks, which may change
/// between resumptions. Rank 0 locks the folder and writes `config.json`, the metrics and the
/// checkpoints; the others only read it (a checkpoint to resume from), so it must be on a file
/// system that every rank sees. `on_step` runs on every rank; the run stops after a step when
/// any rank's callback asks to.
pub fn train_in_group(
    config: &TrainConfig,
    run: &Path,
    devices: &[Device],
    resume: bool,
    group: &dyn Collective,
    on_step: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<TrainSummary, TrainError> {
    let rows = share(config.batch_size, group.rank(), group.size());
    let writer = group.rank() == 0;
    let prepared = check_settings(config, devices, group.size())
        .and_then(|()| prepare(config, run, &devices[0], resume, writer));
    // Every rank takes part in the check, also one whose set-up failed, so none waits for it.
    let check = StartCheck {
        ready: prepared.is_ok(),
        step: prepared.as_ref().map_or(0, |p| p.start.step),
        plan: [
            config.steps,
            config.batch_size,
            prepared
                .as_ref()
                .map_or(0, |p| p.start.learner.model.num_params()),
        ],
        // One read of every weight to the host: only a group has anything to compare it with.
        weights: match &prepared {
            Ok(p) if group.size() > 1 => weight_sum(&p.start.learner.model),
            _ => 0.0,
        },
    };
    let agreed = agree_to_start(group, &check);
    let Prepared {
        set_up,
        start,
        mut metrics,
    } = prepared?;
    agreed.map_err(TrainError::Collective)?;
    let Start {
        mut learner,
        step: start,
        skipped,
        ..
    } = start;
    let objective = Objective {
        dim: set_up.data.dim(),
        compute: config.dtype.dtype(),
    };
    let data_note = set_up.data.note().map(str::to_string);
    let batches = BatchPlan {
        data: set_up.data,
        config: config.clone(),
        coupling: config.coupling,
        null_class: learner.model.null_class(),
        path: set_up.path,
        predict: config.predict,
    }
    .spawn(start..config.steps);
    let replicas = Replicas::new(devices, rows);
    let began = Instant::now();
    for step in start..config.steps {
        let drawn = batches
            .recv()
            .expect("the batch thread draws every step until the loop ends");
        // Dropout masks come from the device's generator: seeding it per step makes a resumed
        // run draw the masks the uninterrupted one would have (each rank its own).
        replicas.seed(
            config
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(step as u64)
                ^ (group.rank() as u64).wrapping_mul(0xA24B_AED4_963E_E407),
        );
        let output = replicas.step(&learner.model, drawn, &objective);
        let output = sum_step(group, &learner.model, output, step)?;
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
        let stop = any_stops(group, on_step(&progress).is_break(), step)?;
        let checkpoint_due = stop || done % config.checkpoint_every == 0 || done == config.steps;
        let line = Line {
            lr: stepped.lr,
            elapsed_s,
            skipped,
            log_every: config.log_every,
        };
        metrics.record(done, line, checkpoint_due)?;
        if checkpoint_due && writer {
            learner.checkpoint(config, run, done, metrics.loss, &probe)?;
        } else if checkpoint_due {
            learner.last_checkpoint = Some(checkpoint_dir(run, done));
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

/// A rank ready for its first step: its data and path (and, on rank 0, the folder's lock), its
/// learner, and its metrics.
struct Prepared {
    set_up: SetUp,
    start: Start,
    metrics: Metrics,
}

/// Sets the run up ([`set_up`]), starts the learner and opens the metrics; only the `writer`
/// (rank 0) touches the run folder.
fn prepare(
    config: &TrainConfig,
    run: &Path,
    device: &Device,
    resume: bool,
    writer: bool,
) -> Result<Prepared, TrainError> {
    let set_up = set_up(config, run, resume, writer)?;
    let start = Learner::start(config, run, device, resume)?;
    let metrics = if writer {
        Metrics::open(run, start.step, start.loss)?
    } else {
        Metrics::unwritten(start.loss)
    };
    Ok(Prepared {
        set_up,
        start,
        metrics,
    })
}

/// The settings and devices a run needs, checked before anything is read or written: a
/// valid config, a device per sample at most (over the `ranks` of a group), devices that make f32 tensors (the weights stay
/// f32; `config.dtype` is the compute type), and memory enough on the CPU.
fn check_settings(
    config: &TrainConfig,
    devices: &[Device],
    ranks: usize,
) -> Result<(), TrainError> {
    if devices.is_empty() {
        return Err(TrainError::Config("no device to train on".into()));
    }
    let total = devices.len() * ranks;
    if total > config.batch_size {
        let each = if ranks > 1 {
            format!(" ({} on each of {ranks} ranks)", devices.len())
        } else {
            String::new()
        };
        return Err(TrainError::Config(format!(
            "{total} devices{each} need a batch of at least {total} (one sample each), not {}",
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

/// What a run holds while it trains: its data, its path, and (on the writing rank) the lock on
/// its folder.
struct SetUp {
    data: DataSource,
    path: AffinePath<AnyScheduler>,
    _lock: Option<RunLock>,
}

/// Opens the data; then, for the `writer`, locks the run folder, refuses a folder that holds a
/// run unless resuming, and writes `config.json`.
fn set_up(
    config: &TrainConfig,
    run: &Path,
    resume: bool,
    writer: bool,
) -> Result<SetUp, TrainError> {
    let data = config.data_source(Split::Train)?;
    check_model_fits_data(config, &data)?;
    let path = AffinePath::new(config.scheduler());
    if !writer {
        return Ok(SetUp {
            data,
            path,
            _lock: None,
        });
    }
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
        _lock: Some(lock),
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
