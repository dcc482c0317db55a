use super::{Coefficients, Scheduler};
use crate::Real;

/// Variance-exploding diffusion path, reversed into flow time (paper eq. 16-17):
/// `mu_t(x1) = x1`, `sigma_t = s_{1-t}` with the geometric `s_u = sigma_min (sigma_max / sigma_min)^u`.
///
/// So `alpha_t = 1`, `sigma_t = sigma_min exp((1 - t) ln(sigma_max / sigma_min))`,
/// `sigma_t' = -ln(sigma_max / sigma_min) sigma_t`. The source at t = 0 is approximately
/// `N(0, sigma_max^2 I)`, not N(0, I): samplers start from `sigma_0 x0`.
///
/// ```
/// use fm_paths::{Scheduler, scheduler::Ve};
///
/// let ve = Ve::default(); // sigma from 50 (t = 0) to 0.01 (t = 1)
/// let (start, end) = (ve.coefficients(0.0_f64), ve.coefficients(1.0_f64));
/// assert_eq!((start.alpha, end.alpha), (1.0, 1.0));
/// assert!((start.sigma - 50.0).abs() < 1e-9 && (end.sigma - 0.01).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ve {
    /// Noise level at t = 1 (the data end).
    pub sigma_min: f64,
    /// Noise level at t = 0 (the source end); should dominate the data's scale.
    pub sigma_max: f64,
}

impl Default for Ve {
    /// `sigma_min = 0.01`, `sigma_max = 50` (score SDE's CIFAR-10 setting).
    fn default() -> Self {
        Self {
            sigma_min: 0.01,
            sigma_max: 50.0,
        }
    }
}

impl Scheduler for Ve {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        let log_ratio = (self.sigma_max / self.sigma_min).ln();
        let sigma = t
            .clone()
            .one_minus()
            .scale(log_ratio)
            .exp()
            .scale(self.sigma_min);
        Coefficients {
            alpha: t.constant_like(1.0),
            d_alpha: t.constant_like(0.0),
            d_sigma: sigma.clone().scale(-log_ratio),
            sigma,
        }
    }
}
