//! One writer per run folder: an exclusive OS file lock on `RUN/.lock` (std's
//! `File::try_lock`: `flock` on Unix, `LockFileEx` on Windows), held while a run trains and
//! released by the operating system when the process exits or crashes. The file holds the
//! holder's pid for the message a second writer gets. Readers (`sample`, `nll`, `eval`) take no
//! lock and keep working while a run trains: checkpoints appear by an atomic rename.

use super::{TrainError, file_err};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The exclusive right to write a run folder, until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `run` (creating the folder), or says which process holds it.
    pub fn acquire(run: &Path) -> Result<Self, TrainError> {
        fs::create_dir_all(run).map_err(file_err(run))?;
        let path: PathBuf = run.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(file_err(&path))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|_| write!(file, "{}", std::process::id()))
                    .map_err(file_err(&path))?;
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => Err(TrainError::Busy {
                run: run.to_path_buf(),
                pid: fs::read_to_string(&path)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "unknown".into()),
            }),
            Err(TryLockError::Error(e)) => Err(file_err(&path)(e)),
        }
    }
}
