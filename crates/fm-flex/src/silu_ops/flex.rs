//! The fused SiLU on burn's Flex CPU backend, for contiguous `f32` tensors; other dtypes take
//! the composition.

use super::{SiluOps, composed_silu, composed_silu_backward, kernel};
use crate::buffer::{contiguous, new_f32, offsets};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{DType, TensorMetadata};

impl SiluOps for Flex {
    fn silu(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return composed_silu::<Self>(x);
        }
        let mut x = contiguous(x);
        let (start, end) = offsets(&x);
        if x.is_unique() {
            kernel::silu_inplace(&mut x.storage_mut::<f32>()[start..end]);
            return x;
        }
        // The input is shared (autodiff keeps it for backward): write a new buffer rather than
        // copy it and overwrite the copy.
        new_f32(x.shape(), |y| {
            kernel::silu(&x.storage::<f32>()[start..end], y)
        })
    }

    fn silu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 || x.shape() != grad.shape() {
            return composed_silu_backward::<Self>(x, grad);
        }
        let x = contiguous(x);
        let mut grad = contiguous(grad);
        let (xs, xe) = offsets(&x);
        let (gs, ge) = offsets(&grad);
        // Copy-on-write: a shared gradient is copied first, an owned one (the usual case in a
        // backward pass) is overwritten in place.
        let g = &mut grad.storage_mut::<f32>()[gs..ge];
        kernel::silu_backward_inplace(&x.storage::<f32>()[xs..xe], g);
        grad
    }
}
