//! A U-Net velocity network in the style of the ADM model the paper used for images
//! (Dhariwal & Nichol 2021): residual blocks with group norm, SiLU, dropout and a time (and
//! class) embedding added in every block; self-attention at chosen resolutions; skip connections
//! between the down and up paths.

use crate::fused::{conv2d, group_norm, group_norm_silu, silu, upsample_conv2d};
use crate::time::{TimeEmbedding, TimeFeatures};
use burn::config::Config;
use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Int, Tensor};

/// Configuration of a [`UNet`].
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Distribution, Int, Tensor};
/// use fm_models::UNetConfig;
///
/// let dev = Device::flex();
/// // The `tiny` preset for 1 x 16 x 16 images, class-conditional over 10 classes (+ null).
/// let config = UNetConfig::preset("tiny", 1, 16).unwrap().with_num_classes(Some(10));
/// config.validate().unwrap();
/// let unet = config.init(&dev);
/// let x = Tensor::<4>::random([2, 1, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
/// let t = Tensor::<1>::from_floats([0.1, 0.9], &dev);
/// let y = Tensor::<1, Int>::from_ints([3, 10], &dev); // class 3, and the null class
/// assert_eq!(unet.forward(x, t, Some(y)).dims(), [2, 1, 16, 16]);
/// assert!(unet.num_params() > 100_000);
/// assert!(UNetConfig::preset("tiny", 1, 15).unwrap().validate().is_err()); // must halve evenly
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Image channels (1 gray, 3 RGB), in and out.
    pub in_channels: usize,
    /// Image side in pixels (square images); it must halve evenly at each level.
    pub image_size: usize,
    /// Channels at the first level.
    #[config(default = 64)]
    pub base_channels: usize,
    /// Channel multiplier of each level; one level per entry, each but the last halving the
    /// resolution.
    #[config(default = "vec![1, 2, 2]")]
    pub channel_mult: Vec<usize>,
    /// Residual blocks per level.
    #[config(default = 2)]
    pub res_blocks: usize,
    /// Resolutions (in pixels) at which blocks add self-attention.
    #[config(default = "vec![]")]
    pub attention_resolutions: Vec<usize>,
    /// Channels per attention head.
    #[config(default = 64)]
    pub head_channels: usize,
    /// Dropout inside residual blocks.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Groups of group norm (reduced to a divisor of each layer's channels).
    #[config(default = 32)]
    pub groups: usize,
    /// Number of classes for class-conditional models; the embedding gets one more row, the
    /// null class `num_classes`, for classifier-free guidance.
    #[config(default = "None")]
    pub num_classes: Option<usize>,
}

impl UNetConfig {
    /// The image sides this network takes: multiples of `2^(levels - 1)` (each level but the
    /// last halves the side, and the decoder doubles it back to meet the skip connections).
    pub fn side_multiple(&self) -> usize {
        1 << self.channel_mult.len().saturating_sub(1)
    }

