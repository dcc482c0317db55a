//! Fused operations for burn's Flex CPU backend, as burn backend extensions.
//!
//! burn composes a linear layer from a matrix product and a broadcast bias sum, and SiLU from a
//! sigmoid and a product. On Flex that means extra passes over every activation, a zeroed and
//! then realigned output buffer per product, and element-wise work on one thread (profiled: 28 %
//! of a training step of the 4x512 MLP in SiLU alone). Here each is one operation per direction
//! with a hand-written backward pass for burn's autodiff:
//! - [`linear`]: `x w + b` as one `gemm` call that accumulates onto the broadcast bias.
//! - [`silu`]: one vectorised pass split over burn's rayon pool.
//! - [`linear_silu`]: both, the bias added in the activation's pass rather than in a pass of
//!   its own; its backward pass sums the bias gradient in the activation's sweep.
//! - [`conv2d`]: a 2-D convolution as one gemm per group of images over their patch matrices
//!   side by side (small images grouped so that gemm's panels are full), the groups split over
//!   the pool; its weight gradient as per-thread partial sums, its input gradient with the
//!   col2im in the same task or as the transposed convolution's forward pass (burn-flex runs it
//!   as a 3-D convolution with layout conversions). [`upsample_conv2d`]: the same after a
//!   nearest-neighbour upsampling, which each task does image by image in its scratch.
//! - [`group_norm_silu`]: group norm and SiLU, one task per image and group in each direction
//!   (burn composes about eleven operations with a graph node each); [`group_norm`] without
//!   the activation.
//! - [`adam_update`] and the optimizer [`FusedAdam`] built on it: an Adam step of one parameter
//!   in one pass, where burn's Adam makes a dozen single-threaded element-wise passes.
//!
//! The operations take Flex tensors, with or without autodiff ([`is_flex`] tells); dtypes other
//! than `f32` take burn's composition. Model code that should stay backend-free (`fm-models`)
//! calls them only behind a cargo feature and only for Flex devices.
//!
//! [`allocator`] holds the process-wide malloc settings the `fm` binary and the benches opt into;
//! a library never calls it on its own.

mod adam;
mod adam_ops;
pub mod allocator;
mod buffer;
mod conv_ops;
mod linear_ops;
mod matrix;
mod norm_ops;
mod optim;
mod silu_ops;
mod tape;

pub use adam::{AdamStep, adam_update};
pub use conv_ops::{conv2d, upsample_conv2d};
pub use linear_ops::{linear, linear_silu};
pub use norm_ops::{group_norm, group_norm_silu};
pub use optim::{FusedAdam, FusedAdamConfig};
pub use silu_ops::silu;

/// Whether `device` is the Flex CPU backend, autodiff or not.
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    device.clone().inner() == burn::tensor::Device::flex()
}

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
