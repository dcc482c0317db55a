//! Exponential moving average of a module's weights: `ema <- d ema + (1 - d) theta`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use std::collections::HashMap;

/// Collects every float parameter, flattened, by id.
struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().inner();
        let n = value.shape().num_elements();
        self.0.insert(param.id, value.reshape([n]));
    }
}

/// Moves each parameter toward the collected one with the same id.
struct Blend {
    source: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(theta) = self.source.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|ema| {
            let shape = ema.dims();
            ema.mul_scalar(decay) + theta.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// `ema <- decay * ema + (1 - decay) * model`, matching parameters by id (so `ema` must have
/// started as a copy of `model`, e.g. `model.valid()`).
pub fn ema_update<M: Module>(ema: M, model: &M, decay: f64) -> M {
    let mut collect = Collect(HashMap::new());
    model.visit(&mut collect);
    ema.map(&mut Blend {
        source: collect.0,
        decay,
    })
}

/// The decay used at `step`: `min(decay, (1 + step) / (10 + step))`, so that early averages do
/// not remember the random initialisation.
pub fn ema_decay_at(decay: f64, step: usize) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{DType, Device};

    /// `layer` with every weight set to `value` in `dtype` (the parameter ids kept).
    fn constant(mut layer: Linear, value: f64, dtype: DType) -> Linear {
        layer.weight = layer
            .weight
            .map(|w| Tensor::full(w.dims(), value, (&w.device(), dtype)));
        layer.bias = None;
        layer
    }

    /// `k` updates towards fixed weights `theta = 1` from `ema = 0` give `1 - d^k`. In f32, the
    /// type the EMA keeps whatever the compute type, that holds to 1e-4 at `d = 0.9999`; in
    /// bf16 `d` rounds to 1 and the average never moves (why training keeps it in f32).
    #[test]
    fn ema_follows_the_closed_form_in_f32_where_bf16_freezes() {
        let (decay, k) = (0.9999f64, 2000);
        let want = 1.0 - decay.powi(k);
        let layer: Linear = LinearConfig::new(3, 2).init(&Device::flex());
        let run = |dtype| {
            let model = constant(layer.clone(), 1.0, dtype);
            let mut ema = constant(layer.clone(), 0.0, dtype);
            for _ in 0..k {
                ema = ema_update(ema, &model, decay);
            }
            ema.weight.val().mean().into_scalar::<f64>()
        };
        let got = run(DType::F32);
        assert!((got - want).abs() < 1e-4 * want, "f32: {got} vs {want}");
        let frozen = run(DType::BF16);
        assert!(
            frozen < 0.5 * want,
            "bf16 moved to {frozen}: the test shows nothing"
        );
    }
}
