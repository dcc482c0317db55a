//! Mixed precision, as `torch.autocast` does it: the master weights, Adam's moments and the EMA
//! stay in f32; each step's forward and backward passes run in the compute type (`--dtype`) on
//! a cast copy of the weights. On an autodiff device the casts are recorded, so the gradients
//! flow back through them and arrive in f32 at the master weights.
//!
//! burn's element-wise operations round their scalars to the tensor's type: in bf16, Adam's
//! `beta_2 = 0.999` and an EMA decay above about 0.998 would become 1 (the EMA frozen). Keeping
//! every piece of optimizer state in f32 avoids that by construction.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{FloatDType, Tensor};

/// Converts every float parameter to one type.
pub(crate) struct CastFloats(pub FloatDType);

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| cast(t, dtype))
    }
}

/// `module` with every float parameter in `dtype` (unchanged parameters when they already are).
pub(crate) fn cast_module<M: Module>(module: M, dtype: FloatDType) -> M {
    module.map(&mut CastFloats(dtype))
}

/// `x` in `dtype` (no operation when it already is).
pub(crate) fn cast<const D: usize>(x: Tensor<D>, dtype: FloatDType) -> Tensor<D> {
    if x.dtype() == dtype.into() {
        x
    } else {
        x.cast(dtype)
    }
}
