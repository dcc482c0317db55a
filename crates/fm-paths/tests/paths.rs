//! Paths and schedulers against their definitions: boundary values, finite differences in time,
//! Theorem 3, and the parametrization conversions. Tensors are f64 here so that the checks test
//! the algebra, not float rounding.

use burn::tensor::{DType, Device, Tensor, TensorData};
use fm_paths::scheduler::{CondOt, Cosine, LinearVp, Polynomial, Ve, Vp};
use fm_paths::{AffinePath, AnyScheduler, Parametrization, Scheduler};
use proptest::prelude::*;

fn device() -> Device {
    Device::flex()
}

fn tensor<const D: usize>(values: &[f64], shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        (&device(), DType::F64),
    )
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_to_vec_as::<f64>().unwrap()
}

/// Largest absolute difference, relative to the scale of `b`.
fn rel_err<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f64 {
    let (a, b) = (values(a), values(b));
    let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

fn any_scheduler() -> impl Strategy<Value = AnyScheduler> {
    prop_oneof![
        (0.0..0.1f64).prop_map(|s| AnyScheduler::CondOt(CondOt::new(s))),
        (0.05..1.0f64, 5.0..25.0f64)
            .prop_map(|(beta_min, beta_max)| AnyScheduler::Vp(Vp { beta_min, beta_max })),
        (0.005..0.05f64, 5.0..80.0f64).prop_map(|(sigma_min, sigma_max)| AnyScheduler::Ve(Ve {
            sigma_min,
            sigma_max
        })),
        (0.5..3.0f64).prop_map(|exponent| AnyScheduler::Polynomial(Polynomial { exponent })),
        Just(AnyScheduler::Cosine(Cosine)),
        Just(AnyScheduler::LinearVp(LinearVp)),
    ]
}

/// A batch `[B, D]` of (x0, x1) pairs and per-sample times in (0.02, 0.98).
fn batch() -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<f64>, Vec<f64>)> {
    (1usize..7, 1usize..5).prop_flat_map(|(b, d)| {
        (
            Just(b),
            Just(d),
            prop::collection::vec(-3.0..3.0f64, b * d),
            prop::collection::vec(-3.0..3.0f64, b * d),
            prop::collection::vec(0.02..0.98f64, b),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Each scheduler's derivatives equal a central finite difference of its alpha and sigma.
    #[test]
    fn derivatives_match_finite_differences(s in any_scheduler(), t in 0.02..0.98f64) {
        let h = 1e-6;
        let (up, down, at) = (s.coefficients(t + h), s.coefficients(t - h), s.coefficients(t));
        let fd_alpha = (up.alpha - down.alpha) / (2.0 * h);
        let fd_sigma = (up.sigma - down.sigma) / (2.0 * h);
        prop_assert!((fd_alpha - at.d_alpha).abs() <= 1e-5 * (1.0 + at.d_alpha.abs()), "{s:?} alpha' {fd_alpha} vs {}", at.d_alpha);
        prop_assert!((fd_sigma - at.d_sigma).abs() <= 1e-5 * (1.0 + at.d_sigma.abs()), "{s:?} sigma' {fd_sigma} vs {}", at.d_sigma);
    }

    /// The tensor evaluation of a schedule is the host evaluation, element by element.
    #[test]
    fn tensor_and_host_schedules_agree(s in any_scheduler(), ts in prop::collection::vec(0.02..0.98f64, 1..9)) {
        let c = s.coefficients(tensor(&ts, [ts.len()]));
        let parts = [values(c.alpha), values(c.sigma), values(c.d_alpha), values(c.d_sigma)];
        for (i, &t) in ts.iter().enumerate() {
            let h = s.coefficients(t);
            for (got, want) in parts.iter().map(|p| p[i]).zip([h.alpha, h.sigma, h.d_alpha, h.d_sigma]) {
                prop_assert!((got - want).abs() <= 1e-12 * (1.0 + want.abs()));
            }
        }
    }

    /// OT path boundaries: psi_0(x0) = x0 and psi_1(x0) = x1 + sigma_min x0.
    #[test]
    fn ot_path_boundaries((b, d, x0, x1, _) in batch(), sigma_min in 0.0..0.1f64) {
        let path = AffinePath::new(CondOt::new(sigma_min));
        let (x0, x1) = (tensor(&x0, [b, d]), tensor(&x1, [b, d]));
        let start = path.sample(x0.clone(), x1.clone(), tensor(&vec![0.0; b], [b])).x_t;
        let end = path.sample(x0.clone(), x1.clone(), tensor(&vec![1.0; b], [b])).x_t;
        prop_assert!(rel_err(start, x0.clone()) < 1e-12);
        prop_assert!(rel_err(end, x1 + x0.mul_scalar(sigma_min)) < 1e-12);
    }

    /// The CFM target equals a central difference of psi_t(x0) in t (per-sample t, any rank).
    #[test]
    fn target_is_time_derivative_of_flow(s in any_scheduler(), (b, d, x0, x1, t) in batch()) {
        let path = AffinePath::new(s);
        // Rank 3 ([B, d, 1]) to check that per-sample broadcasting does not depend on rank.
        let (x0, x1) = (tensor(&x0, [b, d, 1]), tensor(&x1, [b, d, 1]));
        let h = 1e-6;
        let shifted = |dt: f64| {
            let ts: Vec<f64> = t.iter().map(|v| v + dt).collect();
            path.sample(x0.clone(), x1.clone(), tensor(&ts, [b])).x_t
        };
        let fd = (shifted(h) - shifted(-h)).div_scalar(2.0 * h);
        let target = path.sample(x0.clone(), x1.clone(), tensor(&t, [b])).target;
        prop_assert!(rel_err(fd, target) < 1e-5);
    }

    /// Theorem 3: the conditional velocity at x = psi_t(x0) is the regression target.
    #[test]
    fn conditional_velocity_at_flow_is_target(s in any_scheduler(), (b, d, x0, x1, t) in batch()) {
        let path = AffinePath::new(s);
        let (x0, x1, t) = (tensor(&x0, [b, d]), tensor(&x1, [b, d]), tensor(&t, [b]));
        let sample = path.sample(x0, x1.clone(), t.clone());
        let u = path.conditional_velocity(sample.x_t, x1, t);
        prop_assert!(rel_err(u, sample.target) < 1e-9);
    }

    /// Every conversion maps the true value of one quantity onto the true value of another, and
    /// converting there and back returns the input to 1e-5.
    #[test]
    fn conversions_are_exact_and_round_trip(s in any_scheduler(), (b, d, x0, x1, t) in batch()) {
        use Parametrization::*;
        let path = AffinePath::new(s);
        let (x0, x1, t) = (tensor(&x0, [b, d]), tensor(&x1, [b, d]), tensor(&t, [b]));
        let sample = path.sample(x0.clone(), x1.clone(), t.clone());
        let sigma = fm_paths::per_sample(path.scheduler.coefficients(t.clone()).sigma, &x0);
        let truth = |p: Parametrization| match p {
            Velocity => sample.target.clone(),
            X1 => x1.clone(),
            Epsilon => x0.clone(),
            Score => -(x0.clone() / sigma.clone()),
        };
        for from in [Velocity, X1, Epsilon, Score] {
            for to in [Velocity, X1, Epsilon, Score] {
                let there = path.convert(from, to, truth(from), sample.x_t.clone(), t.clone());
                prop_assert!(rel_err(there.clone(), truth(to)) < 1e-6, "{from:?} -> {to:?}");
                let back = path.convert(to, from, there, sample.x_t.clone(), t.clone());
                prop_assert!(rel_err(back, truth(from)) < 1e-5, "{from:?} -> {to:?} -> {from:?}");
            }
        }
    }
}

/// Diffusion paths keep their documented end points: VP reaches x1 exactly at t = 1 and starts
/// at `alpha_0 = exp(-T(1)/2)`; VE has `alpha = 1` and runs from `sigma_max` down to `sigma_min`.
#[test]
fn diffusion_path_end_points() {
    let vp = Vp::default().coefficients(1.0);
    assert_eq!((vp.alpha, vp.sigma), (1.0, 0.0));
    let vp0 = Vp::default().coefficients(0.0);
    let t1 = 0.1 + (20.0 - 0.1) / 2.0;
    assert!((vp0.alpha - (-t1 / 2.0f64).exp()).abs() < 1e-15);
    assert!((vp0.alpha.powi(2) + vp0.sigma.powi(2) - 1.0).abs() < 1e-15);
    let ve = Ve::default();
    assert!((ve.coefficients(0.0).sigma - ve.sigma_max).abs() < 1e-9);
    assert!((ve.coefficients(1.0).sigma - ve.sigma_min).abs() < 1e-15);
    assert_eq!(AffinePath::new(ve).source_std(), ve.coefficients(0.0).sigma);
    for s in [
        AnyScheduler::Polynomial(Polynomial { exponent: 2.0 }),
        AnyScheduler::Cosine(Cosine),
        AnyScheduler::LinearVp(LinearVp),
    ] {
        let (start, end) = (s.coefficients(0.0), s.coefficients(1.0));
        assert!(
            start.alpha.abs() < 1e-15 && (start.sigma - 1.0).abs() < 1e-15,
            "{s:?}"
        );
        assert!(
            (end.alpha - 1.0).abs() < 1e-15 && end.sigma.abs() < 1e-15,
            "{s:?}"
        );
    }
}

/// Over each scheduler's training range the CFM target coefficients are finite in f32.
#[test]
fn training_range_keeps_targets_finite_in_f32() {
    let schedulers = [
        AnyScheduler::CondOt(CondOt::new(0.0)),
        AnyScheduler::Vp(Vp::default()),
        AnyScheduler::Ve(Ve::default()),
        AnyScheduler::Polynomial(Polynomial { exponent: 0.5 }),
        AnyScheduler::Cosine(Cosine),
        AnyScheduler::LinearVp(LinearVp),
    ];
    for s in schedulers {
        let (lo, hi) = s.training_range();
        // The f32 ends of the range and a point beside each, as training draws them.
        let ts: Vec<f32> = vec![lo as f32, hi as f32, (lo + 1e-7) as f32, (hi - 1e-7) as f32];
        let t = Tensor::<1>::from_data(TensorData::new(ts, [4]), &device());
        let c = s.coefficients(t);
        for part in [c.alpha, c.sigma, c.d_alpha, c.d_sigma] {
            assert!(
                values(part).iter().all(|v| v.is_finite()),
                "{s:?} on [{lo}, {hi}]"
            );
        }
    }
}
