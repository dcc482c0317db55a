//! A 2-D convolution as one fused operation per direction, with its three gradients.
//!
//! burn-flex runs a 2-D convolution as a 3-D one: a layout conversion of every input on one
//! thread, a full im2col buffer, the input gradient's col2im image by image and the weight
//! gradient as another convolution whose products are 9 columns wide (the reference twin's
//! README profiled convolutions at ~83 % of a U-Net step, gemm's kernels at ~34 %). Here the
//! batch is split over rayon's pool in groups of images, one task and one `gemm` each over
//! the group's patch matrices side by side (one image at 28x28; small images together, up to
//! 512 output pixels, so that gemm's panels are full):
//! - forward: `y_n = w [co, c k k] x patches(x_n) [c k k, ho wo] + b`;
//! - weight gradient: `sum_n g_n [co, ho wo] x patches(x_n)^T`, one partial sum per thread;
//! - input gradient: `w^T g_n`, then added back into the image (col2im) in the same task; or,
//!   for a stride-1 same-size convolution that is a 3x3 or has fewer outputs than inputs, the
//!   forward pass of the transposed convolution with the flipped weights (no col2im).
//!
//! A 3x3 convolution with stride 1 and padding 1 (most of the U-Nets' work) runs as Winograd's
//! F(2x2, 3x3) instead (`winograd.rs`), where it pays (images at least 16 wide, at least 16
//! channels): its forward pass (and so its input gradient, the transposed convolution's
//! forward) as 16 products `[co, c] x [c, tiles]` over the group's transformed 4x4 input tiles,
//! and its weight gradient as 16 products `[co, tiles] x [tiles, c]`, each 2.25x fewer
//! multiplications than the patch matrix's product.
//!
//! The other 3x3 convolutions (the 14x14 and 7x7 levels, the stride-2 downsampling, the
//! decoder's upsampled ones) with at least 16 channels in and out run as an implicit product
//! on AVX2 and FMA instead (`direct.rs`): 16 output channels by 6 pixels at a time, each patch
//! entry read from the padded images at a pixel's offset plus a tap's, with no patch matrix
//! and nothing for gemm to pack; the weight gradient is the same kernel with the roles of the
//! pixels and the taps swapped (16 channels by 6 taps, summed over the pixels).
//!
//! A 1x1 convolution with stride 1 and no padding uses the image itself as its patch matrix.
//! A nearest-neighbour upsampling before the convolution (the U-Nets' decoder) is part of the
//! operation: each task upsamples one image at a time into its scratch, where burn would write
//! the whole upsampled batch and read it back, and the input gradient sums each pixel's copies.

mod autodiff;
mod direct;
mod flex;
mod patches;
mod winograd;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

/// Fused 2-D convolution with a square `k x k` kernel, the same stride `s` and padding `p` on
/// both axes, dilation 1 and one group, of the input upsampled `u` times by nearest neighbour
/// (`geometry = [s, p, u]`, `u = 1` for none): `x`: `[n, c, h, w]`, `w`: `[co, c, k, k]`, `b`:
/// `[co]`, output `[n, co, ho, wo]` with `ho = (u h + 2 p - k) / s + 1` (likewise `wo`). The
/// default bodies are burn's own interpolation, convolution and their gradients.
#[backend_extension(Flex, Autodiff)]
pub trait ConvOps: Backend {
    /// `y = conv(x, w) + b`.
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        geometry: [usize; 3],
    ) -> FloatTensor<Self> {
        composed::conv2d::<Self>(x, w, b, geometry)
    }

    /// `dL/dx`: `[n, c, h, w]`, from the upstream gradient `g = dL/dy` (`x` gives the shape).
    fn conv2d_grad_input(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        geometry: [usize; 3],
    ) -> FloatTensor<Self> {
        composed::grad_input::<Self>(x, w, g, geometry)
    }

    /// `dL/dw`: `[co, c, k, k]`.
    fn conv2d_grad_weight(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        geometry: [usize; 3],
    ) -> FloatTensor<Self> {
        composed::grad_weight::<Self>(x, w, g, geometry)
    }

    /// `dL/db = sum over images and pixels of g`: `[co]`.
    fn conv2d_grad_bias(
        x: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::grad_bias::<Self>(x, b, g)
    }
}

