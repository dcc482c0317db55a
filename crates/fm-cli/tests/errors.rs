//! Bad input gives one clear error line and a non-zero exit, never a panic.

mod common;

use common::{fm, fm_json};

#[test]
fn bad_input_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad_csv = d.join("bad.csv");
    std::fs::write(&bad_csv, "1,2\n3,abc\n").unwrap();
    let nan_csv = d.join("nan.csv");
    std::fs::write(&nan_csv, "1,2\nNaN,3\n").unwrap();
    let npy = d.join("bad.npy");
    std::fs::write(&npy, b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i4'}").unwrap();
    let out = d.join("run").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["train", "--data", "checkers", "--out", &out]
                .into_iter()
                .map(String::from)
                .collect(),
            "unknown data 'checkers'",
        ),
        (
            vec![
                "train",
                "--data",
                "moons",
                "--devices",
                "cpu,cuda:1",
                "--out",
                &out,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "--device cuda:1: this build has no cuda backend",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                format!("file:{}", bad_csv.display()),
                "--out".into(),
                out.clone(),
            ],
            "line 2, column 2: 'abc' is not a number",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                format!("file:{}", nan_csv.display()),
                "--out".into(),
                out.clone(),
            ],
            "not a finite 32-bit float",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                format!("file:{}", npy.display()),
                "--out".into(),
                out.clone(),
            ],
            "bad.npy",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                format!("file:{}/missing.csv", d.display()),
                "--out".into(),
                out.clone(),
            ],
            "missing.csv: cannot read",
        ),
        (
            // An output folder that cannot be created fails before any training.
            vec![
                "train".into(),
                "--data".into(),
                "rings".into(),
                "--out".into(),
                format!("{}/run", bad_csv.display()),
            ],
            "bad.csv/run",
        ),
        (
            vec![
                "train",
                "--data",
                "checkerboard",
                "--steps",
                "0",
                "--out",
                &out,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "steps must be at least 1",
        ),
        (
            vec![
                "train",
                "--data",
                "checkerboard",
                "--batch-size=-4",
                "--out",
                &out,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "--batch-size",
        ),
        (
            vec![
                "train",
                "--data",
                "checkerboard",
                "--path",
                "diffusion",
                "--out",
                &out,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "unknown path 'diffusion'",
        ),
        (
            vec!["sample".into(), "--run".into(), d.display().to_string()],
            "config.json",
        ),
        (
            vec!["sample", "--run", ".", "--device", "cuda"]
                .into_iter()
                .map(String::from)
                .collect(),
            "--features cuda",
        ),
    ];
    for (args, want) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stderr) = fm(&refs);
        assert!(!ok, "{args:?} succeeded");
        assert!(
            stderr.contains(want),
            "{args:?}: expected '{want}' in {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    }
    // A run folder with a config but no checkpoint.
    let run = d.join("empty-run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.json"),
        serde_json::to_string(&fm_train::train::TrainConfig::new("checkerboard", 2)).unwrap(),
    )
    .unwrap();
    let (ok, stderr) = fm(&["nll", "--run", run.to_str().unwrap()]);
    assert!(!ok && stderr.contains("no checkpoint"), "{stderr}");
}

#[test]
fn a_finished_run_is_not_overwritten_without_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = [
        "train",
        "--data",
        "rings",
        "--steps",
        "2",
        "--batch-size",
        "32",
        "--hidden",
        "8",
        "--depth",
        "1",
        "--out",
        run.to_str().unwrap(),
        "--json",
    ];
    assert!(fm(&args).0);
    let (ok, stderr) = fm(&args);
    assert!(!ok && stderr.contains("--resume"), "{stderr}");
    // The demo does not touch a run it did not make: nothing deleted, nothing overwritten.
    let mine = run.join("checkpoints").join("mine.txt");
    std::fs::write(&mine, "a user's file").unwrap();
    let config = std::fs::read(run.join("config.json")).unwrap();
    let (ok, stderr) = fm(&["demo", "--steps", "2", "--out", run.to_str().unwrap()]);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    assert!(mine.is_file() && run.join("checkpoints/step-00000002").is_dir());
    assert_eq!(std::fs::read(run.join("config.json")).unwrap(), config);
    // A run killed before its first checkpoint (config and metrics only) is a run too.
    std::fs::remove_dir_all(run.join("checkpoints/step-00000002")).unwrap();
    let (ok, stderr) = fm(&args);
    assert!(!ok && stderr.contains("already holds a run"), "{stderr}");
    assert_eq!(std::fs::read(run.join("config.json")).unwrap(), config);
    // --force replaces the run and only the run.
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(fm(&forced).0);
    assert!(
        mine.is_file(),
        "--force deleted a file that is not the run's"
    );
    assert!(run.join("checkpoints/step-00000002").is_dir());
    let (ok, stderr) = fm(&["sample", "--run", run.to_str().unwrap(), "--n", "0"]);
    assert!(
        !ok && stderr.contains("invalid value '0' for '--n"),
        "{stderr}"
    );
}

