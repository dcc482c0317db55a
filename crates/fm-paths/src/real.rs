//! A scalar-like number type, so each schedule's formula is written once and evaluated both on
//! host `f64` (exact tests, ODE time points) and on per-sample time tensors `Tensor<1>` (training).

use burn::tensor::Tensor;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Element-wise real arithmetic shared by `f64` and `Tensor<1>`.
///
/// Binary operators combine two values of the same type; `scale` and `offset` bring in constants.
pub trait Real:
    Clone
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// `c * self`.
    fn scale(self, c: f64) -> Self;
    /// `self + c`.
    fn offset(self, c: f64) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// `sqrt(self)`.
    fn sqrt(self) -> Self;
    /// `sin(self)`.
    fn sin(self) -> Self;
    /// `cos(self)`.
    fn cos(self) -> Self;
    /// `self^p`.
    fn powf(self, p: f64) -> Self;
    /// The constant `c` with the same shape (and device) as `self`.
    fn constant_like(&self, c: f64) -> Self;

    /// `1 - self`, the time reversal that maps the paper's diffusion time onto flow time.
    fn one_minus(self) -> Self {
        self.scale(-1.0).offset(1.0)
    }
}

impl Real for f64 {
    fn scale(self, c: f64) -> Self {
        c * self
    }
    fn offset(self, c: f64) -> Self {
        self + c
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn sin(self) -> Self {
        f64::sin(self)
    }
    fn cos(self) -> Self {
        f64::cos(self)
    }
    fn powf(self, p: f64) -> Self {
        f64::powf(self, p)
    }
    fn constant_like(&self, c: f64) -> Self {
        c
    }
}

impl Real for Tensor<1> {
    fn scale(self, c: f64) -> Self {
        self.mul_scalar(c)
    }
    fn offset(self, c: f64) -> Self {
        self.add_scalar(c)
    }
    fn exp(self) -> Self {
        Tensor::exp(self)
    }
    fn sqrt(self) -> Self {
        Tensor::sqrt(self)
    }
    fn sin(self) -> Self {
        Tensor::sin(self)
    }
    fn cos(self) -> Self {
        Tensor::cos(self)
    }
    fn powf(self, p: f64) -> Self {
        self.powf_scalar(p)
    }
    fn constant_like(&self, c: f64) -> Self {
        self.full_like(c)
    }
}
