//! Bits per dimension against a flow whose density is known exactly: the linear field
//! `v(x, t) = a x` carries `N(0, I)` at t = 0 to `N(0, s^2 I)` at t = 1 with `s = e^a`, so both
//! what one dequantization estimates and the discrete likelihood it bounds have closed forms.

use burn::tensor::{Device, Tensor, TensorData};
use fm_ode::{Divergence, Probes, SolverConfig, gaussian_log_prob, log_likelihood};
use fm_train::data::{ImageSet, Points, bits_per_dim};
use fm_train::eval::dequantized_bpd;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const A: f64 = -3.3;

/// The bin `[lo, hi)` of pixel `p` in [-1, 1].
fn bin(p: u8) -> (f64, f64) {
    let lo = 2.0 * p as f64 / 256.0 - 1.0;
    (lo, lo + 2.0 / 256.0)
}

/// The standard normal mass above `z`, accurate in the upper tail (where `1 - CDF` cancels).
fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

fn images(n: usize) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    ImageSet {
        pixels: (0..n * 16).map(|_| rng.random_range(150..170)).collect(),
        labels: None,
        channels: 1,
        height: 4,
        width: 4,
    }
}

/// `-log p_1` of the linear flow, by the ODE likelihood with one Hutchinson probe.
fn flow_nll(points: &Points) -> Result<(Vec<f64>, Vec<fm_ode::Stats>), fm_ode::SolveError> {
    let dev = Device::flex();
    let b = points.len();
    let x1 = Tensor::<2>::from_data(TensorData::new(points.values.clone(), [b, 16]), &dev);
    let probes = Probes::new(Divergence::HUTCHINSON, [b, 16], &dev);
    let ll = log_likelihood(
        |x: Tensor<2>, _t| x.mul_scalar(A),
        |x0| gaussian_log_prob(x0, 1.0),
        x1,
        &probes,
        &SolverConfig::dopri5(1e-7, 1e-7),
    )?;
    Ok((
        ll.log_prob
            .into_data()
            .iter::<f32>()
            .map(|v| -(v as f64))
            .collect(),
        vec![ll.stats],
    ))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn bpd_matches_the_closed_forms_of_a_gaussian_flow() {
    let set = images(48);
    let s2 = (2.0 * A).exp();
    let s = s2.sqrt();
    // The bpd of each image from a per-pixel log-density of its bin `[lo, hi)`.
    let per_image = |log_p: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        set.pixels
            .chunks_exact(16)
            .map(|img| {
                let total = img.iter().map(|&p| {
                    let (lo, hi) = bin(p);
                    log_p(lo, hi)
                });
                bits_per_dim(total.sum(), 16)
            })
            .collect()
    };
    // One dequantization estimates E_u[log N(y; 0, s^2)], with E[y^2] = (lo^2 + lo hi + hi^2) / 3
    // for y uniform on a bin.
    let expected_one = per_image(&|lo, hi| {
        let y2 = (lo * lo + lo * hi + hi * hi) / 3.0;
        -0.5 * (2.0 * std::f64::consts::PI * s2).ln() - y2 / (2.0 * s2)
    });
    // Many dequantizations approach the discrete likelihood: the mass of each bin over its width.
    let discrete =
        per_image(&|lo, hi| ((upper_tail(lo / s) - upper_tail(hi / s)) / (hi - lo)).ln());
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (one, stats) = dequantized_bpd(&set, 48, 1, 48, &mut rng, flow_nll).unwrap();
    let (many, _) = dequantized_bpd(&set, 48, 64, 48, &mut rng, flow_nll).unwrap();
    let (e_one, e_many, e_discrete) = (mean(&one), mean(&many), mean(&discrete));
    eprintln!(
        "bpd: K=1 {e_one:.4} (closed form {:.4}), K=64 {e_many:.4}, discrete {e_discrete:.4}, NFE {}",
        mean(&expected_one),
        stats[0].nfe
    );
    assert_eq!(one.len(), 48);
    assert!((e_one - mean(&expected_one)).abs() < 0.01, "{e_one}");
    // The Jensen gap is what separates the two estimates; more samples close most of it.
    let gap = e_one - e_discrete;
    assert!(gap > 0.03, "the test needs a visible gap: {gap}");
    assert!(e_many >= e_discrete - 0.005, "{e_many} < {e_discrete}");
    assert!(e_many - e_discrete < 0.2 * gap, "{e_many} vs {e_discrete}");
}

/// Only exact log-densities or a single dequantization keep the bpd an upper bound; Hutchinson's
/// noise under log-mean-exp biases it low, and the estimator says so.
#[test]
fn the_bpd_estimator_says_when_it_is_a_bound() {
    use fm_ode::Divergence;
    use fm_train::eval::BpdEstimator;
    let cases = [
        (Divergence::Exact, 1, true),
        (Divergence::Exact, 8, true),
        (Divergence::HUTCHINSON, 1, true),
        (Divergence::HUTCHINSON, 2, false),
        ("gaussian:4".parse().unwrap(), 8, false),
    ];
    for (divergence, k, bound) in cases {
        let e = BpdEstimator::new(divergence, k);
        assert_eq!(e.upper_bound, bound, "{e:?}");
        assert!(e.name.contains(&format!("k={k}")), "{e:?}");
    }
    let e = BpdEstimator::new("gaussian:4".parse().unwrap(), 8);
    assert_eq!(e.name, "iw-dequant(k=8), hutchinson(4 gaussian)");
}
