//! Where the networks reach the fused Flex kernels of the `fm-flex` crate.
//!
//! Each function takes any backend's tensors. With this crate's `flex` feature and a Flex device
//! it calls `fm-flex`'s one-pass kernel; everywhere else it is burn's own composition, so a user
//! of `fm-models` on wgpu or CUDA compiles none of the kernels.

use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, activation};

/// `x sigmoid(x)`, any shape.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fm_flex::is_flex(&x.device()) {
        return fm_flex::silu(x);
    }
    activation::silu(x)
}

/// `layer.forward(x)` for `x`: `[B, d_input]` -> `[B, d_output]`.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if let Some(bias) = &layer.bias
        && fm_flex::is_flex(&x.device())
    {
        return fm_flex::linear(x, layer.weight.val(), bias.val());
    }
    layer.forward(x)
}

/// `silu(layer.forward(x))` for `x`: `[B, d_input]` -> `[B, d_output]`, as one operation on
/// Flex: the activation is applied to the product while it is in cache, and its backward pass
/// yields the bias gradient in the same sweep.
pub fn linear_silu(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if let Some(bias) = &layer.bias
        && fm_flex::is_flex(&x.device())
    {
        return fm_flex::linear_silu(x, layer.weight.val(), bias.val());
    }
    silu(linear(layer, x))
}

/// `layer.forward(x)` for `x`: `[B, c, h, w]` -> `[B, co, ho, wo]`. On Flex, one fused
/// operation per direction when the layer fits its kernels: a bias, a square kernel, the same
/// stride on both axes, no padding or the same on all four sides, dilation 1, one group.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(bias) = &layer.bias
        && let Some([stride, padding]) = square_geometry(layer)
        && fm_flex::is_flex(&x.device())
    {
        return fm_flex::conv2d(x, layer.weight.val(), bias.val(), stride, padding);
    }
    layer.forward(x)
}

/// `layer.forward(upsample(x))` for `x`: `[B, c, h, w]`, upsampled `factor` times on both axes
/// by nearest neighbour. On Flex, one fused operation per direction when the layer fits the
/// fused convolution with stride 1: each image is upsampled in the task that convolves it,
/// where burn's interpolation writes the whole upsampled batch (and reads it back, and does
/// the same for its gradient).
pub fn upsample_conv2d(layer: &Conv2d, x: Tensor<4>, factor: usize) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(bias) = &layer.bias
        && let Some([1, padding]) = square_geometry(layer)
        && fm_flex::is_flex(&x.device())
    {
        return fm_flex::upsample_conv2d(x, layer.weight.val(), bias.val(), factor, padding);
    }
    let [_, _, height, width] = x.dims();
    let options = InterpolateOptions::new(InterpolateMode::Nearest)
        .with_output_size([factor * height, factor * width]);
    layer.forward(interpolate(x, options))
}

/// `silu(norm.forward(x))` for `x`: `[B, c, h, w]`, as one operation per direction on Flex
/// (statistics, affine and activation in one task per image and group).
pub fn group_norm_silu(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta)
        && fm_flex::is_flex(&x.device())
    {
        return fm_flex::group_norm_silu(x, gamma.val(), beta.val(), norm.num_groups, norm.epsilon);
    }
    silu(norm.forward(x))
}

/// `norm.forward(x)` for `x`: `[B, c, h, w]`, as one operation per direction on Flex.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta)
        && fm_flex::is_flex(&x.device())
    {
        return fm_flex::group_norm(x, gamma.val(), beta.val(), norm.num_groups, norm.epsilon);
    }
    norm.forward(x)
}

/// `[stride, padding]` of a convolution the fused kernels cover.
#[cfg(feature = "flex")]
fn square_geometry(layer: &Conv2d) -> Option<[usize; 2]> {
    use burn::nn::PaddingConfig2d;
    let padding = match layer.padding {
        PaddingConfig2d::Valid => 0,
        PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == left && left == bottom && bottom == right =>
        {
            top
        }
        _ => return None,
    };
    let [kh, kw] = layer.kernel_size;
    let [sh, sw] = layer.stride;
    let plain = kh == kw && sh == sw && layer.dilation == [1, 1] && layer.groups == 1;
    plain.then_some([sh, padding])
}

/// Whether `device` is the Flex CPU backend (never without the `flex` feature): for choices that
/// pay only on its kernels, such as cache-sized row blocks.
pub(crate) fn on_flex(device: &burn::tensor::Device) -> bool {
    #[cfg(feature = "flex")]
    return fm_flex::is_flex(device);
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}
