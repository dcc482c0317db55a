//! The machine's raw sgemm (the `gemm` crate burn-flex and the fused linear layer call), whose
//! rate (criterion's throughput, in FLOP) is the floor a training step is measured against, and
//! the fused SiLU, and the fused convolution at each layer shape of the `mnist` U-Net
//! (docs/benchmarks.md; `scripts/conv_layers_torch.py` times PyTorch's on the same shapes).
//!
//! `cargo bench -p fm-flex --bench kernels`.

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The three products of a hidden layer of the 2-D model at batch 4096 (forward `x w`, input
/// gradient `g w^T`, weight gradient `x^T g`), a large square one and a U-Net convolution's, as
/// raw sgemm calls into preallocated buffers on rayon's pool: the machine's rate, without
/// burn's allocations.
fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_f32");
    group.sample_size(10);
    // (name, m, k, n, lhs transposed, rhs transposed)
    let cases = [
        ("forward_4096x512x512", 4096, 512, 512, false, false),
        ("grad_input_4096x512x512", 4096, 512, 512, false, true),
        ("grad_weight_512x4096x512", 512, 4096, 512, true, false),
        ("square_2048", 2048, 2048, 2048, false, false),
        // A group of eleven 7x7 images of the mnist U-Net's 64 -> 64 convolution: its forward
        // `w p` and weight gradient `g p^T`, each as written and transposed (`p^T w^T`,
        // `p g^T`), the orientation the fused convolution takes for them.
        ("conv_forward_64x576x539", 64, 576, 539, false, false),
        ("conv_forward_t_539x576x64", 539, 576, 64, true, true),
        ("conv_grad_weight_64x539x576", 64, 539, 576, false, true),
        ("conv_grad_weight_t_576x539x64", 576, 539, 64, false, true),
    ];
    for (name, m, k, n, lhs_t, rhs_t) in cases {
        let lhs: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut dst = vec![0.0f32; m * n];
        // Row-major storage of the operand or of its transpose: (row stride, column stride).
        let strides = |rows: usize, cols: usize, transposed: bool| {
            if transposed {
                (1, rows as isize)
            } else {
                (cols as isize, 1)
            }
        };
        let (lhs_rs, lhs_cs) = strides(m, k, lhs_t);
        let (rhs_rs, rhs_cs) = strides(k, n, rhs_t);
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                // SAFETY: the buffers hold m k, k n and m n elements with these strides.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        dst.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        lhs.as_ptr(),
                        lhs_cs,
                        lhs_rs,
                        rhs.as_ptr(),
                        rhs_cs,
                        rhs_rs,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(0),
                    )
                }
            })
        });
    }
    group.finish();
}

/// The fused SiLU over one hidden activation of the 2-D model (4096 x 512, 8 MiB) into a new
/// buffer, in elements per second: one input over and over (it stays in cache), and eight
/// inputs and outputs in rotation (128 MiB), as in a training step, where an activation has
/// left the cache by the time its pass runs.
fn silu(c: &mut Criterion) {
    fm_flex::allocator::tune_for_tensors();
    let device = Device::flex();
    let (m, n) = (4096, 512);
    let inputs: Vec<Tensor<2>> = (0..8)
        .map(|_| Tensor::random([m, n], Distribution::Normal(0.0, 1.0), &device))
        .collect();
    let mut group = c.benchmark_group("silu_f32");
    group.throughput(Throughput::Elements((m * n) as u64));
    for (name, buffers) in [("in_cache", 1), ("rotating_8", 8)] {
        let mut outputs: Vec<Option<Tensor<2>>> = vec![None; buffers];
        let mut i = 0;
        group.bench_function(name, |bench| {
            bench.iter(|| {
                i = (i + 1) % buffers;
                // The input is shared (cloned), so the kernel writes a new buffer; the one it
                // replaces is freed for the next call.
                outputs[i] = Some(fm_flex::silu(inputs[i].clone()));
            })
        });
    }
    group.finish();
}

