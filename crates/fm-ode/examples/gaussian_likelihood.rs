//! The exact marginal field of Gaussian data along the OT path: samples by every method, and
//! log-likelihoods by the exact divergence and by Hutchinson's estimator, against the closed
//! form.
//!
//! `cargo run -p fm-ode --example gaussian_likelihood`

use burn::tensor::{Device, Distribution, Tensor};
use fm_ode::{Divergence, Method, Probes, SolverConfig, gaussian_log_prob, log_likelihood, solve};
use fm_paths::{AffinePath, GaussianData, scheduler::CondOt};

fn main() {
    let dev = Device::flex();
    dev.seed(1);
    let path = AffinePath::new(CondOt::new(1e-4));
    let data = GaussianData::new(vec![1.0, -2.0, 0.5], 0.5);
    let field = |t: f64, x: &Tensor<2>| data.marginal_velocity(&path, x.clone(), t);
    let x0 = Tensor::<2>::random([2000, 3], Distribution::Normal(0.0, 1.0), &dev);
    let reference = solve(
        &field,
        x0.clone(),
        0.0,
        1.0,
        &SolverConfig::dopri5(1e-7, 1e-7),
    )
    .expect("the exact field is smooth");
    println!("sampling (error against dopri5 at 1e-7):");
    for method in Method::ALL {
        let config = SolverConfig::fixed(method, 10);
        let sol = solve(&field, x0.clone(), 0.0, 1.0, &config).expect("fixed steps finish");
        let err = (sol.y - reference.y.clone())
            .abs()
            .max()
            .into_scalar::<f32>();
        println!(
            "  {method:<9} 10 steps: NFE {:>3}, max error {err:.2e}",
            sol.stats.nfe
        );
    }

    let x1 = reference.y.narrow(0, 0, 200);
    let want = data.log_density(&path, x1.clone(), 1.0);
    println!("log-likelihood of 200 samples (mean absolute error against the closed form):");
    for divergence in [
        Divergence::Exact,
        Divergence::HUTCHINSON,
        "hutchinson:8".parse().expect("a divergence"),
    ] {
        let ll = log_likelihood(
            |x, t| data.marginal_velocity(&path, x, t),
            |x0| gaussian_log_prob(x0, 1.0),
            x1.clone(),
            &Probes::new(divergence, [200, 3], &dev),
            &SolverConfig::dopri5(1e-5, 1e-5),
        )
        .expect("the likelihood solve finishes");
        let err = (ll.log_prob - want.clone())
            .abs()
            .mean()
            .into_scalar::<f32>();
        println!(
            "  {divergence:<13} NFE {:>3}, error {err:.2e} nats",
            ll.stats.nfe
        );
        if divergence == Divergence::Exact {
            assert!(
                err < 1e-3,
                "the exact divergence gives the closed form: {err}"
            );
        }
    }
}
