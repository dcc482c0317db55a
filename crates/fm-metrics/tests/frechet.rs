//! The matrix square root and the Frechet distance against closed forms: diagonal, commuting,
//! rank-deficient and nearly singular covariances; the streaming statistics against a two-pass
//! computation; the statistics file round trip.

use faer::Mat;
use fm_metrics::{FeatureStats, frechet_distance, psd_sqrt, trace_sqrt_product};

fn diag(values: &[f64]) -> Mat<f64> {
    Mat::from_fn(values.len(), values.len(), |i, j| {
        if i == j { values[i] } else { 0.0 }
    })
}

/// A fixed orthogonal matrix: the product of Givens rotations.
fn rotation(n: usize) -> Mat<f64> {
    let mut q = diag(&vec![1.0; n]);
    for k in 0..n - 1 {
        let (c, s) = ((0.3 + k as f64).cos(), (0.3 + k as f64).sin());
        for i in 0..n {
            let (a, b) = (q[(i, k)], q[(i, k + 1)]);
            q[(i, k)] = c * a - s * b;
            q[(i, k + 1)] = s * a + c * b;
        }
    }
    q
}

/// `Q diag(l) Q^T`.
fn rotated(q: &Mat<f64>, l: &[f64]) -> Mat<f64> {
    let n = l.len();
    Mat::from_fn(n, n, |i, j| {
        (0..n).map(|k| q[(i, k)] * l[k] * q[(j, k)]).sum()
    })
}

#[test]
fn diagonal_covariances_give_the_sum_of_root_products() {
    let (a, b) = ([4.0, 1.0, 0.25, 0.0], [1.0, 9.0, 4.0, 3.0]);
    let got = trace_sqrt_product(diag(&a).as_ref(), diag(&b).as_ref()).unwrap();
    assert!((got - (2.0 + 3.0 + 1.0 + 0.0)).abs() < 1e-12, "{got}");
}

#[test]
fn commuting_rank_deficient_covariances() {
    let n = 12;
    let q = rotation(n);
    let a: Vec<f64> = (0..n)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.0 + i as f64 })
        .collect();
    let b: Vec<f64> = (0..n).map(|i| 0.5 + (i * i) as f64 / 7.0).collect();
    let want: f64 = a.iter().zip(&b).map(|(x, y)| (x * y).sqrt()).sum();
    let got = trace_sqrt_product(rotated(&q, &a).as_ref(), rotated(&q, &b).as_ref()).unwrap();
    assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
    // The square root itself: R R = S, R symmetric.
    let s = rotated(&q, &a);
    let r = psd_sqrt(s.as_ref()).unwrap();
    let rr = &r * &r;
    for i in 0..n {
        for j in 0..n {
            assert!((rr[(i, j)] - s[(i, j)]).abs() < 1e-10, "({i}, {j})");
            assert!((r[(i, j)] - r[(j, i)]).abs() < 1e-12);
        }
    }
}

/// Rank one each: `S1 S2 = u (u.v) v^T` has the single non-zero eigenvalue `(u.v)^2`.
#[test]
fn rank_one_covariances() {
    let u = [1.0, 2.0, -1.0, 0.5];
    let v = [0.5, -1.0, 3.0, 2.0];
    let outer = |x: &[f64; 4]| Mat::from_fn(4, 4, |i, j| x[i] * x[j]);
    let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
    let got = trace_sqrt_product(outer(&u).as_ref(), outer(&v).as_ref()).unwrap();
    assert!((got - dot.abs()).abs() < 1e-9, "{got} vs {}", dot.abs());
}

/// Identical, nearly singular statistics (eigenvalues from 1 down to 1e-13) are at distance 0 to
/// the method's resolution, and shifting the mean adds exactly its squared length. Eigenvalues
/// of `S^(1/2) S S^(1/2)` below rounding level (`n eps`, here below 1e-14, i.e. those of `S`
/// below 1e-7) are not determined by the matrix and count as zero: the distance is resolved to
/// about `n sqrt(n eps) |S|`, 1e-6 here, far below any FID that matters.
#[test]
fn nearly_singular_identical_statistics_are_at_distance_zero() {
    let n = 40;
    let q = rotation(n);
    let l: Vec<f64> = (0..n).map(|i| 10f64.powi(-(i as i32) / 3)).collect();
    let s = rotated(&q, &l);
    let mean: Vec<f64> = (0..n).map(|i| i as f64 * 0.1).collect();
    let a = FeatureStats::from_moments(mean.clone(), &s, 100).unwrap();
    let d = frechet_distance(&a, &a).unwrap();
    assert!(d.abs() < 1e-6, "{d}");
    let shifted: Vec<f64> = mean.iter().map(|m| m + 0.5).collect();
    let b = FeatureStats::from_moments(shifted, &s, 100).unwrap();
    let d = frechet_distance(&a, &b).unwrap();
    assert!((d - 0.25 * n as f64).abs() < 1e-6, "{d}");
}

/// Batches of any size give the two-pass mean and covariance, even about a large offset.
#[test]
fn streaming_statistics_match_a_two_pass_computation() {
    let (n, dim) = (57, 5);
    let rows: Vec<f32> = (0..n * dim)
        .map(|k| 1000.0 + ((k * 37 % 101) as f32) * 0.01 + (k % dim) as f32)
        .collect();
    let mut stats = FeatureStats::new(dim);
    for chunk in rows.chunks(11 * dim) {
        stats.add(chunk);
    }
    let mean: Vec<f64> = (0..dim)
        .map(|j| (0..n).map(|i| rows[i * dim + j] as f64).sum::<f64>() / n as f64)
        .collect();
    let cov = stats.covariance().unwrap();
    for j in 0..dim {
        assert!((stats.mean()[j] - mean[j]).abs() < 1e-9);
        for k in 0..dim {
            let want: f64 = (0..n)
                .map(|i| {
                    (rows[i * dim + j] as f64 - mean[j]) * (rows[i * dim + k] as f64 - mean[k])
                })
                .sum::<f64>()
                / (n - 1) as f64;
            assert!((cov[(j, k)] - want).abs() < 1e-9, "({j}, {k})");
        }
    }
    assert_eq!(stats.count(), n);

    let dir = std::env::temp_dir().join(format!("fm-metrics-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.safetensors");
    stats.save(&file).unwrap();
    let back = FeatureStats::load(&file).unwrap();
    assert_eq!(back.count(), n);
    assert!(frechet_distance(&stats, &back).unwrap().abs() < 1e-9);
    std::fs::write(&file, b"junk").unwrap();
    let err = FeatureStats::load(&file).unwrap_err().to_string();
    assert!(err.contains("s.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        FeatureStats::new(3).covariance().is_err(),
        "one vector has no covariance"
    );
}
