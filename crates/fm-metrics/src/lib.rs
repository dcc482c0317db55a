//! FID (Heusel et al. 2017) in-process, on any burn backend: the sample-quality column of the
//! flow matching paper's tables, with numbers that agree with the reference tools.
//!
//! - [`InceptionFid`]: the TF Inception-v3 (2015-12-05) "FID trunk" that pytorch-fid, clean-fid
//!   and NVIDIA's StyleGAN2-ADA metrics use, to its 2048-d pooled features, assembled from a
//!   safetensors file of its weights (never bundled or downloaded: the caller names the file).
//! - [`preprocess`]: u8 images to the network's input exactly as NVIDIA's metrics do it
//!   (bilinear resize to 299x299 with a half-pixel shift and border padding, `(x - 128) / 128`).
//! - [`FeatureStats`]: mean and covariance accumulated in f64, in batches (bounded memory for any
//!   number of images), saved and loaded as safetensors.
//! - [`frechet_distance`]: `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`, the trace of the
//!   square root from symmetric eigendecompositions, which stay accurate for the singular,
//!   ill-conditioned covariances FID meets.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use fm_metrics::{FeatureStats, InceptionFid, frechet_distance};
//!
//! let dev = Device::flex();
//! let net = InceptionFid::load("inception-fid.safetensors".as_ref(), &dev)?;
//! // Two sets of 28x28 gray images as u8 NHWC.
//! let (a, b): (Vec<u8>, Vec<u8>) = (vec![0; 100 * 28 * 28], vec![255; 100 * 28 * 28]);
//! let stats_a = net.stats(&a, [28, 28, 1], 50, &dev, &mut |_| ())?;
//! let stats_b = net.stats(&b, [28, 28, 1], 50, &dev, &mut |_| ())?;
//! println!("FID {}", frechet_distance(&stats_a, &stats_b)?);
//! # Ok::<(), fm_metrics::MetricsError>(())
//! ```

mod error;
mod frechet;
mod inception;
pub mod preprocess;
mod stats;

pub use error::MetricsError;
pub use frechet::{frechet_distance, psd_sqrt, trace_sqrt_product};
pub use inception::{ConvSpec, FEATURES, INPUT_SIDE, InceptionFid};
pub use stats::FeatureStats;

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
