//! The fused linear layer (`flex` feature) against burn's `Linear::forward`: values and the
//! gradients of input, weight and bias, for small and threaded sizes, strided inputs and half
//! precision.
#![cfg(feature = "flex")]

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Gradients;
use burn::tensor::{DType, Device, Distribution, Tensor};
use fm_models::fused::linear;

fn max_rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

fn layer(d_in: usize, d_out: usize, dev: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).init(dev)
}

/// The bias's gradient in `grads`.
fn bias_grad(l: &Linear, grads: &Gradients) -> Tensor<1> {
    let bias = l.bias.as_ref().expect("the layer has a bias");
    bias.val().grad(grads).expect("the bias is tracked")
}

/// `[m, k] x [k, n]` sizes: below and above the threshold for threading the product, and a thin
/// product (the last layer of a 2-D model) that is split by rows.
const SIZES: [(usize, usize, usize); 4] =
    [(7, 3, 5), (300, 257, 130), (4096, 3, 512), (4096, 512, 2)];

#[test]
fn forward_matches_burn_linear() {
    let dev = Device::flex();
    dev.seed(3);
    for (m, k, n) in SIZES {
        let l = layer(k, n, &dev);
        let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &dev);
        assert!(
            max_rel_diff(linear(&l, x.clone()), l.forward(x)) < 1e-5,
            "{m}x{k}x{n}"
        );
    }
}

#[test]
fn strided_input_matches_burn_linear() {
    let dev = Device::flex();
    dev.seed(4);
    let l = layer(40, 30, &dev);
    let x = Tensor::<2>::random([40, 90], Distribution::Normal(0.0, 1.0), &dev).transpose();
    assert!(max_rel_diff(linear(&l, x.clone()), l.forward(x)) < 1e-5);
    let x =
        Tensor::<2>::random([100, 60], Distribution::Normal(0.0, 1.0), &dev).slice([5..95, 10..50]);
    assert!(max_rel_diff(linear(&l, x.clone()), l.forward(x)) < 1e-5);
}

/// Gradients of `sum(r * (x w + b))` for input, weight and bias agree with burn's autodiff of
/// `Linear::forward`.
#[test]
fn gradients_match_burn_autodiff() {
    let dev = Device::flex().autodiff();
    for (m, k, n) in SIZES {
        dev.seed(5);
        let l = layer(k, n, &dev);
        let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let r = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &dev);
        let grads_of = |y: Tensor<2>| {
            let g = (y * r.clone()).sum().backward();
            let gx = x.grad(&g).expect("x is tracked");
            let gw = l.weight.val().grad(&g).expect("w is tracked");
            (gx, gw, bias_grad(&l, &g))
        };
        let (fx, fw, fb) = grads_of(linear(&l, x.clone()));
        let (bx, bw, bb) = grads_of(l.forward(x.clone()));
        assert!(max_rel_diff(fx, bx) < 1e-5, "dx {m}x{k}x{n}");
        assert!(max_rel_diff(fw, bw) < 1e-5, "dw {m}x{k}x{n}");
        assert!(max_rel_diff(fb, bb) < 1e-5, "db {m}x{k}x{n}");
    }
}

/// An untracked input (data into the first layer) still gives the parameters' gradients.
#[test]
fn untracked_input_still_trains_the_layer() {
    let dev = Device::flex().autodiff();
    dev.seed(6);
    let l = layer(3, 4, &dev);
    let x = Tensor::<2>::random([10, 3], Distribution::Normal(0.0, 1.0), &dev);
    let g = linear(&l, x.clone()).sum().backward();
    let gb = bias_grad(&l, &g);
    // d/db sum(x w + b) = the number of rows, for every output.
    let want = Tensor::<1>::full([4], 10.0, &gb.device());
    assert!(max_rel_diff(gb, want) < 1e-6);
    assert!(x.grad(&g).is_none());
}

#[test]
fn half_precision_takes_the_composition() {
    let dev = Device::flex();
    dev.seed(8);
    let l = layer(16, 8, &dev);
    let x = Tensor::<2>::random([32, 16], Distribution::Normal(0.0, 1.0), &dev);
    let want = l.forward(x.clone());
    let half = Linear {
        weight: Param::from_tensor(l.weight.val().cast(DType::F16)),
        bias: l
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().cast(DType::F16))),
    };
    let got = linear(&half, x.cast(DType::F16));
    assert_eq!(got.dtype(), DType::F16);
    assert!(max_rel_diff(got.cast(DType::F32), want) < 1e-2);
}
