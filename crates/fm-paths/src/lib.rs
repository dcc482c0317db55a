//! Gaussian probability paths for flow matching (Lipman et al., ICLR 2023).
//!
//! Conventions follow the paper: the source `p0 = N(0, I)` sits at t = 0, the data at t = 1, and
//! a conditional path is `p_t(x | x1) = N(alpha_t x1, sigma_t^2 I)` with flow
//! `psi_t(x0) = alpha_t x1 + sigma_t x0`.
//!
//! - [`scheduler`]: the schedules `(alpha_t, sigma_t)`: OT with `sigma_min`, VP and VE diffusion,
//!   polynomial, cosine, linear-VP.
//! - [`AffinePath`]: sampling `x_t` with the CFM target, the conditional velocity of Theorem 3,
//!   and conversions between velocity, x1, epsilon and score ([`Parametrization`]).
//! - [`Coupling`]: how a minibatch's noise and data are paired: independent, exact minibatch OT,
//!   or Sinkhorn.
//! - [`ScheduleTransform`]: a model trained on one scheduler sampled along another.
//! - [`GaussianData`]: the exact marginal velocity and density for Gaussian data, the closed form
//!   everything else is tested against.
//!
//! Pure math over burn tensors and host arrays: no modules, no I/O, no backend chosen.

mod broadcast;
pub mod coupling;
mod gaussian;
mod parametrization;
mod parse;
mod path;
mod real;
mod schedule_transform;
pub mod scheduler;

pub use broadcast::per_sample;
pub use coupling::Coupling;
pub use gaussian::GaussianData;
pub use parametrization::Parametrization;
pub use parse::ParseError;
pub use path::{AffinePath, PathSample};
pub use real::Real;
pub use schedule_transform::{Retiming, ScheduleTransform};
pub use scheduler::{AnyScheduler, Coefficients, Scheduler, TIME_EPSILON};

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
