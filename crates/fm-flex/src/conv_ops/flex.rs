//! The fused convolution on burn's Flex CPU backend: `f32` tensors in the layout burn gives
//! them (`[n, c, h, w]`; images read where they lie when each is dense, as a concatenation's
//! gradient leaves them, else copied); other dtypes and geometries take burn's own
//! convolution. An upsampled input is upsampled one image at a time, in each task's scratch,
//! and its gradient summed back from the gradient of the image convolved.

use super::patches::ConvShape;
use super::{ConvOps, composed, direct, winograd};
use crate::buffer::{Batch, contiguous, dense, from_vec, vec_f32};
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
        geometry: [usize; 3],
    ) -> FlexTensor {
        let shape = fits(&[&x, &w, &b], geometry).filter(|s| b.shape().dims::<1>() == [s.co]);
        let Some(s) = shape else {
            return composed::conv2d::<Self>(x, w, b, geometry);
        };
        let (x, w, b) = (Batch::readable(x), contiguous(w), contiguous(b));
        let y = forward(&s, images(&x), dense(&w), dense(&b));
        from_vec(y, [s.n, s.co, s.ho, s.wo].into())
    }

    fn conv2d_grad_input(
        x: FlexTensor,
        w: FlexTensor,
        g: FlexTensor,
        geometry: [usize; 3],
    ) -> FlexTensor {
        let Some(s) = fits(&[&x, &w, &g], geometry).filter(|s| output_is(&g, s)) else {
            return composed::grad_input::<Self>(x, w, g, geometry);
        };
        let (w, g) = (contiguous(w), Batch::readable(g));
        from_vec(grad_input(&s, dense(&w), images(&g)), s.input_dims().into())
    }

    fn conv2d_grad_weight(
        x: FlexTensor,
        w: FlexTensor,
        g: FlexTensor,
        geometry: [usize; 3],
    ) -> FlexTensor {
        let Some(s) = fits(&[&x, &w, &g], geometry).filter(|s| output_is(&g, s)) else {
            return composed::grad_weight::<Self>(x, w, g, geometry);
        };
        let (x, g) = (Batch::readable(x), Batch::readable(g));
        from_vec(
            grad_weight(&s, images(&x), images(&g)),
            [s.co, s.c, s.k, s.k].into(),
        )
    }

    fn conv2d_grad_bias(x: FlexTensor, b: FlexTensor, g: FlexTensor) -> FlexTensor {
        let dims = g.shape();
        if g.dtype() != DType::F32 || dims.num_dims() != 4 || b.shape().dims::<1>() != [dims[1]] {
            return composed::grad_bias::<Self>(x, b, g);
        }
        let g = Batch::readable(g);
        // An empty batch has no images to read: burn's path sums nothing.
        let Some(batch) = Batch::of(&g) else {
            return composed::grad_bias::<Self>(x, b, g);
        };
        let (co, pixels) = (dims[1], dims[2] * dims[3]);
        let sums = (0..co)
            .into_par_iter()
            .map(|o| {
                batch
                    .images()
                    .map(|image| image[o * pixels..][..pixels].iter().sum::<f32>())
                    .sum()
            })
            .collect();
        from_vec(sums, [co].into())
    }
}

/// The shape of the convolution of `tensors[0]` (`x`) by `tensors[1]` (`w`) when all of
/// `tensors` are `f32` and the geometry fits the fused kernels.
fn fits(tensors: &[&FlexTensor], geometry: [usize; 3]) -> Option<ConvShape> {
    if tensors.iter().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    ConvShape::new(
        tensors[0].shape().as_slice(),
        tensors[1].shape().as_slice(),
        geometry,
    )
}

/// The images of a tensor that [`Batch::readable`] gave.
fn images(t: &FlexTensor) -> Batch<'_> {
    Batch::of(t).expect("Batch::readable gives readable images")
}

/// Whether `g` has the convolution's output shape.
fn output_is(g: &FlexTensor, s: &ConvShape) -> bool {
    g.shape().as_slice() == [s.n, s.co, s.ho, s.wo]
}

/// Columns a product should have at least: the images of a group sit side by side in one
/// product until their output pixels reach this. One 7x7 image (49 columns) left gemm's
/// microkernel a quarter idle on its last panel and packed its operands anew for every image.
const GROUP_COLUMNS: usize = 512;

/// The batch cut into groups of images, one product each.
struct Groups {
    /// Images in a group (the last may have fewer).
    size: usize,
    /// gemm's threads for one group's product: none when the groups alone keep the pool busy.
    parallelism: gemm::Parallelism,
}

