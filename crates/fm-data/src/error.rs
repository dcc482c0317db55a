//! Errors from reading data, each naming the file and what was wrong.

use std::path::{Path, PathBuf};

/// A data source that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The spec names no known data set.
    #[error(
        "unknown data '{spec}': expected checkerboard, 8gaussians, rings, moons, spirals, file:PATH (.csv or .npy), mnist:DIR, idx:DIR, cifar10:DIR or images:DIR"
    )]
    UnknownSpec {
        /// What was given.
        spec: String,
    },
    /// A file could not be read or holds something other than what was expected.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong, and where.
        message: String,
    },
}

impl DataError {
    /// A fault in `path`.
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
