//! One hidden layer of the paper's 2-D network (batch 4096, 512 units) as `silu(x w + b)`:
//! burn's composition and the fused operation, values and time of forward and backward.
//!
//! `cargo run -p fm-flex --release --example fused_vs_burn`

use burn::nn::LinearConfig;
use burn::tensor::activation::silu;
use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

fn main() {
    fm_flex::allocator::tune_for_tensors();
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let layer = LinearConfig::new(512, 512).init(&dev);
    let bias = layer.bias.as_ref().expect("a bias").val();
    let x = Tensor::<2>::random([4096, 512], Distribution::Normal(0.0, 1.0), &dev).require_grad();

    let burn = silu(layer.forward(x.clone()));
    let fused = fm_flex::linear_silu(x.clone(), layer.weight.val(), bias.clone());
    let diff = (burn - fused).abs().max().into_scalar::<f32>();
    println!("forward values agree to {diff:.1e}");
    assert!(diff < 1e-4);

    let time = |name: &str, f: &dyn Fn() -> Tensor<2>| {
        let reps = 20;
        let _ = f().sum().backward(); // warm-up
        let start = Instant::now();
        for _ in 0..reps {
            let grads = f().sum().backward();
            let _ = x.grad(&grads);
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!("{name:<28} forward + backward {ms:.2} ms");
    };
    time("burn: silu(linear(x))", &|| silu(layer.forward(x.clone())));
    time("fm_flex::linear_silu", &|| {
        fm_flex::linear_silu(x.clone(), layer.weight.val(), bias.clone())
    });
}
