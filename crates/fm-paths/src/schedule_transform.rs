//! Sampling a model trained on one scheduler along another: the same marginal path, re-timed
//! and re-scaled (the "schedule transform" of Meta's `flow_matching`, after Lipman et al. 2024,
//! *Flow Matching Guide and Code*, Sec. 4.8).
//!
//! Paths with the same signal-to-noise ratio `rho = alpha / sigma` differ only by a scale: with
//! `t_r = rho^{-1}(rho'(r))` and `s_r = sigma'_r / sigma_{t_r}`, the new path is
//! `x'_r = s_r x_{t_r}`, and its velocity is
//!
//! `u'_r(x) = (ds_r/dr) / s_r x + s_r (dt_r/dr) u_{t_r}(x / s_r)`,
//!
//! with `dt_r/dr = rho''(r) / rho_dot(t_r)` (each `rho` differentiated in its own time).
//! Where the ratios match, `s_r = sigma'_r / sigma_t = alpha'_r / alpha_t`; the code takes the
//! ratio of the larger of the trained `(sigma_t, alpha_t)`, which stays exact where the new ratio
//! leaves the trained one's range and `t_r` is held at an end: near the data, where the OT path
//! stops at `sigma_1 = sigma_min` but a cosine path goes on to `sigma = 0`, the scale then follows
//! `alpha'_r / alpha_1 -> 1` instead of collapsing. Both paths should start from the same source
//! (`rho = 0` at time 0).

use crate::scheduler::{Coefficients, Scheduler};

/// The re-timing at one new time `r`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retiming {
    /// The trained model's time `t_r`.
    pub t: f64,
    /// `s_r`.
    pub scale: f64,
    /// `ds_r / dr`.
    pub d_scale: f64,
    /// `dt_r / dr`.
    pub d_time: f64,
}

/// A model trained on `trained`, sampled along `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTransform<A, B> {
    /// The scheduler the model learned.
    pub trained: A,
    /// The scheduler to sample along.
    pub target: B,
}

/// `rho = alpha / sigma` and `d rho / dt`.
fn snr(k: &Coefficients<f64>) -> (f64, f64) {
    let rho = k.alpha / k.sigma;
    let d_rho = (k.d_alpha * k.sigma - k.alpha * k.d_sigma) / (k.sigma * k.sigma);
    (rho, d_rho)
}

impl<A: Scheduler, B: Scheduler> ScheduleTransform<A, B> {
    /// `t_r`, `s_r` and their derivatives at new time `r`.
    pub fn at(&self, r: f64) -> Retiming {
        let new = self.target.coefficients(r);
        let (rho, d_rho) = snr(&new);
        let (t, inside) = self.inverse_snr(rho);
        let old = self.trained.coefficients(t);
        let (_, d_rho_old) = snr(&old);
        // Inside the trained range t_r moves with r, also at an end where both ratios meet
        // (rho = 0 at r = 0 for CondOT, cosine, linear VP, polynomial). Outside it t_r is held.
        // Where the trained ratio is flat (rho_dot = 0) dt/dr diverges; it is held there too.
        let d_time = if inside && d_rho_old > 0.0 && (d_rho / d_rho_old).is_finite() {
            d_rho / d_rho_old
        } else {
            0.0
        };
        // s = num / den with num in new time r and den in trained time t(r).
        let (num, d_num, den, d_den) = if old.sigma >= old.alpha {
            (new.sigma, new.d_sigma, old.sigma, old.d_sigma)
        } else {
            (new.alpha, new.d_alpha, old.alpha, old.d_alpha)
        };
        let scale = num / den;
        let d_scale = (d_num * den - num * d_den * d_time) / (den * den);
        Retiming {
            t,
            scale,
            d_scale,
            d_time,
        }
    }

    /// The trained time with ratio `rho`, by bisection (the ratio rises with time), and whether
    /// `rho` lies in the trained ratio's range `[rho(0), rho(1)]` (if not, the time is held at
    /// the nearer end).
    fn inverse_snr(&self, rho: f64) -> (f64, bool) {
        let at = |t: f64| snr(&self.trained.coefficients(t)).0;
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        // A NaN ratio (0 / 0) counts as the start, held.
        if rho.is_nan() || rho <= at(lo) {
            return (lo, rho == at(lo));
        }
        if rho >= at(hi) {
            return (hi, rho == at(hi));
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if at(mid) < rho {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (0.5 * (lo + hi), true)
    }
}
