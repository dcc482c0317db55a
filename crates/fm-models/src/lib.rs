//! Velocity networks for flow matching, as burn modules.
//!
//! - [`TimeMlp`]: a time-conditioned MLP for low-dimensional data (the paper's 2-D experiments:
//!   5 linear layers of 512 units).
//! - [`UNet`]: an ADM-style U-Net for images, with presets `tiny`, `mnist`, `cifar10`.
//! - [`TimeEmbedding`]: how the time `t` enters a network.
//! - [`VelocityNet`]: either network on flattened `[B, D]` data, with classifier-free guidance.
//!
//! Every network is built from a `#[derive(Config)]` with `init(&device)` and has
//! `forward(x, t)` with per-sample time `t: [B]`.

mod activation;
pub mod fused;
mod mlp;
mod net;
mod time;
mod unet;

pub use activation::Activation;
pub use mlp::{TimeMlp, TimeMlpConfig};
pub use net::{Guide, NetConfig, VelocityNet};
pub use time::{TimeEmbedding, TimeFeatures};
pub use unet::{UNet, UNetConfig};

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
