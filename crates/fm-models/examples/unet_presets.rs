//! Builds each U-Net preset (and the paper's 2-D MLP), runs a forward pass, and prints the
//! parameter count and the time of one pass.
//!
//! `cargo run -p fm-models --example unet_presets` (the `cifar10` preset, the paper's 143 M
//! parameters, takes a few seconds to initialise on a CPU).

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use fm_models::{NetConfig, TimeMlpConfig, UNetConfig};
use std::time::Instant;

fn main() {
    let dev = Device::flex();
    let nets = [
        ("mlp 4x512 (2-D)", NetConfig::Mlp(TimeMlpConfig::new(2))),
        ("unet tiny 1x28x28", unet("tiny", 1, 28)),
        ("unet mnist 1x28x28", unet("mnist", 1, 28)),
        ("unet cifar10 3x32x32", unet("cifar10", 3, 32)),
    ];
    for (name, config) in nets {
        let net = config.init(&dev);
        let batch = 2;
        let d = config.data_dim();
        let x = Tensor::<2>::random([batch, d], Distribution::Normal(0.0, 1.0), &dev);
        let t = Tensor::<1>::from_floats([0.25, 0.75], &dev);
        let start = Instant::now();
        let v = net.forward(x, t, None);
        let finite = v.clone().is_finite().all().into_scalar::<bool>();
        let pass = start.elapsed().as_secs_f64();
        assert_eq!(v.dims(), [batch, d]);
        assert!(finite, "{name}: non-finite velocity");
        println!(
            "{name:<22} {:>11} parameters  first forward pass (batch {batch}, weights made on first use) {:.1} ms",
            net.num_params(),
            pass * 1e3
        );
    }
}

fn unet(preset: &str, channels: usize, side: usize) -> NetConfig {
    let config = UNetConfig::preset(preset, channels, side).expect("a known preset");
    config.validate().expect("the preset fits the image size");
    NetConfig::Unet(config)
}
