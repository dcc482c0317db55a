//! Feature sets drawn from two Gaussians with a known Frechet distance, streamed into
//! statistics in batches: the estimate approaches the closed form as the sets grow.
//!
//! `cargo run -p fm-metrics --release --example fid_of_gaussians`

use fm_metrics::{FeatureStats, frechet_distance};

/// A small deterministic generator of standard normal values (Box-Muller over an LCG).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn main() -> Result<(), fm_metrics::MetricsError> {
    let dim = 64;
    // N(0, I) against N(m, diag(s^2)): FID = |m|^2 + sum (1 - s)^2.
    let m: Vec<f64> = (0..dim).map(|i| if i < 4 { 1.0 } else { 0.0 }).collect();
    let s: Vec<f64> = (0..dim).map(|i| 1.0 + (i % 3) as f64 * 0.5).collect();
    let exact: f64 =
        m.iter().map(|x| x * x).sum::<f64>() + s.iter().map(|x| (1.0 - x).powi(2)).sum::<f64>();
    let mut rng = Normal(7);
    for n in [1_000, 10_000, 100_000] {
        let (mut a, mut b) = (FeatureStats::new(dim), FeatureStats::new(dim));
        for _ in 0..n / 500 {
            let batch = |rng: &mut Normal, shift: &[f64], scale: &[f64]| -> Vec<f32> {
                (0..500 * dim)
                    .map(|k| (shift[k % dim] + scale[k % dim] * rng.next()) as f32)
                    .collect()
            };
            a.add(&batch(&mut rng, &vec![0.0; dim], &vec![1.0; dim]));
            b.add(&batch(&mut rng, &m, &s));
        }
        let fid = frechet_distance(&a, &b)?;
        println!("n = {n:>7}: FID {fid:.4} (exact {exact:.4})");
    }
    Ok(())
}
