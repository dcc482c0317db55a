//! The one solve entry point: [`solve`] with a [`SolverConfig`] of orthogonal parts.

use crate::control::{Adaptive, ErrorNorm, StepControl};
use crate::dense::{Dense, StepEnds};
use crate::field::VectorField;
use crate::method::Method;
use crate::save::SaveAt;
use crate::state::OdeState;
use crate::tableau::Tableau;

/// How to solve: the method, the step control and what to save, each swappable on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SolverConfig {
    /// The Runge-Kutta method.
    pub method: Method,
    /// How steps are chosen.
    pub control: StepControl,
    /// Which intermediate states to return.
    pub save: SaveAt,
}

impl SolverConfig {
    /// `method` with `steps` equal steps.
    pub fn fixed(method: Method, steps: usize) -> Self {
        Self {
            method,
            control: StepControl::FixedSteps(steps),
            save: SaveAt::Final,
        }
    }

    /// Adaptive Dormand-Prince 5(4) with tolerances `rtol`, `atol`.
    pub fn dopri5(rtol: f64, atol: f64) -> Self {
        Self {
            method: Method::Dopri5,
            control: StepControl::Adaptive(Adaptive::new(rtol, atol)),
            save: SaveAt::Final,
        }
    }

    /// The same solver with its adaptive steps' error measured by `norm` (fixed steps have
    /// none to measure).
    pub fn with_error_norm(mut self, norm: ErrorNorm) -> Self {
        if let StepControl::Adaptive(adaptive) = &mut self.control {
            adaptive.norm = norm;
        }
        self
    }

    /// The same solver, saving `save`.
    pub fn saving(mut self, save: SaveAt) -> Self {
        self.save = save;
        self
    }
}

/// What a solve cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of function (vector field) evaluations.
    pub nfe: usize,
    /// Accepted steps (every step of a fixed-step solve).
    pub accepted: usize,
    /// Rejected steps (adaptive only).
    pub rejected: usize,
}

/// The result of a successful solve.
#[derive(Debug, Clone)]
pub struct Solution<S> {
    /// The state at `t1`.
    pub y: S,
    /// The times of the saved states.
    pub ts: Vec<f64>,
    /// The saved states (see [`SaveAt`]).
    pub ys: Vec<S>,
    /// Evaluations and steps.
    pub stats: Stats,
}

/// Why a solve stopped before `t1`. Each variant carries the statistics up to that point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// The adaptive solver used up its step budget.
    #[error("reached the limit of {max_steps} steps at t = {t} ({stats:?})")]
    MaxStepsReached {
        /// The limit.
        max_steps: usize,
        /// How far the solve got.
        t: f64,
        /// The cost so far.
        stats: Stats,
    },
    /// The adaptive step size fell below what floating point can resolve at `t` (a stiff or
    /// singular field, or non-finite values).
    #[error("step size {h:e} too small at t = {t} ({stats:?})")]
    StepSizeTooSmall {
        /// Where the solve stalled.
        t: f64,
        /// The step size it needed.
        h: f64,
        /// The cost so far.
        stats: Stats,
    },
    /// A fixed-step solve produced NaN or infinite values.
    #[error("the state became non-finite by t = {t} ({stats:?})")]
    NonFinite {
        /// The end of the solve.
        t: f64,
        /// The cost.
        stats: Stats,
    },
    /// Adaptive stepping asked of a method without an error estimate.
    #[error("{0} has no error estimate: use fixed steps or dopri5")]
    NoErrorEstimate(Method),
    /// The times or settings given cannot describe a solve.
    #[error("invalid solve settings: {0}")]
    Invalid(String),
}

/// A solve that stopped before `t1`: why, how far it got, and what it had computed there (as
/// diffrax returns a solution with a failed status). `?` turns it into its [`SolveError`].
#[derive(Debug, Clone)]
pub struct SolveFailure<S> {
    /// Why the solve stopped.
    pub error: SolveError,
    /// The time the solve reached: the end of its last accepted step (`t0` when it never
    /// started; `t1` when a fixed-step solve ended non-finite).
    pub t: f64,
    /// The state at `t` (in `y`), the states saved before it, and the cost so far.
    pub partial: Solution<S>,
}

impl<S> std::fmt::Display for SolveFailure<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<S: std::fmt::Debug> std::error::Error for SolveFailure<S> {}

impl<S> From<Box<SolveFailure<S>>> for SolveError {
    fn from(failure: Box<SolveFailure<S>>) -> Self {
        failure.error
    }
}

