//! Training: resume equals an uninterrupted run (points and images), a short run on Gaussian
//! data learns a field close to the closed-form marginal velocity, the paper's CIFAR-10 network
//! trains on the fixture, and mismatched networks and data are refused.

#[path = "../../fm-data/tests/common/mod.rs"]
mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::shared;
use fm_models::{NetConfig, TimeMlpConfig, UNetConfig};
use fm_paths::{AffinePath, GaussianData};
use fm_train::data::{Points, write_csv};
use fm_train::eval::load_run;
use fm_train::train::{TrainConfig, TrainError, TrainSummary, train};
use std::path::Path;
use std::sync::Mutex;

/// Trains `config` into `run` on `devices` without progress reports.
fn fit(
    config: &TrainConfig,
    run: &Path,
    devices: &[Device],
    resume: bool,
) -> Result<TrainSummary, TrainError> {
    train(config, run, devices, resume, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
}

/// burn seeds a device's generator globally: tests that initialise models from a seed take turns.
static SEEDED: Mutex<()> = Mutex::new(());

fn mlp(dim: usize, hidden: usize) -> NetConfig {
    NetConfig::Mlp(TimeMlpConfig::new(dim).with_hidden(hidden).with_depth(2))
}

fn small(data: &str, dim: usize, steps: usize) -> TrainConfig {
    let mut c = TrainConfig::new(data, dim);
    c.model = mlp(dim, 32);
    c.steps = steps;
    c.batch_size = 256;
    c.checkpoint_every = 4;
    c
}

/// The raw network's velocity at two fixed points, and its parameter count.
fn weights(run: &Path) -> Vec<f32> {
    let trained = load_run(run, &Device::flex(), true).unwrap();
    let dim = trained.config.model.data_dim();
    let x = Tensor::<2>::from_data(
        TensorData::new(
            (0..2 * dim).map(|i| (i as f32 * 0.37).sin()).collect(),
            [2, dim],
        ),
        &Device::flex(),
    );
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
    fit(
        &small("8gaussians", 2, 12),
        &a,
        std::slice::from_ref(&dev),
        false,
    )
    .unwrap();
    // Stop after 8 steps (two checkpoints), then resume to 12.
    fit(
        &small("8gaussians", 2, 8),
        &b,
        std::slice::from_ref(&dev),
        false,
    )
    .unwrap();
    let resumed = fit(
        &small("8gaussians", 2, 12),
        &b,
        std::slice::from_ref(&dev),
        true,
    )
    .unwrap();
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
        fit(
            &small("checkerboard", 2, 5),
            &dir.path().join(name),
            std::slice::from_ref(&dev),
            false,
        )
        .unwrap();
    }
    assert_eq!(
        weights(&dir.path().join("x")),
        weights(&dir.path().join("y"))
    );
}

/// The worst relative RMS error, over `times`, of the velocity learned by a network predicting
/// `predict` on Gaussian data, against the closed-form marginal velocity.
fn learned_field_error(predict: &str, times: &[f64]) -> f64 {
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
    let mut config = small(&format!("file:{}", file.display()), 2, 800);
    config.model = mlp(2, 64);
    config.predict = predict.parse().unwrap();
    config.checkpoint_every = 800;
    config.ema_decay = 0.9;
    // Annealing the step size removes most of the optimisation noise the check would see.
    config.cosine_decay = true;
    let run = dir.path().join("run");
    fit(&config, &run, std::slice::from_ref(&dev), false).unwrap();
    let trained = load_run(&run, &dev, false).unwrap();
    let path = AffinePath::new(config.scheduler());
    let z = Tensor::<2>::random([512, 2], Distribution::Normal(0.0, 1.0), &dev);
    let mut worst: f64 = 0.0;
    for &t in times {
        // Where the field was trained: points of the marginal p_t = N(alpha_t m, v_t I).
        let (alpha, var) = gaussian.marginal_moments(&path, t);
        let x = z.clone().mul_scalar(var[0].sqrt())
            + Tensor::<2>::from_floats([[1.0f32, -0.5]], &dev).mul_scalar(alpha);
        let want = gaussian.marginal_velocity(&path, x.clone(), t);
        let got = trained.velocity(x.clone(), t);
        let rel: f64 = ((got - want.clone()).square().mean().into_scalar::<f64>()
            / want.square().mean().into_scalar::<f64>())
        .sqrt();
        eprintln!("predict {predict}, t = {t}: relative RMS error of the velocity {rel:.3}");
        worst = worst.max(rel);
    }
    worst
}