#[test]
fn train_and_sample_end_to_end_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let last = fm_json(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "6",
        "--batch-size",
        "128",
        "--hidden",
        "16",
        "--depth",
        "2",
        "--checkpoint-every",
        "3",
        "--out",
        run_s,
        "--json",
    ]);
    assert_eq!(last["step"], 6);
    assert!(
        last["loss"].as_f64().unwrap().is_finite() && last["steps_per_s"].as_f64().unwrap() > 0.0
    );
    let npy = dir.path().join("s.npy");
    let png = dir.path().join("s.png");
    let last = fm_json(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "300",
        "--solver",
        "midpoint",
        "--steps",
        "10",
        "--out",
        npy.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(last["nfe"], 20.0);
    // The saved paths are those of the written samples: same noise, same steps (41 save times
    // cost no evaluation), ending exactly at the samples; with two batches, the first 50 rows.
    let traj = dir.path().join("t.npy");
    let (plain, traced) = (dir.path().join("plain.npy"), dir.path().join("traced.npy"));
    let sample = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "sample", "--run", run_s, "--n", "50", "--batch", "30", "--solver", "rk4", "--steps",
            "5", "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        args.push("--json");
        fm_json(&args)
    };
    let without = sample(&plain, &[]);
    let last = sample(&traced, &["--save-trajectories", traj.to_str().unwrap()]);
    assert_eq!(without["nfe"], 20.0);
    assert_eq!(last["nfe"], 20.0);
    assert!(last["straightness"].as_f64().unwrap() >= 0.0);
    // [41, 50, 2]: a 3-D array, which the 2-D point reader refuses by its shape.
    let err = fm_train::data::read_npy(&traj).unwrap_err().to_string();
    assert!(err.contains("found 3 dimensions"), "{err}");
    let samples = fm_train::data::read_npy(&plain).unwrap().values;
    assert_eq!(fm_train::data::read_npy(&traced).unwrap().values, samples);
    let paths = npy_f32(&traj);
    assert_eq!(paths.len(), 41 * 50 * 2);
    assert_eq!(
        paths[40 * 100..],
        samples[..],
        "the paths end at the samples"
    );
    assert_eq!(fm_train::data::read_npy(&npy).unwrap().len(), 300);
    assert!(png.is_file());

    // Figure 7: errors against a reference fall with NFE; the chart is written.
    let chart = dir.path().join("sweep.png");
    let last = fm_json(&[
        "sweep",
        "--run",
        run_s,
        "--n",
        "50",
        "--methods",
        "euler,rk4",
        "--nfe",
        "4,8,16",
        "--reference-steps",
        "50",
        "--png",
        chart.to_str().unwrap(),
        "--json",
    ]);
    let points = last["runs"][0]["points"].as_array().unwrap();
    let curve = |m: &str| -> Vec<(u64, f64)> {
        points
            .iter()
            .filter(|p| p["method"] == m)
            .map(|p| (p["nfe"].as_u64().unwrap(), p["rms_error"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(
        curve("euler").iter().map(|p| p.0).collect::<Vec<_>>(),
        [4, 8, 16]
    );
    // 4 / 4 = 1 and 8 / 4 = 2 steps: round(16 / 4) = 4 steps, so NFE 4, 8, 16.
    assert_eq!(curve("rk4").len(), 3);
    let (euler, rk4) = (curve("euler"), curve("rk4"));
    assert!(euler.windows(2).all(|w| w[1].1 < w[0].1), "{euler:?}");
    // This barely trained field is nearly linear: RK4 is at f32 rounding from the start.
    assert!(euler.iter().zip(&rk4).all(|(e, r)| r.1 < e.1), "{rk4:?}");
    assert!(chart.is_file());
    // dopri5 with fixed steps: 6 evaluations per step and one more for the first.
    let last = fm_json(&[
        "sweep",
        "--run",
        run_s,
        "--n",
        "50",
        "--methods",
        "dopri5",
        "--nfe",
        "6,12",
        "--reference-steps",
        "50",
        "--json",
    ]);
    let nfe: Vec<u64> = last["runs"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nfe"].as_u64().unwrap())
        .collect();
    assert_eq!(nfe, [7, 13], "{last}");
    // And fixed-step dopri5 samples: --steps makes dopri5's steps fixed.
    let v = fm_json(&[
        "sample", "--run", run_s, "--n", "20", "--solver", "dopri5", "--steps", "3", "--json",
    ]);
    assert_eq!(v["nfe"], 19.0, "{v}");
    // Adam's epsilon is PyTorch's unless asked, and saved with the run.
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"adam_epsilon\": 1e-8"), "{config}");
}

/// The values of a float32 `.npy` file, whatever its shape.
fn npy_f32(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn devices_lists_and_checks_the_backends() {
    let v = fm_json(&["devices", "--json"]);
    let devices = v["devices"].as_array().unwrap();
    assert!(devices.iter().any(|d| d == "cpu"), "{v}");
    // The CPU is the reference the others are checked against, not one to check.
    let (ok, err) = fm(&["devices", "--check", "cpu"]);
    assert!(!ok && err.contains("reference"), "{err}");
    // A graphics API wgpu does not have, or a build without wgpu: a clear error either way.
    let (ok, err) = fm(&["devices", "--check", "wgpu:metl"]);
    assert!(
        !ok && (err.contains("unknown graphics API 'metl'") || err.contains("no wgpu backend")),
        "{err}"
    );
    // With only the CPU there is nothing to compare, and it says so. With wgpu compiled in,
    // tests/backends.rs runs the comparison (on llvmpipe, with --quick; the unit tests compare
    // flex with ndarray).
    if devices.len() == 1 {
        let v = fm_json(&["devices", "--check", "--json"]);
        assert!(v["check"].as_array().unwrap().is_empty(), "{v}");
        assert!(
            v["check_note"].as_str().unwrap().contains("no backend"),
            "{v}"
        );
    }
}

#[test]
fn a_run_trained_in_bf16_samples_and_evaluates_in_either_type_and_on_two_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("bf16");
    let run_s = run.to_str().unwrap();
    let small = [
        "--data",
        "moons",
        "--batch-size",
        "128",
        "--hidden",
        "16",
        "--depth",
        "2",
    ];
    let mut args = vec!["train", "--dtype", "bf16", "--steps", "4", "--out", run_s];
    args.extend(small);
    args.push("--json");
    assert!(fm_json(&args)["loss"].as_f64().unwrap().is_finite());
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"dtype\": \"bf16\""), "{config}");
    // Resuming keeps the run's type; loading converts the saved bf16 weights to f32 and back.
    let last = fm_json(&[
        "train", "--out", run_s, "--steps", "6", "--resume", "--json",
    ]);
    assert_eq!(last["step"], 6);
    for dtype in ["f32", "bf16"] {
        let v = fm_json(&[
            "sample", "--run", run_s, "--n", "64", "--dtype", dtype, "--solver", "midpoint",
            "--json",
        ]);
        assert_eq!(v["nfe"], 40.0, "{dtype}: {v}");
    }
    let v = fm_json(&["nll", "--run", run_s, "--n", "32", "--json"]);
    assert!(v["nll_nats"].as_f64().unwrap().is_finite(), "{v}");
    // A device named twice (two replicas on one CPU) is configured once.
    let two = dir.path().join("two");
    let mut args = vec![
        "train",
        "--dtype",
        "bf16",
        "--devices",
        "cpu,cpu",
        "--steps",
        "2",
    ];
    args.extend(["--out", two.to_str().unwrap()]);
    args.extend(small);
    args.push("--json");
    assert_eq!(fm_json(&args)["step"], 2);
    let (ok, err) = fm(&["train", "--data", "moons", "--dtype", "f8", "--out", run_s]);
    assert!(!ok && err.contains("unknown float type 'f8'"), "{err}");
}