/// Where an inner loop stopped early.
struct Stopped<S> {
    error: SolveError,
    t: f64,
    y: S,
    stats: Stats,
}

/// Counts evaluations of the field.
struct Counted<'a, F: ?Sized> {
    field: &'a F,
    nfe: usize,
}

impl<F: ?Sized> Counted<'_, F> {
    fn eval<S>(&mut self, t: f64, y: &S) -> S
    where
        F: VectorField<S>,
    {
        self.nfe += 1;
        self.field.eval(t, y)
    }
}

/// Saves states as the solve passes the requested times.
struct Saver<S> {
    every_step: bool,
    /// The direction of integration, +1 or -1.
    dir: f64,
    times: Vec<f64>,
    next: usize,
    ts: Vec<f64>,
    ys: Vec<S>,
}

impl<S: OdeState> Saver<S> {
    fn new(save: &SaveAt, t0: f64, t1: f64) -> Result<Self, SolveError> {
        let dir = (t1 - t0).signum();
        let times = match save {
            SaveAt::Times(ts) => {
                if let Some(bad) = ts
                    .iter()
                    .find(|&&t| !(t.is_finite() && (t - t0) * dir >= 0.0 && (t1 - t) * dir >= 0.0))
                {
                    return Err(SolveError::Invalid(format!(
                        "save time {bad} is outside [{t0}, {t1}]"
                    )));
                }
                let mut ts = ts.clone();
                ts.sort_by(|a, b| ((a - b) * dir).total_cmp(&0.0));
                ts.dedup();
                ts
            }
            SaveAt::Final | SaveAt::Steps => Vec::new(),
        };
        Ok(Self {
            every_step: matches!(save, SaveAt::Steps),
            dir,
            times,
            next: 0,
            ts: Vec::new(),
            ys: Vec::new(),
        })
    }

    /// Whether a requested time lies strictly inside the step that ends at `t1`.
    fn wants_before(&self, t1: f64) -> bool {
        self.times
            .get(self.next)
            .is_some_and(|&s| !same_time(s, t1) && (t1 - s) * self.dir > 0.0)
    }

    /// Records the states of the requested times strictly before `t1`, from the step's
    /// interpolant.
    fn interpolate(&mut self, t1: f64, dense: &Dense<S>) {
        while self.wants_before(t1) {
            let t = self.times[self.next];
            self.ts.push(t);
            self.ys.push(dense.at(t));
            self.next += 1;
        }
    }

    /// Records `y` at the step end `t` if it is a requested time (saved as requested) or every
    /// step is saved.
    fn visit(&mut self, t: f64, y: &S) {
        let mut hit = self.every_step.then_some(t);
        while let Some(&s) = self.times.get(self.next).filter(|&&s| same_time(s, t)) {
            self.next += 1;
            hit = Some(s);
        }
        if let Some(t) = hit {
            self.ts.push(t);
            self.ys.push(y.clone());
        }
    }

    /// Saves what a finished step from `e.t0` to `e.t1` holds: interpolated states inside it
    /// (with the method's own dense output when its tableau has one and the stages `ks` are
    /// given) and its end.
    fn step(&mut self, tab: &Tableau, e: &StepEnds<'_, S>, ks: Option<&[S]>) {
        let t1 = e.t1;
        if self.wants_before(t1) {
            let dense = match (tab.dense_mid, ks) {
                (Some(mid), Some(ks)) => Dense::quartic(e, ks, mid),
                _ => Dense::hermite(e),
            };
            self.interpolate(t1, &dense);
        }
        self.visit(t1, e.y1);
    }
}

/// One Runge-Kutta step from `(t, y)` with first stage `k1 = f(t, y)`.
struct Step<S> {
    y1: S,
    /// `h sum_i (b_i - b*_i) k_i`, when the method has an embedded solution.
    error: Option<S>,
    /// The stages `k_i`; with first-same-as-last the last is `f(t + h, y1)`.
    ks: Vec<S>,
}

