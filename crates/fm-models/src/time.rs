//! How time enters a network.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

/// The features of `t` that a network sees.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum TimeEmbedding {
    /// `t` itself, one feature (Meta's 2-D example).
    Raw,
    /// `[sin(2 pi f_k t), cos(2 pi f_k t)]` for `max(dim / 2, 1)` frequencies `f_k` spaced
    /// geometrically from 1 to `max_frequency` (Transformer-style Fourier features), plus `t`
    /// itself.
    Sinusoidal {
        /// Number of sin/cos features (an odd `dim` is rounded down to even, 0 up to 2).
        dim: usize,
        /// The highest frequency, in cycles per unit time.
        max_frequency: f64,
    },
}

impl TimeEmbedding {
    /// Number of features produced per sample.
    pub fn output_dim(&self) -> usize {
        match self {
            Self::Raw => 1,
            Self::Sinusoidal { dim, .. } => 2 * frequencies(*dim) + 1,
        }
    }

    /// The module computing these features, with its frequencies made on `device` once.
    pub fn init(&self, device: &Device) -> TimeFeatures {
        let frequencies = match *self {
            Self::Raw => None,
            Self::Sinusoidal { dim, max_frequency } => {
                let half = frequencies(dim);
                let angular: Vec<f32> = (0..half)
                    .map(|k| {
                        let frac = if half > 1 {
                            k as f64 / (half - 1) as f64
                        } else {
                            0.0
                        };
                        (2.0 * std::f64::consts::PI * max_frequency.powf(frac)) as f32
                    })
                    .collect();
                Some(Tensor::from_data(
                    TensorData::new(angular, [1, half]),
                    device,
                ))
            }
        };
        TimeFeatures { frequencies }
    }
}

/// A [`TimeEmbedding`] as a module. The angular frequencies `2 pi f_k` (`[1, K]`) are a constant
/// of the network: made once on its device, moved with it, never saved, so no evaluation
/// uploads them.
#[derive(Module, Debug)]
pub struct TimeFeatures {
    frequencies: Option<Tensor<2>>,
}

impl TimeFeatures {
    /// `t`: `[B]` -> `[B, output_dim]`: `t` itself, then `sin(2 pi f_k t)` and `cos(2 pi f_k t)`.
    pub fn forward(&self, t: Tensor<1>) -> Tensor<2> {
        let batch = t.dims()[0];
        let t = t.reshape([batch, 1]);
        let Some(freqs) = &self.frequencies else {
            return t;
        };
        // Under mixed precision t comes in the compute type; the constant stays in the
        // weights' type (casts map parameters only).
        let freqs = if freqs.dtype() == t.dtype() {
            freqs.clone()
        } else {
            freqs.clone().cast(t.dtype())
        };
        let angles = t.clone() * freqs;
        Tensor::cat(vec![t, angles.clone().sin(), angles.cos()], 1)
    }
}

/// The number of frequencies of a sinusoidal embedding with `dim` sin/cos features.
fn frequencies(dim: usize) -> usize {
    (dim / 2).max(1)
}
