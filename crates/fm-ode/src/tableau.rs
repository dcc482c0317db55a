//! Butcher tableaus of the explicit Runge-Kutta methods.

/// An explicit Runge-Kutta method: stage `i` evaluates
/// `k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j)` and the step is `y + h sum_i b_i k_i`.
///
/// The built-in methods are [`Method`](crate::Method)'s variants; a method of your own is a
/// `static` tableau passed as [`Method::Custom`](crate::Method::Custom):
///
/// ```
/// use fm_ode::{Method, SolverConfig, Tableau, solve};
///
/// /// Ralston's second-order method.
/// static RALSTON: Tableau = Tableau {
///     name: "ralston",
///     order: 2,
///     c: &[0.0, 2.0 / 3.0],
///     a: &[&[], &[2.0 / 3.0]],
///     b: &[0.25, 0.75],
///     b_embedded: None,
///     fsal: false,
///     dense_mid: None,
/// };
///
/// // dy/dt = y on plain f64 states: y(1) = e.
/// let field = |_t: f64, y: &f64| *y;
/// let sol = solve(&field, 1.0, 0.0, 1.0, &SolverConfig::fixed(Method::Custom(&RALSTON), 100))
///     .unwrap();
/// assert!((sol.y - std::f64::consts::E).abs() < 1e-4);
/// assert_eq!(sol.stats.nfe, 200);
/// ```
#[derive(Debug, PartialEq)]
pub struct Tableau {
    /// The method's name, as [`Method`](crate::Method) displays it.
    pub name: &'static str,
    /// The order of convergence of the solution `b` (the step-size controller's exponent is
    /// `1 / order`).
    pub order: u32,
    /// The stage times `c_i`, `c_1 = 0`.
    pub c: &'static [f64],
    /// The rows `a_i` of the strictly lower-triangular stage matrix; row `i` has `i` entries.
    pub a: &'static [&'static [f64]],
    /// The weights of the solution.
    pub b: &'static [f64],
    /// Weights of the embedded lower-order solution, for the error estimate.
    pub b_embedded: Option<&'static [f64]>,
    /// Whether the last stage is evaluated at the step's result (first same as last), so it can
    /// serve as the first stage of the next step.
    pub fsal: bool,
    /// Weights `c_i^mid` of a fourth-order solution at the step's midpoint,
    /// `y0 + h sum_i c_i^mid k_i`, for the method's own dense output (a quartic through the step;
    /// without it, saved times inside a step use a cubic Hermite).
    pub dense_mid: Option<&'static [f64]>,
}

/// A tableau's entries are finite by [`Tableau::check`], so equality is an equivalence.
impl Eq for Tableau {}

impl std::hash::Hash for Tableau {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.order.hash(state);
    }
}

impl Tableau {
    /// Whether the tableau describes an explicit method: as many rows of `a`, weights `b` (and
    /// `b_embedded`, `dense_mid`) as stage times `c`, row `i` of `a` with `i` entries, `c_1 = 0`,
    /// all entries finite, an order of at least 1, and first-same-as-last only where the last
    /// stage is the solution (`a_s = b`, `c_s = 1`).
    pub fn check(&self) -> Result<(), String> {
        let s = self.c.len();
        let rows_ok = self.a.len() == s && self.a.iter().enumerate().all(|(i, r)| r.len() == i);
        let weights = [Some(self.b), self.b_embedded, self.dense_mid];
        let lengths_ok = weights.iter().flatten().all(|w| w.len() == s);
        let all = self.c.iter().chain(self.a.iter().copied().flatten());
        let finite = all
            .chain(weights.iter().flatten().copied().flatten())
            .all(|v| v.is_finite());
        let fsal_ok = !self.fsal
            || (s > 1
                && self.c[s - 1] == 1.0
                && self.a[s - 1] == &self.b[..s - 1]
                && self.b[s - 1] == 0.0);
        let problem = if s == 0 || self.c[0] != 0.0 {
            "it needs at least one stage, with c_1 = 0"
        } else if !rows_ok {
            "row i of a must have i entries, one row per stage"
        } else if !lengths_ok {
            "b, b_embedded and dense_mid need one weight per stage"
        } else if !finite {
            "every entry must be finite"
        } else if self.order == 0 {
            "the order must be at least 1"
        } else if !fsal_ok {
            "first-same-as-last needs a last stage at c = 1 whose row of a is b (and b_s = 0)"
        } else {
            return Ok(());
        };
        Err(format!("tableau '{}': {problem}", self.name))
    }
}

pub(crate) static EULER: Tableau = Tableau {
    name: "euler",
    order: 1,
    c: &[0.0],
    a: &[&[]],
    b: &[1.0],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

pub(crate) static MIDPOINT: Tableau = Tableau {
    name: "midpoint",
    order: 2,
    c: &[0.0, 0.5],
    a: &[&[], &[0.5]],
    b: &[0.0, 1.0],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

pub(crate) static HEUN: Tableau = Tableau {
    name: "heun",
    order: 2,
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[0.5, 0.5],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

pub(crate) static RK4: Tableau = Tableau {
    name: "rk4",
    order: 4,
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

/// Dormand & Prince (1980), RK5(4)7FM: fifth-order solution, fourth-order embedded estimate.
///
/// The embedded weights are Shampine's (1986), as torchdiffeq's `dopri5` (and so Meta's
/// `flow_matching` and the paper's NFE figures) uses them, not the original pair's
/// `(5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40)`: both are fourth-order,
/// but the original's error estimate is larger: on `y' = cos(t) y` the same tolerances took
/// 44, 56 and 116 evaluations at 1e-5, 1e-6 and 1e-8 where torchdiffeq takes 38, 50 and 110
/// (`tests/solvers.rs` checks today's counts against torchdiffeq's), and
/// the image race measured 1.5x torchdiffeq's evaluations on the U-Net with the original
/// weights.
pub(crate) static DOPRI5: Tableau = Tableau {
    name: "dopri5",
    order: 5,
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ],
    b: &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
        0.0,
    ],
    b_embedded: Some(&[
        1951.0 / 21600.0,
        0.0,
        22642.0 / 50085.0,
        451.0 / 720.0,
        -12231.0 / 42400.0,
        649.0 / 6300.0,
        1.0 / 60.0,
    ]),
    fsal: true,
    // Shampine (1986), as torchdiffeq's DPS_C_MID.
    dense_mid: Some(&[
        6025192743.0 / 30085553152.0 / 2.0,
        0.0,
        51252292925.0 / 65400821598.0 / 2.0,
        -2691868925.0 / 45128329728.0 / 2.0,
        187940372067.0 / 1594534317056.0 / 2.0,
        -1776094331.0 / 19743644256.0 / 2.0,
        11237099.0 / 235043384.0 / 2.0,
    ]),
};
