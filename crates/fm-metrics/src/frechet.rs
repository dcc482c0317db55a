//! The Frechet distance between two Gaussians fitted to features (Heusel et al. 2017):
//! `d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`.
//!
//! `tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2))`: the two matrices are similar when `S1`
//! is invertible, and by continuity the traces agree for every pair of positive semi-definite
//! matrices. The right side is the square root of a symmetric positive semi-definite matrix, so
//! it comes from two symmetric eigendecompositions with real, clamped eigenvalues, where the
//! reference tools' `scipy.linalg.sqrtm(S1 @ S2)` works on a non-symmetric product and must
//! discard the imaginary parts rounding creates for singular covariances.
//!
//! Eigenvalues below the decomposition's rounding level count as zero, so the zero eigenvalues
//! of a rank-deficient covariance add nothing (their square roots would add about 1e-8 each).
//! The distance is resolved to about `n sqrt(n eps) |S|` in absolute terms: 1e-6 for the tests'
//! 40 x 40 matrices, far below any difference between FIDs that matters.

use crate::{FeatureStats, MetricsError};
use faer::{Accum, Mat, MatRef, Par, Side};

/// `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))` of two feature statistics of one size.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64, MetricsError> {
    if a.dim() != b.dim() {
        return Err(MetricsError::Input(format!(
            "statistics of {} and {} values per feature",
            a.dim(),
            b.dim()
        )));
    }
    let (s1, s2) = (a.covariance()?, b.covariance()?);
    let mean_term: f64 = a
        .mean()
        .iter()
        .zip(b.mean())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let trace = |m: &Mat<f64>| (0..m.nrows()).map(|i| m[(i, i)]).sum::<f64>();
    Ok(mean_term + trace(&s1) + trace(&s2) - 2.0 * trace_sqrt_product(s1.as_ref(), s2.as_ref())?)
}

/// `tr((S1 S2)^(1/2))` for symmetric positive semi-definite `S1`, `S2` (eigenvalues at rounding
/// level, or negative from rounding, count as zero).
pub fn trace_sqrt_product(s1: MatRef<'_, f64>, s2: MatRef<'_, f64>) -> Result<f64, MetricsError> {
    let root = psd_sqrt(s1)?;
    let n = s1.nrows();
    let mut tmp = Mat::zeros(n, n);
    faer::linalg::matmul::matmul(
        tmp.as_mut(),
        Accum::Replace,
        root.as_ref(),
        s2,
        1.0,
        Par::rayon(0),
    );
    let mut m = Mat::zeros(n, n);
    faer::linalg::matmul::matmul(
        m.as_mut(),
        Accum::Replace,
        tmp.as_ref(),
        root.as_ref(),
        1.0,
        Par::rayon(0),
    );
    let m = symmetrised(m.as_ref());
    let eigenvalues = m
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| MetricsError::Eigen(n))?;
    let cut = rounding_floor(&eigenvalues);
    Ok(eigenvalues.iter().map(|&l| clamped_sqrt(l, cut)).sum())
}

/// Eigenvalues below this are rounding of a zero: `n eps max |l|`, the backward error of a
/// symmetric eigendecomposition. Their square roots (about 1e-8 for 1e-16) would otherwise add
/// up to a visible error over the many zero eigenvalues of a rank-deficient covariance.
fn rounding_floor(eigenvalues: &[f64]) -> f64 {
    let largest = eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    largest * eigenvalues.len() as f64 * f64::EPSILON
}

/// `sqrt(l)`, 0 for `l` at or below the rounding floor.
fn clamped_sqrt(l: f64, cut: f64) -> f64 {
    if l > cut { l.sqrt() } else { 0.0 }
}

/// The symmetric positive semi-definite square root `V diag(sqrt(l+)) V^T` of a symmetric matrix
/// with eigendecomposition `V diag(l) V^T`, where `l+` is `l` with eigenvalues at rounding level
/// (or negative) set to zero.
pub fn psd_sqrt(s: MatRef<'_, f64>) -> Result<Mat<f64>, MetricsError> {
    let n = s.nrows();
    let s = symmetrised(s);
    let eigen = s
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| MetricsError::Eigen(n))?;
    let (u, l) = (eigen.U(), eigen.S().column_vector());
    let values: Vec<f64> = (0..n).map(|i| l[i]).collect();
    let cut = rounding_floor(&values);
    let scaled = Mat::from_fn(n, n, |i, j| u[(i, j)] * clamped_sqrt(values[j], cut));
    let mut root = Mat::zeros(n, n);
    faer::linalg::matmul::matmul(
        root.as_mut(),
        Accum::Replace,
        scaled.as_ref(),
        u.transpose(),
        1.0,
        Par::rayon(0),
    );
    Ok(root)
}

/// `(m + m^T) / 2`: products of symmetric matrices are symmetric only up to rounding.
fn symmetrised(m: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| 0.5 * (m[(i, j)] + m[(j, i)]))
}