// Up to t = 0.7: near t = 1 the field is steep (sigma_t -> sigma_min) and a short run of a small
// network does not resolve it.
#[test]
fn learned_velocity_approaches_the_closed_form() {
    let worst = learned_field_error("v", &[0.1, 0.3, 0.5, 0.7]);
    assert!(
        worst < 0.25,
        "learned field too far from the closed form: {worst}"
    );
}

// Predictions of x1 become velocities through 1 / sigma_t, of epsilon (and the score, trained by
// sigma_t^2-weighted denoising score matching) through 1 / alpha_t: each is checked away from
// the end where its conversion amplifies errors. On this path epsilon's
// error reaches the velocity doubled at t = 0.5 (`v = 2 x - 2 eps` there), hence its wider
// bound; reading a prediction as a velocity without converting it errs by 100% or more.
#[test]
fn x1_epsilon_and_score_predictions_give_the_closed_form_velocity() {
    let x1 = learned_field_error("x1", &[0.1, 0.3, 0.5]);
    let eps = learned_field_error("eps", &[0.3, 0.5, 0.7]);
    let score = learned_field_error("score", &[0.3, 0.5, 0.7]);
    assert!(
        x1 < 0.25 && eps < 0.5 && score < 0.5,
        "x1 {x1}, eps {eps}, score {score}"
    );
}

/// The loss of every step in a run's metrics.
fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

/// A class-conditional `tiny` U-Net on the 8x8 digits, with label dropout and flips.
fn tiny_digits(steps: usize) -> Option<TrainConfig> {
    let dir = shared("digits8x8")?;
    let unet = UNetConfig::preset("tiny", 1, 8)
        .unwrap()
        .with_num_classes(Some(10));
    let mut c = TrainConfig::images(&format!("mnist:{}", dir.display()), unet);
    c.steps = steps;
    c.batch_size = 16;
    c.warmup_steps = 2;
    c.checkpoint_every = 3;
    c.flip = true;
    Some(c)
}

#[test]
fn resumed_image_run_continues_the_same_loss_curve() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(full), Some(part)) = (tiny_digits(6), tiny_digits(3)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let dev = Device::flex();
    fit(&full, &a, std::slice::from_ref(&dev), false).unwrap();
    fit(&part, &b, std::slice::from_ref(&dev), false).unwrap();
    let resumed = fit(&full, &b, std::slice::from_ref(&dev), true).unwrap();
    assert_eq!(resumed.resumed_from, 3);
    assert_eq!(losses(&a), losses(&b));
    assert_eq!(losses(&a).len(), 6);
    assert_eq!(weights(&a), weights(&b));
}

#[test]
fn the_papers_cifar10_network_trains_on_the_fixture() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(dir) = shared("cifar10-foolbox20") else {
        return;
    };
    let unet = UNetConfig::preset("cifar10", 3, 32).unwrap();
    let mut config = TrainConfig::images(&format!("cifar10:{}", dir.display()), unet);
    config.steps = 6;
    config.batch_size = 2;
    config.lr = 2e-4;
    config.warmup_steps = 0;
    config.checkpoint_every = 6;
    let out = tempfile::tempdir().unwrap();
    let summary = fit(&config, out.path(), &[Device::flex()], false).unwrap();
    assert!(
        summary.data_note.is_some(),
        "the fixture holds only test_batch.bin"
    );
    let loss = losses(out.path());
    eprintln!("cifar10 preset, 20-image fixture: losses {loss:?}");
    let (first, last) = (loss[0] + loss[1], loss[4] + loss[5]);
    assert!(last < first, "the loss did not decrease: {loss:?}");
}