fn rk_step<S: OdeState, F: VectorField<S> + ?Sized>(
    tab: &Tableau,
    f: &mut Counted<'_, F>,
    t: f64,
    y: &S,
    k1: S,
    h: f64,
) -> Step<S> {
    let mut ks = vec![k1];
    let mut last_stage = None;
    for (i, (&c, a)) in tab.c.iter().zip(tab.a).enumerate().skip(1) {
        let terms: Vec<(f64, &S)> = std::iter::once((1.0, y))
            .chain(a.iter().zip(&ks).map(|(&a, k)| (a * h, k)))
            .collect();
        let yi = S::linear_combination(&terms);
        ks.push(f.eval(t + c * h, &yi));
        if tab.fsal && i == tab.c.len() - 1 {
            last_stage = Some(yi);
        }
    }
    // With first-same-as-last the final stage was evaluated at the solution itself.
    let y1 = last_stage.unwrap_or_else(|| {
        let terms: Vec<(f64, &S)> = std::iter::once((1.0, y))
            .chain(tab.b.iter().zip(&ks).map(|(&b, k)| (b * h, k)))
            .collect();
        S::linear_combination(&terms)
    });
    let error = tab.b_embedded.map(|b_hat| {
        let terms: Vec<(f64, &S)> = tab
            .b
            .iter()
            .zip(b_hat)
            .zip(&ks)
            .map(|((b, b_hat), k)| ((b - b_hat) * h, k))
            .collect();
        S::linear_combination(&terms)
    });
    Step { y1, error, ks }
}

/// Integrates `dy/dt = field(t, y)` from `(t0, y0)` to `t1` (which may be below `t0`).
///
/// ```
/// use fm_ode::{SaveAt, SolverConfig, solve};
///
/// // dy/dt = cos(t) y, y(0) = 1: y(t) = exp(sin t). States may be f64, tensors, or pairs.
/// let field = |t: f64, y: &f64| t.cos() * y;
/// let config = SolverConfig::dopri5(1e-8, 1e-8).saving(SaveAt::Times(vec![0.5, 1.0]));
/// let sol = solve(&field, 1.0, 0.0, 2.0, &config).unwrap();
/// assert!((sol.y - 2f64.sin().exp()).abs() < 1e-6);
/// assert!((sol.ys[0] - 0.5f64.sin().exp()).abs() < 1e-6); // interpolated, same NFE
/// println!("NFE {}, steps {} (+{} rejected)", sol.stats.nfe, sol.stats.accepted, sol.stats.rejected);
/// ```
///
/// Returns the final state, the states `config.save` asks for, and the statistics. A solve that
/// cannot finish returns a (boxed) [`SolveFailure`] instead of panicking: the [`SolveError`],
/// and the partial solution up to where it stopped.
pub fn solve<S: OdeState, F: VectorField<S> + ?Sized>(
    field: &F,
    y0: S,
    t0: f64,
    t1: f64,
    config: &SolverConfig,
) -> Result<Solution<S>, Box<SolveFailure<S>>> {
    let unstarted = |error, y| SolveFailure {
        error,
        t: t0,
        partial: Solution {
            y,
            ts: Vec::new(),
            ys: Vec::new(),
            stats: Stats::default(),
        },
    };
    let mut saver =
        match check_settings(t0, t1, config).and_then(|()| Saver::new(&config.save, t0, t1)) {
            Ok(saver) => saver,
            Err(error) => return Err(Box::new(unstarted(error, y0))),
        };
    let mut f = Counted { field, nfe: 0 };
    saver.visit(t0, &y0);
    let outcome = match &config.control {
        StepControl::Adaptive(ctrl) => {
            solve_adaptive(&mut f, y0, t0, t1, config.method, ctrl, &mut saver)
        }
        control => match fixed_grid(control, t0, t1) {
            Ok(grid) => solve_fixed(&mut f, y0, &grid, config.method, &mut saver),
            Err(error) => return Err(Box::new(unstarted(error, y0))),
        },
    };
    let solution = |y, stats, saver: Saver<S>| Solution {
        y,
        ts: saver.ts,
        ys: saver.ys,
        stats,
    };
    match outcome {
        Ok((y, stats)) => Ok(solution(y, stats, saver)),
        Err(s) => Err(Box::new(SolveFailure {
            error: s.error,
            t: s.t,
            partial: solution(s.y, s.stats, saver),
        })),
    }
}

/// A finite, non-empty time span and a well-formed tableau.
fn check_settings(t0: f64, t1: f64, config: &SolverConfig) -> Result<(), SolveError> {
    if !(t0.is_finite() && t1.is_finite()) || t0 == t1 {
        return Err(SolveError::Invalid(format!(
            "the time span [{t0}, {t1}] must be finite and non-empty"
        )));
    }
    config.method.tableau().check().map_err(SolveError::Invalid)
}

