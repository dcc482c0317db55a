//! Checkpoints: `RUN/checkpoints/step-NNNNNNNN/` holding the model, its EMA, the optimizer state,
//! the run's `config.json` and `state.json` (step, loss, and a CRC-32 of every other file). Each
//! is written into a temporary folder, flushed, and renamed into place, so a crash never leaves a
//! half-written checkpoint under its final name; a checkpoint whose files do not match their
//! checksums is skipped when resuming. The random state needs no file: every batch and every
//! dropout mask derive from `(seed, step)`.

use super::lock::RunLock;
use super::precision::cast_module;
use super::{TrainError, file_err};
use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What `state.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Steps completed.
    pub step: usize,
    /// The loss of the last step taken (`None` when every step so far was skipped as
    /// non-finite; JSON has no NaN).
    pub loss: Option<f64>,
    /// CRC-32 of each other file of the checkpoint, by name.
    #[serde(default)]
    pub checksums: BTreeMap<String, u32>,
}

/// The files a checkpoint holds besides `state.json`.
const FILES: [&str; 4] = ["model.bpk", "ema.bpk", "optim.bpk", "config.json"];

fn crc32(path: &Path) -> Result<u32, String> {
    fs::read(path)
        .map(|bytes| crc32fast::hash(&bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A checkpoint found on disk.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// What it recorded.
    pub state: CheckpointState,
}

impl Checkpoint {
    /// The model weights file.
    pub fn model_file(&self) -> PathBuf {
        self.dir.join("model.bpk")
    }
    /// The EMA weights file.
    pub fn ema_file(&self) -> PathBuf {
        self.dir.join("ema.bpk")
    }
    /// The optimizer state file.
    pub fn optim_file(&self) -> PathBuf {
        self.dir.join("optim.bpk")
    }
}

fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// The folder [`save_checkpoint`] writes step `step` to.
pub(super) fn checkpoint_dir(run: &Path, step: usize) -> PathBuf {
    checkpoints_dir(run).join(format!("step-{step:08}"))
}

/// Writes a checkpoint at `state.step` and keeps only the newest `keep`.
pub fn save_checkpoint<M: Module>(
    run: &Path,
    state: &CheckpointState,
    model: &M,
    ema: &M,
    optim: &ModuleOptimizer,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let root = checkpoints_dir(run);
    fs::create_dir_all(&root).map_err(file_err(&root))?;
    let dest = checkpoint_dir(run, state.step);
    let name = dest.file_name().expect("a step folder").to_string_lossy();
    let tmp = root.join(format!(".tmp-{name}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(file_err(&tmp))?;
    }
    fs::create_dir(&tmp).map_err(file_err(&tmp))?;
    // A failed write (a full disk) removes its temporary folder: nothing is left behind.
    if let Err(e) = write_checkpoint_files(run, &tmp, state, model, ema, optim) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(file_err(&dest))?;
    }
    fs::rename(&tmp, &dest).map_err(file_err(&dest))?;
    fs::File::open(&root)
        .and_then(|d| d.sync_all())
        .map_err(file_err(&root))?;
    for (_, old) in list_checkpoints(run)?.into_iter().skip(keep) {
        fs::remove_dir_all(&old).map_err(file_err(&old))?;
    }
    Ok(dest)
}

/// The step of a checkpoint folder named exactly `step-NNNNNNNN` (eight or more digits, as
/// [`save_checkpoint`] writes them); anything else (`step-best`, `step-00000020.bak`, a user's
/// copy) is not a checkpoint, is never resumed from and never pruned.
fn checkpoint_step(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Writes the files of a checkpoint into the folder `tmp`, with their checksums in
/// `state.json`, each flushed to disk.
fn write_checkpoint_files<M: Module>(
    run: &Path,
    tmp: &Path,
    state: &CheckpointState,
    model: &M,
    ema: &M,
    optim: &ModuleOptimizer,
) -> Result<(), TrainError> {
    let files = FILES.map(|f| tmp.join(f));
    model
        .clone()
        .save_file(&files[0])
        .map_err(file_err(&files[0]))?;
    ema.clone()
        .save_file(&files[1])
        .map_err(file_err(&files[1]))?;
    optim
        .to_record()
        .save(&files[2])
        .map_err(file_err(&files[2]))?;
    let config = run.join("config.json");
    fs::copy(&config, &files[3]).map_err(file_err(&config))?;
    let mut state = state.clone();
    for (name, file) in FILES.iter().zip(&files) {
        let sum = crc32(file).map_err(|e| file_err(file)(e))?;
        state.checksums.insert(name.to_string(), sum);
    }
    let state_file = tmp.join("state.json");
    let json = serde_json::to_string_pretty(&state).expect("checkpoint state serialises");
    fs::write(&state_file, json).map_err(file_err(&state_file))?;
    for file in files.iter().chain([&state_file]) {
        fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(file_err(file))?;
    }
    Ok(())
}

/// What of a run folder belongs to a run: `config.json`, `metrics.jsonl` and the checkpoint
/// folders (by their exact names). Anything else in it is the user's.
fn run_files(run: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut files: Vec<PathBuf> = ["config.json", "metrics.jsonl"]
        .iter()
        .map(|f| run.join(f))
        .filter(|p| p.exists())
        .collect();
    files.extend(list_checkpoints(run)?.into_iter().map(|(_, dir)| dir));
    Ok(files)
}

/// Whether `run` holds (part of) a training run: a config, metrics or a checkpoint, even one
/// killed before its first checkpoint.
pub fn holds_run(run: &Path) -> Result<bool, TrainError> {
    Ok(!run_files(run)?.is_empty())
}

/// Deletes the run in `run` (its config, metrics and checkpoint folders) and nothing else: files
/// a user put beside them, or in `checkpoints/` under other names, stay. Holds the run's lock
/// meanwhile, so a run another process is training is refused, not deleted.
pub fn clear_run(run: &Path) -> Result<(), TrainError> {
    let _lock = RunLock::acquire(run)?;
    for path in run_files(run)? {
        if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .map_err(file_err(&path))?;
    }
    Ok(())
}

/// Checkpoint folders of a run with their steps, newest (highest step) first.
fn list_checkpoints(run: &Path) -> Result<Vec<(usize, PathBuf)>, TrainError> {
    let root = checkpoints_dir(run);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<(usize, PathBuf)> = fs::read_dir(&root)
        .map_err(file_err(&root))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let step = checkpoint_step(p.file_name()?.to_str()?)?;
            Some((step, p))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    Ok(dirs)
}

/// Whether every file of `checkpoint` is present and matches its recorded checksum (checkpoints
/// from before checksums only need their files present).
fn verify(checkpoint: &Checkpoint) -> Result<(), String> {
    for name in &FILES[..3] {
        let file = checkpoint.dir.join(name);
        if !file.is_file() {
            return Err(format!("{}: missing", file.display()));
        }
    }
    for (name, want) in &checkpoint.state.checksums {
        let file = checkpoint.dir.join(name);
        let got = crc32(&file)?;
        if got != *want {
            return Err(format!(
                "{}: checksum {got:08x}, recorded {want:08x} (corrupt or partly written)",
                file.display()
            ));
        }
    }
    Ok(())
}

/// The newest checkpoint whose files are all present, match their checksums and whose state
/// parses; older ones are tried in turn, and each one skipped is reported in `skipped` with the
/// reason.
pub fn latest_checkpoint(
    run: &Path,
    skipped: &mut Vec<String>,
) -> Result<Option<Checkpoint>, TrainError> {
    for (step, dir) in list_checkpoints(run)? {
        let state_file = dir.join("state.json");
        let state = fs::read_to_string(&state_file)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str::<CheckpointState>(&s).map_err(|e| e.to_string()))
            .and_then(|state| {
                // state.json carries no checksum of its own: its step must be the folder's.
                if state.step == step {
                    Ok(state)
                } else {
                    Err(format!(
                        "records step {} but the folder is step {step}",
                        state.step
                    ))
                }
            });
        let checkpoint = match state {
            Ok(state) => Checkpoint {
                dir: dir.clone(),
                state,
            },
            Err(e) => {
                skipped.push(format!("{}: {e}", state_file.display()));
                continue;
            }
        };
        match verify(&checkpoint) {
            Err(why) => skipped.push(why),
            Ok(()) => return Ok(Some(checkpoint)),
        }
    }
    Ok(None)
}

/// Loads the optimizer state of a checkpoint into `optim`.
pub fn load_optimizer(
    checkpoint: &Checkpoint,
    optim: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let file = checkpoint.optim_file();
    let record = OptimizerRecord::load(&file).map_err(file_err(&file))?;
    Ok(optim.load_record(record))
}

/// Loads weights from `file` into `module`.
///
/// The weights come back in the float type `module` was made in (its device's default), whatever
/// type they were saved in: a run trained in bf16 is evaluated in f32, and the other way round.
pub fn load_weights<M: Module>(module: M, file: &Path) -> Result<M, TrainError> {
    let dtype = module.devices().first().map(|d| d.settings().float_dtype);
    let loaded = module.try_load_file(file).map_err(file_err(file))?;
    Ok(match dtype {
        Some(dtype) => cast_module(loaded, dtype),
        None => loaded,
    })
}
