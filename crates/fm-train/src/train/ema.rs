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
