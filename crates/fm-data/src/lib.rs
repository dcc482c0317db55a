//! Data for flow matching: 2-D toy distributions with known densities, point files, and image sets.
//!
//! A source is named by a spec string: `checkerboard`, `8gaussians`, `rings`, `moons`,
//! `spirals`, `file:PATH` with `PATH` a `.csv` (one point a row) or `.npy` (2-D f32/f64), or an
//! image set: `mnist:DIR` / `idx:DIR` (IDX files), `cifar10:DIR` (the binary version) or
//! `images:DIR` (a folder of PNG files). Images travel as flattened `[C * H * W]` rows in
//! `[-1, 1]`, uniformly dequantized when drawn for training.
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
    parse_png, to_pixels_nhwc,
};
pub use npy::{
    NpyType, NpyWriter, parse_npy, parse_npy_images, read_npy, read_npy_images, write_npy,
    write_npy_u8,
};
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

/// A training batch: points and, for labelled image sets, one class per point.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The points (flattened images for image sets).
    pub points: Points,
    /// The class of each point, when the data has labels.
    pub labels: Option<Vec<usize>>,
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
    /// An image set, sampled with replacement.
    Images {
        /// The images.
        set: ImageSet,
        /// What the loader had to say (e.g. which file stands in for a missing split).
        note: Option<String>,
    },
}

impl DataSource {
    /// Parses a spec (`checkerboard`, ..., `file:PATH`, `mnist:DIR`, ...), reading the files if
    /// there are any; image sets give their training split.
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        Self::parse_split(spec, Split::Train)
    }

    /// Like [`DataSource::parse`], with the split of an image set chosen. An IDX folder without
    /// the test files (like the 8x8 digits) evaluates on its training files and says so in the
    /// note.
    pub fn parse_split(spec: &str, split: Split) -> Result<Self, DataError> {
        if let Some((kind, dir)) = spec.split_once(':')
            && kind != "file"
        {
            let dir = Path::new(dir);
            let (set, note) = match kind {
                "mnist" | "idx" => match load_idx(dir, split) {
                    Err(e) if split == Split::Test => {
                        let set = load_idx(dir, Split::Train).map_err(|_| e)?;
                        let note = format!(
                            "{} has no test files; using the training files",
                            dir.display()
                        );
                        (set, Some(note))
                    }
                    other => (other?, None),
                },
                "cifar10" => load_cifar10(dir, split)?,
                "images" => (load_png_dir(dir)?, None),
                _ => {
                    return Err(DataError::UnknownSpec {
                        spec: spec.to_string(),
                    });
                }
            };
            if set.is_empty() {
                return Err(DataError::new(dir, "the data set holds no images"));
            }
            return Ok(Self::Images { set, note });
        }
        if let Some(path) = spec.strip_prefix("file:") {
            let path = Path::new(path);
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let points = match extension.as_deref() {
                Some("csv") => read_csv(path)?,
                Some("npy") => read_npy(path)?,
                _ => {
                    return Err(DataError::new(
                        path,
                        "the file name must end in .csv or .npy (any case)",
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

    /// The dimension of a point (`C * H * W` for images).
    pub fn dim(&self) -> usize {
        match self {
            Self::Toy(_) => 2,
            Self::File { points, .. } => points.dim,
            Self::Images { set, .. } => set.image_size(),
        }
    }

    /// `[C, H, W]` of an image set.
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        match self {
            Self::Images { set, .. } => Some([set.channels, set.height, set.width]),
            _ => None,
        }
    }

    /// The number of classes of labelled data (the largest label plus one).
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Self::Images { set, .. } => set
                .labels
                .as_ref()
                .and_then(|l| l.iter().max())
                .map(|&m| m as usize + 1),
            _ => None,
        }
    }

    /// What the loader had to say about the data, if anything.
    pub fn note(&self) -> Option<&str> {
        match self {
            Self::Images { note, .. } => note.as_deref(),
            _ => None,
        }
    }

    /// `n` points drawn with `rng` (images dequantized, not flipped).
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Points {
        self.sample_batch(n, rng, false).points
    }

    /// `n` points and their labels drawn with `rng`; images are uniformly dequantized and, with
    /// `flip`, mirrored left-right with probability 1/2.
    pub fn sample_batch(&self, n: usize, rng: &mut impl Rng, flip: bool) -> Batch {
        let unlabelled = |points| Batch {
            points,
            labels: None,
        };
        match self {
            Self::Toy(toy) => unlabelled(toy.sample(n, rng)),
            Self::File { points, .. } => {
                let dim = points.dim;
                let mut values = Vec::with_capacity(n * dim);
                for _ in 0..n {
                    let i = rng.random_range(0..points.len());
                    values.extend_from_slice(&points.values[i * dim..(i + 1) * dim]);
                }
                unlabelled(Points { values, dim })
            }
            Self::Images { set, .. } => {
                let indices: Vec<usize> = (0..n).map(|_| rng.random_range(0..set.len())).collect();
                let values = set.batch(&indices, rng, true, flip);
                Batch {
                    points: Points {
                        values,
                        dim: set.image_size(),
                    },
                    labels: set
                        .labels
                        .as_ref()
                        .map(|l| indices.iter().map(|&i| l[i] as usize).collect()),
                }
            }
        }
    }

    /// How many of `n` evaluation points exist: `n` for a toy, at most the file's or set's size.
    pub fn evaluation_len(&self, n: usize) -> usize {
        match self {
            Self::Toy(_) => n,
            Self::File { points, .. } => n.min(points.len()),
            Self::Images { set, .. } => n.min(set.len()),
        }
    }

    /// Evaluation points `start..start + count` (clipped to what exists), so that long
    /// evaluations go batch by batch: the file's own points in order, images at their bin
    /// centres, or `count` fresh draws of a toy.
    pub fn evaluation_slice(&self, start: usize, count: usize, rng: &mut impl Rng) -> Points {
        let end = self.evaluation_len(start + count).max(start);
        match self {
            Self::Toy(_) => self.sample(count, rng),
            Self::File { points, .. } => Points {
                values: points.values[start * points.dim..end * points.dim].to_vec(),
                dim: points.dim,
            },
            Self::Images { set, .. } => {
                let indices: Vec<usize> = (start..end).collect();
                Points {
                    values: set.batch(&indices, rng, false, false),
                    dim: set.image_size(),
                }
            }
        }
    }

    /// The true entropy `-E[log q(x)]` in nats, where known.
    pub fn entropy(&self) -> Option<f64> {
        match self {
            Self::Toy(toy) => Some(toy.entropy()),
            Self::File { .. } | Self::Images { .. } => None,
        }
    }

    /// The true log-density of each point, where known.
    pub fn log_density(&self, points: &Points) -> Option<Vec<f64>> {
        match self {
            Self::Toy(toy) => Some(toy.log_density(points)),
            Self::File { .. } | Self::Images { .. } => None,
        }
    }
}

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
