use super::{Coefficients, Scheduler};
use crate::Real;

/// The paper's optimal-transport conditional path (eq. 20-23):
/// `mu_t(x1) = t x1`, `sigma_t = 1 - (1 - sigma_min) t`, so
/// `psi_t(x0) = (1 - (1 - sigma_min) t) x0 + t x1` and the CFM target (eq. 23) is
/// `x1 - (1 - sigma_min) x0`. `sigma_min = 0` gives the plain linear interpolation.
///
/// ```
/// use fm_paths::{Scheduler, scheduler::CondOt};
///
/// let c = CondOt::new(0.01).coefficients(0.25_f64);
/// assert_eq!((c.alpha, c.d_alpha), (0.25, 1.0));
/// assert!((c.sigma - (1.0 - 0.99 * 0.25)).abs() < 1e-15 && c.d_sigma == -0.99);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CondOt {
    /// Standard deviation of the path at t = 1 around each data point.
    pub sigma_min: f64,
}

impl CondOt {
    /// The OT path with the given `sigma_min` (the paper uses small values such as 1e-4).
    pub fn new(sigma_min: f64) -> Self {
        Self { sigma_min }
    }
}

impl Scheduler for CondOt {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        let k = 1.0 - self.sigma_min;
        Coefficients {
            d_alpha: t.constant_like(1.0),
            d_sigma: t.constant_like(-k),
            sigma: t.clone().scale(-k).offset(1.0),
            alpha: t,
        }
    }
}