    /// Checks the settings before any weight is made, saying which is wrong and what would do.
    pub fn validate(&self) -> Result<(), String> {
        let m = self.side_multiple();
        if self.image_size == 0 || !self.image_size.is_multiple_of(m) {
            let below = self.image_size / m * m;
            let above = below + m;
            return Err(format!(
                "this U-Net ({} levels) takes images whose side is a multiple of {m}, not {} (nearest: {})",
                self.channel_mult.len(),
                self.image_size,
                if below == 0 {
                    format!("{above}")
                } else {
                    format!("{below} or {above}")
                }
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), not {}", self.dropout));
        }
        if self.channel_mult.is_empty() || self.base_channels == 0 || self.in_channels == 0 {
            return Err("the U-Net needs at least one level, channels and base channels".into());
        }
        Ok(())
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn group_norm_layer(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(gcd(groups, channels), channels).init(device)
}

fn conv3(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// `x + conv(drop(silu(gn(conv(silu(gn(x))) + emb))))`, with a 1x1 projection of `x` when the
/// channel count changes.
#[derive(Module, Debug)]
struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    emb: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(
        c_in: usize,
        c_out: usize,
        emb_dim: usize,
        config: &UNetConfig,
        device: &Device,
    ) -> Self {
        Self {
            norm1: group_norm_layer(config.groups, c_in, device),
            conv1: conv3(c_in, c_out, 1, device),
            emb: LinearConfig::new(emb_dim, c_out).init(device),
            norm2: group_norm_layer(config.groups, c_out, device),
            dropout: DropoutConfig::new(config.dropout).init(),
            conv2: conv3(c_out, c_out, 1, device),
            skip: (c_in != c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
        let h = conv2d(&self.conv1, group_norm_silu(&self.norm1, x.clone()));
        let [b, c] = [h.dims()[0], h.dims()[1]];
        let h = h + self.emb.forward(silu(emb.clone())).reshape([b, c, 1, 1]);
        let h = conv2d(
            &self.conv2,
            self.dropout.forward(group_norm_silu(&self.norm2, h)),
        );
        let skip = match &self.skip {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}

/// `x + attention(gn(x))` over the `H * W` positions.
#[derive(Module, Debug)]
struct AttnBlock {
    norm: GroupNorm,
    attn: MultiHeadAttention,
}

impl AttnBlock {
    fn new(channels: usize, config: &UNetConfig, device: &Device) -> Self {
        let heads = (channels / config.head_channels).max(1);
        Self {
            norm: group_norm_layer(config.groups, channels, device),
            attn: MultiHeadAttentionConfig::new(channels, heads)
                .with_dropout(config.dropout)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let seq = group_norm(&self.norm, x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let out = self.attn.forward(MhaInput::self_attn(seq)).context;
        x + out.swap_dims(1, 2).reshape([b, c, h, w])
    }
}

/// A residual block, optionally followed by attention.
#[derive(Module, Debug)]
struct Stage {
    res: ResBlock,
    attn: Option<AttnBlock>,
}

impl Stage {
    fn new(
        c_in: usize,
        c_out: usize,
        emb_dim: usize,
        attend: bool,
        config: &UNetConfig,
        device: &Device,
    ) -> Self {
        Self {
            res: ResBlock::new(c_in, c_out, emb_dim, config, device),
            attn: attend.then(|| AttnBlock::new(c_out, config, device)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
        let h = self.res.forward(x, emb);
        match &self.attn {
            Some(attn) => attn.forward(h),
            None => h,
        }
    }
}

/// The U-Net `v_theta(x, t[, y])`.
#[derive(Module, Debug)]
pub struct UNet {
    time_in: Linear,
    time_out: Linear,
    class_embedding: Option<Embedding>,
    input: Conv2d,
    /// Per level: its stages, then a stride-2 convolution (all but the last level).
    down: Vec<Vec<Stage>>,
    downsample: Vec<Conv2d>,
    middle: Vec<Stage>,
    /// Per level, deepest first: its stages (each takes a skip), then an upsampling convolution.
    up: Vec<Vec<Stage>>,
    upsample: Vec<Conv2d>,
    out_norm: GroupNorm,
    output: Conv2d,
    time: TimeFeatures,
    /// `[C, H, W]` of the images.
    #[module(skip)]
    shape: [usize; 3],
    /// The null class (`num_classes`), when class-conditional.
    #[module(skip)]
    null_class: Option<usize>,
}

impl UNetConfig {
    /// `tiny`: seconds on a CPU, for tests. `mnist`: a small CPU model for 28x28 gray images
    /// (one block per level and no dropout, so that 30 minutes on two cores learn digits).
    /// `cifar10`: the paper's Table 3 setting (256 channels, depth 2, multipliers 1,2,2,2,
    /// attention at 16x16, 64 channels per head, dropout 0.1).
    pub fn preset(name: &str, in_channels: usize, image_size: usize) -> Option<Self> {
        let base = Self::new(in_channels, image_size);
        Some(match name {
            "tiny" => base
                .with_base_channels(16)
                .with_channel_mult(vec![1, 2])
                .with_res_blocks(1)
                .with_groups(8)
                .with_dropout(0.0),
            "mnist" => base
                .with_base_channels(32)
                .with_channel_mult(vec![1, 2, 2])
                .with_res_blocks(1)
                .with_attention_resolutions(vec![7])
                .with_head_channels(32)
                .with_dropout(0.0),
            "cifar10" => base
                .with_base_channels(256)
                .with_channel_mult(vec![1, 2, 2, 2])
                .with_res_blocks(2)
                .with_attention_resolutions(vec![16]),
            _ => return None,
        })
    }

    /// A network with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> UNet {
        let ch = self.base_channels;
        let emb_dim = 4 * ch;
        let time_embedding = TimeEmbedding::Sinusoidal {
            dim: ch,
            max_frequency: 1000.0,
        };
        let mut skips = vec![ch];
        let (mut down, mut downsample) = (Vec::new(), Vec::new());
        let (mut c, mut res) = (ch, self.image_size);
        for (level, &mult) in self.channel_mult.iter().enumerate() {
            let mut stages = Vec::new();
            for _ in 0..self.res_blocks {
                let attend = self.attention_resolutions.contains(&res);
                stages.push(Stage::new(c, ch * mult, emb_dim, attend, self, device));
                c = ch * mult;
                skips.push(c);
            }
            down.push(stages);
            if level + 1 < self.channel_mult.len() {
                downsample.push(conv3(c, c, 2, device));
                skips.push(c);
                res /= 2;
            }
        }
        let middle = vec![
            Stage::new(c, c, emb_dim, true, self, device),
            Stage::new(c, c, emb_dim, false, self, device),
        ];
        let (mut up, mut upsample) = (Vec::new(), Vec::new());
        for (level, &mult) in self.channel_mult.iter().enumerate().rev() {
            let mut stages = Vec::new();
            for _ in 0..=self.res_blocks {
                let skip = skips.pop().expect("one skip per down stage");
                let attend = self.attention_resolutions.contains(&res);
                stages.push(Stage::new(
                    c + skip,
                    ch * mult,
                    emb_dim,
                    attend,
                    self,
                    device,
                ));
                c = ch * mult;
            }
            up.push(stages);
            if level > 0 {
                upsample.push(conv3(c, c, 1, device));
                res *= 2;
            }
        }
        UNet {
            time_in: LinearConfig::new(time_embedding.output_dim(), emb_dim).init(device),
            time_out: LinearConfig::new(emb_dim, emb_dim).init(device),
            class_embedding: self
                .num_classes
                .map(|n| EmbeddingConfig::new(n + 1, emb_dim).init(device)),
            input: conv3(self.in_channels, ch, 1, device),
            down,
            downsample,
            middle,
            up,
            upsample,
            out_norm: group_norm_layer(self.groups, c, device),
            output: conv3(c, self.in_channels, 1, device),
            time: time_embedding.init(device),
            shape: [self.in_channels, self.image_size, self.image_size],
            null_class: self.num_classes,
        }
    }
}

impl UNet {
    /// `[C, H, W]` of the images it takes.
    pub fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The null class of a class-conditional network (its unconditional field), else `None`.
    pub fn null_class(&self) -> Option<usize> {
        self.null_class
    }

    /// The velocity at images `x`: `[B, C, H, W]`, time `t`: `[B]` and, for a class-conditional
    /// model, classes `y`: `[B]` (the null class `num_classes` for the unconditional field).
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Option<Tensor<1, Int>>) -> Tensor<4> {
        let mut emb = self
            .time_out
            .forward(silu(self.time_in.forward(self.time.forward(t))));
        if let (Some(table), Some(y)) = (&self.class_embedding, y) {
            let b = y.dims()[0];
            emb = emb + table.forward(y.reshape([b, 1])).reshape([b as i64, -1]);
        }
        let mut h = conv2d(&self.input, x);
        let mut skips = vec![h.clone()];
        for (level, stages) in self.down.iter().enumerate() {
            for stage in stages {
                h = stage.forward(h, &emb);
                skips.push(h.clone());
            }
            if let Some(conv) = self.downsample.get(level) {
                h = conv2d(conv, h);
                skips.push(h.clone());
            }
        }
        for stage in &self.middle {
            h = stage.forward(h, &emb);
        }
        for (level, stages) in self.up.iter().enumerate() {
            for stage in stages {
                let skip = skips.pop().expect("one skip per up stage");
                h = stage.forward(Tensor::cat(vec![h, skip], 1), &emb);
            }
            if let Some(conv) = self.upsample.get(level) {
                h = upsample_conv2d(conv, h, 2);
            }
        }
        conv2d(&self.output, group_norm_silu(&self.out_norm, h))
    }
}
