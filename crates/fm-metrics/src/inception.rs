//! The FID Inception-v3 as burn operations, assembled from its weights file.
//!
//! The file holds, for each convolution `net.layers.<path>`, its `weight` `[out, in, kh, kw]` and
//! a batch norm without scale: `beta`, `mean`, `var` (eps 1e-3), followed by a ReLU. The batch
//! norm is folded into the convolution at load time: `w' = w / sqrt(var + eps)` per output
//! channel and a bias `beta - mean / sqrt(var + eps)`, so each layer is one convolution and a
//! ReLU. The wiring (which towers run on what, strides, paddings, pools) is written out below
//! after the module description that ships with the weights (`spec.json`); a test checks every
//! convolution against it.

use crate::{FeatureStats, MetricsError, preprocess};
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashSet;
use std::path::Path;

/// The network's input side: images are resized to 299 x 299.
pub const INPUT_SIDE: usize = 299;
/// The feature size: the 2048 channels of the last block, averaged over its 8 x 8 positions.
pub const FEATURES: usize = 2048;
/// The batch norms' epsilon.
const BN_EPS: f64 = 1e-3;
/// The common prefix of the tensor names.
const PREFIX: &str = "net.layers.";

/// One convolution as the weights file and the module description give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// Its path below `net.layers.` (`mixed_4.tower_1.conv_3`).
    pub name: String,
    /// `[out, in, kh, kw]`.
    pub weight: [usize; 4],
    /// The stride (both axes).
    pub stride: usize,
    /// Zero padding `[rows, columns]`.
    pub padding: [usize; 2],
}

/// A convolution with its batch norm folded in, then a ReLU.
struct Conv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    spec: ConvSpec,
}

impl Conv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [ph, pw] = self.spec.padding;
        let s = self.spec.stride;
        let options = ConvOptions::new([s, s], [ph, pw], [1, 1], 1);
        relu(conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            options,
        ))
    }
}

/// One step of a tower.
enum Op {
    Conv(Box<Conv>),
    /// 3 x 3, stride 1, padding 1, averaging over the window's pixels inside the image
    /// (`count_include_pad = False`).
    AvgPool3,
    /// 3 x 3 max pool with this stride and padding.
    MaxPool3 {
        stride: usize,
        padding: usize,
    },
}

impl Op {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Conv(conv) => conv.forward(x),
            Self::AvgPool3 => avg_pool2d(
                x,
                AvgPoolOptions::new([3, 3])
                    .with_stride([1, 1])
                    .with_padding([1, 1])
                    .with_count_include_pad(false),
            ),
            Self::MaxPool3 { stride, padding } => max_pool2d(
                x,
                MaxPoolOptions::new([3, 3])
                    .with_stride([*stride, *stride])
                    .with_padding([*padding, *padding]),
            ),
        }
    }
}

/// Ops applied one after another.
struct Chain(Vec<Op>);

impl Chain {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.0.iter().fold(x, |x, op| op.forward(x))
    }
}

/// A mixed block: towers on the same input, their outputs concatenated along the channels.
enum Block {
    /// Each tower is a chain on the block's input.
    Towers(Vec<Chain>),
    /// The last two blocks: two of the towers end in a shared stem `s` and two heads on it,
    /// `[conv(x), a1(a(x)), a2(a(x)), b1(b(x)), b2(b(x)), pool(x)]`.
    Split {
        conv: Chain,
        a: Chain,
        a_heads: [Chain; 2],
        b: Chain,
        b_heads: [Chain; 2],
        pool: Chain,
    },
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let parts = match self {
            Self::Towers(towers) => towers.iter().map(|t| t.forward(x.clone())).collect(),
            Self::Split {
                conv,
                a,
                a_heads,
                b,
                b_heads,
                pool,
            } => {
                let (sa, sb) = (a.forward(x.clone()), b.forward(x.clone()));
                let mut parts = vec![conv.forward(x.clone())];
                parts.extend(a_heads.iter().map(|h| h.forward(sa.clone())));
                parts.extend(b_heads.iter().map(|h| h.forward(sb.clone())));
                parts.push(pool.forward(x));
                parts
            }
        };
        Tensor::cat(parts, 1)
    }

    fn chains(&self) -> Vec<&Chain> {
        match self {
            Self::Towers(towers) => towers.iter().collect(),
            Self::Split {
                conv,
                a,
                a_heads,
                b,
                b_heads,
                pool,
            } => [conv, a]
                .into_iter()
                .chain(a_heads)
                .chain([b])
                .chain(b_heads)
                .chain([pool])
                .collect(),
        }
    }
}