#[test]
fn networks_that_do_not_fit_the_data_are_refused() {
    let Some(digits) = shared("digits8x8") else {
        return;
    };
    let digits = format!("mnist:{}", digits.display());
    let tiny = |size| UNetConfig::preset("tiny", 1, size).unwrap();
    let pngs = tempfile::tempdir().unwrap();
    for i in 0..2 {
        image::GrayImage::new(8, 8)
            .save(pngs.path().join(format!("{i}.png")))
            .unwrap();
    }
    let unlabelled = format!("images:{}", pngs.path().display());
    let cases = [
        (
            TrainConfig::images("checkerboard", tiny(8)),
            "needs image data",
        ),
        (TrainConfig::images(&digits, tiny(16)), "[1, 16, 16]"),
        (
            TrainConfig::images(&unlabelled, tiny(8).with_num_classes(Some(10))),
            "has no labels",
        ),
        (
            TrainConfig::images(&digits, tiny(8).with_num_classes(Some(4))),
            "labels up to 9",
        ),
    ];
    let out = tempfile::tempdir().unwrap();
    for (config, want) in cases {
        match fit(&config, out.path(), &[Device::flex()], false) {
            Err(TrainError::Config(msg)) => assert!(msg.contains(want), "{msg}"),
            other => panic!("expected a refusal mentioning {want}, got {other:?}"),
        }
    }
}

#[test]
fn a_corrupt_checkpoint_is_skipped_with_its_reason() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    fit(&small("rings", 2, 8), &run, &[Device::flex()], false).unwrap();
    let newest = run.join("checkpoints/step-00000008");
    assert!(
        newest.join("config.json").is_file(),
        "the config travels with each checkpoint"
    );
    let model = newest.join("model.bpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&model, bytes).unwrap();
    let mut skipped = Vec::new();
    let found = fm_train::train::latest_checkpoint(&run, &mut skipped)
        .unwrap()
        .unwrap();
    assert_eq!(found.state.step, 4);
    assert!(skipped[0].contains("model.bpk: checksum"), "{skipped:?}");
    // Resuming continues from the good checkpoint and reaches the end.
    let resumed = fit(&small("rings", 2, 8), &run, &[Device::flex()], true).unwrap();
    assert_eq!((resumed.resumed_from, resumed.step), (4, 8));
}

#[test]
fn a_non_finite_loss_stops_the_run_or_is_skipped_on_request() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // Squares of 1e30 overflow f32: the loss is infinite from the first step.
    let file = dir.path().join("huge.csv");
    write_csv(
        &file,
        &Points {
            values: vec![1e30, -1e30, 2e30, 1e30],
            dim: 2,
        },
    )
    .unwrap();
    let mut config = small(&format!("file:{}", file.display()), 2, 4);
    match fit(&config, &dir.path().join("stop"), &[Device::flex()], false) {
        Err(TrainError::NonFinite {
            step: 1,
            last_checkpoint: None,
        }) => {}
        other => panic!("expected a non-finite error at step 1, got {other:?}"),
    }
    config.skip_nonfinite = true;
    let run = dir.path().join("skip");
    let summary = fit(&config, &run, &[Device::flex()], false).unwrap();
    assert_eq!(summary.step, 4);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"skipped\":true").count(), 4, "{metrics}");
    // The weights were never touched: they load and give finite velocities.
    assert!(weights(&run).iter().all(|v| v.is_finite()));
}

/// Data parallelism across two distinct backends (flex and ndarray, both CPU): the replica on
/// ndarray is a `fork` of the weights, its gradients travel back with `to_device` and add up on
/// flex. One device of one backend is the reference.
#[test]
fn two_devices_give_the_one_device_result_at_the_same_global_batch() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (one, two, three, four) = (
        dir.path().join("1"),
        dir.path().join("2"),
        dir.path().join("3"),
        dir.path().join("4"),
    );
    let config = small("checkerboard", 2, 8);
    let cpu = Device::flex();
    #[allow(deprecated)]
    let other = Device::ndarray();
    assert_ne!(cpu, other);
    fit(&config, &one, std::slice::from_ref(&cpu), false).unwrap();
    fit(&config, &two, &[cpu.clone(), other.clone()], false).unwrap();
    // Three replicas split 256 rows unevenly (85, 85, 86): still the global batch's gradient.
    fit(
        &config,
        &three,
        &[cpu.clone(), other.clone(), cpu.clone()],
        false,
    )
    .unwrap();
    // Four replicas, each on a thread of its own, on a machine whose pool may have two threads
    // (CI's): they finish (an earlier attempt deadlocked here) and agree.
    let replicas = [cpu.clone(), other.clone(), cpu.clone(), other.clone()];
    fit(&config, &four, &replicas, false).unwrap();
    let (w1, l1) = (weights(&one), losses(&one));
    for run in [&two, &three, &four] {
        // The shards' sums add in another order than one mean, and the backends' products
        // round differently: equal to f32 rounding.
        for (a, b) in losses(run).iter().zip(&l1) {
            assert!((a - b).abs() <= 1e-5 * b.abs(), "{a} vs {b}");
        }
        for (a, b) in weights(run).iter().zip(&w1) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
    assert_eq!(losses(&two).len(), 8);
    let err = fit(
        &small("checkerboard", 2, 2),
        &dir.path().join("x"),
        &[],
        false,
    );
    assert!(matches!(err, Err(TrainError::Config(_))));
}

