//! U-Net shapes at each preset, class conditioning, gradients, and parameter counts.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Int, Tensor};
use fm_models::UNetConfig;

#[test]
fn presets_keep_the_image_shape() {
    let dev = Device::flex();
    let cases = [
        ("tiny", 1, 8),
        ("tiny", 3, 16),
        ("mnist", 1, 28),
        ("cifar10", 3, 32),
    ];
    for (preset, channels, size) in cases {
        let model = UNetConfig::preset(preset, channels, size)
            .unwrap()
            .init(&dev);
        let x = Tensor::<4>::random(
            [1, channels, size, size],
            Distribution::Normal(0.0, 1.0),
            &dev,
        );
        let v = model.forward(x, Tensor::from_floats([0.1f32], &dev), None);
        assert_eq!(v.dims(), [1, channels, size, size], "{preset}");
        eprintln!(
            "{preset} ({channels}x{size}x{size}): {} parameters",
            model.num_params()
        );
    }
    assert!(UNetConfig::preset("huge", 1, 8).is_none());
}

#[test]
fn class_and_time_change_the_output_and_gradients_flow() {
    let dev = Device::flex().autodiff();
    dev.seed(4);
    let model = UNetConfig::preset("tiny", 1, 8)
        .unwrap()
        .with_num_classes(Some(10))
        .init(&dev);
    let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    let t = Tensor::<1>::from_floats([0.3f32, 0.3], &dev);
    let classes = |a: i64, b: i64| Some(Tensor::<1, Int>::from_ints([a, b], &dev));
    let a = model.forward(x.clone(), t.clone(), classes(1, 10));
    let b = model.forward(x.clone(), t.clone(), classes(2, 10));
    let diff = |p: Tensor<4>, q: Tensor<4>| (p - q).abs().sum().into_scalar::<f32>();
    assert!(
        diff(a.clone().narrow(0, 0, 1), b.clone().narrow(0, 0, 1)) > 1e-4,
        "class ignored"
    );
    assert!(
        diff(a.clone().narrow(0, 1, 1), b.narrow(0, 1, 1)) < 1e-6,
        "null class differs"
    );
    let later = model.forward(x, Tensor::from_floats([0.8f32, 0.8], &dev), classes(1, 10));
    assert!(diff(a.clone(), later) > 1e-4, "time ignored");
    let grads = a.square().mean().backward();
    let grads = burn::optim::GradientsParams::from_grads(grads, &model);
    assert!(!grads.is_empty());
}

#[test]
fn parameter_counts_match_known_models() {
    let dev = Device::flex();
    // DDPM's CIFAR-10 network (Ho et al. 2020: 128 channels, multipliers 1,2,2,2, two blocks per
    // level, attention at 16x16) has 35.7 M parameters.
    let ddpm = UNetConfig::preset("cifar10", 3, 32)
        .unwrap()
        .with_base_channels(128)
        .init(&dev);
    let n = ddpm.num_params();
    eprintln!("DDPM-size (128 channels): {n} parameters");
    assert!((n as f64 / 35.7e6 - 1.0).abs() < 0.05, "{n}");
    // The paper's setting doubles the channels: about four times as many weights.
    let paper = UNetConfig::preset("cifar10", 3, 32)
        .unwrap()
        .init(&dev)
        .num_params();
    eprintln!("cifar10 preset (256 channels): {paper} parameters");
    assert!((paper as f64 / n as f64 - 4.0).abs() < 0.1, "{paper}");
}

/// The time embedding's width is what its forward pass makes, odd sizes included, so a U-Net
/// with odd base channels builds and runs.
#[test]
fn odd_widths_build_and_run() {
    use fm_models::TimeEmbedding;
    let dev = Device::flex();
    for dim in [0, 1, 2, 3, 7, 16] {
        let emb = TimeEmbedding::Sinusoidal {
            dim,
            max_frequency: 100.0,
        };
        let out = emb
            .init(&dev)
            .forward(Tensor::from_floats([0.1f32, 0.7], &dev));
        assert_eq!(out.dims(), [2, emb.output_dim()], "dim {dim}");
    }
    let mut config = UNetConfig::preset("tiny", 1, 8).unwrap();
    config.base_channels = 9;
    config.groups = 3;
    let model = config.init(&dev);
    let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    let v = model.forward(x, Tensor::from_floats([0.1f32, 0.5], &dev), None);
    assert_eq!(v.dims(), [2, 1, 8, 8]);
}
