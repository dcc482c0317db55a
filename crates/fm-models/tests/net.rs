//! The flattened velocity network and classifier-free guidance.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use fm_models::{NetConfig, TimeMlpConfig, UNetConfig};

fn close(a: Tensor<2>, b: Tensor<2>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn guidance_interpolates_between_the_unconditional_and_conditional_fields() {
    let dev = Device::flex();
    dev.seed(11);
    let config = NetConfig::Unet(
        UNetConfig::preset("tiny", 1, 8)
            .unwrap()
            .with_num_classes(Some(3)),
    );
    assert_eq!(config.data_dim(), 64);
    assert_eq!(config.image_shape(), Some([1, 8, 8]));
    let net = config.init(&dev);
    assert_eq!(net.null_class(), Some(3));
    let x = Tensor::<2>::random([4, 64], Distribution::Normal(0.0, 1.0), &dev);
    let classes = [0usize, 1, 2, 1];
    let t = 0.35;
    let field = |labels: Vec<i64>| {
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [4]), &dev);
        net.forward(x.clone(), Tensor::full([4], t, &dev), Some(y))
    };
    let cond = field(vec![0, 1, 2, 1]);
    let uncond = field(vec![3; 4]);
    assert!(
        close(cond.clone(), uncond.clone()) > 1e-4,
        "classes ignored"
    );
    let guided = |classes: Option<&[usize]>, w: f64| {
        let guide = net.guide(4, classes, w, &dev);
        net.guided(x.clone(), t, &guide)
    };
    let w0 = guided(Some(&classes), 0.0);
    let w1 = guided(Some(&classes), 1.0);
    let w3 = guided(Some(&classes), 3.0);
    let without = guided(None, 3.0);
    assert!(close(w0, uncond.clone()) < 1e-6, "w = 0 is unconditional");
    assert!(close(w1, cond.clone()) < 1e-6, "w = 1 is conditional");
    assert!(
        close(without, uncond.clone()) < 1e-6,
        "no classes: unconditional"
    );
    // w = 3 in one doubled batch equals the formula on separate passes.
    let want = uncond.clone() + (cond - uncond).mul_scalar(3.0);
    assert!(close(w3, want) < 1e-4);
}

#[test]
fn the_mlp_takes_rows_and_ignores_guidance() {
    let dev = Device::flex();
    let config = NetConfig::Mlp(TimeMlpConfig::new(3).with_hidden(8));
    assert_eq!((config.data_dim(), config.image_shape()), (3, None));
    let net = config.init(&dev);
    let x = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &dev);
    let plain = net.forward(x.clone(), Tensor::full([5], 0.5, &dev), None);
    assert_eq!(plain.dims(), [5, 3]);
    let guide = net.guide(5, Some(&[0; 5]), 4.0, &dev);
    assert!(close(net.guided(x, 0.5, &guide), plain) < 1e-7);
}
