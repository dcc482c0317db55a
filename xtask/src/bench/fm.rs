//! Running the `fm` binary and reading what it reports.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Owned copies of command-line arguments.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The `fm` binary under test, with the environment of every call.
pub struct Fm {
    pub binary: PathBuf,
    /// Extra environment (thread counts).
    pub env: Vec<(String, String)>,
}

impl Fm {
    /// The same binary with `RAYON_NUM_THREADS` set (the CPU backend's thread pool).
    pub fn threads(&self, n: usize) -> Fm {
        Fm {
            binary: self.binary.clone(),
            env: vec![("RAYON_NUM_THREADS".into(), n.to_string())],
        }
    }

    /// Runs `fm ARGS --json`; returns the JSON object of its last stdout line and the wall time.
    pub fn json(&self, args: &[String]) -> Result<(Value, f64)> {
        let began = Instant::now();
        let out = Command::new(&self.binary)
            .args(args)
            .arg("--json")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        let secs = began.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "fm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let value = serde_json::from_str(last)
            .with_context(|| format!("fm {}: not JSON: {last}", args.join(" ")))?;
        Ok((value, secs))
    }
}

/// Training steps per second of a finished run from its `metrics.jsonl`, over the steps after
/// the first `warmup` (kernel selection, allocator growth). A step's line is written before its
/// checkpoint, so checkpoint writes fall outside the span when checkpoints come only at the end.
pub fn steps_per_s(run: &Path, warmup: usize) -> Result<f64> {
    let file = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let rows: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v["step"].as_f64()?, v["wall_s"].as_f64()?)))
        .collect();
    let (Some(first), Some(last)) = (rows.get(warmup), rows.last()) else {
        bail!(
            "{}: {} steps logged, need more than {}",
            file.display(),
            rows.len(),
            warmup + 1
        );
    };
    if last.0 <= first.0 {
        bail!("{}: too few steps after the warmup", file.display());
    }
    Ok((last.0 - first.0) / (last.1 - first.1))
}