impl Groups {
    /// Groups of `s`'s batch on the current pool, each image `columns` columns of the product:
    /// as many images as reach [`GROUP_COLUMNS`], in a multiple of the pool's threads (at
    /// least one group each, where the batch allows); single images for a pointwise
    /// convolution.
    fn of(s: &ConvShape, columns: usize) -> Self {
        let threads = rayon::current_num_threads();
        // A pointwise convolution's single image is its own patch matrix: no copy at all.
        let size = if s.pointwise() {
            1
        } else {
            // Whole rounds over the pool: three groups on two threads would leave one idle for
            // a third of the pass, so the group count is cut to a multiple of the threads.
            let groups = s.n.div_ceil(GROUP_COLUMNS.div_ceil(columns));
            let rounds = (groups / threads).max(1);
            s.n.div_ceil(rounds * threads)
        };
        let parallelism = if s.n.div_ceil(size) >= threads {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(0)
        };
        Self { size, parallelism }
    }
}

/// Per-task buffers: a group's patch matrix (or Winograd's transformed tiles), its gathered
/// output rows (or the Winograd transforms' scratch), one upsampled image, Winograd's
/// products (or, for the weight gradient, their transformed gradient), and the direct
/// kernel's padded images and offsets.
#[derive(Default)]
struct Scratch {
    patches: Vec<f32>,
    rows: Vec<f32>,
    upsampled: Vec<f32>,
    products: Vec<f32>,
    direct: direct::Buffers,
}

/// The patch matrices of the images `x` side by side, `[c k k, images ho wo]`: the image
/// itself for one image of a pointwise convolution, else gathered into `buf` (from each
/// image upsampled into `upsampled` first, when the convolution upsamples).
fn patches(s: &ConvShape, x: Batch, buf: &mut Vec<f32>, upsampled: &mut Vec<f32>) -> Matrix {
    let (rows, pixels) = (s.patch_rows(), s.pixels());
    let cols = x.count() * pixels;
    if let Some(image) = x.single().filter(|_| s.pointwise()) {
        return Matrix::row_major(image, rows, cols);
    }
    buf.resize(rows * cols, 0.0);
    for (j, x) in x.images().enumerate() {
        let x = if s.up > 1 {
            s.upsample(x, upsampled);
            upsampled.as_slice()
        } else {
            x
        };
        s.gather(x, &mut buf[j * pixels..], cols);
    }
    Matrix::row_major(buf, rows, cols)
}

/// The images' blocks `[rows, pixels]` side by side as one `[rows, images pixels]` matrix:
/// the block itself for one image, else copied into `buf`.
fn side_by_side(blocks: Batch, rows: usize, pixels: usize, buf: &mut Vec<f32>) -> Matrix {
    let cols = blocks.count() * pixels;
    if let Some(block) = blocks.single() {
        return Matrix::row_major(block, rows, cols);
    }
    buf.resize(rows * cols, 0.0);
    for (j, block) in blocks.images().enumerate() {
        for (r, src) in block.chunks(pixels).enumerate() {
            buf[r * cols + j * pixels..][..pixels].copy_from_slice(src);
        }
    }
    Matrix::row_major(buf, rows, cols)
}

/// `y_n = b + w patches(x_n)` for every image, one product and one rayon task per group of
/// images: `[n, co, ho, wo]`. A group of several images needs its output copied back into
/// each image's block anyway, so its product is computed transposed, `patches^T w^T`
/// (`[images ho wo, co]`), and the copy is the transpose: gemm then reads the patch matrix in
/// place instead of packing a copy of it (104 -> 111 GFLOP/s for eleven 7x7 images on one
/// thread, `sgemm_f32/conv_*` in benches/kernels.rs).
fn forward(s: &ConvShape, x: Batch, w: &[f32], b: &[f32]) -> Vec<f32> {
    if winograd::applies(s) {
        return forward_winograd(s, x, w, b);
    }
    let groups = Groups::of(s, s.pixels());
    if direct::applies(s) && matches!(groups.parallelism, gemm::Parallelism::None) {
        return forward_direct(s, x, w, b, groups.size);
    }
    let out = s.co * s.pixels();
    let wm = Matrix::row_major(w, s.co, s.patch_rows());
    vec_f32(s.n * out, |y| {
        y.par_chunks_mut(groups.size * out)
            .zip(x.par_split(groups.size))
            .for_each_init(Scratch::default, |scratch, (y, x)| {
                let p = patches(s, x, &mut scratch.patches, &mut scratch.upsampled);
                if p.cols == s.pixels() {
                    // One image: its product lands in place, onto the bias.
                    for (row, &bias) in y.chunks_mut(p.cols).zip(b) {
                        row.fill(MaybeUninit::new(bias));
                    }
                    return gemm_into(y, wm, p, true, groups.parallelism);
                }
                scratch.rows.resize(p.cols * s.co, 0.0);
                gemm_into(
                    uninit(&mut scratch.rows),
                    p.t(),
                    wm.t(),
                    false,
                    groups.parallelism,
                );
                untranspose(&scratch.rows, s, b, y);
            })
    })
}

