use super::{Coefficients, Scheduler};
use crate::Real;
use std::f64::consts::FRAC_PI_2;

/// Cosine schedule: `alpha_t = sin(pi t / 2)`, `sigma_t = cos(pi t / 2)`;
/// `alpha_t' = (pi / 2) cos(pi t / 2)`, `sigma_t' = -(pi / 2) sin(pi t / 2)`.
///
/// ```
/// use fm_paths::{Scheduler, scheduler::Cosine};
///
/// let c = Cosine.coefficients(0.5_f64);
/// let half = std::f64::consts::FRAC_1_SQRT_2;
/// assert!((c.alpha - half).abs() < 1e-15 && (c.sigma - half).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cosine;

impl Scheduler for Cosine {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        let angle = t.scale(FRAC_PI_2);
        let alpha = angle.clone().sin();
        let sigma = angle.cos();
        Coefficients {
            d_alpha: sigma.clone().scale(FRAC_PI_2),
            d_sigma: alpha.clone().scale(-FRAC_PI_2),
            alpha,
            sigma,
        }
    }
}