/// The FID feature network: `[N, 3, 299, 299]` inputs in `[-1, 1]` to `[N, 2048]` features.
pub struct InceptionFid {
    stem: Chain,
    blocks: Vec<Block>,
}

impl std::fmt::Debug for InceptionFid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InceptionFid({} convolutions)", self.convs().len())
    }
}

impl InceptionFid {
    /// The network with the weights of the safetensors file `path` (see the crate's README for
    /// where it comes from), on `device`. Every tensor of the file must be used, with the shape
    /// its layer needs.
    pub fn load(path: &Path, device: &Device) -> Result<Self, MetricsError> {
        let bytes = std::fs::read(path).map_err(|e| MetricsError::file(path, e.to_string()))?;
        let mut w = Weights::parse(path, &bytes)?;
        let net = Self::assemble(&mut w, device)?;
        w.finish()?;
        Ok(net)
    }

    fn assemble(w: &mut Weights<'_>, dev: &Device) -> Result<Self, MetricsError> {
        let max_s2 = || Op::MaxPool3 {
            stride: 2,
            padding: 0,
        };
        let stem = Chain(vec![
            w.conv("conv", 2, [0, 0], dev)?,
            w.conv("conv_1", 1, [0, 0], dev)?,
            w.conv("conv_2", 1, [1, 1], dev)?,
            max_s2(),
            w.conv("conv_3", 1, [0, 0], dev)?,
            w.conv("conv_4", 1, [0, 0], dev)?,
            max_s2(),
        ]);
        let mut blocks = Vec::new();
        for m in ["mixed", "mixed_1", "mixed_2"] {
            blocks.push(Block::Towers(vec![
                w.chain(m, &[("conv", 1, [0, 0])], None, dev)?,
                w.chain(
                    m,
                    &[("tower.conv", 1, [0, 0]), ("tower.conv_1", 1, [2, 2])],
                    None,
                    dev,
                )?,
                w.chain(
                    m,
                    &[
                        ("tower_1.conv", 1, [0, 0]),
                        ("tower_1.conv_1", 1, [1, 1]),
                        ("tower_1.conv_2", 1, [1, 1]),
                    ],
                    None,
                    dev,
                )?,
                w.chain(m, &[("tower_2.conv", 1, [0, 0])], Some(Op::AvgPool3), dev)?,
            ]));
        }
        blocks.push(Block::Towers(vec![
            w.chain("mixed_3", &[("conv", 2, [0, 0])], None, dev)?,
            w.chain(
                "mixed_3",
                &[
                    ("tower.conv", 1, [0, 0]),
                    ("tower.conv_1", 1, [1, 1]),
                    ("tower.conv_2", 2, [0, 0]),
                ],
                None,
                dev,
            )?,
            Chain(vec![max_s2()]),
        ]));
        for m in ["mixed_4", "mixed_5", "mixed_6", "mixed_7"] {
            let (row, col) = ([0, 3], [3, 0]);
            blocks.push(Block::Towers(vec![
                w.chain(m, &[("conv", 1, [0, 0])], None, dev)?,
                w.chain(
                    m,
                    &[
                        ("tower.conv", 1, [0, 0]),
                        ("tower.conv_1", 1, row),
                        ("tower.conv_2", 1, col),
                    ],
                    None,
                    dev,
                )?,
                w.chain(
                    m,
                    &[
                        ("tower_1.conv", 1, [0, 0]),
                        ("tower_1.conv_1", 1, col),
                        ("tower_1.conv_2", 1, row),
                        ("tower_1.conv_3", 1, col),
                        ("tower_1.conv_4", 1, row),
                    ],
                    None,
                    dev,
                )?,
                w.chain(m, &[("tower_2.conv", 1, [0, 0])], Some(Op::AvgPool3), dev)?,
            ]));
        }
        blocks.push(Block::Towers(vec![
            w.chain(
                "mixed_8",
                &[("tower.conv", 1, [0, 0]), ("tower.conv_1", 2, [0, 0])],
                None,
                dev,
            )?,
            w.chain(
                "mixed_8",
                &[
                    ("tower_1.conv", 1, [0, 0]),
                    ("tower_1.conv_1", 1, [0, 3]),
                    ("tower_1.conv_2", 1, [3, 0]),
                    ("tower_1.conv_3", 2, [0, 0]),
                ],
                None,
                dev,
            )?,
            Chain(vec![max_s2()]),
        ]));
        for (m, pool) in [
            ("mixed_9", Op::AvgPool3),
            (
                "mixed_10",
                Op::MaxPool3 {
                    stride: 1,
                    padding: 1,
                },
            ),
        ] {
            let one = |w: &mut Weights<'_>, name: &str, pad: [usize; 2]| {
                w.chain(m, &[(name, 1, pad)], None, dev)
            };
            blocks.push(Block::Split {
                conv: one(w, "conv", [0, 0])?,
                a: one(w, "tower_conv", [0, 0])?,
                a_heads: [
                    one(w, "tower_mixed_conv", [0, 1])?,
                    one(w, "tower_mixed_conv_1", [1, 0])?,
                ],
                b: w.chain(
                    m,
                    &[("tower_1_conv", 1, [0, 0]), ("tower_1_conv_1", 1, [1, 1])],
                    None,
                    dev,
                )?,
                b_heads: [
                    one(w, "tower_1_mixed_conv", [0, 1])?,
                    one(w, "tower_1_mixed_conv_1", [1, 0])?,
                ],
                pool: w.chain(m, &[("tower_2_conv", 1, [0, 0])], Some(pool), dev)?,
            });
        }
        Ok(Self { stem, blocks })
    }

    /// Features of preprocessed inputs: `x`: `[N, 3, 299, 299]` -> `[N, 2048]`, the last block's
    /// channels averaged over its 8 x 8 positions.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let h = self
            .blocks
            .iter()
            .fold(self.stem.forward(x), |h, b| b.forward(h));
        let [n, c, _, _] = h.dims();
        h.mean_dim(3).mean_dim(2).reshape([n, c])
    }

    /// Features of `n` u8 images of `[height, width, channels]` (NHWC, channels 1 or 3), through
    /// [`preprocess::to_input`] and the network in batches of `batch`: `n * 2048` values, row
    /// by row. `progress` hears the images done after each batch.
    pub fn features(
        &self,
        pixels: &[u8],
        shape: [usize; 3],
        batch: usize,
        device: &Device,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<f32>, MetricsError> {
        let mut out = Vec::new();
        self.each_batch(pixels, shape, batch, device, progress, &mut |f| {
            out.extend_from_slice(f)
        })?;
        Ok(out)
    }

    /// The feature statistics of `n` u8 images (as [`InceptionFid::features`]), accumulated batch
    /// by batch: memory stays bounded by `batch` whatever the number of images.
    pub fn stats(
        &self,
        pixels: &[u8],
        shape: [usize; 3],
        batch: usize,
        device: &Device,
        progress: &mut dyn FnMut(usize),
    ) -> Result<FeatureStats, MetricsError> {
        let mut stats = FeatureStats::new(FEATURES);
        self.each_batch(pixels, shape, batch, device, progress, &mut |f| {
            stats.add(f)
        })?;
        Ok(stats)
    }

    fn each_batch(
        &self,
        pixels: &[u8],
        shape: [usize; 3],
        batch: usize,
        device: &Device,
        progress: &mut dyn FnMut(usize),
        each: &mut dyn FnMut(&[f32]),
    ) -> Result<(), MetricsError> {
        let per_image: usize = shape.iter().product();
        if per_image == 0 || !pixels.len().is_multiple_of(per_image) {
            return Err(MetricsError::Input(format!(
                "{} bytes are no whole number of {shape:?} images",
                pixels.len()
            )));
        }
        let mut done = 0;
        for chunk in pixels.chunks(batch.max(1) * per_image) {
            let b = chunk.len() / per_image;
            let input = preprocess::to_input(chunk, b, shape)?;
            let side = INPUT_SIDE;
            let x = Tensor::<4>::from_data(TensorData::new(input, [b, 3, side, side]), device);
            let features: Vec<f32> = self.forward(x).into_data().iter::<f32>().collect();
            each(&features);
            done += b;
            progress(done);
        }
        Ok(())
    }

    /// Every convolution, in order, as the module description lists them.
    pub fn convs(&self) -> Vec<ConvSpec> {
        let chains = std::iter::once(&self.stem).chain(self.blocks.iter().flat_map(Block::chains));
        chains
            .flat_map(|c| c.0.iter())
            .filter_map(|op| match op {
                Op::Conv(conv) => Some(conv.spec.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The tensors of the weights file, each to be used once.
struct Weights<'a> {
    path: &'a Path,
    file: SafeTensors<'a>,
    unused: HashSet<String>,
}

impl<'a> Weights<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, MetricsError> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| MetricsError::file(path, format!("not a safetensors file: {e}")))?;
        let unused = file.names().into_iter().map(String::from).collect();
        Ok(Self { path, file, unused })
    }

    /// The f32 values and shape of `name`.
    fn take(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>), MetricsError> {
        let view = self.file.tensor(name).map_err(|_| {
            MetricsError::file(
                self.path,
                format!("no tensor {name}: is this the FID Inception's weights file?"),
            )
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(MetricsError::file(
                self.path,
                format!("{name} is {:?}, expected F32", view.dtype()),
            ));
        }
        self.unused.remove(name);
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((view.shape().to_vec(), values))
    }

    /// The convolution `net.layers.<name>` with its batch norm folded in.
    fn conv(
        &mut self,
        name: &str,
        stride: usize,
        padding: [usize; 2],
        device: &Device,
    ) -> Result<Op, MetricsError> {
        let full = format!("{PREFIX}{name}");
        let (shape, mut weight) = self.take(&format!("{full}.weight"))?;
        let &[out, inp, kh, kw] = shape.as_slice() else {
            return Err(MetricsError::file(
                self.path,
                format!("{full}.weight has shape {shape:?}, expected [out, in, kh, kw]"),
            ));
        };
        let mut norm = |part: &str| -> Result<Vec<f32>, MetricsError> {
            let (s, v) = self.take(&format!("{full}.{part}"))?;
            if s != [out] {
                return Err(MetricsError::file(
                    self.path,
                    format!("{full}.{part} has shape {s:?}, expected [{out}]"),
                ));
            }
            Ok(v)
        };
        let (beta, mean, var) = (norm("beta")?, norm("mean")?, norm("var")?);
        let mut bias = Vec::with_capacity(out);
        for (o, filter) in weight.chunks_exact_mut(inp * kh * kw).enumerate() {
            let scale = 1.0 / (var[o] as f64 + BN_EPS).sqrt();
            filter
                .iter_mut()
                .for_each(|v| *v = (*v as f64 * scale) as f32);
            bias.push((beta[o] as f64 - mean[o] as f64 * scale) as f32);
        }
        Ok(Op::Conv(Box::new(Conv {
            weight: Tensor::from_data(TensorData::new(weight, [out, inp, kh, kw]), device),
            bias: Tensor::from_data(TensorData::new(bias, [out]), device),
            spec: ConvSpec {
                name: name.to_string(),
                weight: [out, inp, kh, kw],
                stride,
                padding,
            },
        })))
    }

    /// A chain of `block`'s convolutions `(name, stride, padding)`, after `first` if given.
    fn chain(
        &mut self,
        block: &str,
        convs: &[(&str, usize, [usize; 2])],
        first: Option<Op>,
        device: &Device,
    ) -> Result<Chain, MetricsError> {
        let mut ops: Vec<Op> = first.into_iter().collect();
        for &(name, stride, padding) in convs {
            ops.push(self.conv(&format!("{block}.{name}"), stride, padding, device)?);
        }
        Ok(Chain(ops))
    }

    /// Every tensor of the file was used.
    fn finish(self) -> Result<(), MetricsError> {
        if self.unused.is_empty() {
            return Ok(());
        }
        let mut names: Vec<&String> = self.unused.iter().collect();
        names.sort();
        Err(MetricsError::file(
            self.path,
            format!(
                "{} tensors are not part of the FID Inception (e.g. {}): another network's weights?",
                names.len(),
                names[0]
            ),
        ))
    }
}
