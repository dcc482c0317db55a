//! Data sources: 2-D toy distributions with known densities, point files, and image sets
//! (IDX and CIFAR-10 binary; the image model arrives with the image issue).
//!
//! A source is named by a spec string: `checkerboard`, `8gaussians`, `rings`, `moons`,
//! `spirals`, or `file:PATH` with `PATH` a `.csv` (one point a row) or `.npy` (2-D f32/f64).
//! Sampling happens on the host with a caller-supplied RNG, so a seed fixes the data stream on
//! every backend.

mod csv;
mod error;
mod images;
mod npy;
mod toy;

pub use csv::{parse_csv, read_csv, write_csv};
pub use error::DataError;
pub use images::{
    ImageSet, Split, bits_per_dim, load_cifar10, load_idx, load_png_dir, parse_cifar10, parse_idx,
};
pub use npy::{parse_npy, read_npy, write_npy};
pub use toy::Toy;

use rand::Rng;
use std::path::{Path, PathBuf};

/// Points in row-major order: `n` rows of `dim` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// Row-major values, `n * dim`.
    pub values: Vec<f32>,
    /// Values per point.
    pub dim: usize,
}

impl Points {
    /// The number of points.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The centres of a `k x k` grid of square cells over `[-limit, limit]^2`, x-major, and the
    /// area of one cell (for pictures of densities and for integrating them).
    pub fn grid(limit: f64, k: usize) -> (Self, f64) {
        let h = 2.0 * limit / k as f64;
        let centre = |i: usize| (-limit + (i as f64 + 0.5) * h) as f32;
        let values = (0..k)
            .flat_map(|i| (0..k).flat_map(move |j| [centre(i), centre(j)]))
            .collect();
        (Self { values, dim: 2 }, h * h)
    }
}

/// Where training and evaluation points come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// A synthetic distribution.
    Toy(Toy),
    /// Points read from a file, sampled with replacement.
    File {
        /// The file they came from.
        path: PathBuf,
        /// The points.
        points: Points,
    },
}

impl DataSource {
    /// Parses a spec (`checkerboard`, ..., `file:PATH`), reading the file if there is one.
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        if let Some(path) = spec.strip_prefix("file:") {
            let path = Path::new(path);
            let points = match path.extension().and_then(|e| e.to_str()) {
                Some("csv") => read_csv(path)?,
                Some("npy") => read_npy(path)?,
                _ => {
                    return Err(DataError::new(
                        path,
                        "the file name must end in .csv or .npy",
                    ));
                }
            };
            if points.is_empty() {
                return Err(DataError::new(path, "the file holds no points"));
            }
            return Ok(Self::File {
                path: path.to_path_buf(),
                points,
            });
        }
        Toy::parse(spec)
            .map(Self::Toy)
            .ok_or_else(|| DataError::UnknownSpec {
                spec: spec.to_string(),
            })
    }

    /// The dimension of a point.
    pub fn dim(&self) -> usize {
        match self {
            Self::Toy(_) => 2,
            Self::File { points, .. } => points.dim,
        }
    }

    /// `n` points drawn with `rng`.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Points {
        match self {
            Self::Toy(toy) => toy.sample(n, rng),
            Self::File { points, .. } => {
                let dim = points.dim;
                let mut values = Vec::with_capacity(n * dim);
                for _ in 0..n {
                    let i = rng.random_range(0..points.len());
                    values.extend_from_slice(&points.values[i * dim..(i + 1) * dim]);
                }
                Points { values, dim }
            }
        }
    }

    /// The points to evaluate on: the file's own (at most `n`, in order), or `n` fresh draws.
    pub fn evaluation_points(&self, n: usize, rng: &mut impl Rng) -> Points {
        match self {
            Self::Toy(_) => self.sample(n, rng),
            Self::File { points, .. } => Points {
                values: points.values[..n.min(points.len()) * points.dim].to_vec(),
                dim: points.dim,
            },
        }
    }

    /// The true entropy `-E[log q(x)]` in nats, where known.
    pub fn entropy(&self) -> Option<f64> {
        match self {
            Self::Toy(toy) => Some(toy.entropy()),
            Self::File { .. } => None,
        }
    }

    /// The true log-density of each point, where known.
    pub fn log_density(&self, points: &Points) -> Option<Vec<f64>> {
        match self {
            Self::Toy(toy) => Some(toy.log_density(points)),
            Self::File { .. } => None,
        }
    }
}
