use super::{Coefficients, Scheduler, TIME_EPSILON};
use crate::Real;

/// Variance-preserving diffusion path, reversed into flow time (paper eq. 18-19):
/// `mu_t(x1) = a_{1-t} x1`, `sigma_t = sqrt(1 - a_{1-t}^2)`, with `a_s = exp(-T(s) / 2)`,
/// `T(s) = int_0^s beta(r) dr = beta_min s + (beta_max - beta_min) s^2 / 2` for the linear
/// `beta(s) = beta_min + s (beta_max - beta_min)`.
///
/// Derivatives: `alpha_t' = beta(1 - t) alpha_t / 2`, `sigma_t' = -alpha_t alpha_t' / sigma_t`.
/// Note `alpha_0 = exp(-T(1) / 2)` is small but not zero: the path starts near, not at, N(0, I).
///
/// ```
/// use fm_paths::{Scheduler, scheduler::Vp};
///
/// let vp = Vp::default(); // beta from 0.1 to 20
/// let c = vp.coefficients(0.7_f64);
/// assert!((c.alpha.powi(2) + c.sigma.powi(2) - 1.0).abs() < 1e-12); // variance preserving
/// let at_data = vp.coefficients(1.0_f64);
/// assert_eq!((at_data.alpha, at_data.sigma), (1.0, 0.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vp {
    /// `beta` at diffusion time 0 (the data end).
    pub beta_min: f64,
    /// `beta` at diffusion time 1 (the noise end).
    pub beta_max: f64,
}

impl Default for Vp {
    /// The paper's (and score SDE's) `beta_min = 0.1`, `beta_max = 20`.
    fn default() -> Self {
        Self {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }
}

impl Scheduler for Vp {
    fn coefficients<R: Real>(&self, t: R) -> Coefficients<R> {
        let s = t.one_minus();
        let slope = self.beta_max - self.beta_min;
        let big_t = s.clone().scale(self.beta_min) + s.clone().powf(2.0).scale(slope / 2.0);
        let beta = s.scale(slope).offset(self.beta_min);
        let alpha = big_t.scale(-0.5).exp();
        let sigma = (alpha.clone() * alpha.clone()).one_minus().sqrt();
        let d_alpha = beta.scale(0.5) * alpha.clone();
        let d_sigma = -(alpha.clone() * d_alpha.clone()) / sigma.clone();
        Coefficients {
            alpha,
            sigma,
            d_alpha,
            d_sigma,
        }
    }

    /// `sigma_t -> 0` and `sigma_t' -> -inf` at t = 1.
    fn training_range(&self) -> (f64, f64) {
        (0.0, 1.0 - TIME_EPSILON)
    }
}
