//! Element-wise nonlinearities, chosen by config.

use crate::fused;
use burn::config::Config;
use burn::nn::Linear;
use burn::tensor::{Tensor, activation};

/// A nonlinearity between linear layers.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x sigmoid(x)` (the paper's and Meta's 2-D examples).
    Silu,
    /// `max(x, 0)`.
    Relu,
    /// The Gaussian error linear unit.
    Gelu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Applies the nonlinearity element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Silu => fused::silu(x),
            Self::Relu => activation::relu(x),
            Self::Gelu => activation::gelu(x),
            Self::Tanh => activation::tanh(x),
        }
    }

    /// `self.forward(layer.forward(x))`: `[B, d_input]` -> `[B, d_output]`, fused into one
    /// operation for SiLU (see [`fused::linear_silu`]).
    pub fn after_linear(&self, layer: &Linear, x: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Silu => fused::linear_silu(layer, x),
            _ => self.forward(fused::linear(layer, x)),
        }
    }
}