/// Mixed precision: a bf16 run (forward and backward in bf16, f32 master weights, Adam and EMA)
/// follows the f32 run's loss curve, on the VP path whose `sigma_t` vanishes at t = 1 (a time
/// rounded to 1 on the device would make the target infinite): every step finite, and the mean
/// loss over each 50 steps within 5 % of f32's. The checkpoints hold f32 weights.
#[test]
fn bf16_training_tracks_f32() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut config = small("8gaussians", 2, 300);
    config.path = "vp".parse().unwrap();
    config.checkpoint_every = 300;
    let run = |dtype: &str| {
        let mut c = config.clone();
        c.dtype = dtype.parse().unwrap();
        let out = dir.path().join(dtype);
        fit(&c, &out, &[Device::flex()], false).unwrap();
        (losses(&out), out)
    };
    let (full, full_run) = run("f32");
    let (low, low_run) = run("bf16");
    assert_eq!(low.len(), 300);
    assert!(low.iter().all(|l| l.is_finite()), "{low:?}");
    for (i, (a, b)) in full.chunks(50).zip(low.chunks(50)).enumerate() {
        let (a, b) = (a.iter().sum::<f64>() / 50.0, b.iter().sum::<f64>() / 50.0);
        eprintln!(
            "steps {}..{}: f32 {a:.4}, bf16 {b:.4}",
            50 * i,
            50 * (i + 1)
        );
        assert!(
            (a - b).abs() < 0.05 * a,
            "steps {}: f32 {a} vs bf16 {b}",
            50 * i
        );
    }
    // f32 weights take the same bytes in both runs (bf16 ones would take half).
    for file in ["model.bpk", "ema.bpk"] {
        let size = |run: &Path| {
            std::fs::metadata(run.join("checkpoints/step-00000300").join(file))
                .unwrap()
                .len()
        };
        assert_eq!(size(&low_run), size(&full_run), "{file}");
    }
}

/// Runs saved before Adam's epsilon was a setting trained with burn's 1e-5 and keep it; new
/// runs use PyTorch's 1e-8; the log interval of old runs is every step.
#[test]
fn old_configs_keep_their_adam_epsilon() {
    let mut json = serde_json::to_value(TrainConfig::new("moons", 2)).unwrap();
    assert_eq!(json["adam_epsilon"], 1e-8);
    let map = json.as_object_mut().unwrap();
    map.remove("adam_epsilon");
    map.remove("log_every");
    let old: TrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!((old.adam_epsilon, old.log_every), (1e-5, 1));
}

/// The choices in a config are typed but saved by name, as the command line spells them: a
/// config reads back equal, a file from before the typed fields (no `predict`, `coupling` or
/// `dtype`) loads with their defaults, and a wrong name is an error that names it.
#[test]
fn configs_save_their_choices_by_name() {
    let mut config = TrainConfig::new("moons", 2);
    config.path = "poly:2".parse().unwrap();
    config.predict = "eps".parse().unwrap();
    config.coupling = "sinkhorn:0.1".parse().unwrap();
    config.dtype = "bf16".parse().unwrap();
    let json = serde_json::to_value(&config).unwrap();
    let names = ["path", "predict", "coupling", "dtype"].map(|k| json[k].clone());
    assert_eq!(
        names,
        ["poly:2", "eps", "sinkhorn:0.1", "bf16"].map(serde_json::Value::from)
    );
    assert_eq!(
        serde_json::from_value::<TrainConfig>(json.clone()).unwrap(),
        config
    );

    let mut old = serde_json::to_value(TrainConfig::new("moons", 2)).unwrap();
    for key in ["predict", "coupling", "dtype"] {
        old.as_object_mut().unwrap().remove(key);
    }
    let old: TrainConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old, TrainConfig::new("moons", 2));

    let mut bad = json;
    bad["path"] = "spiral".into();
    let err = serde_json::from_value::<TrainConfig>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown path 'spiral'"), "{err}");
}

