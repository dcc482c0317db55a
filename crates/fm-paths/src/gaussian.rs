//! Closed forms for Gaussian data `q = N(m, diag(s^2))` (one standard deviation `s_d` per
//! coordinate): the exact marginal path, velocity field and log-density, against which solvers,
//! likelihoods and training are checked. Coordinates are independent, so every formula holds
//! coordinate by coordinate.
//!
//! For `x_t = alpha_t x1 + sigma_t x0` with `x1 ~ N(m, diag(s^2))`, `x0 ~ N(0, I)`:
//! - `x_t ~ N(alpha_t m, diag(v_t))`, `v_t = alpha_t^2 s^2 + sigma_t^2`;
//! - `E[x1 | x_t = x] = m + k_t (x - alpha_t m)`, `k_t = alpha_t s^2 / v_t`;
//! - `E[x0 | x_t = x] = sigma_t (x - alpha_t m) / v_t`;
//! - the marginal velocity (paper eq. 8) `u_t(x) = alpha_t' E[x1 | x] + sigma_t' E[x0 | x]`.
//!
//! For the OT path this is `u_t(x) = (m + k_t (x - t m) - (1 - sigma_min) x) / sigma_t`. With
//! unequal `s_d` the Jacobian of `u_t` is diagonal but not a multiple of `I`, so one
//! Hutchinson probe is no longer exact by construction.

use crate::path::AffinePath;
use crate::scheduler::Scheduler;
use burn::tensor::{Tensor, TensorData};
use std::f64::consts::PI;

/// A Gaussian data distribution with independent coordinates, `N(mean, diag(std^2))`.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianData {
    /// The mean `m`, one entry per dimension.
    pub mean: Vec<f64>,
    /// The standard deviation `s_d` of each coordinate.
    pub std: Vec<f64>,
}

impl GaussianData {
    /// The isotropic `N(mean, std^2 I)`.
    pub fn new(mean: Vec<f64>, std: f64) -> Self {
        let std = vec![std; mean.len()];
        Self { mean, std }
    }

    /// `N(mean, diag(std^2))`, one standard deviation per coordinate (as many as means).
    pub fn anisotropic(mean: Vec<f64>, std: Vec<f64>) -> Self {
        assert_eq!(mean.len(), std.len(), "one standard deviation per mean");
        Self { mean, std }
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `values` as a `[1, D]` tensor on the device and with the float type of `like`.
    fn row(values: Vec<f64>, like: &Tensor<2>) -> Tensor<2> {
        let dim = values.len();
        Tensor::from_data(
            TensorData::new(values, [1, dim]),
            (&like.device(), like.dtype()),
        )
    }

    /// Mean scale `alpha_t` and the per-coordinate variances `v_t = alpha_t^2 s^2 + sigma_t^2`
    /// of the marginal `p_t`.
    pub fn marginal_moments<S: Scheduler>(&self, path: &AffinePath<S>, t: f64) -> (f64, Vec<f64>) {
        let c = path.scheduler.coefficients(t);
        let var = self
            .std
            .iter()
            .map(|s| c.alpha * c.alpha * s * s + c.sigma * c.sigma)
            .collect();
        (c.alpha, var)
    }

    /// The exact marginal velocity `u_t(x)` (module docs) at `x`: `[B, D]` -> `[B, D]`.
    pub fn marginal_velocity<S: Scheduler>(
        &self,
        path: &AffinePath<S>,
        x: Tensor<2>,
        t: f64,
    ) -> Tensor<2> {
        let c = path.scheduler.coefficients(t);
        let (_, var) = self.marginal_moments(path, t);
        let centred = x.clone() - Self::row(self.mean.clone(), &x).mul_scalar(c.alpha);
        // u = alpha' m + (alpha' k + sigma' sigma / v) (x - alpha m), per coordinate.
        let gain: Vec<f64> = self
            .std
            .iter()
            .zip(&var)
            .map(|(s, v)| (c.d_alpha * c.alpha * s * s + c.d_sigma * c.sigma) / v)
            .collect();
        centred * Self::row(gain, &x) + Self::row(self.mean.clone(), &x).mul_scalar(c.d_alpha)
    }

    /// The exact log-density `log p_t(x)` of `N(alpha_t m, diag(v_t))`: `[B, D]` -> `[B]`.
    pub fn log_density<S: Scheduler>(
        &self,
        path: &AffinePath<S>,
        x: Tensor<2>,
        t: f64,
    ) -> Tensor<1> {
        let (a, var) = self.marginal_moments(path, t);
        let centred = x.clone() - Self::row(self.mean.clone(), &x).mul_scalar(a);
        let precision = Self::row(var.iter().map(|v| -0.5 / v).collect(), &x);
        let quad: Tensor<1> = (centred.square() * precision).sum_dim(1).squeeze_dim(1);
        quad.sub_scalar(var.iter().map(|v| 0.5 * (2.0 * PI * v).ln()).sum::<f64>())
    }

    /// The differential entropy of `N(m, diag(s^2))` in nats: `sum_d 1/2 ln(2 pi e s_d^2)`.
    pub fn entropy(&self) -> f64 {
        self.std
            .iter()
            .map(|s| 0.5 * (2.0 * PI * std::f64::consts::E * s * s).ln())
            .sum()
    }
}
