//! Why a metric could not be computed.

use std::path::PathBuf;

/// A file that could not be used, or inputs that do not fit.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A weights or statistics file: which, and what is wrong with it.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Inputs that do not fit (image shapes, statistics of different sizes, too few images).
    #[error("{0}")]
    Input(String),
    /// The eigendecomposition behind the matrix square root did not converge.
    #[error("the eigendecomposition of a {0} x {0} covariance did not converge")]
    Eigen(usize),
}

impl MetricsError {
    pub(crate) fn file(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