/// The convolutions of the `mnist` U-Net preset (28x28 gray images, 32 channels, multipliers
/// 1, 2, 2) at batch 32, one per distinct shape: `(name, c, co, size, k, stride)`, padding
/// `k / 2`. `up` is the convolution after a nearest upsample.
const UNET_MNIST_CONVS: [(&str, usize, usize, usize, usize, usize); 12] = [
    ("in_1to32_28", 1, 32, 28, 3, 1),
    ("res_32to32_28", 32, 32, 28, 3, 1),
    ("down_32to32_28s2", 32, 32, 28, 3, 2),
    ("res_32to64_14", 32, 64, 14, 3, 1),
    ("res_64to64_14", 64, 64, 14, 3, 1),
    ("skip_32to64_14", 32, 64, 14, 1, 1),
    ("down_64to64_14s2", 64, 64, 14, 3, 2),
    ("res_64to64_7", 64, 64, 7, 3, 1),
    ("res_128to64_7", 128, 64, 7, 3, 1),
    ("up_64to64_28", 64, 64, 28, 3, 1),
    ("res_96to32_28", 96, 32, 28, 3, 1),
    ("out_32to1_28", 32, 1, 28, 3, 1),
];

/// The fused convolution at the `mnist` U-Net's shapes, batch 32, in FLOP of the forward
/// product: `forward` alone (as sampling runs it), and `train`, the forward and both gradients
/// through autodiff (`sum(y * g)` backward), as a training step runs it.
fn conv(c: &mut Criterion) {
    fm_flex::allocator::tune_for_tensors();
    let n = 32;
    let normal = Distribution::Normal(0.0, 1.0);
    let mut group = c.benchmark_group("conv_unet_mnist_b32");
    group.sample_size(10);
    for (name, ci, co, size, k, stride) in UNET_MNIST_CONVS {
        let out = (size + 2 * (k / 2) - k) / stride + 1;
        group.throughput(Throughput::Elements(
            (2 * n * co * out * out * ci * k * k) as u64,
        ));
        let device = Device::flex();
        let x = Tensor::<4>::random([n, ci, size, size], normal, &device);
        let w = Tensor::<4>::random([co, ci, k, k], normal, &device);
        let b = Tensor::<1>::random([co], normal, &device);
        group.bench_function(format!("{name}/forward"), |bench| {
            bench.iter(|| fm_flex::conv2d(x.clone(), w.clone(), b.clone(), stride, k / 2))
        });
        let device = device.autodiff();
        let (x, w, b) = (
            Tensor::<4>::from_data(x.into_data(), &device).require_grad(),
            Tensor::<4>::from_data(w.into_data(), &device).require_grad(),
            Tensor::<1>::from_data(b.into_data(), &device).require_grad(),
        );
        let g = Tensor::<4>::random([n, co, out, out], normal, &device);
        group.bench_function(format!("{name}/train"), |bench| {
            bench.iter(|| {
                let y = fm_flex::conv2d(x.clone(), w.clone(), b.clone(), stride, k / 2);
                (y * g.clone()).sum().backward()
            })
        });
    }
    group.finish();
}

/// The fused group norm with SiLU at the `mnist` U-Net's largest activations (batch 32, 32
/// groups), forward alone and forward with all three gradients (`sum(y * g)` backward), in
/// elements per second (`scripts/conv_layers_torch.py --norms` times PyTorch's).
fn group_norm(c: &mut Criterion) {
    fm_flex::allocator::tune_for_tensors();
    let normal = Distribution::Normal(0.0, 1.0);
    let mut group = c.benchmark_group("group_norm_silu_unet_mnist_b32");
    group.sample_size(10);
    for (channels, size) in [(32, 28), (96, 28), (64, 14), (64, 7)] {
        let shape = [32, channels, size, size];
        group.throughput(Throughput::Elements(shape.iter().product::<usize>() as u64));
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random(shape, normal, &device).require_grad();
        let gamma = Tensor::<1>::random([channels], normal, &device).require_grad();
        let beta = Tensor::<1>::random([channels], normal, &device).require_grad();
        let g = Tensor::<4>::random(shape, normal, &device);
        let name = format!("{channels}x{size}");
        group.bench_function(format!("{name}/forward"), |bench| {
            bench.iter(|| {
                fm_flex::group_norm_silu(
                    x.clone().detach(),
                    gamma.clone().detach(),
                    beta.clone().detach(),
                    32,
                    1e-5,
                )
            })
        });
        group.bench_function(format!("{name}/train"), |bench| {
            bench.iter(|| {
                let y = fm_flex::group_norm_silu(x.clone(), gamma.clone(), beta.clone(), 32, 1e-5);
                (y * g.clone()).sum().backward()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sgemm, silu, conv, group_norm);
criterion_main!(benches);
