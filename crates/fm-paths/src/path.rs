//! The affine Gaussian conditional probability path `p_t(x | x1) = N(alpha_t x1, sigma_t^2 I)`
//! and its flow `psi_t(x0) = alpha_t x1 + sigma_t x0` (paper eq. 11 with `mu_t = alpha_t x1`).

use crate::broadcast::per_sample;
use crate::scheduler::{Coefficients, Scheduler};
use burn::tensor::Tensor;

/// An affine Gaussian path driven by a [`Scheduler`].
#[derive(Debug, Clone, PartialEq)]
pub struct AffinePath<S> {
    /// The schedule `(alpha_t, sigma_t)`.
    pub scheduler: S,
}

/// A point on the path and the conditional flow matching regression target.
#[derive(Debug, Clone)]
pub struct PathSample<const D: usize> {
    /// `x_t = psi_t(x0) = alpha_t x1 + sigma_t x0`, shape `[B, ...]`.
    pub x_t: Tensor<D>,
    /// `d/dt psi_t(x0) = alpha_t' x1 + sigma_t' x0`, the CFM target (paper eq. 14), shape `[B, ...]`.
    pub target: Tensor<D>,
}

impl<S: Scheduler> AffinePath<S> {
    /// The path of `scheduler`.
    pub fn new(scheduler: S) -> Self {
        Self { scheduler }
    }

    /// Scheduler coefficients at per-sample times `t` (`[B]`), broadcast against `like`
    /// (`[B, ...]`) so they multiply sample-wise.
    pub fn coefficients_like<const D: usize>(
        &self,
        t: Tensor<1>,
        like: &Tensor<D>,
    ) -> Coefficients<Tensor<D>> {
        let c = self.scheduler.coefficients(t);
        Coefficients {
            alpha: per_sample(c.alpha, like),
            sigma: per_sample(c.sigma, like),
            d_alpha: per_sample(c.d_alpha, like),
            d_sigma: per_sample(c.d_sigma, like),
        }
    }

    /// Samples the path: `x_t = alpha_t x1 + sigma_t x0` and the CFM target
    /// `d/dt psi_t(x0) = alpha_t' x1 + sigma_t' x0`.
    ///
    /// `x0`, `x1`: `[B, ...]` (source noise and data), `t`: `[B]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use fm_paths::{AffinePath, scheduler::CondOt};
    ///
    /// let dev = Device::flex();
    /// let path = AffinePath::new(CondOt::new(0.0));
    /// let x0 = Tensor::<2>::random([4, 2], Distribution::Normal(0.0, 1.0), &dev);
    /// let x1 = Tensor::<2>::ones([4, 2], &dev);
    /// let t = Tensor::<1>::full([4], 0.5, &dev);
    /// let s = path.sample(x0.clone(), x1.clone(), t);
    /// // The midpoint of the straight line, and its direction x1 - x0 (paper eq. 23).
    /// let mid = (x0.clone() + x1.clone()) / 2.0;
    /// assert!((s.x_t - mid).abs().max().into_scalar::<f32>() < 1e-6);
    /// assert!((s.target - (x1 - x0)).abs().max().into_scalar::<f32>() < 1e-6);
    /// ```
    pub fn sample<const D: usize>(
        &self,
        x0: Tensor<D>,
        x1: Tensor<D>,
        t: Tensor<1>,
    ) -> PathSample<D> {
        let c = self.coefficients_like(t, &x0);
        PathSample {
            x_t: c.alpha * x1.clone() + c.sigma * x0.clone(),
            target: c.d_alpha * x1 + c.d_sigma * x0,
        }
    }

    /// The conditional vector field of Theorem 3 (paper eq. 15) at any `x`:
    /// `u_t(x | x1) = sigma_t' / sigma_t (x - alpha_t x1) + alpha_t' x1`.
    ///
    /// `x`, `x1`: `[B, ...]`, `t`: `[B]`. At `x = psi_t(x0)` it equals the CFM target.
    pub fn conditional_velocity<const D: usize>(
        &self,
        x: Tensor<D>,
        x1: Tensor<D>,
        t: Tensor<1>,
    ) -> Tensor<D> {
        let c = self.coefficients_like(t, &x);
        c.d_sigma / c.sigma * (x - c.alpha * x1.clone()) + c.d_alpha * x1
    }

    /// Standard deviation of the source at t = 0, `sigma_0`: samplers draw `x ~ N(0, sigma_0^2 I)`
    /// (1 for OT, nearly 1 for VP, `sigma_max` for VE).
    pub fn source_std(&self) -> f64 {
        self.scheduler.coefficients(0.0_f64).sigma
    }
}