/// Messages that used to mislead, and the checkpoint every result names: a corrupt newest
/// checkpoint is skipped with a warning and the JSON says which step was used; when every one
/// is corrupt, the error says so (not "no checkpoint yet").
#[test]
fn results_name_their_checkpoint_and_messages_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let out = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_fm"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let train = [
        "train",
        "--data",
        "moons",
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--hidden",
        "8",
        "--depth",
        "1",
        "--checkpoint-every",
        "2",
        "--out",
        run_s,
        "--json",
    ];
    assert!(fm(&train).0);
    let sample = [
        "sample", "--run", run_s, "--n", "5", "--solver", "euler", "--json",
    ];
    assert_eq!(fm_json(&sample)["checkpoint_step"], 4);
    let nll = [
        "nll", "--run", run_s, "--n", "5", "--solver", "euler", "--json",
    ];
    assert_eq!(fm_json(&nll)["checkpoint_step"], 4);
    let corrupt = |step: &str| {
        let file = run.join("checkpoints").join(step).join("ema.bpk");
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&file, bytes).unwrap();
    };
    corrupt("step-00000004");
    let (ok, stdout, stderr) = out(&sample);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("warning: skipped checkpoint"), "{stderr}");
    assert!(stdout.contains("\"checkpoint_step\":2"), "{stdout}");
    corrupt("step-00000002");
    let (ok, _, stderr) = out(&sample);
    assert!(
        !ok && stderr.contains("every checkpoint is unusable"),
        "{stderr}"
    );

    let (ok, err) = fm(&["sample", "--run", run_s, "--batch", "0"]);
    assert!(
        !ok && err.contains("invalid value '0' for '--batch"),
        "{err}"
    );
    let (ok, err) = fm(&[
        "train", "--data", "moons", "--model", "bogus", "--out", run_s,
    ]);
    assert!(!ok && err.contains("unknown network"), "{err}");
    let upper = dir.path().join("POINTS.NPY");
    fm_train::data::write_npy(&upper, &[0.5, 1.0, -0.5, 2.0], &[2, 2]).unwrap();
    let (ok, err) = fm(&[
        "train",
        "--data",
        &format!("file:{}", upper.display()),
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--hidden",
        "4",
        "--depth",
        "1",
        "--out",
        dir.path().join("npy").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
}

/// Shapes and settings the networks cannot take are refused before training, naming what would
/// do: a U-Net side that does not halve through its levels, dropout outside [0, 1) or on the MLP,
/// and evaluation data of another shape than the run's.
#[test]
fn shapes_and_dropout_are_checked_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let pngs = dir.path().join("pngs");
    std::fs::create_dir(&pngs).unwrap();
    for i in 0..3u8 {
        image::GrayImage::from_fn(15, 15, |x, y| {
            image::Luma([(x as u8 * 17) ^ (y as u8 * 3) ^ i])
        })
        .save(pngs.join(format!("{i}.png")))
        .unwrap();
    }
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let images = format!("images:{}", pngs.display());
    for (args, want) in [
        (
            vec![
                "train", "--data", &images, "--model", "tiny", "--out", out_s,
            ],
            "side is a multiple of 2, not 15 (nearest: 14 or 16)",
        ),
        (
            vec![
                "train", "--data", &images, "--model", "mnist", "--out", out_s,
            ],
            "multiple of 4, not 15 (nearest: 12 or 16)",
        ),
        (
            vec![
                "train",
                "--data",
                "moons",
                "--dropout",
                "0.2",
                "--out",
                out_s,
            ],
            "--dropout applies to the U-Net",
        ),
    ] {
        let (ok, err) = fm(&args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A 16 x 16 copy trains; its dropout is checked.
    let even = dir.path().join("even");
    std::fs::create_dir(&even).unwrap();
    for i in 0..3u8 {
        image::GrayImage::from_fn(16, 16, |x, _| image::Luma([x as u8 * 9 + i]))
            .save(even.join(format!("{i}.png")))
            .unwrap();
    }
    let even_data = format!("images:{}", even.display());
    for dropout in ["1", "1.5", "NaN", "-0.1"] {
        let flag = format!("--dropout={dropout}");
        let (ok, err) = fm(&[
            "train", "--data", &even_data, "--model", "tiny", &flag, "--out", out_s,
        ]);
        assert!(
            !ok && err.contains("dropout must be in [0, 1)"),
            "{dropout}: {err}"
        );
    }
    // Points of another dimension than the run's.
    let run = dir.path().join("points");
    let run_s = run.to_str().unwrap();
    assert!(
        fm(&[
            "train",
            "--data",
            "moons",
            "--steps",
            "2",
            "--batch-size",
            "16",
            "--hidden",
            "4",
            "--depth",
            "1",
            "--out",
            run_s,
        ])
        .0
    );
    let wide = dir.path().join("wide.csv");
    std::fs::write(&wide, "1,2,3\n4,5,6\n").unwrap();
    let (ok, err) = fm(&[
        "nll",
        "--run",
        run_s,
        "--data",
        &format!("file:{}", wide.display()),
    ]);
    assert!(
        !ok && err.contains(
            "holds points of dimension 3, but the run's network takes points of dimension 2"
        ),
        "{err}"
    );
    let (ok, err) = fm(&["nll", "--run", run_s, "--data", &even_data]);
    assert!(!ok && err.contains("holds images of 1 x 16 x 16"), "{err}");
    // A picture name the PNG writer cannot honour: refused before any file is made.
    let jpg = dir.path().join("s.jpg");
    let (ok, err) = fm(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "4",
        "--png",
        jpg.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("written as PNG"), "{err}");
    assert!(!jpg.exists(), "an empty file was left behind");
}

/// Flags that were accepted and ignored or overridden without a word: each is now an error
/// naming it, and --resume without --steps finishes the run's own plan.
#[test]
fn ignored_or_conflicting_flags_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let small = [
        "--data",
        "moons",
        "--batch-size",
        "16",
        "--hidden",
        "4",
        "--depth",
        "1",
        "--out",
        run_s,
    ];
    let with = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend(extra);
        args.extend(small);
        fm(&args)
    };
    for (extra, want) in [
        (&["--weight-decay=-1"][..], "weight decay must be"),
        (&["--weight-decay", "nan"][..], "weight decay must be"),
        (&["--objective", "score", "--path", "ot"][..], "drop --path"),
        (
            &["--objective", "ddpm", "--predict", "v"][..],
            "drop --predict",
        ),
    ] {
        let (ok, err) = with(extra);
        assert!(!ok && err.contains(want), "{extra:?}: {err}");
    }
    assert!(with(&["--steps", "4", "--checkpoint-every", "2"]).0);
    for flag in [
        ["--lr", "0.1"],
        ["--batch-size", "8"],
        ["--hidden", "9"],
        ["--data", "rings"],
    ] {
        let (ok, err) = fm(&["train", "--out", run_s, "--resume", flag[0], flag[1]]);
        assert!(
            !ok && err.contains(&format!("{} cannot change with --resume", flag[0])),
            "{flag:?}: {err}"
        );
    }
    // No --steps: the run's own 4, not the flag's default of 20 000.
    let done = fm_json(&["train", "--out", run_s, "--resume", "--json"]);
    assert_eq!(done["step"], 4);
    let more = fm_json(&[
        "train", "--out", run_s, "--resume", "--steps", "6", "--json",
    ]);
    assert_eq!(
        (more["step"].as_u64(), more["resumed_from"].as_u64()),
        (Some(6), Some(4))
    );
}

