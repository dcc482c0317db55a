//! The fused linear layer on burn's Flex CPU backend: `f32` matrices of any strides go straight
//! to `gemm`; other dtypes take the composition.

use super::{LinearOps, composed};
use crate::buffer::{contiguous, from_vec, new_f32, offsets, vec_f32};
use crate::matrix::{Matrix, THIN, gemm_into};
use crate::silu_ops::kernel;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{DType, Shape, TensorMetadata};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Products of at least this many multiply-adds (m n k) are split over rayon's pool. burn-flex
/// uses 192^3; lower here because the thin products of the first and last layers (4096 x 512 by
/// 512 x 2: 4M) read a whole activation, and run serially they leave the other cores idle.
const PARALLEL_WORK: usize = 1 << 20;

/// Rows per rayon task when filling or reducing `[m, n]` row by row, and the fewest rows of a
/// block when a thin product is split.
const ROWS: usize = 64;

/// Products whose inner size is at least this many times their larger output side (a weight
/// gradient: 512 x 512 summed over a batch of 4096) are split along the sum, one partial
/// product per thread. gemm splits the output instead, which for so few output tiles left two
/// threads at 234-262 GFLOP/s where the split reached 255-295 (five interleaved runs; forward
/// products: 345).
const LONG_SUM: usize = 4;

impl LinearOps for Flex {
    fn fused_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        let Some((xm, wm)) = operands(&x, &w, &b) else {
            return composed::linear::<Self>(x, w, b);
        };
        let b = contiguous(b);
        product(xm, wm, Some(bias_slice(&b)), [xm.rows, wm.cols].into())
            .unwrap_or_else(|| composed::linear::<Self>(x, w, b))
    }

    fn fused_linear_silu(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        let Some(mut z) = bare_product(&x, &w, &b) else {
            return composed::linear_silu::<Self>(x, w, b).1;
        };
        let b = contiguous(b);
        // A new product is its own storage: the activation overwrites it.
        kernel::bias_silu_inplace(z.storage_mut::<f32>(), bias_slice(&b));
        z
    }

    fn linear_silu_parts(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> (FlexTensor, FlexTensor) {
        let Some(z) = bare_product(&x, &w, &b) else {
            return composed::linear_silu::<Self>(x, w, b);
        };
        let b = contiguous(b);
        let h = new_f32(z.shape(), |h| {
            kernel::bias_silu(z.storage::<f32>(), bias_slice(&b), h)
        });
        (z, h)
    }

    fn bias_silu_backward(z: FlexTensor, b: FlexTensor, g: FlexTensor) -> (FlexTensor, FlexTensor) {
        let shape = z.shape();
        let fits = [&z, &b, &g].iter().all(|t| t.dtype() == DType::F32)
            && shape.num_dims() == 2
            && g.shape() == shape
            && b.shape().num_dims() == 1
            && b.shape()[0] == shape[1]
            && shape[1] > 0;
        if !fits {
            return composed::bias_silu_backward::<Self>(z, b, g);
        }
        let (z, b, mut g) = (contiguous(z), contiguous(b), contiguous(g));
        let (zs, ze) = offsets(&z);
        let (gs, ge) = offsets(&g);
        // Copy-on-write: an owned upstream gradient (the usual case) is overwritten in place.
        let sums = kernel::bias_silu_backward_inplace(
            &z.storage::<f32>()[zs..ze],
            bias_slice(&b),
            &mut g.storage_mut::<f32>()[gs..ge],
        );
        let n = sums.len();
        (g, from_vec(sums, [n].into()))
    }

    fn linear_grad_input(g: FlexTensor, w: FlexTensor) -> FlexTensor {
        match (Matrix::of(&g), Matrix::of(&w)) {
            (Some(gm), Some(wm)) => product(gm, wm.t(), None, [gm.rows, wm.rows].into()),
            _ => None,
        }
        .unwrap_or_else(|| composed::grad_input::<Self>(g, w))
    }

    fn linear_grad_weight(x: FlexTensor, g: FlexTensor) -> FlexTensor {
        match (Matrix::of(&x), Matrix::of(&g)) {
            (Some(xm), Some(gm)) => product(xm.t(), gm, None, [xm.cols, gm.cols].into()),
            _ => None,
        }
        .unwrap_or_else(|| composed::grad_weight::<Self>(x, g))
    }

    fn linear_grad_bias(g: FlexTensor) -> FlexTensor {
        if Matrix::of(&g).is_none() {
            return composed::grad_bias::<Self>(g);
        }
        let g = contiguous(g);
        let (start, end) = offsets(&g);
        let n = g.shape()[1];
        from_vec(column_sums(&g.storage::<f32>()[start..end], n), [n].into())
    }
}

