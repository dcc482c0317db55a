//! Training: resume equals an uninterrupted run, and a short run on Gaussian data learns a field
//! close to the closed-form marginal velocity.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use fm_paths::{AffinePath, GaussianData};
use fm_train::data::{Points, write_csv};
use fm_train::eval::load_run;
use fm_train::train::{TrainConfig, train};
use std::path::Path;
use std::sync::Mutex;

/// burn seeds a device's generator globally: tests that initialise models from a seed take turns.
static SEEDED: Mutex<()> = Mutex::new(());

fn small(data: &str, dim: usize, steps: usize) -> TrainConfig {
    let mut c = TrainConfig::new(data, dim);
    c.model = c.model.with_hidden(32).with_depth(2);
    c.steps = steps;
    c.batch_size = 256;
    c.checkpoint_every = 4;
    c
}

fn weights(run: &Path) -> Vec<f32> {
    let trained = load_run(run, &Device::flex(), true).unwrap();
    let x = Tensor::<2>::from_floats([[0.3f32, -1.0], [2.0, 0.5]], &Device::flex());
    let mut v: Vec<f32> = trained.velocity(x, 0.4).into_data().iter::<f32>().collect();
    v.push(trained.model.num_params() as f32);
    v
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let dev = Device::flex();
    train(&small("8gaussians", 2, 12), &a, &dev, false, &mut |_| {}).unwrap();
    // Stop after 8 steps (two checkpoints), then resume to 12.
    train(&small("8gaussians", 2, 8), &b, &dev, false, &mut |_| {}).unwrap();
    let resumed = train(&small("8gaussians", 2, 12), &b, &dev, true, &mut |_| {}).unwrap();
    assert_eq!(resumed.resumed_from, 8);
    assert_eq!(weights(&a), weights(&b));
    let metrics = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 12);
}

#[test]
fn same_seed_gives_identical_weights() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    for name in ["x", "y"] {
        train(
            &small("checkerboard", 2, 5),
            &dir.path().join(name),
            &dev,
            false,
            &mut |_| {},
        )
        .unwrap();
    }
    assert_eq!(
        weights(&dir.path().join("x")),
        weights(&dir.path().join("y"))
    );
}

#[test]
fn learned_field_approaches_the_closed_form() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    dev.seed(3);
    let gaussian = GaussianData::new(vec![1.0, -0.5], 0.5);
    let n = 4000;
    let pts = Tensor::<2>::random([n, 2], Distribution::Normal(0.0, 0.5), &dev)
        + Tensor::<2>::from_floats([[1.0f32, -0.5]], &dev);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gauss.csv");
    write_csv(
        &file,
        &Points {
            values: pts.into_data().iter::<f32>().collect(),
            dim: 2,
        },
    )
    .unwrap();
    let mut config = small(&format!("file:{}", file.display()), 2, 400);
    config.model = config.model.with_hidden(64);
    config.checkpoint_every = 400;
    config.ema_decay = 0.9;
    let run = dir.path().join("run");
    train(&config, &run, &dev, false, &mut |_| {}).unwrap();
    let trained = load_run(&run, &dev, false).unwrap();
    let path = AffinePath::new(config.scheduler().unwrap());
    let z = Tensor::<2>::random([512, 2], Distribution::Normal(0.0, 1.0), &dev);
    let mut worst: f64 = 0.0;
    // Up to t = 0.7: near t = 1 the field is steep (sigma_t -> sigma_min) and 400 steps of a
    // small network do not resolve it.
    for t in [0.1, 0.3, 0.5, 0.7] {
        // Where the field was trained: points of the marginal p_t = N(alpha_t m, v_t I).
        let (alpha, var) = gaussian.marginal_moments(&path, t);
        let x = z.clone().mul_scalar(var.sqrt())
            + Tensor::<2>::from_floats([[1.0f32, -0.5]], &dev).mul_scalar(alpha);
        let want = gaussian.marginal_velocity(&path, x.clone(), t);
        let got = trained.velocity(x.clone(), t);
        let rel: f64 = ((got - want.clone()).square().mean().into_scalar::<f64>()
            / want.square().mean().into_scalar::<f64>())
        .sqrt();
        eprintln!("t = {t}: relative RMS error of the learned field {rel:.3}");
        worst = worst.max(rel);
    }
    assert!(
        worst < 0.25,
        "learned field too far from the closed form: {worst}"
    );
}
