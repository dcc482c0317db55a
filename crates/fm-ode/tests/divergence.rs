//! Divergence estimators against an analytic divergence.

use burn::tensor::{Device, Distribution, Tensor};
use fm_ode::divergence::{ProbeKind, velocity_and_divergence};
use fm_ode::{Divergence, Probes};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_to_vec_as::<f64>().unwrap()
}

/// `v(x) = (x0^2 x1, sin(x1) + x0 x2, x0 x1 x2)`: div v = `2 x0 x1 + cos(x1) + x0 x1`.
fn field(x: Tensor<2>) -> Tensor<2> {
    let c = |i: usize| x.clone().narrow(1, i, 1);
    let v0 = c(0).powf_scalar(2.0) * c(1);
    let v1 = c(1).sin() + c(0) * c(2);
    let v2 = c(0) * c(1) * c(2);
    Tensor::cat(vec![v0, v1, v2], 1)
}

fn analytic(x: &[f64]) -> Vec<f64> {
    x.chunks(3)
        .map(|p| 2.0 * p[0] * p[1] + p[1].cos() + p[0] * p[1])
        .collect()
}

fn points(n: usize) -> Tensor<2> {
    let dev = Device::flex();
    dev.seed(3);
    Tensor::random([n, 3], Distribution::Normal(0.0, 1.0), &dev)
}

#[test]
fn exact_divergence_is_the_trace() {
    let x = points(16);
    let probes = Probes::new(Divergence::Exact, [16, 3], &x.device());
    let (v, div) = velocity_and_divergence(field, &x, &probes);
    assert!(!v.is_autodiff() && !div.is_autodiff());
    let want = analytic(&values(x.clone()));
    for (got, want) in values(div).iter().zip(&want) {
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
    let v_direct = values(field(x));
    for (a, b) in values(v).iter().zip(&v_direct) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn hutchinson_is_unbiased() {
    let x = points(4);
    let want = analytic(&values(x.clone()));
    for probe in [ProbeKind::Gaussian, ProbeKind::Rademacher] {
        let count = 40_000;
        let probes = Probes::new(Divergence::Hutchinson { probe, count }, [4, 3], &x.device());
        let (_, div) = velocity_and_divergence(field, &x, &probes);
        for (got, want) in values(div).iter().zip(&want) {
            // Per-probe standard deviation here is below 10, so the mean's is below 0.05.
            assert!((got - want).abs() < 0.2, "{probe:?}: {got} vs {want}");
        }
    }
}

#[test]
fn rademacher_is_exact_for_a_diagonal_jacobian() {
    let x = points(8);
    let diagonal = |x: Tensor<2>| x.clone().sin() + x.powf_scalar(3.0);
    let exact = Probes::new(Divergence::Exact, [8, 3], &x.device());
    let one = Probes::new(
        Divergence::Hutchinson {
            probe: ProbeKind::Rademacher,
            count: 1,
        },
        [8, 3],
        &x.device(),
    );
    let (_, a) = velocity_and_divergence(diagonal, &x, &exact);
    let (_, b) = velocity_and_divergence(diagonal, &x, &one);
    for (a, b) in values(a).iter().zip(values(b)) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn divergence_specs_parse() {
    assert_eq!("exact".parse(), Ok(Divergence::Exact));
    assert_eq!(
        "hutchinson:4".parse(),
        Ok(Divergence::Hutchinson {
            probe: ProbeKind::Rademacher,
            count: 4
        })
    );
    assert_eq!(
        "gaussian".parse(),
        Ok(Divergence::Hutchinson {
            probe: ProbeKind::Gaussian,
            count: 1
        })
    );
    for bad in ["hutchinson:0", "exact:3", "trace", "gaussian:x"] {
        assert!(bad.parse::<Divergence>().is_err(), "{bad}");
    }
}
