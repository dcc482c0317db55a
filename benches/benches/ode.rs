//! One solver step of each method and one divergence evaluation, at a few batch sizes.
//!
//! `cargo bench -p fm-benches --bench ode` (add `--features wgpu` etc. for other backends).

use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fm_benches::{RandomMlp, bench_device};
use fm_ode::divergence::{ProbeKind, velocity_and_divergence};
use fm_ode::{Divergence, Method, Probes, SolverConfig, solve};

const DIM: usize = 2;
const WIDTH: usize = 512;

fn solver_step(c: &mut Criterion) {
    let device = bench_device();
    let mlp = RandomMlp::new(DIM, WIDTH, &device);
    let field = |t: f64, x: &Tensor<2>| mlp.forward(x.clone(), t);
    let mut group = c.benchmark_group("solver_step");
    for batch in [256, 4096] {
        let x = Tensor::<2>::random([batch, DIM], Distribution::Normal(0.0, 1.0), &device);
        for method in Method::ALL {
            let config = SolverConfig::fixed(method, 1);
            group.bench_with_input(BenchmarkId::new(method.name(), batch), &x, |b, x| {
                b.iter(|| {
                    let y = solve(&field, x.clone(), 0.0, 0.1, &config).unwrap().y;
                    y.into_data()
                })
            });
        }
    }
    group.finish();
}

fn divergence(c: &mut Criterion) {
    let device = bench_device();
    let mlp = RandomMlp::new(DIM, WIDTH, &device);
    let mut group = c.benchmark_group("divergence");
    for batch in [256, 4096] {
        let x = Tensor::<2>::random([batch, DIM], Distribution::Normal(0.0, 1.0), &device);
        for (name, divergence) in [
            ("exact", Divergence::Exact),
            (
                "hutchinson1",
                Divergence::Hutchinson {
                    probe: ProbeKind::Rademacher,
                    count: 1,
                },
            ),
        ] {
            let probes = Probes::new(divergence, [batch, DIM], &device);
            group.bench_with_input(BenchmarkId::new(name, batch), &x, |b, x| {
                b.iter(|| {
                    let (_, div) = velocity_and_divergence(|x| mlp.forward(x, 0.5), x, &probes);
                    div.into_data()
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = solver_step, divergence
}
criterion_main!(benches);