/// The forward pass of a 3x3 convolution by the direct kernel, one rayon task per group of
/// `group` images.
fn forward_direct(s: &ConvShape, x: Batch, w: &[f32], b: &[f32], group: usize) -> Vec<f32> {
    let out = s.co * s.pixels();
    let packed = direct::pack_weights(s, w);
    vec_f32(s.n * out, |y| {
        y.par_chunks_mut(group * out)
            .zip(x.par_split(group))
            .for_each_init(Scratch::default, |scratch, (y, x)| {
                direct::convolve(s, x, &packed, b, y, &mut scratch.direct);
            })
    })
}

/// The forward pass of a 3x3 same-size convolution by Winograd's F(2x2, 3x3), one rayon task
/// per group of images: their tiles transformed, 16 products, the outputs transformed back.
fn forward_winograd(s: &ConvShape, x: Batch, w: &[f32], b: &[f32]) -> Vec<f32> {
    let tiles = winograd::tiles(s);
    let groups = Groups::of(s, tiles);
    let out = s.co * s.pixels();
    let u = winograd::weights(s, w);
    vec_f32(s.n * out, |y| {
        y.par_chunks_mut(groups.size * out)
            .zip(x.par_split(groups.size))
            .for_each_init(Scratch::default, |scratch, (y, x)| {
                let v = &mut scratch.patches;
                winograd::transform_input(s, x, v, &mut scratch.rows, &mut scratch.upsampled);
                let m = &mut scratch.products;
                m.resize(winograd::XI * x.count() * tiles * s.co, 0.0);
                winograd::products(s, v, &u, uninit(m), groups.parallelism);
                winograd::transform_output(s, m, b, y, &mut scratch.rows);
            })
    })
}

/// The images' outputs `[co, ho wo]` (one after the other in `y`) from their transposes side by
/// side, `yt` (`[images ho wo, co]`), plus the bias.
fn untranspose(yt: &[f32], s: &ConvShape, b: &[f32], y: &mut [MaybeUninit<f32>]) {
    let pixels = s.pixels();
    for (yt, y) in yt.chunks(pixels * s.co).zip(y.chunks_mut(s.co * pixels)) {
        for (q, row) in yt.chunks(s.co).enumerate() {
            for (o, (&v, &bias)) in row.iter().zip(b).enumerate() {
                y[o * pixels + q] = MaybeUninit::new(v + bias);
            }
        }
    }
}

/// `dL/dx_n = col2im(w^T g_n)` for every image, one product and one rayon task per group of
/// images, summed back over each upsampled pixel's copies when the convolution upsamples:
/// `[n, c, h / up, w / up]`.
fn grad_input(s: &ConvShape, w: &[f32], g: Batch) -> Vec<f32> {
    let dx = grad_convolved(s, w, g);
    if s.up == 1 {
        return dx;
    }
    let input = s.image() / (s.up * s.up);
    let mut sums = vec![0.0; s.n * input];
    sums.par_chunks_mut(input)
        .zip(dx.par_chunks(s.image()))
        .for_each(|(sums, dx)| s.downsample_sum(dx, sums));
    sums
}

