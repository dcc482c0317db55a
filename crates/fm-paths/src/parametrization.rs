//! Conversions between the four quantities a network may predict on an affine path.
//!
//! On `x_t = alpha_t x1 + sigma_t x0` each quantity is linear in `(x_t, x1)`:
//!
//! | quantity | formula | as `c x_t + d x1` |
//! |---|---|---|
//! | x1-prediction | `x1` | `(0, 1)` |
//! | epsilon (the source sample x0) | `(x_t - alpha_t x1) / sigma_t` | `(1 / sigma, -alpha / sigma)` |
//! | velocity `alpha' x1 + sigma' x0` | `sigma'/sigma x_t + (alpha' - sigma' alpha / sigma) x1` | `(sigma'/sigma, alpha' - sigma' alpha/sigma)` |
//! | score `grad log p_t(x_t) = -x0 / sigma_t` | `-(x_t - alpha_t x1) / sigma_t^2` | `(-1/sigma^2, alpha/sigma^2)` |
//!
//! With the conditional expectations `E[x1 | x_t]`, `E[x0 | x_t]` these give the marginal velocity,
//! noise prediction and score (Gaussian source). A conversion solves the first row for `x1` and
//! substitutes it into the second, so every pair shares one code path.

use crate::path::AffinePath;
use crate::scheduler::{Coefficients, Scheduler};
use burn::tensor::Tensor;

/// What a network predicts.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use fm_paths::{AffinePath, Parametrization, scheduler::CondOt};
///
/// let dev = Device::flex();
/// let path = AffinePath::new(CondOt::new(0.0));
/// let (x0, x1) = (Tensor::<2>::full([1, 2], -1.0, &dev), Tensor::<2>::full([1, 2], 3.0, &dev));
/// let t = Tensor::<1>::full([1], 0.25, &dev);
/// let s = path.sample(x0, x1.clone(), t.clone());
/// // An x1-prediction that is exactly right becomes the exact velocity.
/// let v = path.convert(Parametrization::X1, Parametrization::Velocity, x1, s.x_t, t);
/// assert!((v - s.target).abs().max().into_scalar::<f32>() < 1e-6);
/// assert_eq!("eps".parse::<Parametrization>(), Ok(Parametrization::Epsilon));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parametrization {
    /// The velocity `dx_t/dt` (flow matching).
    Velocity,
    /// The data point `x1`.
    X1,
    /// The source noise `x0` (DDPM's epsilon).
    Epsilon,
    /// The score `grad_x log p_t(x)`.
    Score,
}

impl std::str::FromStr for Parametrization {
    type Err = crate::ParseError;

    /// `v` / `velocity`, `x1`, `eps` / `epsilon`, or `score`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "v" | "velocity" => Self::Velocity,
            "x1" => Self::X1,
            "eps" | "epsilon" => Self::Epsilon,
            "score" => Self::Score,
            _ => {
                return Err(crate::ParseError::new(
                    "prediction",
                    s,
                    "v, x1, eps or score",
                ));
            }
        })
    }
}

impl std::fmt::Display for Parametrization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Velocity => "v",
            Self::X1 => "x1",
            Self::Epsilon => "eps",
            Self::Score => "score",
        })
    }
}

impl Parametrization {
    /// `(c, d)` with `quantity = c x_t + d x1`, as in the module table.
    fn linear_form<const D: usize>(self, k: &Coefficients<Tensor<D>>) -> (Tensor<D>, Tensor<D>) {
        let Coefficients {
            alpha,
            sigma,
            d_alpha,
            d_sigma,
        } = k.clone();
        match self {
            Self::X1 => (alpha.zeros_like(), alpha.ones_like()),
            Self::Epsilon => (sigma.clone().recip(), -alpha / sigma),
            Self::Velocity => {
                let ratio = d_sigma / sigma;
                (ratio.clone(), d_alpha - ratio * alpha)
            }
            Self::Score => {
                let var = sigma.clone() * sigma;
                (-var.clone().recip(), alpha / var)
            }
        }
    }
}

impl<S: Scheduler> AffinePath<S> {
    /// Converts `value` of kind `from` at `(x_t, t)` into the kind `to`.
    ///
    /// `value`, `x_t`: `[B, ...]`; `t`: `[B]`. Undefined where the conversion divides by zero
    /// (e.g. recovering x1 from epsilon at t = 0, where `alpha_0 = 0`).
    pub fn convert<const D: usize>(
        &self,
        from: Parametrization,
        to: Parametrization,
        value: Tensor<D>,
        x_t: Tensor<D>,
        t: Tensor<1>,
    ) -> Tensor<D> {
        if from == to {
            return value;
        }
        let k = self.coefficients_like(t, &x_t);
        let (c_from, d_from) = from.linear_form(&k);
        let x1 = (value - c_from * x_t.clone()) / d_from;
        let (c_to, d_to) = to.linear_form(&k);
        c_to * x_t + d_to * x1
    }
}