/// The step boundaries of a fixed-step solve.
fn fixed_grid(control: &StepControl, t0: f64, t1: f64) -> Result<Vec<f64>, SolveError> {
    let span = t1 - t0;
    let dir = span.signum();
    let grid = match control {
        StepControl::FixedSteps(0) => {
            return Err(SolveError::Invalid(
                "the number of steps must be at least 1".into(),
            ));
        }
        StepControl::FixedSteps(n) => (0..=*n)
            .map(|i| {
                if i == *n {
                    t1
                } else {
                    t0 + span * i as f64 / *n as f64
                }
            })
            .collect(),
        StepControl::FixedSize(h) if !(h.is_finite() && *h > 0.0) => {
            return Err(SolveError::Invalid(format!(
                "step size {h} must be positive"
            )));
        }
        StepControl::FixedSize(h) => {
            let n = ((span.abs() / h) - 1e-9).ceil().max(1.0) as usize;
            (0..=n)
                .map(|i| if i == n { t1 } else { t0 + dir * h * i as f64 })
                .collect()
        }
        StepControl::Grid(ts) => {
            let monotone = ts.windows(2).all(|w| (w[1] - w[0]) * dir > 0.0);
            if ts.first() != Some(&t0) || ts.last() != Some(&t1) || !monotone {
                return Err(SolveError::Invalid(format!(
                    "a time grid must run strictly monotonically from {t0} to {t1}"
                )));
            }
            ts.clone()
        }
        StepControl::Adaptive(_) => unreachable!("adaptive control has no fixed grid"),
    };
    Ok(grid)
}