/// The gradient with respect to the image convolved, `[n, c, h, w]`.
fn grad_convolved(s: &ConvShape, w: &[f32], g: Batch) -> Vec<f32> {
    let faster = |t: &ConvShape| {
        winograd::applies(t) || direct::applies(t) || t.patch_rows() < s.patch_rows()
    };
    if let Some(t) = s.transposed().filter(faster) {
        // The input gradient as the forward pass of the transposed convolution: Winograd's or
        // the direct kernel where they apply; else its patch matrix has `co k k` rows where
        // `w^T g` has `c k k`. Either way it writes `dx` directly, with no col2im.
        return forward(&t, g, &s.flipped_weights(w), &vec![0.0; s.c]);
    }
    let groups = Groups::of(s, s.pixels());
    let (rows, pixels) = (s.patch_rows(), s.pixels());
    let wt = Matrix::row_major(w, s.co, rows).t();
    let mut dx = vec![0.0; s.n * s.image()];
    dx.par_chunks_mut(groups.size * s.image())
        .zip(g.par_split(groups.size))
        .for_each_init(Scratch::default, |scratch, (dx, g)| {
            let gm = side_by_side(g, s.co, pixels, &mut scratch.rows);
            if s.pointwise() && gm.cols == pixels {
                return gemm_into(uninit(dx), wt, gm, false, groups.parallelism);
            }
            let cols = &mut scratch.patches;
            cols.resize(rows * gm.cols, 0.0);
            gemm_into(uninit(cols), wt, gm, false, groups.parallelism);
            for (j, dx) in dx.chunks_mut(s.image()).enumerate() {
                s.add_patches(&mut cols[j * pixels..], gm.cols, dx);
            }
        });
    dx
}

/// `dL/dw = sum_n g_n patches(x_n)^T`, `[co, c, k, k]`: by Winograd's transforms where they
/// apply, else summed transposed, `sum_n patches(x_n) g_n^T` (`[c k k, co]`): gemm then reads
/// the patch matrix in place instead of packing it (92 -> 111 GFLOP/s for eleven 7x7 images on
/// one thread, `sgemm_f32/conv_*` in benches/kernels.rs), and the sum is transposed once at the
/// end.
fn grad_weight(s: &ConvShape, x: Batch, g: Batch) -> Vec<f32> {
    if winograd::applies(s) {
        return grad_weight_winograd(s, x, g);
    }
    let (rows, pixels) = (s.patch_rows(), s.pixels());
    let group = Groups::of(s, pixels).size;
    if direct::applies(s) {
        return summed(s, x, g, group, s.co * rows, |x, g, sum, scratch, _| {
            direct::add_weight_gradient(s, x, g, sum, &mut scratch.direct)
        });
    }
    let sum = summed(
        s,
        x,
        g,
        group,
        rows * s.co,
        |x, g, sum, scratch, parallelism| {
            let gm = side_by_side(g, s.co, pixels, &mut scratch.rows);
            let p = patches(s, x, &mut scratch.patches, &mut scratch.upsampled);
            gemm_into(uninit(sum), p, gm.t(), true, parallelism);
        },
    );
    let mut dw = vec![0.0; s.co * rows];
    for (r, row) in sum.chunks(s.co).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            dw[o * rows + r] = v;
        }
    }
    dw
}

/// The weight gradient of a 3x3 same-size convolution by Winograd's F(2x2, 3x3): per group of
/// images, their input tiles `V` and the products' gradient `dM` transformed, then `dU += dM
/// V^T` at each of the 16 positions (`[co, tiles] x [tiles, c]`, 2.25x fewer multiplications
/// than `g patches^T`), and `dw = G^T dU G` once at the end.
fn grad_weight_winograd(s: &ConvShape, x: Batch, g: Batch) -> Vec<f32> {
    let group = Groups::of(s, winograd::tiles(s)).size;
    let len = winograd::XI * s.co * s.c;
    let du = summed(s, x, g, group, len, |x, g, sum, scratch, parallelism| {
        let v = &mut scratch.patches;
        winograd::transform_input(s, x, v, &mut scratch.rows, &mut scratch.upsampled);
        let dm = &mut scratch.products;
        winograd::transform_gradient(s, g, dm, &mut scratch.rows);
        winograd::weight_products(s, dm, v, uninit(sum), parallelism);
    });
    winograd::weight_gradient(s, &du)
}

/// `sum_groups add(x, g)` over the batch's groups of `group` images, `len` values: the groups
/// split into one run per thread, each adding into a partial (`add` accumulates onto `sum`),
/// then the partials added.
fn summed<F>(s: &ConvShape, x: Batch, g: Batch, group: usize, len: usize, add: F) -> Vec<f32>
where
    F: Fn(Batch, Batch, &mut [f32], &mut Scratch, gemm::Parallelism) + Sync,
{
    let count = s.n.div_ceil(group);
    let per = count.div_ceil(rayon::current_num_threads().min(count)) * group;
    let parallelism = if per >= s.n {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let partials: Vec<Vec<f32>> = x
        .par_split(per)
        .zip(g.par_split(per))
        .map(|(x, g)| {
            let mut sum = vec![0.0; len];
            let mut scratch = Scratch::default();
            for (x, g) in x.split(group).zip(g.split(group)) {
                add(x, g, &mut sum, &mut scratch, parallelism);
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
