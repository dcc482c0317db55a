//! ODE solvers over batched burn tensors, divergence estimators and the log-likelihood solve.
//!
//! One entry point, [`solve`], takes a [`VectorField`], an initial state, a time span (which may
//! run backwards) and a [`SolverConfig`] whose parts are orthogonal: the [`Method`] (Euler,
//! midpoint, Heun, RK4, Dormand-Prince 5(4)), the [`StepControl`] (fixed steps, a time grid, or
//! [`Adaptive`] error control) and the [`SaveAt`] times. The [`Solution`] carries the final state,
//! the saved states and honest [`Stats`]; a solve that cannot finish returns a [`SolveError`].
//!
//! [`divergence`] computes `div v` exactly or with Hutchinson's estimator, and [`log_likelihood`]
//! integrates the instantaneous change of variables (Chen et al. 2018) from data back to noise.

mod control;
pub mod divergence;
mod field;
mod likelihood;
mod method;
mod save;
mod solve;
mod state;
mod tableau;

pub use control::{Adaptive, StepControl};
pub use divergence::{Divergence, Probes};
pub use field::VectorField;
pub use likelihood::{LogLikelihood, gaussian_log_prob, log_likelihood};
pub use method::Method;
pub use save::SaveAt;
pub use solve::{Solution, SolveError, SolverConfig, Stats, solve};
pub use state::OdeState;
