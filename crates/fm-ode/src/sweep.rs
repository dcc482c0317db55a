//! Error against NFE of fixed-step solvers: the paper's Figure 7.
//!
//! Every solver integrates the same initial states; its error is the root mean square, over
//! samples and coordinates, of its final state minus a reference solution's:
//! `err = sqrt(mean_{i,d} (y_{i,d} - y^ref_{i,d})^2)`. The reference is a fine solve (the paper
//! uses many RK4 steps), so the curves show each method's error and slope (its order) until they
//! reach the reference's own accuracy.

use crate::{Method, SolveError, SolverConfig, VectorField, solve};
use burn::tensor::Tensor;

/// One point of an error-versus-NFE curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The fixed-step method.
    pub method: Method,
    /// Its steps.
    pub steps: usize,
    /// Evaluations it made (`steps * stages`; `1 + 6 steps` for dopri5).
    pub nfe: usize,
    /// Root mean square difference from the reference solution.
    pub rms_error: f64,
}

/// The solves of [`error_vs_nfe`]: which methods, at which evaluation budgets, against what.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Methods to measure, each with fixed steps (dopri5 included: the method and the step
    /// control are separate choices).
    pub methods: Vec<Method>,
    /// Evaluation budgets; each becomes `max(1, round(nfe / e))` steps of a method with `e`
    /// [evaluations per step](Method::evaluations_per_step), and a
    /// method's repeated step counts are measured once.
    pub nfe: Vec<usize>,
    /// The reference solver.
    pub reference: SolverConfig,
}

impl Sweep {
    /// The paper's Figure 7: Euler, midpoint and RK4 at NFE 4 to 100 against RK4 with 250 steps
    /// (1000 NFE).
    pub fn figure7() -> Self {
        Self {
            methods: vec![Method::Euler, Method::Midpoint, Method::Rk4],
            nfe: vec![4, 6, 8, 10, 14, 20, 28, 40, 56, 80, 100],
            reference: SolverConfig::fixed(Method::Rk4, 250),
        }
    }

    /// The steps of `method` for each budget, without repeats.
    pub fn steps(&self, method: Method) -> Vec<usize> {
        let mut steps: Vec<usize> = self
            .nfe
            .iter()
            .map(|&n| ((n as f64 / method.evaluations_per_step() as f64).round() as usize).max(1))
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }
}

/// Solves `dy/dt = field(t, y)` from `y0` over `[t0, t1]` with the reference and with every
/// method and budget of `sweep`; returns one [`SweepPoint`] per solve, method by method, and the
/// reference's NFE.
pub fn error_vs_nfe<const D: usize, F: VectorField<Tensor<D>> + ?Sized>(
    field: &F,
    y0: Tensor<D>,
    t0: f64,
    t1: f64,
    sweep: &Sweep,
) -> Result<(Vec<SweepPoint>, usize), SolveError> {
    let reference = solve(field, y0.clone(), t0, t1, &sweep.reference)?;
    let mut points = Vec::new();
    for &method in &sweep.methods {
        for steps in sweep.steps(method) {
            let sol = solve(
                field,
                y0.clone(),
                t0,
                t1,
                &SolverConfig::fixed(method, steps),
            )?;
            let diff = sol.y - reference.y.clone();
            let rms_error = (diff.clone() * diff).mean().into_scalar::<f64>().sqrt();
            points.push(SweepPoint {
                method,
                steps,
                nfe: sol.stats.nfe,
                rms_error,
            });
        }
    }
    Ok((points, reference.stats.nfe))
}