/// With `log_every`, metrics lines carry the mean loss of their interval, and checkpoints always
/// get one.
#[test]
fn metrics_lines_average_the_steps_between_them() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let config = small("moons", 2, 10);
    let (every, sparse) = (dir.path().join("1"), dir.path().join("3"));
    fit(&config, &every, &[Device::flex()], false).unwrap();
    let mut c = config.clone();
    c.log_every = 3;
    fit(&c, &sparse, &[Device::flex()], false).unwrap();
    let all = losses(&every);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(sparse.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Steps 3, 4 (checkpoint), 6, 8 (checkpoint), 9, 10 (end).
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [3, 4, 6, 8, 9, 10]);
    let mut from = 0;
    for line in &lines {
        let to = line["step"].as_u64().unwrap() as usize;
        let want = all[from..to].iter().sum::<f64>() / (to - from) as f64;
        let got = line["loss"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "step {to}: {got} vs {want}"
        );
        from = to;
    }
}

/// Only folders named exactly `step-NNNNNNNN` are checkpoints, ordered by number: a user's
/// `step-best` copy is not resumed from, a `.bak` copy survives pruning, and a `state.json` whose
/// step is not its folder's is skipped with the reason.
#[test]
fn only_exact_step_folders_are_checkpoints() {
    let _turn = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut config = small("rings", 2, 8);
    config.keep_checkpoints = 1;
    fit(&config, &run, &[Device::flex()], false).unwrap();
    let root = run.join("checkpoints");
    let newest = root.join("step-00000008");
    let copy = |to: &str| {
        let to = root.join(to);
        std::fs::create_dir(&to).unwrap();
        for f in std::fs::read_dir(&newest).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    };
    copy("step-best");
    copy("step-00000008.bak");
    copy("step-99999999x");
    let mut skipped = Vec::new();
    let found = fm_train::train::latest_checkpoint(&run, &mut skipped)
        .unwrap()
        .unwrap();
    assert_eq!((found.dir.clone(), found.state.step), (newest.clone(), 8));
    assert!(skipped.is_empty(), "{skipped:?}");
    // Training on prunes step-00000008 (keep 1) and nothing of the user's.
    config.steps = 12;
    fit(&config, &run, &[Device::flex()], true).unwrap();
    for kept in [
        "step-best",
        "step-00000008.bak",
        "step-99999999x",
        "step-00000012",
    ] {
        assert!(root.join(kept).is_dir(), "{kept} was deleted");
    }
    assert!(!newest.exists());
    // A step-00000020 folder holding step 12's state is not step 20.
    let wrong = root.join("step-00000020");
    std::fs::rename(root.join("step-00000012"), &wrong).unwrap();
    let mut skipped = Vec::new();
    let found = fm_train::train::latest_checkpoint(&run, &mut skipped).unwrap();
    assert!(found.is_none(), "{found:?}");
    assert!(skipped[0].contains("records step 12"), "{skipped:?}");
}

/// A checkpoint that cannot be written (here its run has no config.json to copy; a full disk
/// fails the same way) removes its temporary folder and leaves no checkpoint.
#[test]
fn a_failed_checkpoint_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let dev = Device::flex().autodiff();
    let config = small("moons", 2, 1);
    let model = config.model.init(&dev);
    let ema = model.valid();
    let optim = burn::optim::AdamConfig::new().init();
    let state = fm_train::train::CheckpointState {
        step: 1,
        loss: None,
        checksums: Default::default(),
    };
    let err = fm_train::train::save_checkpoint(&run, &state, &model.valid(), &ema, &optim, 3);
    assert!(err.is_err());
    let left: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
