//! Pairing one minibatch of 2-D noise with data: exact OT (assignment) and Sinkhorn, at the batch
//! sizes of training.
//!
//! `cargo bench -p fm-benches --bench coupling`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fm_paths::Coupling;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `n` standard normal points and `n` points of a 4x4 checkerboard in [-4, 4]^2.
fn batch(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x0 = (0..2 * n).map(|_| rng.sample(StandardNormal)).collect();
    let x1 = (0..n)
        .flat_map(|_| {
            loop {
                let (x, y) = (
                    rng.random_range(-4.0f32..4.0),
                    rng.random_range(-4.0f32..4.0),
                );
                if ((x + 4.0) as i32 + (y + 4.0) as i32) % 2 == 0 {
                    break [x, y];
                }
            }
        })
        .collect();
    (x0, x1)
}

fn coupling(c: &mut Criterion) {
    let mut group = c.benchmark_group("coupling");
    group.sample_size(10);
    for n in [256, 1024, 4096] {
        let (x0, x1) = batch(n);
        let mut cases = vec![("ot", Coupling::ExactOt)];
        if n <= 1024 {
            cases.push(("sinkhorn-0.05", Coupling::Sinkhorn { reg: 0.05 }));
        }
        for (name, coupling) in cases {
            group.bench_function(BenchmarkId::new(name, n), |b| {
                let mut rng = ChaCha8Rng::seed_from_u64(1);
                b.iter(|| coupling.pair(&x0, &x1, 2, None, &mut rng))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, coupling);
criterion_main!(benches);
