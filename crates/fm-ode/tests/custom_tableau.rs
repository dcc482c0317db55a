//! A Runge-Kutta method defined outside the crate (Bogacki-Shampine 3(2), first same as last)
//! runs through `solve` like a built-in one: its order, adaptive steps with its embedded
//! estimate, its NFE accounting; a malformed tableau is refused before the first step.

use fm_ode::{Method, SolveError, SolverConfig, Tableau, solve};

/// Bogacki & Shampine (1989): third-order solution, second-order embedded estimate.
static BS3: Tableau = Tableau {
    name: "bs3",
    order: 3,
    c: &[0.0, 0.5, 0.75, 1.0],
    a: &[
        &[],
        &[0.5],
        &[0.0, 0.75],
        &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0],
    ],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    b_embedded: Some(&[7.0 / 24.0, 0.25, 1.0 / 3.0, 0.125]),
    fsal: true,
    dense_mid: None,
};

const BS3_METHOD: Method = Method::Custom(&BS3);

/// `dy/dt = cos(t) y`, `y(0) = 1`: `y(t) = exp(sin t)`, non-autonomous so that the stage times
/// `c` matter.
fn field(t: f64, y: &f64) -> f64 {
    t.cos() * y
}

fn exact(t: f64) -> f64 {
    t.sin().exp()
}

#[test]
fn bogacki_shampine_shows_third_order() {
    let errors: Vec<(f64, f64)> = [20usize, 40, 80, 160]
        .iter()
        .map(|&n| {
            let sol = solve(&field, 1.0, 0.0, 2.0, &SolverConfig::fixed(BS3_METHOD, n)).unwrap();
            // First same as last: one evaluation to start, then three per step.
            assert_eq!(sol.stats.nfe, 1 + 3 * n);
            ((2.0 / n as f64).ln(), (sol.y - exact(2.0)).abs().ln())
        })
        .collect();
    let n = errors.len() as f64;
    let (mx, my) = errors
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = errors.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    let order = sxy / sxx;
    eprintln!("bs3: observed order {order:.3}");
    assert!((order - 3.0).abs() < 0.2, "order {order:.3}");
    assert_eq!(BS3_METHOD.evaluations_per_step(), 3);
    assert_eq!(BS3_METHOD.to_string(), "bs3");
}

#[test]
fn bogacki_shampine_steps_adaptively_to_the_tolerance() {
    let mut last_nfe = 0;
    for tol in [1e-4, 1e-6, 1e-8] {
        let sol = solve(
            &field,
            1.0,
            0.0,
            2.0,
            &SolverConfig {
                method: BS3_METHOD,
                ..SolverConfig::dopri5(tol, tol)
            },
        )
        .unwrap();
        let err = (sol.y - exact(2.0)).abs();
        eprintln!("bs3 tol {tol:e}: error {err:.2e}, nfe {}", sol.stats.nfe);
        assert!(err < 20.0 * tol, "tol {tol:e}: error {err:e}");
        assert!(
            sol.stats.nfe > last_nfe,
            "tighter tolerances take more steps"
        );
        last_nfe = sol.stats.nfe;
    }
}

#[test]
fn a_malformed_tableau_is_refused_before_the_first_step() {
    static SHORT_ROW: Tableau = Tableau {
        name: "short-row",
        a: &[&[], &[]],
        ..BS3_LIKE
    };
    static NOT_FSAL: Tableau = Tableau {
        name: "not-fsal",
        c: &[0.0, 0.5],
        a: &[&[], &[0.5]],
        b: &[0.0, 1.0],
        b_embedded: None,
        fsal: true,
        ..BS3_LIKE
    };
    const BS3_LIKE: Tableau = Tableau {
        name: "",
        order: 2,
        c: &[0.0, 1.0],
        a: &[&[], &[1.0]],
        b: &[0.5, 0.5],
        b_embedded: None,
        fsal: false,
        dense_mid: None,
    };
    for tableau in [&SHORT_ROW, &NOT_FSAL] {
        assert!(tableau.check().is_err());
        let config = SolverConfig::fixed(Method::Custom(tableau), 4);
        let failure = solve(&field, 1.0, 0.0, 1.0, &config).unwrap_err();
        match failure.error {
            SolveError::Invalid(why) => assert!(why.contains(tableau.name), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(failure.partial.stats.nfe, 0);
    }
    assert_eq!(BS3.check(), Ok(()));
    for method in Method::ALL {
        assert_eq!(method.tableau().check(), Ok(()), "{method}");
    }
}
