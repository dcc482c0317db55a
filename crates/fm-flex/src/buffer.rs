//! Flex tensor buffers shared by the fused operations.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Bytes, DType, Shape};
use std::mem::MaybeUninit;

/// A new `f32` tensor of `shape` whose elements `write` sets, every one of them. Not
/// `FlexTensor::empty`, which zeroes its buffer and then copies it to realign it.
pub fn new_f32(shape: Shape, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> FlexTensor {
    from_vec(vec_f32(shape.num_elements(), write), shape)
}

/// A new vector of `n` elements that `write` sets, every one of them, without zeroing first.
pub fn vec_f32(n: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut data = Vec::with_capacity(n);
    write(&mut data.spare_capacity_mut()[..n]);
    // SAFETY: `write` is required to initialise all `n` elements; the callers' kernels (a full
    // element-wise map, or a gemm that writes its whole destination) do.
    unsafe { data.set_len(n) };
    data
}

/// A row-major `f32` tensor of `shape` holding `values`, which must have its element count.
pub fn from_vec(values: Vec<f32>, shape: Shape) -> FlexTensor {
    assert_eq!(
        values.len(),
        shape.num_elements(),
        "from_vec: shape disagrees"
    );
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// `t` itself when its elements are one dense run of its storage, else a dense copy.
pub fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.layout().contiguous_offsets().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The storage range of a [`contiguous`] tensor's elements.
pub fn offsets(t: &FlexTensor) -> (usize, usize) {
    t.layout()
        .contiguous_offsets()
        .expect("to_contiguous gives a dense layout")
}

/// The elements of a [`contiguous`] `f32` tensor.
pub fn dense(t: &FlexTensor) -> &[f32] {
    let (start, end) = offsets(t);
    &t.storage::<f32>()[start..end]
}
