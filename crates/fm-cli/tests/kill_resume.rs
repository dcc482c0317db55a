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
    let args = |resume: bool| {
        let mut a = vec![
            "train",
            "--data",
            "rings",
            "--steps",
            &steps,
            "--batch-size",
            "128",
            "--hidden",
            "32",
            "--depth",
            "2",
            "--checkpoint-every",
            "7",
            "--out",
            run_s,
            "--json",
        ];
        if resume {
            a.push("--resume");
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
