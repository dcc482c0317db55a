//! Mean and covariance of features, accumulated in f64 batch by batch, and their file.

use crate::MetricsError;
use faer::{Accum, Mat, Par};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// The statistics of a set of feature vectors: their count, mean and covariance (with `n - 1`
/// in the denominator, as the reference tools).
///
/// Sums are taken about a shift (the first batch's mean), so the covariance does not lose
/// digits to a large common offset: `S = sum (f - c)(f - c)^T`, `cov = (S - n d d^T) / (n - 1)`
/// with `d = mean - c`.
#[derive(Debug, Clone)]
pub struct FeatureStats {
    dim: usize,
    n: usize,
    shift: Vec<f64>,
    sum: Vec<f64>,
    outer: Mat<f64>,
}

/// The file's tensor and metadata names.
const MEAN: &str = "mu";
const COV: &str = "sigma";
const COUNT: &str = "n";
const KIND: &str = "fm.kind";
const KIND_VALUE: &str = "fid-stats";

impl FeatureStats {
    /// No features yet, of `dim` values each.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            n: 0,
            shift: Vec::new(),
            sum: vec![0.0; dim],
            outer: Mat::zeros(dim, dim),
        }
    }

    /// Adds the feature vectors `rows` (a whole number of rows of `dim` values).
    pub fn add(&mut self, rows: &[f32]) {
        let dim = self.dim;
        let b = rows.len() / dim;
        if b == 0 {
            return;
        }
        if self.shift.is_empty() {
            self.shift = (0..dim)
                .map(|j| (0..b).map(|i| rows[i * dim + j] as f64).sum::<f64>() / b as f64)
                .collect();
        }
        let centred = Mat::from_fn(b, dim, |i, j| rows[i * dim + j] as f64 - self.shift[j]);
        for i in 0..b {
            for j in 0..dim {
                self.sum[j] += centred[(i, j)];
            }
        }
        faer::linalg::matmul::matmul(
            self.outer.as_mut(),
            Accum::Add,
            centred.transpose(),
            centred.as_ref(),
            1.0,
            Par::rayon(0),
        );
        self.n += b;
    }

    /// The number of feature vectors.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Values per feature vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The mean.
    pub fn mean(&self) -> Vec<f64> {
        let n = self.n.max(1) as f64;
        (0..self.dim)
            .map(|j| self.shift.get(j).copied().unwrap_or(0.0) + self.sum[j] / n)
            .collect()
    }

    /// The covariance, `dim x dim`, with `n - 1` in the denominator; needs two vectors or more.
    pub fn covariance(&self) -> Result<Mat<f64>, MetricsError> {
        if self.n < 2 {
            return Err(MetricsError::Input(format!(
                "a covariance needs at least 2 feature vectors, not {}",
                self.n
            )));
        }
        let n = self.n as f64;
        let d: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        Ok(Mat::from_fn(self.dim, self.dim, |i, j| {
            (self.outer[(i, j)] - n * d[i] * d[j]) / (n - 1.0)
        }))
    }

    /// Statistics given by their mean and covariance (from another tool, or a test's closed
    /// form), as if from `n` vectors.
    pub fn from_moments(mean: Vec<f64>, cov: &Mat<f64>, n: usize) -> Result<Self, MetricsError> {
        let dim = mean.len();
        if cov.nrows() != dim || cov.ncols() != dim || n < 2 {
            return Err(MetricsError::Input(format!(
                "a mean of {dim} values needs a {dim} x {dim} covariance and n >= 2 (got {} x {}, n = {n})",
                cov.nrows(),
                cov.ncols()
            )));
        }
        let scale = (n - 1) as f64;
        Ok(Self {
            dim,
            n,
            sum: vec![0.0; dim],
            outer: Mat::from_fn(dim, dim, |i, j| cov[(i, j)] * scale),
            shift: mean,
        })
    }

    /// Writes `mu` (f64 `[dim]`) and `sigma` (f64 `[dim, dim]`) to the safetensors file `path`,
    /// with the count in the metadata (`n`), as `numpy`/`torch` read them:
    /// `safetensors.numpy.load_file(path)["mu"]`.
    pub fn save(&self, path: &Path) -> Result<(), MetricsError> {
        let mean = self.mean();
        let cov = self.covariance()?;
        let cov_values: Vec<f64> = (0..self.dim)
            .flat_map(|i| (0..self.dim).map(move |j| (i, j)))
            .map(|(i, j)| cov[(i, j)])
            .collect();
        let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (mean_bytes, cov_bytes) = (bytes(&mean), bytes(&cov_values));
        let tensors = vec![
            (MEAN, f64_view(&mean_bytes, vec![self.dim])),
            (COV, f64_view(&cov_bytes, vec![self.dim, self.dim])),
        ];
        let metadata = HashMap::from([
            (COUNT.to_string(), self.n.to_string()),
            (KIND.to_string(), KIND_VALUE.to_string()),
        ]);
        safetensors::serialize_to_file(tensors, Some(metadata), path)
            .map_err(|e| MetricsError::file(path, format!("cannot write the statistics: {e}")))
    }

    /// Reads a file [`FeatureStats::save`] wrote.
    pub fn load(path: &Path) -> Result<Self, MetricsError> {
        let bytes = std::fs::read(path).map_err(|e| MetricsError::file(path, e.to_string()))?;
        let bad = |m: String| MetricsError::file(path, m);
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get(KIND).map(String::as_str) != Some(KIND_VALUE) {
            return Err(bad(format!(
                "not FID statistics (no {KIND} = {KIND_VALUE} in its metadata): write them with fm fid --out"
            )));
        }
        let n: usize = meta
            .get(COUNT)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("its metadata has no count '{COUNT}'")))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f64>), MetricsError> {
            let t = file
                .tensor(name)
                .map_err(|_| bad(format!("no tensor {name}")))?;
            if t.dtype() != Dtype::F64 {
                return Err(bad(format!("{name} is {:?}, expected F64", t.dtype())));
            }
            let v = t
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            Ok((t.shape().to_vec(), v))
        };
        let (mean_shape, mean) = read(MEAN)?;
        let (cov_shape, cov) = read(COV)?;
        let dim = mean.len();
        if mean_shape != [dim] || cov_shape != [dim, dim] {
            return Err(bad(format!(
                "{MEAN} {mean_shape:?} and {COV} {cov_shape:?}: expected [d] and [d, d]"
            )));
        }
        let cov = Mat::from_fn(dim, dim, |i, j| cov[i * dim + j]);
        Self::from_moments(mean, &cov, n).map_err(|e| bad(e.to_string()))
    }
}

/// A view of little-endian f64 bytes as a tensor of `shape`.
fn f64_view(data: &[u8], shape: Vec<usize>) -> TensorView<'_> {
    TensorView::new(Dtype::F64, shape, data).expect("sizes match the shapes")
}
