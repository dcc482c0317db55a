//! Strided `f32` matrices in tensor storage, and the one `gemm` call every fused product makes.

use crate::buffer::vec_f32;
use burn::backend::DType;
use burn::backend::flex::FlexTensor;
use std::mem::MaybeUninit;

/// Products with fewer output columns than this (the last layer's, 2 for 2-D data) are split
/// over the pool by rows, where gemm would run them on one thread; with a sum longer than their
/// rows (that layer's weight gradient) they are computed transposed (`gemm_into`).
pub(crate) const THIN: usize = 16;

/// A strided `f32` matrix in a Flex tensor's storage: element `(i, j)` at
/// `ptr + i rs + j cs`.
#[derive(Clone, Copy)]
pub(crate) struct Matrix {
    pub ptr: *const f32,
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: a `Matrix` is a read-only view; the storage it points into outlives every use (the
// tensors are held by the caller across the product), so sharing it between threads is sound.
unsafe impl Send for Matrix {}
unsafe impl Sync for Matrix {}

impl Matrix {
    /// The view of a rank-2 `f32` tensor (any strides, as burn-flex's views leave them).
    pub fn of(t: &FlexTensor) -> Option<Self> {
        let layout = t.layout();
        if t.dtype() != DType::F32 || layout.num_dims() != 2 {
            return None;
        }
        let storage = t.storage::<f32>();
        Some(Self {
            // SAFETY: a layout's start offset lies inside its storage.
            ptr: unsafe { storage.as_ptr().add(layout.start_offset()) },
            rows: layout.shape()[0],
            cols: layout.shape()[1],
            rs: layout.strides()[0],
            cs: layout.strides()[1],
        })
    }

    /// A dense row-major `rows x cols` matrix over `values` (which must hold that many).
    pub fn row_major(values: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(values.len(), rows * cols, "row_major: size disagrees");
        Self {
            ptr: values.as_ptr(),
            rows,
            cols,
            rs: cols as isize,
            cs: 1,
        }
    }

    /// Rows `start..start + rows` of this matrix.
    pub fn rows_from(self, start: usize, rows: usize) -> Self {
        assert!(start + rows <= self.rows, "rows_from: rows out of range");
        Self {
            // SAFETY: row `start` lies inside the viewed storage (checked above).
            ptr: unsafe { self.ptr.offset(start as isize * self.rs) },
            rows,
            ..self
        }
    }

    /// The transpose: the same elements, strides swapped.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// `dst = [dst +] lhs rhs` for a row-major `dst` of `lhs.rows x rhs.cols` elements, which must
/// be initialised when `accumulate` is set.
pub(crate) fn gemm_into(
    dst: &mut [MaybeUninit<f32>],
    lhs: Matrix,
    rhs: Matrix,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(
        dst.len() == m * n && rhs.rows == k,
        "gemm_into: shapes disagree"
    );
    if n < THIN && k > m && m >= THIN {
        // A few output columns and a long sum (the last layer's weight gradient, 512 x 2 over
        // a batch of 4096): gemm runs the transposed product 4x faster (0.35 ms against 1.43
        // on one thread), as a row-major `n x m` that is then transposed into place.
        let t = vec_f32(m * n, |t| {
            gemm_into(t, rhs.t(), lhs.t(), false, parallelism)
        });
        for (i, row) in dst.chunks_mut(n).enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                // SAFETY: `dst` is initialised when `accumulate` is set.
                let old = if accumulate {
                    unsafe { d.assume_init() }
                } else {
                    0.0
                };
                *d = MaybeUninit::new(old + t[j * m + i]);
            }
        }
        return;
    }
    // SAFETY: `dst` holds `m n` elements, written row-major (row stride `n`); `lhs` and `rhs`
    // point into live storages with the given shapes and strides. gemm computes
    // `dst = alpha dst + beta lhs rhs` and reads `dst` only when `read_dst` is set, which the
    // caller does only once `dst` is initialised.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().cast::<f32>(),
            1,
            n as isize,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
