//! Crash safety: `fm train` killed with SIGKILL at random moments and resumed each time finishes
//! the run, every checkpoint left behind verifies, and the result loads.
//!
//! `FM_KILLS` sets the number of kills (3 by default, as CI runs it; the reliability figure in
//! the docs used 20): `FM_KILLS=20 cargo test -p fm-cli --test kill_resume -- --nocapture`.

mod common;

use common::{fm, fm_json};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn training_survives_sigkill_at_random_moments() {
    let kills: usize = std::env::var("FM_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    // About 0.8 s of training a kill: the waits (50-600 ms) mostly land mid-run.
    let total = 600 * kills;
    let steps = total.to_string();
    // A resumed run takes its settings from its config.json: only the plan is given again.
    let args = |resume: bool| {
        let mut a = vec!["train", "--steps", &steps, "--out", run_s, "--json"];
        if resume {
            a.push("--resume");
        } else {
            a.extend([
                "--data",
                "rings",
                "--batch-size",
                "128",
                "--hidden",
                "32",
                "--depth",
                "2",
                "--checkpoint-every",
                "7",
            ]);
        }
        a
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut survived = 0;
    for _ in 0..kills {
        let resume = run.join("config.json").exists();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fm"))
            .args(args(resume))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..600)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            survived += 1;
        }
        child.wait().unwrap();
    }
    // A kill that never landed (every run finished first) would make this test prove nothing.
    assert!(
        survived > 0,
        "none of the {kills} kills landed mid-run: the runs finished before it"
    );
    let resume = run.join("config.json").exists();
    let done = fm_json(&args(resume));
    assert_eq!(done["step"], total);
    let mut skipped = Vec::new();
    let newest = fm_train::train::latest_checkpoint(&run, &mut skipped)
        .unwrap()
        .unwrap();
    assert_eq!(newest.state.step, total);
    assert!(
        skipped.is_empty(),
        "a checkpoint was left broken: {skipped:?}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), total, "one metrics line per step");
    // The finished run is never overwritten by a fresh start.
    let (ok, stderr) = fm(&args(false));
    assert!(!ok && stderr.contains("--resume"), "{stderr}");
    let sampled = fm_json(&["sample", "--run", run_s, "--n", "10", "--json"]);
    assert!(sampled["nfe"].as_f64().unwrap() > 0.0);
    eprintln!("killed {survived} of {kills} times mid-run; resumed to step {total}");
}

/// One writer per run folder, readers welcome; SIGINT ends a run with a checkpoint of the step
/// it was on (exit code 130), not with up to --checkpoint-every steps lost.
#[test]
fn a_second_writer_is_refused_and_sigint_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let args = [
        "train",
        "--data",
        "moons",
        "--steps",
        "1000000",
        "--batch-size",
        "64",
        "--hidden",
        "8",
        "--depth",
        "1",
        "--checkpoint-every",
        "1000",
        "--out",
        run_s,
        "--json",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_fm"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, so readers have weights.
    let first = run.join("checkpoints/step-00001000");
    for _ in 0..600 {
        if first.is_dir() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(first.is_dir(), "no checkpoint within a minute");
    let pid = child.id().to_string();
    for second in [
        &args[..],
        &["train", "--out", run_s, "--resume", "--steps", "5"][..],
    ] {
        let (ok, err) = fm(second);
        assert!(!ok && err.contains(&format!("pid {pid}")), "{err}");
    }
    let sampled = fm_json(&[
        "sample", "--run", run_s, "--n", "4", "--solver", "euler", "--json",
    ]);
    assert!(sampled["checkpoint_step"].as_u64().unwrap() >= 1000);
    let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let step: usize = stderr
        .split("interrupted after step ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    let mut skipped = Vec::new();
    let newest = fm_train::train::latest_checkpoint(&run, &mut skipped)
        .unwrap()
        .unwrap();
    assert_eq!(newest.state.step, step, "{stderr}");
    // The lock went with the process: the run resumes.
    let next = (step + 3).to_string();
    let done = fm_json(&[
        "train", "--out", run_s, "--resume", "--steps", &next, "--json",
    ]);
    assert_eq!(done["step"].as_u64(), Some(step as u64 + 3));
}