/// The views of `x` and `w` when `x w + b` fits the fused kernels: `f32` matrices and a bias
/// of `f32` with one element per output column.
fn operands(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> Option<(Matrix, Matrix)> {
    let (xm, wm) = (Matrix::of(x)?, Matrix::of(w)?);
    let bias_fits = b.dtype() == DType::F32 && b.shape().num_dims() == 1 && b.shape()[0] == wm.cols;
    bias_fits.then_some((xm, wm))
}

/// `x w` without the bias (which the SiLU pass adds), when `x w + b` fits the fused kernels.
fn bare_product(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> Option<FlexTensor> {
    let (xm, wm) = operands(x, w, b)?;
    product(xm, wm, None, [xm.rows, wm.cols].into())
}

/// The elements of a [`contiguous`] bias.
fn bias_slice(b: &FlexTensor) -> &[f32] {
    let (start, end) = offsets(b);
    &b.storage::<f32>()[start..end]
}

/// `[bias rows +] lhs rhs` as a new row-major tensor of `shape` (`m n` elements), in gemm calls
/// that accumulate onto the broadcast bias. `None` for an empty product (gemm would not write
/// the output) or mismatched inner sizes.
fn product(lhs: Matrix, rhs: Matrix, bias: Option<&[f32]>, shape: Shape) -> Option<FlexTensor> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if m == 0 || n == 0 || k == 0 || rhs.rows != k || shape.num_elements() != m * n {
        return None;
    }
    Some(new_f32(shape, |dst| {
        if let Some(bias) = bias {
            dst.par_chunks_mut(n * ROWS).for_each(|rows| {
                for row in rows.chunks_mut(n) {
                    row.iter_mut()
                        .zip(bias)
                        .for_each(|(d, &b)| *d = MaybeUninit::new(b));
                }
            });
        }
        let accumulate = bias.is_some();
        if m * n * k < PARALLEL_WORK {
            gemm_into(dst, lhs, rhs, accumulate, gemm::Parallelism::None);
        } else if k >= LONG_SUM * m.max(n) && rayon::current_num_threads() > 1 {
            split_sum(dst, lhs, rhs, accumulate);
        } else if n < THIN {
            // gemm runs a product with so few output columns on one thread: split its rows.
            let rows = m.div_ceil(rayon::current_num_threads()).max(ROWS);
            dst.par_chunks_mut(rows * n)
                .enumerate()
                .for_each(|(i, block)| {
                    let lhs = lhs.rows_from(i * rows, block.len() / n);
                    gemm_into(block, lhs, rhs, accumulate, gemm::Parallelism::None);
                });
        } else {
            gemm_into(dst, lhs, rhs, accumulate, gemm::Parallelism::Rayon(0));
        }
    }))
}

/// [`gemm_into`] with the inner sum split into one range per thread: the first range's product
/// goes to `dst`, the others' to partial buffers that are then added into it.
fn split_sum(dst: &mut [MaybeUninit<f32>], lhs: Matrix, rhs: Matrix, accumulate: bool) {
    let k = lhs.cols;
    let per = k.div_ceil(rayon::current_num_threads());
    let ranges: Vec<(usize, usize)> = (0..k).step_by(per).map(|s| (s, per.min(k - s))).collect();
    let ((start, len), rest) = ranges.split_first().expect("k > 0");
    let size = dst.len();
    let part = |start: usize, len: usize, dst: &mut [MaybeUninit<f32>], accumulate: bool| {
        let lhs = lhs.t().rows_from(start, len).t();
        gemm_into(
            dst,
            lhs,
            rhs.rows_from(start, len),
            accumulate,
            gemm::Parallelism::None,
        );
    };
    let (_, partials) = rayon::join(
        || part(*start, *len, dst, accumulate),
        || {
            rest.par_iter()
                .map(|&(start, len)| vec_f32(size, |p| part(start, len, p, false)))
                .collect::<Vec<Vec<f32>>>()
        },
    );
    dst.par_chunks_mut(CHUNK_ADD)
        .enumerate()
        .for_each(|(i, d)| {
            for p in &partials {
                let p = &p[i * CHUNK_ADD..];
                // SAFETY: the first range's product initialised `dst`.
                d.iter_mut()
                    .zip(p)
                    .for_each(|(d, &p)| unsafe { *d.assume_init_mut() += p });
            }
        });
}

/// Elements per rayon task when adding partial products.
const CHUNK_ADD: usize = 1 << 14;

/// `sum_i g[i, :]` of a row-major `[m, n]` slice: partial sums over blocks of rows on rayon's
/// pool, then their sum.
fn column_sums(g: &[f32], n: usize) -> Vec<f32> {
    let add = |mut acc: Vec<f32>, row: &[f32]| {
        acc.iter_mut().zip(row).for_each(|(a, &r)| *a += r);
        acc
    };
    g.par_chunks(n * ROWS)
        .map(|block| block.chunks(n).fold(vec![0.0; n], add))
        .reduce(|| vec![0.0; n], |a, b| add(a, &b))
}