/// `conv(x, w) + b` on Flex tensors with stride `stride` and zero padding `padding` on both
/// axes: `[n, c, h, w]`, `[co, c, k, k]`, `[co]` -> `[n, co, ho, wo]`.
pub fn conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Tensor<1>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    fused(x, w, b, [stride, padding, 1])
}

/// `conv(upsample(x), w) + b` on Flex tensors: `x` upsampled `factor` times on both axes by
/// nearest neighbour (burn's `interpolate` in `Nearest` mode to `[factor h, factor w]`), then
/// convolved with stride 1 and zero padding `padding`: `[n, c, h, w]`, `[co, c, k, k]`, `[co]`
/// -> `[n, co, factor h + 2 padding - k + 1, ...]`.
pub fn upsample_conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Tensor<1>,
    factor: usize,
    padding: usize,
) -> Tensor<4> {
    fused(x, w, b, [1, padding, factor])
}

/// The fused convolution at `geometry = [stride, padding, factor]`.
fn fused(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, geometry: [usize; 3]) -> Tensor<4> {
    let y = <Dispatch as ConvOps>::fused_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        geometry,
    );
    Tensor::from_dispatch(y)
}

/// burn's own convolution and its gradients: the trait's defaults, and Flex's path for what
/// its fused kernels do not cover.
mod composed {
    use burn::backend::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata};

    /// burn's options for `geometry = [stride, padding, _]`.
    fn options([stride, padding, _]: [usize; 3]) -> ConvOptions<2> {
        ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1)
    }

    /// The size of `x` upsampled `up` times, and the options that do it.
    fn upsampling<B: Backend>(x: &FloatTensor<B>, up: usize) -> ([usize; 2], InterpolateOptions) {
        let shape = x.shape();
        let size = [shape[2] * up, shape[3] * up];
        (size, InterpolateOptions::new(InterpolateMode::Nearest))
    }

    /// `x` upsampled `geometry[2]` times by nearest neighbour (itself for 1).
    fn upsampled<B: Backend>(x: FloatTensor<B>, [.., up]: [usize; 3]) -> FloatTensor<B> {
        if up == 1 {
            return x;
        }
        let (size, options) = upsampling::<B>(&x, up);
        B::interpolate(x, size, options)
    }

    pub fn conv2d<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        b: FloatTensor<B>,
        geometry: [usize; 3],
    ) -> FloatTensor<B> {
        B::conv2d(upsampled::<B>(x, geometry), w, Some(b), options(geometry))
    }

    pub fn grad_input<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        g: FloatTensor<B>,
        geometry: [usize; 3],
    ) -> FloatTensor<B> {
        let [.., up] = geometry;
        let xu = upsampled::<B>(x.clone(), geometry);
        let gx = B::conv2d_x_backward(xu, w, g, options(geometry));
        if up == 1 {
            return gx;
        }
        let (size, options) = upsampling::<B>(&x, up);
        B::interpolate_backward(x, gx, size, options)
    }

    pub fn grad_weight<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        g: FloatTensor<B>,
        geometry: [usize; 3],
    ) -> FloatTensor<B> {
        B::conv2d_weight_backward(upsampled::<B>(x, geometry), w, g, options(geometry))
    }

    pub fn grad_bias<B: Backend>(
        x: FloatTensor<B>,
        b: FloatTensor<B>,
        g: FloatTensor<B>,
    ) -> FloatTensor<B> {
        B::conv2d_bias_backward(x, b, g)
    }
}
