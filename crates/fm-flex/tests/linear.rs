//! The fused linear layer against burn's `Linear::forward`, and the fused
//! linear layer with SiLU against `silu(Linear::forward)`: values and the gradients of input,
//! weight and bias, for small and threaded sizes, one and three threads, strided inputs and half
//! precision.
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Gradients;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Distribution, Tensor};

/// The fused `layer.forward(x)`.
fn linear(l: &Linear, x: Tensor<2>) -> Tensor<2> {
    let bias = l.bias.as_ref().expect("the layer has a bias");
    fm_flex::linear(x, l.weight.val(), bias.val())
}

/// The fused `silu(layer.forward(x))`.
fn linear_silu(l: &Linear, x: Tensor<2>) -> Tensor<2> {
    let bias = l.bias.as_ref().expect("the layer has a bias");
    fm_flex::linear_silu(x, l.weight.val(), bias.val())
}

/// A fused operation and burn's composition of it.
type Pair = (
    &'static str,
    fn(&Linear, Tensor<2>) -> Tensor<2>,
    fn(&Linear, Tensor<2>) -> Tensor<2>,
);

const OPS: [Pair; 2] = [
    ("linear", linear, |l, x| l.forward(x)),
    ("linear_silu", linear_silu, |l, x| silu(l.forward(x))),
];

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
        for (name, fused, composed) in OPS {
            let diff = max_rel_diff(fused(&l, x.clone()), composed(&l, x.clone()));
            assert!(diff < 1e-5, "{name} {m}x{k}x{n}: {diff}");
        }
    }
}

#[test]
fn strided_input_matches_burn_linear() {
    let dev = Device::flex();
    dev.seed(4);
    let l = layer(40, 30, &dev);
    let transposed =
        Tensor::<2>::random([40, 90], Distribution::Normal(0.0, 1.0), &dev).transpose();
    let sliced =
        Tensor::<2>::random([100, 60], Distribution::Normal(0.0, 1.0), &dev).slice([5..95, 10..50]);
    for x in [transposed, sliced] {
        for (name, fused, composed) in OPS {
            let diff = max_rel_diff(fused(&l, x.clone()), composed(&l, x.clone()));
            assert!(diff < 1e-5, "{name}: {diff}");
        }
    }
}

/// Gradients of `sum(r * f(x))` for input, weight and bias agree with burn's autodiff of the
/// composition, on one thread and on three (which splits the weight gradient's sum).
#[test]
fn gradients_match_burn_autodiff() {
    let dev = Device::flex().autodiff();
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            for (m, k, n) in SIZES {
                dev.seed(5);
                let l = layer(k, n, &dev);
                let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &dev)
                    .require_grad();
                let r = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &dev);
                let grads_of = |y: Tensor<2>| {
                    let g = (y * r.clone()).sum().backward();
                    let gx = x.grad(&g).expect("x is tracked");
                    let gw = l.weight.val().grad(&g).expect("w is tracked");
                    (gx, gw, bias_grad(&l, &g))
                };
                for (name, fused, composed) in OPS {
                    let (fx, fw, fb) = grads_of(fused(&l, x.clone()));
                    let (bx, bw, bb) = grads_of(composed(&l, x.clone()));
                    let case = format!("{name} {m}x{k}x{n}, {threads} threads");
                    assert!(max_rel_diff(fx, bx) < 1e-5, "dx {case}");
                    assert!(max_rel_diff(fw, bw) < 1e-5, "dw {case}");
                    assert!(max_rel_diff(fb, bb) < 1e-5, "db {case}");
                }
            }
        });
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
    let g = linear_silu(&l, x.clone()).sum().backward();
    let gb = bias_grad(&l, &g);
    let g_ref = silu(l.forward(x.clone())).sum().backward();
    assert!(max_rel_diff(gb, bias_grad(&l, &g_ref)) < 1e-5);
    assert!(x.grad(&g).is_none());
}

#[test]
fn half_precision_takes_the_composition() {
    let dev = Device::flex();
    dev.seed(8);
    let l = layer(16, 8, &dev);
    let x = Tensor::<2>::random([32, 16], Distribution::Normal(0.0, 1.0), &dev);
    let half = Linear {
        weight: Param::from_tensor(l.weight.val().cast(DType::F16)),
        bias: l
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().cast(DType::F16))),
    };
    for (name, fused, composed) in OPS {
        let got = fused(&half, x.clone().cast(DType::F16));
        assert_eq!(got.dtype(), DType::F16, "{name}");
        let diff = max_rel_diff(got.cast(DType::F32), composed(&l, x.clone()));
        assert!(diff < 1e-2, "{name}: {diff}");
    }
}
