//! The training loop for conditional flow matching (paper eq. 9):
//! `L(theta) = E_{t ~ U[0,1], x1 ~ q, x0 ~ N(0, I)} || v_theta(psi_t(x0), t) - d/dt psi_t(x0) ||^2`.

mod all_reduce;
mod batch;
mod checkpoint;
mod config;
mod ema;
mod gradients;
mod learner;
mod lock;
mod metrics;
mod precision;
mod replicas;
mod run;

pub use checkpoint::{
    Checkpoint, CheckpointState, clear_run, holds_run, latest_checkpoint, load_optimizer,
    load_weights, save_checkpoint,
};
pub use config::{ADAM_EPSILON, FileCheck, FloatType, TrainConfig, learning_rate};
pub use ema::{ema_decay_at, ema_update};
pub use gradients::{clip_to_norm, global_norm};
pub use lock::RunLock;
pub(crate) use run::write_atomically;
pub use run::{Progress, TrainSummary, batch_rng, train, train_in_group};

use std::path::{Path, PathBuf};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The data could not be used.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A file of the run could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Another process is training into the run folder.
    #[error("{} is being trained by another process (pid {pid}); wait for it, or choose another output folder", run.display())]
    Busy {
        /// The run folder.
        run: PathBuf,
        /// The holder's process id, as it wrote it in the lock file.
        pid: String,
    },
    /// Stopped on request (a signal) after a step, with that step checkpointed.
    #[error("interrupted after step {step}; checkpoint written to {} (continue with --resume)", checkpoint.display())]
    Interrupted {
        /// The last step taken.
        step: usize,
        /// Its checkpoint.
        checkpoint: PathBuf,
    },
    /// The ranks of a group could not start together, or an all-reduce between them failed.
    #[error("data-parallel group: {0}")]
    Collective(String),
    /// The loss or a gradient became NaN or infinite; no weights of that step were written.
    #[error("the loss or a gradient became non-finite at step {step}; last good checkpoint: {}", last_checkpoint.as_ref().map_or("none".to_string(), |p| p.display().to_string()))]
    NonFinite {
        /// The step.
        step: usize,
        /// The newest checkpoint written before it.
        last_checkpoint: Option<PathBuf>,
    },
}

/// Maps an error about `path` (I/O, a burn record, a message) into [`TrainError::Io`].
fn file_err<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
