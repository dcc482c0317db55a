//! Closed forms for Gaussian data `q = N(m, s^2 I)`: the exact marginal path, velocity field and
//! log-density, against which solvers, likelihoods and training are checked.
//!
//! For `x_t = alpha_t x1 + sigma_t x0` with `x1 ~ N(m, s^2 I)`, `x0 ~ N(0, I)`:
//! - `x_t ~ N(alpha_t m, v_t I)`, `v_t = alpha_t^2 s^2 + sigma_t^2`;
//! - `E[x1 | x_t = x] = m + k_t (x - alpha_t m)`, `k_t = alpha_t s^2 / v_t`;
//! - `E[x0 | x_t = x] = sigma_t (x - alpha_t m) / v_t`;
//! - the marginal velocity (paper eq. 8) `u_t(x) = alpha_t' E[x1 | x] + sigma_t' E[x0 | x]`.
//!
//! For the OT path this is `u_t(x) = (m + k_t (x - t m) - (1 - sigma_min) x) / sigma_t`.

use crate::path::AffinePath;
use crate::scheduler::Scheduler;
use burn::tensor::{Tensor, TensorData};
use std::f64::consts::PI;

/// An isotropic Gaussian data distribution `N(mean, std^2 I)`.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianData {
    /// The mean `m`, one entry per dimension.
    pub mean: Vec<f64>,
    /// The standard deviation `s` of every coordinate.
    pub std: f64,
}

impl GaussianData {
    /// `N(mean, std^2 I)`.
    pub fn new(mean: Vec<f64>, std: f64) -> Self {
        Self { mean, std }
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The mean as a `[1, D]` tensor on the device and with the float type of `like`.
    fn mean_row(&self, like: &Tensor<2>) -> Tensor<2> {
        let data = TensorData::new(self.mean.clone(), [1, self.dim()]);
        Tensor::from_data(data, (&like.device(), like.dtype()))
    }

    /// Mean scale `alpha_t` and variance `v_t = alpha_t^2 s^2 + sigma_t^2` of the marginal `p_t`.
    pub fn marginal_moments<S: Scheduler>(&self, path: &AffinePath<S>, t: f64) -> (f64, f64) {
        let c = path.scheduler.coefficients(t);
        (
            c.alpha,
            c.alpha * c.alpha * self.std * self.std + c.sigma * c.sigma,
        )
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
        let centred = x.clone() - self.mean_row(&x).mul_scalar(c.alpha);
        let e_x1 = centred
            .clone()
            .mul_scalar(c.alpha * self.std * self.std / var)
            + self.mean_row(&x);
        let e_x0 = centred.mul_scalar(c.sigma / var);
        e_x1.mul_scalar(c.d_alpha) + e_x0.mul_scalar(c.d_sigma)
    }

    /// The exact log-density `log p_t(x)` of `N(alpha_t m, v_t I)`: `[B, D]` -> `[B]`.
    pub fn log_density<S: Scheduler>(
        &self,
        path: &AffinePath<S>,
        x: Tensor<2>,
        t: f64,
    ) -> Tensor<1> {
        let (a, var) = self.marginal_moments(path, t);
        let centred = x.clone() - self.mean_row(&x).mul_scalar(a);
        let sq: Tensor<1> = centred.square().sum_dim(1).squeeze_dim(1);
        sq.mul_scalar(-0.5 / var)
            .sub_scalar(0.5 * self.dim() as f64 * (2.0 * PI * var).ln())
    }

    /// The differential entropy of `N(m, s^2 I)` in nats: `D/2 ln(2 pi e s^2)`.
    pub fn entropy(&self) -> f64 {
        0.5 * self.dim() as f64 * (2.0 * PI * std::f64::consts::E * self.std * self.std).ln()
    }
}