/// A `file:` data path typed relative to one folder still names the same file from another
/// (stored absolute), and a file that changed after the run began is refused by --resume and
/// by nll on the run's own data, not silently read.
#[test]
fn a_run_reads_the_data_file_it_began_with() {
    let dir = tempfile::tempdir().unwrap();
    let (here, elsewhere) = (dir.path().join("here"), dir.path().join("elsewhere"));
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        here.join("pts.csv"),
        "0.1,0.2\n0.3,-0.4\n1.0,0.5\n-0.2,0.9\n",
    )
    .unwrap();
    std::fs::write(elsewhere.join("pts.csv"), "1e3,2e3\n3e3,4e3\n").unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let fm_in = |cwd: &std::path::Path, args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_fm"))
            .current_dir(cwd)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, err) = fm_in(
        &here,
        &[
            "train",
            "--data",
            "file:pts.csv",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--hidden",
            "4",
            "--depth",
            "1",
            "--out",
            run_s,
        ],
    );
    assert!(ok, "{err}");
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(
        config.contains(
            &here
                .join("pts.csv")
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        )
    );
    let (ok, err) = fm_in(
        &elsewhere,
        &["train", "--out", run_s, "--resume", "--steps", "3"],
    );
    assert!(ok, "{err}");
    std::fs::write(here.join("pts.csv"), "0.1,0.2\n9,9\n").unwrap();
    for args in [
        &["train", "--out", run_s, "--resume", "--steps", "4"][..],
        &["nll", "--run", run_s][..],
    ] {
        let (ok, err) = fm_in(&elsewhere, args);
        assert!(
            !ok && err.contains("has changed since the run began"),
            "{args:?}: {err}"
        );
    }
}

