//! The fused convolution on burn's Flex CPU backend: `f32` tensors in the layout burn gives
//! them (`[n, c, h, w]`, made dense when they are views); other dtypes and geometries take
//! burn's own convolution.

use super::patches::ConvShape;
use super::{ConvOps, composed};
use crate::buffer::{contiguous, dense, from_vec, vec_f32};
use crate::matrix::{Matrix, gemm_into};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{DType, TensorMetadata};
use rayon::prelude::*;
use std::mem::MaybeUninit;

impl ConvOps for Flex {
    fn fused_conv2d(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        geometry: [usize; 2],
    ) -> FlexTensor {
        let shape = fits(&[&x, &w, &b], geometry).filter(|s| b.shape().dims::<1>() == [s.co]);
        let Some(s) = shape else {
            return composed::conv2d::<Self>(x, w, b, geometry);
        };
        let (x, w, b) = (contiguous(x), contiguous(w), contiguous(b));
        let y = forward(&s, dense(&x), dense(&w), dense(&b));
        from_vec(y, [s.n, s.co, s.ho, s.wo].into())
    }

    fn conv2d_grad_input(
        x: FlexTensor,
        w: FlexTensor,
        g: FlexTensor,
        geometry: [usize; 2],
    ) -> FlexTensor {
        let Some(s) = fits(&[&x, &w, &g], geometry).filter(|s| output_is(&g, s)) else {
            return composed::grad_input::<Self>(x, w, g, geometry);
        };
        let (w, g) = (contiguous(w), contiguous(g));
        from_vec(
            grad_input(&s, dense(&w), dense(&g)),
            [s.n, s.c, s.h, s.w].into(),
        )
    }

    fn conv2d_grad_weight(
        x: FlexTensor,
        w: FlexTensor,
        g: FlexTensor,
        geometry: [usize; 2],
    ) -> FlexTensor {
        let Some(s) = fits(&[&x, &w, &g], geometry).filter(|s| output_is(&g, s)) else {
            return composed::grad_weight::<Self>(x, w, g, geometry);
        };
        let (x, g) = (contiguous(x), contiguous(g));
        from_vec(
            grad_weight(&s, dense(&x), dense(&g)),
            [s.co, s.c, s.k, s.k].into(),
        )
    }

    fn conv2d_grad_bias(x: FlexTensor, b: FlexTensor, g: FlexTensor) -> FlexTensor {
        let dims = g.shape();
        if g.dtype() != DType::F32 || dims.num_dims() != 4 || b.shape().dims::<1>() != [dims[1]] {
            return composed::grad_bias::<Self>(x, b, g);
        }
        let g = contiguous(g);
        let (co, pixels) = (dims[1], dims[2] * dims[3]);
        let g = dense(&g);
        let sums = (0..co)
            .into_par_iter()
            .map(|o| {
                g.chunks(co * pixels)
                    .map(|image| image[o * pixels..][..pixels].iter().sum::<f32>())
                    .sum()
            })
            .collect();
        from_vec(sums, [co].into())
    }
}

/// The shape of the convolution of `tensors[0]` (`x`) by `tensors[1]` (`w`) when all of
/// `tensors` are `f32` and the geometry fits the fused kernels.
fn fits(tensors: &[&FlexTensor], geometry: [usize; 2]) -> Option<ConvShape> {
    if tensors.iter().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    ConvShape::new(
        tensors[0].shape().as_slice(),
        tensors[1].shape().as_slice(),
        geometry,
    )
}

/// Whether `g` has the convolution's output shape.
fn output_is(g: &FlexTensor, s: &ConvShape) -> bool {
    g.shape().as_slice() == [s.n, s.co, s.ho, s.wo]
}

/// gemm's threads for one image's product: none when the images alone keep the pool busy.
fn per_image(s: &ConvShape) -> gemm::Parallelism {
    if s.n >= rayon::current_num_threads() {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    }
}

/// `y_n = b + w patches(x_n)` for every image, one rayon task each: `[n, co, ho, wo]`.
fn forward(s: &ConvShape, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (pixels, out) = (s.pixels(), s.co * s.pixels());
    let wm = Matrix::row_major(w, s.co, s.patch_rows());
    vec_f32(s.n * out, |y| {
        y.par_chunks_mut(out)
            .zip(x.par_chunks(s.image()))
            .for_each_init(Vec::new, |buf, (y, x)| {
                for (row, &bias) in y.chunks_mut(pixels).zip(b) {
                    row.fill(MaybeUninit::new(bias));
                }
                gemm_into(y, wm, s.patches(x, buf), true, per_image(s));
            })
    })
}

/// `dL/dx_n = col2im(w^T g_n)` for every image, one rayon task each: `[n, c, h, w]`.
fn grad_input(s: &ConvShape, w: &[f32], g: &[f32]) -> Vec<f32> {
    let (rows, pixels) = (s.patch_rows(), s.pixels());
    let wt = Matrix::row_major(w, s.co, rows).t();
    let mut dx = vec![0.0; s.n * s.image()];
    dx.par_chunks_mut(s.image())
        .zip(g.par_chunks(s.co * pixels))
        .for_each_init(Vec::new, |cols, (dx, g)| {
            let gm = Matrix::row_major(g, s.co, pixels);
            if s.pointwise() {
                return gemm_into(uninit(dx), wt, gm, false, per_image(s));
            }
            cols.resize(rows * pixels, 0.0);
            gemm_into(uninit(cols), wt, gm, false, per_image(s));
            s.add_patches(cols, dx);
        });
    dx
}

/// `dL/dw = sum_n g_n patches(x_n)^T`: the batch split into one run of images per thread, each
/// summing into a partial `[co, c k k]`, then the partials added: `[co, c, k, k]`.
fn grad_weight(s: &ConvShape, x: &[f32], g: &[f32]) -> Vec<f32> {
    let (rows, pixels) = (s.patch_rows(), s.pixels());
    let per = s.n.div_ceil(rayon::current_num_threads().min(s.n));
    let parallelism = if per == s.n {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per * s.image())
        .zip(g.par_chunks(per * s.co * pixels))
        .map(|(x, g)| {
            let mut sum = vec![0.0; s.co * rows];
            let mut buf = Vec::new();
            for (x, g) in x.chunks(s.image()).zip(g.chunks(s.co * pixels)) {
                let gm = Matrix::row_major(g, s.co, pixels);
                gemm_into(
                    uninit(&mut sum),
                    gm,
                    s.patches(x, &mut buf).t(),
                    true,
                    parallelism,
                );
            }
            sum
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut sum = parts.next().expect("at least one image");
    for part in parts {
        sum.iter_mut().zip(&part).for_each(|(a, &b)| *a += b);
    }
    sum
}

/// `values` as the destination of a product that overwrites or accumulates onto them.
fn uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and every writer stores initialised `f32`s,
    // so the slice stays initialised for its owner.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}
