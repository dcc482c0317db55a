//! ODE solvers over batched burn tensors, divergence estimators and the log-likelihood solve.
//!
//! One entry point, [`solve`], takes a [`VectorField`], an initial state, a time span (which may
//! run backwards) and a [`SolverConfig`] whose parts are orthogonal: the [`Method`] (Euler,
//! midpoint, Heun, RK4, Dormand-Prince 5(4), or any explicit [`Tableau`] of your own), the [`StepControl`] (fixed steps, a time grid, or
//! [`Adaptive`] error control) and the [`SaveAt`] times. The [`Solution`] carries the final state,
//! the saved states and honest [`Stats`]; a solve that cannot finish returns a [`SolveFailure`]:
//! the [`SolveError`] and the partial solution up to where it stopped.
//!
//! [`divergence`] computes `div v` exactly or with Hutchinson's estimator, and [`log_likelihood`]
//! integrates the instantaneous change of variables (Chen et al. 2018) from data back to noise.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use fm_ode::{Divergence, Probes, SolverConfig, gaussian_log_prob, log_likelihood, solve};
//! use fm_paths::{AffinePath, GaussianData, scheduler::CondOt};
//!
//! let dev = Device::flex();
//! let path = AffinePath::new(CondOt::new(1e-4));
//! let data = GaussianData::new(vec![1.0, -2.0], 0.5); // exact marginal field of N(m, s^2 I)
//! let field = |t: f64, x: &Tensor<2>| data.marginal_velocity(&path, x.clone(), t);
//!
//! // Sampling: noise at t = 0 to data at t = 1.
//! let x0 = Tensor::<2>::random([1000, 2], Distribution::Normal(0.0, 1.0), &dev);
//! let samples = solve(&field, x0, 0.0, 1.0, &SolverConfig::dopri5(1e-5, 1e-5)).unwrap();
//! assert!(samples.stats.nfe > 0);
//!
//! // Likelihood: data at t = 1 back to noise, with the exact divergence.
//! let x1 = samples.y.narrow(0, 0, 10);
//! let probes = Probes::new(Divergence::Exact, [10, 2], &dev);
//! let ll = log_likelihood(
//!     |x, t| data.marginal_velocity(&path, x, t),
//!     |x0| gaussian_log_prob(x0, 1.0),
//!     x1,
//!     &probes,
//!     &SolverConfig::dopri5(1e-5, 1e-5),
//! )
//! .unwrap();
//! assert_eq!(ll.log_prob.dims(), [10]);
//! ```

mod control;
mod dense;
pub mod divergence;
mod field;
mod likelihood;
mod method;
mod save;
mod solve;
mod state;
mod sweep;
mod tableau;

pub use control::{Adaptive, ErrorNorm, StepControl};
pub use divergence::{Divergence, Probes};
pub use field::VectorField;
pub use likelihood::{LogLikelihood, gaussian_log_prob, log_likelihood};
pub use method::Method;
pub use save::SaveAt;
pub use solve::{Solution, SolveError, SolveFailure, SolverConfig, Stats, solve};
pub use state::OdeState;
pub use sweep::{Sweep, SweepPoint, error_vs_nfe};
pub use tableau::Tableau;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