/// Under --json a failure ends stdout with one JSON object naming the error and its kind, and
/// the exit code tells the kinds apart: 2 usage, 3 data, 1 run.
#[test]
fn failures_are_json_with_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_fm"))
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let last: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
        (o.status.code(), last)
    };
    let (code, v) = run(&[
        "train", "--data", "moons", "--steps", "0", "--out", out_s, "--json",
    ]);
    assert_eq!((code, v["kind"].as_str()), (Some(1), Some("run")), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("steps must be at least 1"),
        "{v}"
    );
    let (code, v) = run(&[
        "train",
        "--data",
        "file:/nonexistent.csv",
        "--out",
        out_s,
        "--json",
    ]);
    assert_eq!((code, v["kind"].as_str()), (Some(3), Some("data")), "{v}");
    let (code, v) = run(&["sample", "--run", out_s, "--n", "0", "--json"]);
    assert_eq!((code, v["kind"].as_str()), (Some(2), Some("usage")), "{v}");
    assert!(v["error"].as_str().unwrap().contains("--n"), "{v}");
}

/// Sizes that would abort the process by a failed allocation are refused up front with the
/// estimate; no flag value, however absurd, ends in a panic or an abort.
#[test]
fn absurd_sizes_are_refused_with_an_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    for (flag, value) in [
        ("--batch-size", "100000000000"),
        ("--hidden", "1000000000"),
        ("--depth", "99999999999"),
    ] {
        let (ok, err) = fm(&["train", "--data", "moons", flag, value, "--out", out_s]);
        assert!(!ok && err.contains("this run needs about"), "{flag}: {err}");
        assert!(err.contains("GB"), "{err}");
    }
}

