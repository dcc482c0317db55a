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

/// A batch of images of `len` elements each, image `i` at `data[i * stride..][..len]`:
/// `stride > len` for a channel slice of a larger tensor, which is what a concatenation's
/// gradient hands each of its inputs (the U-Nets' skip connections), read in place instead of
/// copied.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    data: &'a [f32],
    stride: usize,
    len: usize,
}

impl<'a> Batch<'a> {
    /// The images of the `f32` tensor `t` (`[n, ...]`) when each is dense (the trailing
    /// dimensions row-major), however far apart; `None` for other layouts.
    pub fn of(t: &'a FlexTensor) -> Option<Self> {
        let layout = t.layout();
        let (dims, strides) = (layout.shape().as_slice(), layout.strides());
        let (&n, rest) = dims.split_first()?;
        let len: usize = rest.iter().product();
        let mut dense = 1;
        for (&d, &s) in rest.iter().zip(&strides[1..]).rev() {
            if d > 1 && s != dense as isize {
                return None;
            }
            dense *= d;
        }
        let stride = match n {
            1 => len,
            _ => usize::try_from(strides[0]).ok().filter(|&s| s >= len)?,
        };
        let start = layout.start_offset();
        let end = start + (n.max(1) - 1) * stride + len;
        (t.dtype() == DType::F32 && n * len > 0).then(|| Self {
            data: &t.storage::<f32>()[start..end],
            stride,
            len,
        })
    }

    /// Dense images of `len` elements each, one after the other in `data`.
    #[cfg(test)]
    pub fn dense(data: &'a [f32], len: usize) -> Self {
        Self {
            data,
            stride: len,
            len,
        }
    }

    /// `t` itself when [`Batch::of`] reads it, else a dense copy.
    pub fn readable(t: FlexTensor) -> FlexTensor {
        if Batch::of(&t).is_some() {
            t
        } else {
            t.to_contiguous()
        }
    }

    /// Images in the batch.
    pub fn count(&self) -> usize {
        self.data.len().div_ceil(self.stride)
    }

    /// Each image, in order.
    pub fn images(self) -> impl Iterator<Item = &'a [f32]> {
        self.data.chunks(self.stride).map(move |c| &c[..self.len])
    }

    /// Runs of `size` images (the last may be shorter), as batches.
    pub fn split(self, size: usize) -> impl Iterator<Item = Batch<'a>> {
        self.data
            .chunks(size * self.stride)
            .map(move |data| Self { data, ..self })
    }

    /// [`split`](Self::split) on rayon's pool.
    pub fn par_split(
        self,
        size: usize,
    ) -> impl rayon::iter::IndexedParallelIterator<Item = Batch<'a>> {
        use rayon::prelude::*;
        self.data
            .par_chunks(size * self.stride)
            .map(move |data| Self { data, ..self })
    }

    /// The only image of a batch of one.
    pub fn single(self) -> Option<&'a [f32]> {
        (self.count() == 1).then(|| &self.data[..self.len])
    }
}
