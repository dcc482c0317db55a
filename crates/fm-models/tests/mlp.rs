//! Shapes, parameter counts and time dependence of the MLP.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use fm_models::{Activation, TimeEmbedding, TimeMlpConfig};

#[test]
fn paper_mlp_has_five_layers_of_512() {
    let dev = Device::flex();
    let model = TimeMlpConfig::new(2).init(&dev);
    // (2 + 1) * 512 + 512, three 512 * 512 + 512, 512 * 2 + 2.
    let want = 3 * 512 + 512 + 3 * (512 * 512 + 512) + 512 * 2 + 2;
    assert_eq!(model.num_params(), want);
    let x = Tensor::<2>::random([7, 2], Distribution::Normal(0.0, 1.0), &dev);
    assert_eq!(model.forward(x, Tensor::zeros([7], &dev)).dims(), [7, 2]);
}

#[test]
fn output_depends_on_time_for_every_embedding() {
    let dev = Device::flex();
    dev.seed(1);
    for (emb, act) in [
        (TimeEmbedding::Raw, Activation::Silu),
        (
            TimeEmbedding::Sinusoidal {
                dim: 16,
                max_frequency: 100.0,
            },
            Activation::Gelu,
        ),
        (TimeEmbedding::Raw, Activation::Tanh),
        (TimeEmbedding::Raw, Activation::Relu),
    ] {
        let model = TimeMlpConfig::new(3)
            .with_hidden(32)
            .with_depth(2)
            .with_activation(act)
            .with_time_embedding(emb)
            .init(&dev);
        let x = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &dev);
        let a = model.forward(x.clone(), Tensor::full([5], 0.1, &dev));
        let b = model.forward(x, Tensor::full([5], 0.9, &dev));
        let diff: f32 = (a - b).abs().sum().into_scalar();
        assert!(diff > 1e-4, "{emb:?} {act:?}: output ignores t");
    }
}

/// Evaluation without autodiff goes in blocks of rows; it gives what one pass with autodiff
/// gives, across block boundaries and a ragged last block.
#[test]
fn blocked_inference_matches_one_pass() {
    let dev = Device::flex().autodiff();
    dev.seed(2);
    let model = TimeMlpConfig::new(2).with_hidden(64).init(&dev);
    let rows = 2 * 4096 + 123;
    let x = Tensor::<2>::random([rows, 2], Distribution::Normal(0.0, 1.0), &dev);
    let t = Tensor::<1>::random([rows], Distribution::Uniform(0.0, 1.0), &dev);
    let one_pass = model.forward(x.clone(), t.clone()).into_data();
    let blocked = model.valid().forward(x.inner(), t.inner()).into_data();
    blocked.assert_approx_eq::<f32>(&one_pass, burn::tensor::Tolerance::absolute(1e-5));
}
