//! Solvers against a linear ODE with a known solution: convergence orders, tolerance, NFE
//! accounting, saved times, backwards time and error values.

use burn::tensor::{DType, Device, Tensor, TensorData};
use fm_ode::{
    Adaptive, Method, SaveAt, SolveError, SolverConfig, StepControl, Sweep, error_vs_nfe, solve,
};

/// `dx/dt = A x` with `A = [[-a, -w], [w, -a]]`: a damped rotation, `x(t) = e^{-a t} R(w t) x0`.
const A: f64 = 0.5;
const W: f64 = 3.0;

fn field(_t: f64, x: &Tensor<2>) -> Tensor<2> {
    let m = Tensor::<2>::from_data(TensorData::new(vec![-A, W, -W, -A], [2, 2]), &x.device());
    // Rows are samples: x A^T.
    x.clone().matmul(m)
}

fn initial() -> Tensor<2> {
    let x0 = vec![1.0f32, 0.0, 0.3, -0.8, -0.5, 0.5];
    Tensor::from_data(TensorData::new(x0, [3, 2]), &Device::flex())
}

fn exact(t: f64) -> Vec<f64> {
    let (decay, (s, c)) = ((-A * t).exp(), (W * t).sin_cos());
    [[1.0, 0.0], [0.3, -0.8], [-0.5, 0.5]]
        .iter()
        .flat_map(|[x, y]| [decay * (c * x - s * y), decay * (s * x + c * y)])
        .collect()
}

