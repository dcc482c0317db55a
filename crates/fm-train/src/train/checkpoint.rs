//! Checkpoints: `RUN/checkpoints/step-NNNNNNNN/` holding the model, its EMA, the optimizer state
//! and `state.json`. Each is written into a temporary folder, flushed, and renamed into place, so
//! a crash never leaves a half-written checkpoint under its final name.

use super::{TrainError, file_err};
use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// What `state.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Steps completed.
    pub step: usize,
    /// The loss at the last step.
    pub loss: f64,
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
    let name = format!("step-{:08}", state.step);
    let tmp = root.join(format!(".tmp-{name}"));
    let dest = root.join(&name);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(file_err(&tmp))?;
    }
    fs::create_dir(&tmp).map_err(file_err(&tmp))?;
    let files = [
        tmp.join("model.bpk"),
        tmp.join("ema.bpk"),
        tmp.join("optim.bpk"),
        tmp.join("state.json"),
    ];
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
    let json = serde_json::to_string_pretty(state).expect("checkpoint state serialises");
    fs::write(&files[3], json).map_err(file_err(&files[3]))?;
    for file in &files {
        fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(file_err(file))?;
    }
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(file_err(&dest))?;
    }
    fs::rename(&tmp, &dest).map_err(file_err(&dest))?;
    fs::File::open(&root)
        .and_then(|d| d.sync_all())
        .map_err(file_err(&root))?;
    for old in list_checkpoints(run)?.into_iter().skip(keep) {
        fs::remove_dir_all(&old).map_err(file_err(&old))?;
    }
    Ok(dest)
}

/// Checkpoint folders of a run, newest first.
fn list_checkpoints(run: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let root = checkpoints_dir(run);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .map_err(file_err(&root))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-"))
        })
        .collect();
    dirs.sort();
    dirs.reverse();
    Ok(dirs)
}

/// The newest checkpoint whose files are all present and whose state parses; older ones are
/// tried in turn, and each one skipped is reported in `skipped` with the reason.
pub fn latest_checkpoint(
    run: &Path,
    skipped: &mut Vec<String>,
) -> Result<Option<Checkpoint>, TrainError> {
    for dir in list_checkpoints(run)? {
        let state_file = dir.join("state.json");
        let state = fs::read_to_string(&state_file)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str::<CheckpointState>(&s).map_err(|e| e.to_string()));
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
        let missing = [
            checkpoint.model_file(),
            checkpoint.ema_file(),
            checkpoint.optim_file(),
        ]
        .into_iter()
        .find(|f| !f.is_file());
        match missing {
            Some(f) => skipped.push(format!("{}: missing", f.display())),
            None => return Ok(Some(checkpoint)),
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
pub fn load_weights<M: Module>(module: M, file: &Path) -> Result<M, TrainError> {
    module.try_load_file(file).map_err(file_err(file))
}
