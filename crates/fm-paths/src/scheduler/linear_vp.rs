use super::{Coefficients, Scheduler, TIME_EPSILON};
use crate::Real;

/// Linear variance-preserving schedule: `alpha_t = t`, `sigma_t = sqrt(1 - t^2)`;
/// `alpha_t' = 1`, `sigma_t' = -t / sqrt(1 - t^2)` (unbounded at t = 1).
///
/// ```
/// use fm_paths::{Scheduler, scheduler::LinearVp};
///
/// let c = LinearVp.coefficients(0.6_f64);
/// assert!((c.alpha - 0.6).abs() < 1e-15 && (c.sigma - 0.8).abs() < 1e-15);
/// assert!((c.d_sigma + 0.75).abs() < 1e-15); // -t / sqrt(1 - t^2)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinearVp;

impl Scheduler for LinearVp {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        let sigma = (t.clone() * t.clone()).one_minus().sqrt();
        Coefficients {
            d_alpha: t.constant_like(1.0),
            d_sigma: -(t.clone() / sigma.clone()),
            alpha: t,
            sigma,
        }
    }

    /// `sigma_t' -> -inf` at t = 1.
    fn training_range(&self) -> (f64, f64) {
        (0.0, 1.0 - TIME_EPSILON)
    }
}
