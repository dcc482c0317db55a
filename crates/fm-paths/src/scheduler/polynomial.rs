use super::{Coefficients, Scheduler, TIME_EPSILON};
use crate::Real;

/// Polynomial schedule: `alpha_t = t^n`, `sigma_t = 1 - t^n`;
/// `alpha_t' = n t^(n-1)`, `sigma_t' = -n t^(n-1)`. `n = 1` is the OT path with `sigma_min = 0`.
///
/// ```
/// use fm_paths::{Scheduler, scheduler::Polynomial};
///
/// let c = Polynomial { exponent: 2.0 }.coefficients(0.5_f64);
/// assert_eq!((c.alpha, c.sigma, c.d_alpha, c.d_sigma), (0.25, 0.75, 1.0, -1.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polynomial {
    /// The exponent `n > 0`.
    pub exponent: f64,
}

impl Scheduler for Polynomial {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        let n = self.exponent;
        let alpha = t.clone().powf(n);
        let d_alpha = t.powf(n - 1.0).scale(n);
        Coefficients {
            sigma: alpha.clone().one_minus(),
            d_sigma: -d_alpha.clone(),
            alpha,
            d_alpha,
        }
    }

    /// For `n < 1`, `alpha_t' = n t^(n-1) -> inf` at t = 0.
    fn training_range(&self) -> (f64, f64) {
        (
            if self.exponent < 1.0 {
                TIME_EPSILON
            } else {
                0.0
            },
            1.0,
        )
    }
}
