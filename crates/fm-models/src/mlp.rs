//! A time-conditioned multilayer perceptron `v_theta(x, t)`.

use crate::activation::Activation;
use crate::fused;
use crate::time::{TimeEmbedding, TimeFeatures};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Configuration of a [`TimeMlp`].
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use fm_models::{TimeEmbedding, TimeMlpConfig};
///
/// let dev = Device::flex();
/// // The paper's 2-D network: 4 hidden layers of 512 units; here with sinusoidal time features.
/// let mlp = TimeMlpConfig::new(2)
///     .with_time_embedding(TimeEmbedding::Sinusoidal { dim: 32, max_frequency: 100.0 })
///     .init(&dev);
/// let x = Tensor::<2>::random([5, 2], Distribution::Normal(0.0, 1.0), &dev);
/// let t = Tensor::<1>::full([5], 0.5, &dev);
/// assert_eq!(mlp.forward(x, t).dims(), [5, 2]);
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct TimeMlpConfig {
    /// The data dimension `D` (input and output size).
    pub input_dim: usize,
    /// Units per hidden layer.
    #[config(default = 512)]
    pub hidden: usize,
    /// Number of hidden layers; the network has `depth + 1` linear layers (the paper's 2-D
    /// model: depth 4, 512 units).
    #[config(default = 4)]
    pub depth: usize,
    /// The nonlinearity after each hidden layer.
    #[config(default = "Activation::Silu")]
    pub activation: Activation,
    /// How `t` is fed in (concatenated to `x`).
    #[config(default = "TimeEmbedding::Raw")]
    pub time_embedding: TimeEmbedding,
}

/// `v_theta(x, t) = L_depth(a(... a(L_0([x, emb(t)]))))`: an MLP on the data concatenated with
/// the time features.
#[derive(Module, Debug)]
pub struct TimeMlp {
    layers: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
    time: TimeFeatures,
}

impl TimeMlpConfig {
    /// A network with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> TimeMlp {
        let mut sizes = vec![self.input_dim + self.time_embedding.output_dim()];
        sizes.extend(std::iter::repeat_n(self.hidden, self.depth));
        sizes.push(self.input_dim);
        TimeMlp {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            activation: self.activation,
            time: self.time_embedding.init(device),
        }
    }
}

/// Rows per block when the network is evaluated without autodiff on the Flex CPU backend
/// (sampling, evaluation): a block's activations (4096 x 512 f32, 8 MiB) stay in cache from one
/// layer to the next, where 50 000 rows at once stream every activation through memory.
/// Measured: 50 000 samples with midpoint, 20 steps, 14 % faster in blocks. A GPU wants the
/// whole batch in one launch, so other backends never block.
const INFERENCE_ROWS: usize = 4096;

impl TimeMlp {
    /// The velocity at `x`: `[B, D]` and per-sample time `t`: `[B]` -> `[B, D]`. Without
    /// autodiff on Flex, large batches are evaluated in blocks of rows (the same values).
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let rows = x.dims()[0];
        let device = x.device();
        if rows <= INFERENCE_ROWS || device.is_autodiff() || !fused::on_flex(&device) {
            return self.forward_rows(x, t);
        }
        let blocks = (0..rows)
            .step_by(INFERENCE_ROWS)
            .map(|start| {
                let rows = start..(start + INFERENCE_ROWS).min(rows);
                self.forward_rows(x.clone().slice([rows.clone()]), t.clone().slice([rows]))
            })
            .collect();
        Tensor::cat(blocks, 0)
    }

    /// [`Self::forward`] in one pass.
    fn forward_rows(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let mut h = Tensor::cat(vec![x, self.time.forward(t)], 1);
        let (last, hidden) = self.layers.split_last().expect("at least one layer");
        for layer in hidden {
            h = self.activation.after_linear(layer, h);
        }
        fused::linear(last, h)
    }
}
