//! Shared set-up for the criterion benches: devices and a stand-in velocity field.

use burn::tensor::{Device, Distribution, Tensor};

/// The device the benches run on: the first backend compiled in by this crate's features. Tunes
/// the allocator as the `fm` binary does, so the benches measure what users run.
pub fn bench_device() -> Device {
    #[cfg(feature = "flex")]
    fm_flex::allocator::tune_for_tensors();
    Device::default()
}

/// A one-hidden-layer tanh network `v(x, t) = W2 tanh(W1 [x, t] + b1) + b2` with random
/// weights: the cost profile of a small velocity network (matmuls plus element-wise work).
pub struct RandomMlp {
    w1: Tensor<2>,
    b1: Tensor<2>,
    w2: Tensor<2>,
    b2: Tensor<2>,
}

impl RandomMlp {
    /// Weights for `dim`-dimensional data and `width` hidden units on `device`.
    pub fn new(dim: usize, width: usize, device: &Device) -> Self {
        let normal = |shape: [usize; 2], std: f64| {
            Tensor::random(shape, Distribution::Normal(0.0, std), device)
        };
        Self {
            w1: normal([dim + 1, width], 1.0 / ((dim + 1) as f64).sqrt()),
            b1: normal([1, width], 0.1),
            w2: normal([width, dim], 1.0 / (width as f64).sqrt()),
            b2: normal([1, dim], 0.1),
        }
    }

    /// `x`: `[B, dim]` at time `t` -> `[B, dim]`.
    pub fn forward(&self, x: Tensor<2>, t: f64) -> Tensor<2> {
        let batch = x.dims()[0];
        let time = Tensor::full([batch, 1], t, &x.device());
        let h = (Tensor::cat(vec![x, time], 1).matmul(self.w1.clone()) + self.b1.clone()).tanh();
        h.matmul(self.w2.clone()) + self.b2.clone()
    }
}
