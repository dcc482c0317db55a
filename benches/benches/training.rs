//! Sampling the probability path (x_t and the CFM target, paper eq. 23), one training step of
//! the paper's 2-D network (MLP 4x512: forward, backward and Adam), at a few batch sizes, the
//! backend's f32 matrix product through burn, and the machine's raw sgemm (the `gemm` crate
//! burn-flex calls, with the `flex` feature), whose rate (criterion's throughput, in FLOP) is
//! the floor a training step is measured against (docs/benchmarks.md).
//!
//! `cargo bench -p fm-benches --bench training`.

use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fm_benches::bench_device;
use fm_models::TimeMlpConfig;
use fm_paths::AffinePath;
use fm_paths::scheduler::{CondOt, Vp};
use fm_train::train::FusedAdamConfig;

const DIM: usize = 2;

fn path_sample(c: &mut Criterion) {
    let device = bench_device();
    let ot = AffinePath::new(CondOt::new(1e-4));
    let vp = AffinePath::new(Vp::default());
    let mut group = c.benchmark_group("path_sample");
    for batch in [1024, 4096, 65536] {
        let x0 = Tensor::<2>::random([batch, DIM], Distribution::Normal(0.0, 1.0), &device);
        let x1 = Tensor::<2>::random([batch, DIM], Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<1>::random([batch], Distribution::Uniform(0.0, 1.0), &device);
        group.bench_function(BenchmarkId::new("ot", batch), |b| {
            b.iter(|| {
                let s = ot.sample(x0.clone(), x1.clone(), t.clone());
                (s.x_t.into_data(), s.target.into_data())
            })
        });
        group.bench_function(BenchmarkId::new("vp", batch), |b| {
            b.iter(|| {
                let s = vp.sample(x0.clone(), x1.clone(), t.clone());
                (s.x_t.into_data(), s.target.into_data())
            })
        });
    }
    group.finish();
}

fn training_step(c: &mut Criterion) {
    let device = bench_device().autodiff();
    let path = AffinePath::new(CondOt::new(1e-4));
    let mut group = c.benchmark_group("training_step");
    group.sample_size(10);
    for batch in [1024, 4096] {
        let mut model = Some(TimeMlpConfig::new(DIM).init(&device));
        // The optimizer `fm train` uses.
        let mut optim = FusedAdamConfig::new().init();
        let x0 = Tensor::<2>::random([batch, DIM], Distribution::Normal(0.0, 1.0), &device);
        let x1 = Tensor::<2>::random([batch, DIM], Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<1>::random([batch], Distribution::Uniform(0.0, 1.0), &device);
        group.bench_function(BenchmarkId::new("mlp4x512", batch), |b| {
            b.iter(|| {
                let m = model.take().expect("the model is put back every step");
                let s = path.sample(x0.clone(), x1.clone(), t.clone());
                let err = m.forward(s.x_t, t.clone()) - s.target;
                let loss = (err.clone() * err).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                model = Some(optim.step(1e-3, m, grads));
            })
        });
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    let device = bench_device();
    let mut group = c.benchmark_group("matmul_f32");
    group.sample_size(10);
    // The hidden layer of the 2-D model at batch 4096, and a large square product.
    for (m, k, n) in [(4096, 512, 512), (2048, 2048, 2048)] {
        let a = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::new("mkn", format!("{m}x{k}x{n}")), |bench| {
            bench.iter(|| a.clone().matmul(b.clone()).into_data())
        });
    }
    group.finish();
}

/// The three products of a hidden layer of the 2-D model at batch 4096 (forward `x w`, input
/// gradient `g w^T`, weight gradient `x^T g`) and a large square one, as raw sgemm calls into
/// preallocated buffers on rayon's pool: the machine's rate, without burn's allocations.
#[cfg(feature = "flex")]
fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_f32");
    group.sample_size(10);
    // (name, m, k, n, lhs transposed, rhs transposed)
    let cases = [
        ("forward_4096x512x512", 4096, 512, 512, false, false),
        ("grad_input_4096x512x512", 4096, 512, 512, false, true),
        ("grad_weight_512x4096x512", 512, 4096, 512, true, false),
        ("square_2048", 2048, 2048, 2048, false, false),
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
#[cfg(feature = "flex")]
fn silu(c: &mut Criterion) {
    let device = bench_device();
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
                outputs[i] = Some(fm_models::fused::silu(inputs[i].clone()));
            })
        });
    }
    group.finish();
}

#[cfg(feature = "flex")]
criterion_group!(benches, path_sample, training_step, matmul, sgemm, silu);
#[cfg(not(feature = "flex"))]
criterion_group!(benches, path_sample, training_step, matmul);
criterion_main!(benches);