fn max_err(y: Tensor<2>, want: &[f64]) -> f64 {
    let got: Vec<f64> = y.into_data().try_to_vec_as::<f64>().unwrap();
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Least-squares slope of log(error) against log(step size).
fn observed_order(method: Method, steps: &[usize]) -> f64 {
    let t1 = 2.0;
    let points: Vec<(f64, f64)> = steps
        .iter()
        .map(|&n| {
            let sol = solve(&field, initial(), 0.0, t1, &SolverConfig::fixed(method, n)).unwrap();
            ((t1 / n as f64).ln(), max_err(sol.y, &exact(t1)).ln())
        })
        .collect();
    slope(&points)
}

#[test]
fn fixed_step_methods_show_their_order() {
    // Step counts keep errors well above f32 rounding (1e-6) and inside the asymptotic range.
    for (method, steps) in [
        (Method::Euler, &[200usize, 400, 800, 1600][..]),
        (Method::Midpoint, &[50, 100, 200, 400][..]),
        (Method::Heun, &[50, 100, 200, 400][..]),
        (Method::Rk4, &[12, 16, 24, 32][..]),
    ] {
        let order = observed_order(method, steps);
        let want = method.order() as f64;
        eprintln!("{method}: observed order {order:.3} (expected {want})");
        assert!(
            (order - want).abs() < 0.3,
            "{method}: order {order:.3}, expected {want}"
        );
    }
}

#[test]
fn fixed_step_nfe_is_stages_times_steps() {
    for (method, per_step, extra) in [
        (Method::Euler, 1, 0),
        (Method::Midpoint, 2, 0),
        (Method::Heun, 2, 0),
        (Method::Rk4, 4, 0),
        // First same as last: 6 new evaluations per step after the first.
        (Method::Dopri5, 6, 1),
    ] {
        let sol = solve(
            &field,
            initial(),
            0.0,
            1.0,
            &SolverConfig::fixed(method, 10),
        )
        .unwrap();
        assert_eq!(sol.stats.nfe, per_step * 10 + extra, "{method}");
        assert_eq!((sol.stats.accepted, sol.stats.rejected), (10, 0));
    }
}

#[test]
fn dopri5_meets_tolerance_and_counts_six_evaluations_per_step() {
    for tol in [1e-3, 1e-4, 1e-5] {
        let config = SolverConfig::dopri5(tol, tol);
        let sol = solve(&field, initial(), 0.0, 2.0, &config).unwrap();
        let err = max_err(sol.y, &exact(2.0));
        eprintln!("dopri5 tol {tol:e}: max error {err:.2e}, {:?}", sol.stats);
        // Global error of a locally controlled solve: within a small multiple of the tolerance.
        assert!(err < 10.0 * tol, "tol {tol}: error {err}");
        let s = sol.stats;
        // 1 for f(t0), 1 for the initial step-size probe, 6 per attempted step.
        assert_eq!(s.nfe, 2 + 6 * (s.accepted + s.rejected), "{s:?}");

        let given = SolverConfig {
            control: StepControl::Adaptive(Adaptive::new(tol, tol).with_first_step(0.5)),
            ..config
        };
        let s = solve(&field, initial(), 0.0, 2.0, &given).unwrap().stats;
        assert_eq!(s.nfe, 1 + 6 * (s.accepted + s.rejected), "{s:?}");
        assert!(
            s.rejected > 0,
            "a first step of 0.5 is too large at tol {tol}: {s:?}"
        );
    }
}

#[test]
fn tighter_tolerance_takes_more_steps() {
    let nfe = |tol: f64| {
        solve(&field, initial(), 0.0, 2.0, &SolverConfig::dopri5(tol, tol))
            .unwrap()
            .stats
            .nfe
    };
    assert!(nfe(1e-3) < nfe(1e-5));
}

#[test]
fn integrating_backwards_returns_to_the_start() {
    for config in [
        SolverConfig::dopri5(1e-6, 1e-6),
        SolverConfig::fixed(Method::Rk4, 100),
    ] {
        let forward = solve(&field, initial(), 0.0, 1.5, &config).unwrap();
        let back = solve(&field, forward.y, 1.5, 0.0, &config).unwrap();
        assert!(max_err(back.y, &exact(0.0)) < 1e-4);
    }
}

#[test]
fn saved_states_are_the_solution_at_the_requested_times() {
    let times = vec![0.0, 0.25, 0.5, 1.1, 2.0];
    for control in [
        StepControl::Adaptive(Adaptive::new(1e-6, 1e-6)),
        StepControl::FixedSteps(64),
        StepControl::FixedSize(0.03),
    ] {
        let config = SolverConfig {
            method: if matches!(control, StepControl::Adaptive(_)) {
                Method::Dopri5
            } else {
                Method::Rk4
            },
            control: control.clone(),
            save: SaveAt::Times(times.clone()),
        };
        let sol = solve(&field, initial(), 0.0, 2.0, &config).unwrap();
        assert_eq!(sol.ts, times, "{control:?}");
        for (t, y) in sol.ts.iter().zip(sol.ys) {
            assert!(max_err(y, &exact(*t)) < 1e-4, "{control:?} at t = {t}");
        }
    }
    let steps = solve(
        &field,
        initial(),
        0.0,
        1.0,
        &SolverConfig::fixed(Method::Euler, 7).saving(SaveAt::Steps),
    )
    .unwrap();
    assert_eq!(steps.ys.len(), 8);
    assert!((steps.ts[3] - 3.0 / 7.0).abs() < 1e-15);
}

#[test]
fn a_custom_grid_is_followed() {
    let grid = vec![0.0, 0.1, 0.15, 0.6, 1.0];
    let config = SolverConfig {
        method: Method::Midpoint,
        control: StepControl::Grid(grid.clone()),
        save: SaveAt::Steps,
    };
    let sol = solve(&field, initial(), 0.0, 1.0, &config).unwrap();
    assert_eq!(sol.ts, grid);
    assert_eq!(sol.stats.nfe, 8);
}

#[test]
fn failures_are_values_not_panics() {
    let tight = SolverConfig {
        control: StepControl::Adaptive(Adaptive::new(1e-7, 1e-7).with_max_steps(5)),
        ..SolverConfig::dopri5(0.0, 0.0)
    };
    match solve(&field, initial(), 0.0, 2.0, &tight).map_err(|f| f.error) {
        Err(SolveError::MaxStepsReached {
            max_steps: 5,
            t,
            stats,
        }) => {
            assert!(t > 0.0 && t < 2.0);
            assert_eq!(stats.accepted + stats.rejected, 5);
        }
        other => panic!("expected MaxStepsReached, got {other:?}"),
    }
    let euler_adaptive = SolverConfig {
        method: Method::Euler,
        ..SolverConfig::dopri5(1e-3, 1e-3)
    };
    assert_eq!(
        solve(&field, initial(), 0.0, 1.0, &euler_adaptive)
            .unwrap_err()
            .error,
        SolveError::NoErrorEstimate(Method::Euler)
    );
    let bad = [
        (0.0, 1.0, SolverConfig::fixed(Method::Rk4, 0)),
        (0.0, 0.0, SolverConfig::fixed(Method::Rk4, 4)),
        (0.0, 1.0, SolverConfig::dopri5(0.0, 0.0)),
        (
            0.0,
            1.0,
            SolverConfig::fixed(Method::Rk4, 4).saving(SaveAt::Times(vec![1.5])),
        ),
        (
            0.0,
            1.0,
            SolverConfig {
                control: StepControl::Grid(vec![0.0, 0.7, 0.5, 1.0]),
                ..SolverConfig::fixed(Method::Euler, 1)
            },
        ),
    ];
    for (t0, t1, config) in bad {
        assert!(
            matches!(
                solve(&field, initial(), t0, t1, &config).map_err(|f| f.error),
                Err(SolveError::Invalid(_))
            ),
            "{config:?}"
        );
    }
    let blow_up = |_t: f64, x: &Tensor<2>| x.clone().powf_scalar(2.0).mul_scalar(1e30);
    assert!(matches!(
        solve(
            &blow_up,
            initial(),
            0.0,
            1.0,
            &SolverConfig::fixed(Method::Euler, 20)
        )
        .map_err(|f| f.error),
        Err(SolveError::NonFinite { .. })
    ));
    assert!(matches!(
        solve(
            &blow_up,
            initial(),
            0.0,
            1.0,
            &SolverConfig::dopri5(1e-5, 1e-5)
        )
        .map_err(|f| f.error),
        Err(SolveError::StepSizeTooSmall { .. } | SolveError::MaxStepsReached { .. })
    ));
}

/// dopri5's evaluation counts equal torchdiffeq's on the same problem and tolerances, so NFE
/// figures compare with the paper's and with Meta's `flow_matching`. The reference counts are
/// torchdiffeq 0.2 `odeint(method="dopri5", rtol=tol, atol=tol)` in float64 on `dy/dt = cos(t) y`,
/// `y(0) = 1`, `t` from 0 to 2, counting calls of the field. torchdiffeq steps past `t1` and
/// interpolates back where this solver shortens its last step to land on it, which may save a
/// step: counts may be lower, by at most 10 %.
#[test]
fn dopri5_evaluations_match_torchdiffeq() {
    let field = |t: f64, y: &f64| t.cos() * y;
    for (tol, torchdiffeq) in [(1e-4, 26), (1e-5, 38), (1e-6, 50), (1e-8, 110)] {
        let sol = solve(&field, 1.0, 0.0, 2.0, &SolverConfig::dopri5(tol, tol)).unwrap();
        let nfe = sol.stats.nfe;
        eprintln!("tol {tol:e}: NFE {nfe}, torchdiffeq {torchdiffeq}");
        assert!(
            nfe <= torchdiffeq && nfe * 10 >= torchdiffeq * 9,
            "tol {tol:e}: {nfe} vs {torchdiffeq}"
        );
        assert!((sol.y - 2f64.sin().exp()).abs() < 3.0 * tol, "tol {tol:e}");
    }
}

#[test]
fn method_names_parse() {
    for m in Method::ALL {
        assert_eq!(m.name().parse::<Method>(), Ok(m));
    }
    let err = "rk45".parse::<Method>().unwrap_err();
    assert_eq!((err.what, err.given.as_str()), ("solver", "rk45"));
    assert!(err.to_string().contains("dopri5"), "{err}");
}

/// A solve that stops early returns where it got: the state at the failure's time is the
/// solution there (to the tolerance), and the steps saved before it are kept.
#[test]
fn a_failed_solve_returns_its_partial_solution() {
    let config = SolverConfig {
        control: StepControl::Adaptive(Adaptive::new(1e-6, 1e-6).with_max_steps(8)),
        save: SaveAt::Steps,
        ..SolverConfig::dopri5(0.0, 0.0)
    };
    let failure = solve(&field, initial(), 0.0, 2.0, &config).unwrap_err();
    let SolveError::MaxStepsReached { t, stats, .. } = failure.error else {
        panic!("expected MaxStepsReached, got {:?}", failure.error);
    };
    assert_eq!(failure.t, t);
    assert!(t > 0.0 && t < 2.0, "{t}");
    assert_eq!(failure.partial.stats, stats);
    assert!(max_err(failure.partial.y.clone(), &exact(t)) < 1e-4);
    // The initial state and one per accepted step, the last at the failure's time.
    assert_eq!(failure.partial.ts.len(), stats.accepted + 1);
    assert_eq!(failure.partial.ts.last(), Some(&t));
    assert!(
        failure.to_string().contains("limit of 8 steps"),
        "{failure}"
    );
    // Refused before the first step: the initial state, at t0, nothing spent.
    let refused = solve(
        &field,
        initial(),
        0.5,
        0.5,
        &SolverConfig::dopri5(1e-5, 1e-5),
    )
    .unwrap_err();
    assert_eq!((refused.t, refused.partial.stats.nfe), (0.5, 0));
    assert!(max_err(refused.partial.y, &exact(0.0)) < 1e-6);
}

#[test]
fn error_against_nfe_follows_each_methods_order() {
    let sweep = Sweep {
        methods: vec![Method::Euler, Method::Midpoint, Method::Rk4],
        // 12 and 13 give the same 3 RK4 steps: measured once.
        nfe: vec![12, 13, 24, 48, 96],
        reference: SolverConfig::fixed(Method::Rk4, 1000),
    };
    let t1 = 2.0;
    let (points, reference_nfe) = error_vs_nfe(&field, initial(), 0.0, t1, &sweep).unwrap();
    assert_eq!(reference_nfe, 4000);
    let exact = exact(t1);
    for &method in &sweep.methods {
        let curve: Vec<_> = points.iter().filter(|p| p.method == method).collect();
        assert_eq!(curve.len(), sweep.steps(method).len());
        for p in &curve {
            assert_eq!(p.nfe, p.steps * method.evaluations_per_step());
            // The reference is exact to f32 rounding, so the error is the true one.
            let sol = solve(
                &field,
                initial(),
                0.0,
                t1,
                &SolverConfig::fixed(method, p.steps),
            );
            let got: Vec<f64> = sol.unwrap().y.into_data().try_to_vec_as().unwrap();
            let true_rms = (got
                .iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                / got.len() as f64)
                .sqrt();
            assert!(
                (p.rms_error - true_rms).abs() < 1e-5 + 1e-3 * true_rms,
                "{method} at {} steps: {} vs true {true_rms}",
                p.steps,
                p.rms_error
            );
        }
        // Slope of log error against log NFE between the last two budgets: minus the order.
        let (a, b) = (curve[curve.len() - 2], curve[curve.len() - 1]);
        let slope = (b.rms_error / a.rms_error).ln() / (b.nfe as f64 / a.nfe as f64).ln();
        eprintln!("{method}: slope {slope:.3}");
        assert!(
            (slope + method.order() as f64).abs() < 0.35,
            "{method}: slope {slope:.3}, expected -{}",
            method.order()
        );
    }
}

/// A non-autonomous field with a known solution: `dy/dt = w cos(w t) y`, `y(t) = y0 e^{sin(w t)}`.
/// Its rate changes sign within a step, so a method whose stage times `c_i` are wrong loses its
/// order (an autonomous field cannot tell). Solved in f64, so errors stay far above rounding.
mod non_autonomous {
    use super::*;

    const W: f64 = 3.0;
    const Y0: [f64; 3] = [1.0, -0.4, 2.5];

    fn field(t: f64, y: &Tensor<2>) -> Tensor<2> {
        y.clone().mul_scalar(W * (W * t).cos())
    }

    fn initial() -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(Y0.to_vec(), [3, 1]),
            (&Device::flex(), DType::F64),
        )
    }

    fn exact(t: f64) -> Vec<f64> {
        Y0.iter().map(|y| y * (W * t).sin().exp()).collect()
    }

    fn error(config: &SolverConfig, t1: f64) -> f64 {
        max_err(
            solve(&field, initial(), 0.0, t1, config).unwrap().y,
            &exact(t1),
        )
    }

    /// Least-squares slope of log(error) against log(step size) over `steps`.
    fn order(method: Method, steps: &[usize]) -> f64 {
        let t1 = 2.0;
        let points: Vec<(f64, f64)> = steps
            .iter()
            .map(|&n| {
                let err = error(&SolverConfig::fixed(method, n), t1);
                ((t1 / n as f64).ln(), err.ln())
            })
            .collect();
        slope(&points)
    }

    #[test]
    fn every_method_shows_its_order() {
        for (method, steps) in [
            (Method::Euler, &[400usize, 800, 1600, 3200][..]),
            (Method::Midpoint, &[100, 200, 400, 800][..]),
            (Method::Heun, &[100, 200, 400, 800][..]),
            (Method::Rk4, &[80, 160, 320, 640][..]),
            (Method::Dopri5, &[40, 80, 160, 320][..]),
        ] {
            let got = order(method, steps);
            let want = method.order() as f64;
            eprintln!("{method} (non-autonomous): observed order {got:.3}, expected {want}");
            assert!(
                (got - want).abs() < 0.25,
                "{method}: order {got:.3}, expected {want}"
            );
        }
    }

    /// The global error of an error-controlled solve follows the tolerance: within a small
    /// multiple of it, and falling with it at a slope near 1 on a log-log scale.
    #[test]
    fn adaptive_error_is_proportional_to_the_tolerance() {
        let tols = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9];
        let points: Vec<(f64, f64)> = tols
            .iter()
            .map(|&tol| {
                let err = error(&SolverConfig::dopri5(tol, tol), 2.0);
                eprintln!("dopri5 tol {tol:e}: error {err:.3e}");
                assert!(err < 20.0 * tol, "tol {tol:e}: error {err:e}");
                (tol.ln(), err.ln())
            })
            .collect();
        let got = slope(&points);
        eprintln!("dopri5: log-log slope of error against tolerance {got:.3}");
        assert!((0.7..1.15).contains(&got), "slope {got:.3}");
    }

    /// Saved times change neither the solution nor its cost: states between steps are
    /// interpolated (dopri5's dense output, cubic Hermite for the others), to the method's
    /// accuracy.
    #[test]
    fn saved_times_do_not_change_the_solve() {
        let times: Vec<f64> = (0..=40).map(|i| i as f64 / 20.0).collect();
        for (config, tol) in [
            (SolverConfig::dopri5(1e-8, 1e-8), 2e-6),
            (SolverConfig::fixed(Method::Dopri5, 40), 1e-5),
            (SolverConfig::fixed(Method::Rk4, 64), 2e-4),
            (SolverConfig::fixed(Method::Midpoint, 300), 1e-3),
            (SolverConfig::fixed(Method::Heun, 300), 1e-3),
            (SolverConfig::fixed(Method::Euler, 3000), 1e-2),
        ] {
            let plain = solve(&field, initial(), 0.0, 2.0, &config).unwrap();
            let saving = config.clone().saving(SaveAt::Times(times.clone()));
            let saved = solve(&field, initial(), 0.0, 2.0, &saving).unwrap();
            assert_eq!(saved.stats, plain.stats, "{config:?}");
            let (a, b) = (values(&plain.y), values(&saved.y));
            assert_eq!(a, b, "{config:?}: the final state moved");
            assert_eq!(saved.ts, times);
            assert_eq!(values(saved.ys.last().unwrap()), a, "{config:?}");
            for (t, y) in saved.ts.iter().zip(&saved.ys) {
                let err = max_err(y.clone(), &exact(*t));
                assert!(err < tol, "{config:?} at t = {t}: error {err:e}");
            }
        }
    }

    fn values(y: &Tensor<2>) -> Vec<f64> {
        y.clone().into_data().try_to_vec_as::<f64>().unwrap()
    }
}

/// Least-squares slope of `y` against `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let k = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / k, b + y / k));
    let cov: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    cov / var
}
