//! Sampling the probability path (x_t and the CFM target, paper eq. 23), one training step of
//! the paper's 2-D network (MLP 4x512: forward, backward and Adam), at a few batch sizes, and
//! the backend's f32 matrix product through burn. The raw sgemm rate a step is measured against
//! and the fused kernels are benched in `fm-flex` (`cargo bench -p fm-flex --bench kernels`).
//!
//! `cargo bench -p fm-benches --bench training`.

use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fm_benches::bench_device;
use fm_models::TimeMlpConfig;
use fm_paths::AffinePath;
use fm_paths::scheduler::{CondOt, Vp};

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
        #[cfg(feature = "flex")]
        let mut optim = fm_flex::FusedAdamConfig::new().init();
        #[cfg(not(feature = "flex"))]
        let mut optim = burn::optim::AdamConfig::new().init();
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

criterion_group!(benches, path_sample, training_step, matmul);
criterion_main!(benches);