/// Whether two times are equal up to rounding (a grid point computed as `t0 + i h` and a save
/// time given as a literal).
fn same_time(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// A fixed step whose saves wait for `f(t1, y1)`, the next step's first stage, so that times
/// inside it are interpolated with a cubic Hermite (unless the method's own dense output, from
/// its stages `ks`, serves).
struct OpenStep<S> {
    t0: f64,
    t1: f64,
    y0: S,
    f0: S,
    /// The stages, kept only when a save time falls inside the step.
    ks: Option<Vec<S>>,
}

impl<S: OdeState> OpenStep<S> {
    /// Saves the step's states, given its end `y1` and, when known, `f1 = f(t1, y1)`.
    fn save(self, tab: &Tableau, y1: &S, f1: Option<&S>, saver: &mut Saver<S>) {
        let ends = StepEnds {
            t0: self.t0,
            t1: self.t1,
            y0: &self.y0,
            y1,
            f0: &self.f0,
            f1,
        };
        saver.step(tab, &ends, self.ks.as_deref());
    }
}

fn solve_fixed<S: OdeState, F: VectorField<S> + ?Sized>(
    f: &mut Counted<'_, F>,
    mut y: S,
    grid: &[f64],
    method: Method,
    saver: &mut Saver<S>,
) -> Result<(S, Stats), Stopped<S>> {
    let tab = method.tableau();
    let mut carried: Option<S> = None;
    let mut open: Option<OpenStep<S>> = None;
    for w in grid.windows(2) {
        let k1 = carried.take().unwrap_or_else(|| f.eval(w[0], &y));
        if let Some(prev) = open.take() {
            prev.save(tab, &y, Some(&k1), saver);
        }
        let step = rk_step(tab, f, w[0], &y, k1.clone(), w[1] - w[0]);
        if tab.fsal {
            carried = step.ks.last().cloned();
        }
        open = Some(OpenStep {
            t0: w[0],
            t1: w[1],
            y0: std::mem::replace(&mut y, step.y1),
            f0: k1,
            ks: saver.wants_before(w[1]).then_some(step.ks),
        });
    }
    if let Some(last) = open {
        last.save(tab, &y, carried.as_ref(), saver);
    }
    let stats = Stats {
        nfe: f.nfe,
        accepted: grid.len() - 1,
        rejected: 0,
    };
    if !y.is_finite() {
        let t = grid[grid.len() - 1];
        return Err(Stopped {
            error: SolveError::NonFinite { t, stats },
            t,
            y,
            stats,
        });
    }
    Ok((y, stats))
}

fn solve_adaptive<S: OdeState, F: VectorField<S> + ?Sized>(
    f: &mut Counted<'_, F>,
    mut y: S,
    t0: f64,
    t1: f64,
    method: Method,
    ctrl: &Adaptive,
    saver: &mut Saver<S>,
) -> Result<(S, Stats), Stopped<S>> {
    let refuse = |error, y| Stopped {
        error,
        t: t0,
        y,
        stats: Stats::default(),
    };
    if !method.has_error_estimate() {
        return Err(refuse(SolveError::NoErrorEstimate(method), y));
    }
    if !(ctrl.rtol >= 0.0 && ctrl.atol >= 0.0 && ctrl.rtol + ctrl.atol > 0.0) {
        let error = SolveError::Invalid(format!(
            "tolerances rtol = {}, atol = {} must be non-negative and not both zero",
            ctrl.rtol, ctrl.atol
        ));
        return Err(refuse(error, y));
    }
    let tab = method.tableau();
    let dir = (t1 - t0).signum();
    let exponent = 1.0 / method.order() as f64;
    let mut k1 = f.eval(t0, &y);
    let mut h = match ctrl.first_step {
        Some(h) => h.abs(),
        None => initial_step(f, t0, &y, &k1, dir, exponent, ctrl),
    }
    .min((t1 - t0).abs());
    let (mut t, mut accepted, mut rejected) = (t0, 0, 0);
    let stats = |nfe, accepted, rejected| Stats {
        nfe,
        accepted,
        rejected,
    };
    while t != t1 {
        let so_far = stats(f.nfe, accepted, rejected);
        if accepted + rejected >= ctrl.max_steps {
            return Err(Stopped {
                error: SolveError::MaxStepsReached {
                    max_steps: ctrl.max_steps,
                    t,
                    stats: so_far,
                },
                t,
                y,
                stats: so_far,
            });
        }
        let remaining = (t1 - t).abs();
        let lands = h >= remaining;
        let h_try = if lands { remaining } else { h };
        if (!lands && t + dir * h_try == t) || h_try.is_nan() || h_try <= 0.0 {
            return Err(Stopped {
                error: SolveError::StepSizeTooSmall {
                    t,
                    h: h_try,
                    stats: so_far,
                },
                t,
                y,
                stats: so_far,
            });
        }
        let step = rk_step(tab, f, t, &y, k1.clone(), dir * h_try);
        let error = step
            .error
            .expect("adaptive methods carry an error estimate");
        let norm = match ctrl.norm {
            ErrorNorm::Rms => error.scaled_rms(&y, &step.y1, ctrl.rtol, ctrl.atol),
            ErrorNorm::PerSample => error.scaled_sample_max(&y, &step.y1, ctrl.rtol, ctrl.atol),
        };
        if norm <= 1.0 {
            let t_next = if lands { t1 } else { t + dir * h_try };
            let f1 = match (tab.fsal, step.ks.last()) {
                (true, Some(k)) => k.clone(),
                _ => f.eval(t_next, &step.y1),
            };
            let ends = StepEnds {
                t0: t,
                t1: t_next,
                y0: &y,
                y1: &step.y1,
                f0: &k1,
                f1: Some(&f1),
            };
            saver.step(tab, &ends, Some(&step.ks));
            (t, y, k1) = (t_next, step.y1, f1);
            accepted += 1;
            h = h_try * step_factor(norm, exponent, ctrl).max(1.0);
        } else {
            rejected += 1;
            h = h_try * step_factor(norm, exponent, ctrl);
        }
    }
    Ok((y, stats(f.nfe, accepted, rejected)))
}

/// `clamp(safety norm^(-exponent), min_factor, max_factor)`, the optimal step ratio for an error
/// norm of `norm` (NaN shrinks as far as allowed).
fn step_factor(norm: f64, exponent: f64, ctrl: &Adaptive) -> f64 {
    if norm == 0.0 {
        ctrl.max_factor
    } else if norm.is_nan() {
        ctrl.min_factor
    } else {
        (ctrl.safety * norm.powf(-exponent)).clamp(ctrl.min_factor, ctrl.max_factor)
    }
}

/// The starting step size of Hairer, Norsett & Wanner (Solving ODEs I, II.4), as torchdiffeq:
/// `h0 = 0.01 d0 / d1` from the scaled norms of `y0` and `f0`, one trial Euler step to estimate
/// the second derivative `d2`, and `h1 = (0.01 / max(d1, d2))^exponent`; returns `min(100 h0, h1)`.
fn initial_step<S: OdeState, F: VectorField<S> + ?Sized>(
    f: &mut Counted<'_, F>,
    t0: f64,
    y0: &S,
    f0: &S,
    dir: f64,
    exponent: f64,
    ctrl: &Adaptive,
) -> f64 {
    let (rtol, atol) = (ctrl.rtol, ctrl.atol);
    let d0 = y0.scaled_rms(y0, y0, rtol, atol);
    let d1 = f0.scaled_rms(y0, y0, rtol, atol);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let y1 = S::linear_combination(&[(1.0, y0), (dir * h0, f0)]);
    let f1 = f.eval(t0 + dir * h0, &y1);
    let d2 = S::linear_combination(&[(1.0, &f1), (-1.0, f0)]).scaled_rms(y0, y0, rtol, atol) / h0;
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(exponent)
    };
    (100.0 * h0).min(h1)
}
