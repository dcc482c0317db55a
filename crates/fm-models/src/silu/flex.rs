//! The fused SiLU on burn's Flex CPU backend, for contiguous `f32` tensors; other dtypes take
//! the composition.

use super::{SiluOps, composed_silu, composed_silu_backward, kernel};
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::{Bytes, DType, TensorMetadata};

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
        // copy it and overwrite the copy. Not `FlexTensor::empty`, which zeroes its buffer and
        // then copies it to realign it.
        let n = end - start;
        let mut y = Vec::with_capacity(n);
        kernel::silu(&x.storage::<f32>()[start..end], &mut y.spare_capacity_mut()[..n]);
        // SAFETY: `kernel::silu` wrote all `n` elements.
        unsafe { y.set_len(n) };
        FlexTensor::new(Bytes::from_elems(y), Layout::contiguous(x.shape()), DType::F32)
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

/// `t` itself when its elements are one dense run of its storage, else a dense copy.
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.layout().contiguous_offsets().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The storage range of a [`contiguous`] tensor's elements.
fn offsets(t: &FlexTensor) -> (usize, usize) {
    t.layout()
        .contiguous_offsets()
        .expect("to_contiguous gives a dense layout")
}
