//! One velocity network type for the training loop and the solvers, over flattened data.
//!
//! Data of any shape travels as `[B, D]` rows (a 28x28 gray image is a row of `D = 784`), so the
//! solvers, divergence and likelihood code see one tensor shape; [`VelocityNet::forward`] reshapes
//! to `[B, C, H, W]` for the U-Net and back.

use crate::{TimeMlp, TimeMlpConfig, UNet, UNetConfig};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Which network, with its settings (saved in a run's `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NetConfig {
    /// A [`TimeMlp`] on vectors.
    Mlp(TimeMlpConfig),
    /// A [`UNet`] on images.
    Unet(UNetConfig),
}

impl NetConfig {
    /// Values per data point: `D` for the MLP, `C * H * W` for the U-Net.
    pub fn data_dim(&self) -> usize {
        match self {
            Self::Mlp(c) => c.input_dim,
            Self::Unet(c) => c.in_channels * c.image_size * c.image_size,
        }
    }

    /// `[C, H, W]` of the images a U-Net takes; `None` for the MLP.
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        match self {
            Self::Mlp(_) => None,
            Self::Unet(c) => Some([c.in_channels, c.image_size, c.image_size]),
        }
    }

    /// The number of classes of a class-conditional network.
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Self::Mlp(_) => None,
            Self::Unet(c) => c.num_classes,
        }
    }

    /// A network with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> VelocityNet {
        match self {
            Self::Mlp(c) => VelocityNet::Mlp(c.init(device)),
            Self::Unet(c) => VelocityNet::Unet(c.init(device)),
        }
    }
}

/// A velocity network `v_theta(x, t[, y])` on flattened data.
// One network lives per run, so the size of the U-Net variant costs nothing worth boxing for
// (and burn's `Module` derive takes the modules themselves).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum VelocityNet {
    /// See [`TimeMlp`].
    Mlp(TimeMlp),
    /// See [`UNet`].
    Unet(UNet),
}

impl VelocityNet {
    /// The velocity at rows `x`: `[B, D]`, per-sample time `t`: `[B]` and, for a
    /// class-conditional network, classes `y`: `[B]` (the null class for the unconditional
    /// field; `None` leaves the class embedding out) -> `[B, D]`.
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>, y: Option<Tensor<1, Int>>) -> Tensor<2> {
        match self {
            Self::Mlp(mlp) => mlp.forward(x, t),
            Self::Unet(unet) => {
                let [b, d] = x.dims();
                let [c, h, w] = unet.image_shape();
                unet.forward(x.reshape([b, c, h, w]), t, y).reshape([b, d])
            }
        }
    }

    /// The null class of a class-conditional network, else `None`.
    pub fn null_class(&self) -> Option<usize> {
        match self {
            Self::Mlp(_) => None,
            Self::Unet(unet) => unet.null_class(),
        }
    }

    /// Classifier-free guidance for one solve over `rows` rows: weight `w` towards `classes`
    /// (one per row), with the labels made on `device` once instead of at every evaluation
    /// (the unconditional field fills its null labels on the device, for any number of rows).
    ///
    /// Without `classes` (or with `w = 0`) a class-conditional network gives its unconditional
    /// (null-class) field, and a network without classes its plain field.
    pub fn guide(&self, rows: usize, classes: Option<&[usize]>, w: f64, device: &Device) -> Guide {
        let labels = |ys: Vec<i64>| {
            let n = ys.len();
            Tensor::<1, Int>::from_data(TensorData::new(ys, [n]), device)
        };
        let Some(null) = self.null_class() else {
            return Guide { w, labels: None };
        };
        let labels = match classes {
            Some(classes) if w != 0.0 => {
                let cond: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
                if w == 1.0 {
                    GuideLabels::Classes(labels(cond))
                } else {
                    let uncond = vec![null as i64; rows];
                    GuideLabels::Both(labels([cond, uncond].concat()))
                }
            }
            _ => GuideLabels::Null(null as i64),
        };
        Guide {
            w,
            labels: Some(labels),
        }
    }

    /// Classifier-free guidance (Ho & Salimans 2022) at scalar time `t`:
    /// `v_w(x, t | y) = v(x, t | null) + w (v(x, t | y) - v(x, t | null))`.
    ///
    /// `w = 0` is the unconditional field, `w = 1` the conditional one, `w > 1` pushes samples
    /// towards their class (Meta's `flow_matching` examples write the same field with
    /// `cfg_scale = w - 1`). Both fields come from one forward pass over a doubled batch.
    pub fn guided(&self, x: Tensor<2>, t: f64, guide: &Guide) -> Tensor<2> {
        let [b, _] = x.dims();
        let device = x.device();
        let time = |n: usize| Tensor::<1>::full([n], t, &device);
        match &guide.labels {
            None => self.forward(x, time(b), None),
            Some(GuideLabels::Null(null)) => {
                // Filled on the device, for whatever rows come (likelihood solves stack probes).
                let y = Tensor::<1, Int>::full([b], *null, &device);
                self.forward(x, time(b), Some(y))
            }
            Some(GuideLabels::Classes(y)) => self.forward(x, time(b), Some(y.clone())),
            Some(GuideLabels::Both(y)) => {
                let both = self.forward(
                    Tensor::cat(vec![x.clone(), x], 0),
                    time(2 * b),
                    Some(y.clone()),
                );
                let v_cond = both.clone().narrow(0, 0, b);
                let v_uncond = both.narrow(0, b, b);
                v_uncond.clone() + (v_cond - v_uncond) * guide.w
            }
        }
    }
}

/// Classifier-free guidance prepared for one solve ([`VelocityNet::guide`]).
#[derive(Debug, Clone)]
pub struct Guide {
    w: f64,
    /// None for a network without classes.
    labels: Option<GuideLabels>,
}

/// The labels of a guided forward pass.
#[derive(Debug, Clone)]
enum GuideLabels {
    /// One pass of the unconditional field: the null class on every row.
    Null(i64),
    /// One pass of the conditional field (`w = 1`).
    Classes(Tensor<1, Int>),
    /// The classes followed by the null class, for one pass over the doubled batch.
    Both(Tensor<1, Int>),
}
