//! The test that ties paths, solvers and likelihood together.
//!
//! Data `q = N(m, s^2 I)` and the OT path with `sigma_min`. The marginal velocity is known in
//! closed form (fm_paths::GaussianData):
//!   `u_t(x) = (m + k_t (x - t m) - (1 - sigma_min) x) / sigma_t`,
//!   `sigma_t = 1 - (1 - sigma_min) t`, `k_t = t s^2 / (sigma_t^2 + t^2 s^2)`,
//! and its flow carries `p_0 = N(0, I)` onto `p_1 = N(m, (sigma_min^2 + s^2) I)`. So integrating
//! u from noise must give that mean and variance, and the likelihood solve must return the
//! analytic log-density of `p_1`.

use burn::tensor::{Device, Distribution, Tensor};
use fm_ode::divergence::ProbeKind;
use fm_ode::{Divergence, Probes, SolverConfig, gaussian_log_prob, log_likelihood, solve};
use fm_paths::scheduler::CondOt;
use fm_paths::{AffinePath, GaussianData};

const SIGMA_MIN: f64 = 0.05;

fn setup() -> (GaussianData, AffinePath<CondOt>) {
    (
        GaussianData::new(vec![1.0, -2.0, 0.5], 0.6),
        AffinePath::new(CondOt::new(SIGMA_MIN)),
    )
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_to_vec_as::<f64>().unwrap()
}

#[test]
fn flow_of_marginal_velocity_transports_noise_to_data() {
    let (data, path) = setup();
    let dev = Device::flex();
    dev.seed(11);
    let n = 20_000;
    let x0 = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 1.0), &dev);
    let field = |t: f64, x: &Tensor<2>| data.marginal_velocity(&path, x.clone(), t);
    let sol = solve(&field, x0, 0.0, 1.0, &SolverConfig::dopri5(1e-5, 1e-5)).unwrap();
    let y = values(sol.y);
    let var_true = SIGMA_MIN * SIGMA_MIN + data.std[0] * data.std[0];
    for d in 0..3 {
        let col: Vec<f64> = y.iter().skip(d).step_by(3).copied().collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        // Sampling error of the mean: sqrt(var / n) = 0.0043; of the variance: var sqrt(2 / n).
        eprintln!(
            "dim {d}: mean {mean:.4} (want {}), var {var:.4} (want {var_true:.4})",
            data.mean[d]
        );
        assert!((mean - data.mean[d]).abs() < 0.02, "dim {d}: mean {mean}");
        assert!(
            (var - var_true).abs() < 0.04 * var_true,
            "dim {d}: var {var} vs {var_true}"
        );
    }
    assert!(sol.stats.nfe < 200, "{:?}", sol.stats);
}

#[test]
fn likelihood_solve_matches_analytic_density() {
    let (data, path) = setup();
    let dev = Device::flex();
    dev.seed(5);
    let n = 256;
    // Points both typical and in the tails of p_1.
    let x1 = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 1.5), &dev)
        + Tensor::<2>::from_floats([[1.0f32, -2.0, 0.5]], &dev);
    let p1 = GaussianData::new(
        data.mean.clone(),
        (SIGMA_MIN * SIGMA_MIN + data.std[0] * data.std[0]).sqrt(),
    );
    let want = values(p1.log_density(&AffinePath::new(CondOt::new(0.0)), x1.clone(), 1.0));
    let config = SolverConfig::dopri5(1e-6, 1e-6);
    for divergence in [
        Divergence::Exact,
        Divergence::Hutchinson {
            probe: ProbeKind::Rademacher,
            count: 1,
        },
    ] {
        let probes = Probes::new(divergence, [n, 3], &dev);
        let ll = log_likelihood(
            |x, t| data.marginal_velocity(&path, x, t),
            |x0| gaussian_log_prob(x0, 1.0),
            x1.clone(),
            &probes,
            &config,
        )
        .unwrap();
        let got = values(ll.log_prob);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{divergence:?}: worst |log p error| {worst:.2e} nats, {:?}",
            ll.stats
        );
        assert!(
            worst < 1e-3,
            "{divergence:?}: worst error {worst} nats ({:?})",
            ll.stats
        );
    }
}