mod flag_values {
    use super::common::fm;
    use proptest::prelude::*;
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Runs `fm` for at most `secs` seconds: its exit code (none when a signal ended it) and
    /// stderr, or `None` when it was still running and was stopped.
    fn run_for_at_most(args: &[&str], secs: u64) -> Option<(Option<i32>, String)> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fm"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(secs) {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                return Some((status.code(), stderr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        None
    }

    /// A number as a user might type one: any f64 (NaN, infinities, negatives, huge), or any
    /// integer.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_map(|v| v.to_string()),
            any::<i64>().prop_map(|v| v.to_string()),
            any::<u64>().prop_map(|v| v.to_string()),
            Just("NaN".to_string()),
            Just("-inf".to_string()),
            Just("0".to_string()),
        ]
    }

    const TRAIN: [&str; 12] = [
        "--steps",
        "--batch-size",
        "--lr",
        "--weight-decay",
        "--warmup",
        "--grad-clip",
        "--ema",
        "--hidden",
        "--depth",
        "--sigma-min",
        "--checkpoint-every",
        "--adam-eps",
    ];
    const READ: [&str; 5] = ["--n", "--batch", "--steps", "--rtol", "--atol"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// `fm train`, `sample` and `nll` with one flag set to an arbitrary number: they train
        /// (a few steps at most), or stop with an error, never with a panic (exit 101) or an
        /// abort (a signal).
        #[test]
        fn no_flag_value_panics(which in 0usize..17, value in number()) {
            let dir = tempfile::tempdir().unwrap();
            let run = dir.path().join("run");
            let run_s = run.to_str().unwrap();
            let base = [
                "train", "--data", "moons", "--steps", "2", "--batch-size", "8", "--hidden", "4",
                "--depth", "1", "--checkpoint-every", "1", "--out", run_s,
            ];
            let flag = format!("{}={value}", if which < 12 { TRAIN[which] } else { READ[which - 12] });
            let args: Vec<&str> = if which < 12 {
                // The fuzzed flag comes last and wins; a run that would be long is cut short
                // by keeping --steps at 2 unless --steps is the flag.
                base.iter().copied().chain([flag.as_str()]).collect()
            } else {
                prop_assert!(fm(&base).0);
                let sub = if which % 2 == 0 { "sample" } else { "nll" };
                vec![sub, "--run", run_s, "--solver", "euler", "--steps", "2", "--n", "4", &flag]
            };
            // A value such as --steps 10^19 makes a valid, endless job: after 20 s it is
            // stopped, which is not a failure.
            let Some((code, stderr)) = run_for_at_most(&args, 20) else {
                return Ok(());
            };
            prop_assert!(code.is_some(), "{args:?}: killed by a signal: {stderr}");
            prop_assert!(code != Some(101), "{args:?}: panicked: {stderr}");
            prop_assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
    }
}
