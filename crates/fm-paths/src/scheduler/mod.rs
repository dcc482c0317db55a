//! Schedulers: the two functions `alpha_t`, `sigma_t` of an affine Gaussian path
//! `x_t = alpha_t x1 + sigma_t x0` (x0 ~ N(0, I) the source, x1 the data), and their time
//! derivatives. Time runs as in the paper: t = 0 is noise, t = 1 is data.
//!
//! Each scheduler writes its formula once, generically over [`Real`], so the same code serves
//! host `f64` and per-sample `Tensor<1>` time.

mod cond_ot;
mod cosine;
mod linear_vp;
mod name;
mod polynomial;
mod ve;
mod vp;

pub use cond_ot::CondOt;
pub use cosine::Cosine;
pub use linear_vp::LinearVp;
pub use name::{DEFAULT_SIGMA_MIN, SchedulerName};
pub use polynomial::Polynomial;
pub use ve::Ve;
pub use vp::Vp;

use crate::Real;

/// `alpha_t`, `sigma_t` and their derivatives in t, at one time (or a batch of times).
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficients<R> {
    /// `alpha_t`, the weight of the data point x1.
    pub alpha: R,
    /// `sigma_t`, the weight of the source noise x0.
    pub sigma: R,
    /// `d alpha_t / dt`.
    pub d_alpha: R,
    /// `d sigma_t / dt`.
    pub d_sigma: R,
}

/// A schedule `(alpha_t, sigma_t)` of an affine Gaussian probability path.
pub trait Scheduler: Clone + std::fmt::Debug + Send + Sync {
    /// `alpha_t, sigma_t, alpha_t', sigma_t'` at time `t` (element-wise for tensors).
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R>;

    /// The times `[t_min, t_max]` to train on: where the CFM target is finite and representable
    /// in f32. `[0, 1]` unless a derivative diverges at an end (then that end moves in by
    /// [`TIME_EPSILON`], as score SDE's `eps = 1e-5`).
    fn training_range(&self) -> (f64, f64) {
        (0.0, 1.0)
    }
}

/// How far training stays from an end of [0, 1] where a schedule's derivative diverges.
pub const TIME_EPSILON: f64 = 1e-5;

/// Any of the built-in schedulers, chosen at run time (by a CLI flag or a saved config).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyScheduler {
    /// Conditional optimal transport with `sigma_min` (paper eq. 20-23).
    CondOt(CondOt),
    /// Variance-preserving diffusion with linear beta (paper eq. 18-19).
    Vp(Vp),
    /// Variance-exploding diffusion (paper eq. 16-17).
    Ve(Ve),
    /// `alpha_t = t^n`, `sigma_t = 1 - t^n`.
    Polynomial(Polynomial),
    /// `alpha_t = sin(pi t / 2)`, `sigma_t = cos(pi t / 2)`.
    Cosine(Cosine),
    /// `alpha_t = t`, `sigma_t = sqrt(1 - t^2)`.
    LinearVp(LinearVp),
}

impl Scheduler for AnyScheduler {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        match self {
            Self::CondOt(s) => s.coefficients(t),
            Self::Vp(s) => s.coefficients(t),
            Self::Ve(s) => s.coefficients(t),
            Self::Polynomial(s) => s.coefficients(t),
            Self::Cosine(s) => s.coefficients(t),
            Self::LinearVp(s) => s.coefficients(t),
        }
    }

    fn training_range(&self) -> (f64, f64) {
        match self {
            Self::CondOt(s) => s.training_range(),
            Self::Vp(s) => s.training_range(),
            Self::Ve(s) => s.training_range(),
            Self::Polynomial(s) => s.training_range(),
            Self::Cosine(s) => s.training_range(),
            Self::LinearVp(s) => s.training_range(),
        }
    }
}