/// An orthogonal 3 x 3 matrix (two Givens rotations), rows as given.
const Q: [[f64; 3]; 3] = {
    let (c1, s1) = (0.8, 0.6);
    let (c2, s2) = (0.28, 0.96);
    // R_x(c2, s2) R_z(c1, s1)
    [
        [c1, -s1, 0.0],
        [c2 * s1, c2 * c1, -s2],
        [s2 * s1, s2 * c1, c2],
    ]
};

/// `x Q^T` (rows are points) or `x Q` with `transpose`.
fn rotate(x: Tensor<2>, transpose: bool) -> Tensor<2> {
    let m: Vec<f64> = (0..9)
        .map(|k| {
            let (i, j) = (k / 3, k % 3);
            if transpose { Q[i][j] } else { Q[j][i] }
        })
        .collect();
    let m = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(m, [3, 3]),
        (&x.device(), x.dtype()),
    );
    x.matmul(m)
}

/// Data `x = Q y`, `y ~ N(m, diag(s^2))` with unequal `s`: the field `Q u(Q^T x)` has a full,
/// non-diagonal Jacobian, so neither probe kind is exact. The exact divergence gives the
/// analytic log-density; one Hutchinson probe is wrong point by point but right on average
/// (unbiased), over many points and seeds.
#[test]
fn hutchinson_likelihood_is_unbiased_on_an_anisotropic_field() {
    let data = GaussianData::anisotropic(vec![1.0, -2.0, 0.5], vec![0.3, 0.8, 1.5]);
    let path = AffinePath::new(CondOt::new(SIGMA_MIN));
    let field =
        |x: Tensor<2>, t: f64| rotate(data.marginal_velocity(&path, rotate(x, true), t), false);
    let p1 = GaussianData::anisotropic(
        data.mean.clone(),
        data.std
            .iter()
            .map(|s| (SIGMA_MIN * SIGMA_MIN + s * s).sqrt())
            .collect(),
    );
    let dev = Device::flex();
    let config = SolverConfig::dopri5(1e-6, 1e-6);
    let n = 256;
    let mut errors = Vec::new();
    for (seed, divergence) in [
        (0, Divergence::Exact),
        (1, Divergence::HUTCHINSON),
        (2, Divergence::HUTCHINSON),
        (3, "gaussian".parse().unwrap()),
        (4, "gaussian".parse().unwrap()),
    ] {
        dev.seed(seed);
        let y = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 1.0), &dev)
            * Tensor::<2>::from_floats([[0.5f32, 1.0, 2.0]], &dev)
            + Tensor::<2>::from_floats([[1.0f32, -2.0, 0.5]], &dev);
        let x1 = rotate(y.clone(), false);
        let want = values(p1.log_density(&AffinePath::new(CondOt::new(0.0)), y, 1.0));
        let probes = Probes::new(divergence, [n, 3], &dev);
        let ll =
            log_likelihood(field, |x0| gaussian_log_prob(x0, 1.0), x1, &probes, &config).unwrap();
        let err: Vec<f64> = values(ll.log_prob)
            .iter()
            .zip(&want)
            .map(|(a, b)| a - b)
            .collect();
        let worst = err.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        eprintln!("seed {seed}, {divergence:?}: worst |log p error| {worst:.2e}");
        if divergence == Divergence::Exact {
            assert!(worst < 1e-3, "exact divergence: worst error {worst}");
        } else {
            assert!(worst > 1e-2, "{divergence:?} cannot be exact here: {worst}");
            errors.extend(err);
        }
    }
    let k = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / k;
    let sd = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
    eprintln!("Hutchinson: mean error {mean:.4} nats, sd {sd:.4}, over {k} points");
    assert!(
        mean.abs() < 4.0 * sd / k.sqrt() + 1e-3,
        "biased: mean {mean}, sd {sd}"
    );
}
