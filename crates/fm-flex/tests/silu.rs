//! The fused SiLU against burn's own composition: values, gradients, shared
//! and strided inputs, half precision.

use burn::tensor::{DType, Device, Distribution, Tensor, activation};
use fm_flex::silu;

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Inputs spanning the saturated tails as well as the middle.
fn inputs(dev: &Device) -> Tensor<2> {
    dev.seed(7);
    Tensor::<2>::random([300, 257], Distribution::Normal(0.0, 8.0), dev)
}

#[test]
fn forward_matches_burn_composition() {
    let dev = Device::flex();
    let x = inputs(&dev);
    let want = activation::silu(x.clone());
    assert!(max_abs_diff(silu(x), want) < 1e-5);
}

#[test]
fn shared_input_is_left_untouched() {
    let dev = Device::flex();
    let x = inputs(&dev);
    let before = x.clone().into_data();
    let _y = silu(x.clone());
    x.into_data().assert_eq(&before, true);
}

#[test]
fn strided_input_matches_burn_composition() {
    let dev = Device::flex();
    let x = inputs(&dev).transpose();
    let want = activation::silu(x.clone());
    assert!(max_abs_diff(silu(x), want) < 1e-5);
    let sliced = inputs(&dev).slice([10..200, 3..100]);
    let want = activation::silu(sliced.clone());
    assert!(max_abs_diff(silu(sliced), want) < 1e-5);
}

/// The hand-written backward pass gives burn's own gradient of `sum(w * silu(x))`.
#[test]
fn gradient_matches_burn_autodiff() {
    let dev = Device::flex().autodiff();
    let w = inputs(&dev).detach() * 0.1;
    let grad_of = |f: fn(Tensor<2>) -> Tensor<2>| {
        let x = inputs(&dev).require_grad();
        let grads = (f(x.clone()) * w.clone()).sum().backward();
        x.grad(&grads).expect("x is tracked")
    };
    let fused = grad_of(silu);
    let reference = grad_of(activation::silu);
    assert!(max_abs_diff(fused, reference) < 1e-5);
}

/// Gradients flow through the fused op into earlier parameters (a chain, not a leaf).
#[test]
fn gradient_flows_through_a_chain() {
    let dev = Device::flex().autodiff();
    let a = Tensor::<2>::from_floats([[0.5, -1.0], [2.0, 0.25]], &dev).require_grad();
    let grads = silu(a.clone() * 3.0).sum().backward();
    let got = a.grad(&grads).expect("a is tracked");
    let want = a.clone().detach() * 3.0;
    let s = activation::sigmoid(want.clone());
    let want = (s.clone() * (want * (s.neg() + 1.0) + 1.0)) * 3.0;
    assert!(max_abs_diff(got, want) < 1e-6);
}

#[test]
fn half_precision_takes_the_composition() {
    let dev = Device::flex();
    let x = inputs(&dev).cast(DType::F16);
    let want = activation::silu(x.clone());
    let got = silu(x);
    assert_eq!(got.dtype(), DType::F16);
    assert!(max_abs_diff(got.cast(DType::F32), want.cast(DType::F32)) < 1e-2);
}
