//! Running the `fm` binary from tests.
// Each test binary includes this module and uses only some of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `fm` with `args`: whether it succeeded, and its stderr.
pub fn fm(args: &[&str]) -> (bool, String) {
    let out = fm_with_env(args, &[]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `fm` with `args`, which must succeed, and parses the JSON object on its last stdout line.
pub fn fm_json(args: &[&str]) -> serde_json::Value {
    json_line(&fm_with_env(args, &[]), args)
}

/// Runs `fm` with `args` and the environment variables `envs` added.
pub fn fm_with_env(args: &[&str], envs: &[(&str, &OsStr)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fm"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// The JSON object on the last stdout line of `out`, the output of `fm args`, which must have
/// succeeded.
pub fn json_line(out: &Output, args: &[&str]) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

/// The losses of a run's `metrics.jsonl`, one per step.
pub fn losses(run: &Path) -> Vec<f64> {
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
