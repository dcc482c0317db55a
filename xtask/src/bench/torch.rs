//! The race against the PyTorch reference (Meta's `flow_matching` 2-D example, same MLP, data,
//! optimizer and solvers), run in turns A B A B in one invocation so both see the same machine.

use super::Scale;
use super::fm::{Fm, strings};
use super::speed::{sample_speed, train_speed};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the reference script with `args`; returns the JSON of its last stdout line.
pub(super) fn reference(python: &str, script: &Path, args: &[String]) -> Result<Value> {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    if !out.status.success() {
        bail!(
            "{} {}: {}",
            script.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .context("the reference printed no JSON")
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Trains `steps` after `warmup` on the checkerboard (MLP 4x512, batch 4096, Adam 1e-3 without
/// warmup or decay: the reference's settings) and returns steps/s.
fn ours_train(fm: &Fm, run: &Path, warmup: usize, steps: usize) -> Result<f64> {
    train_speed(fm, run, "cpu", (warmup, steps), &["--data", "checkerboard"])
}

/// Training steps/s at 1 and 2 threads and sampling time per NFE, ours against the reference's,
/// as ratios of medians over `scale.rounds` turns each.
pub fn race(fm: &Fm, scale: &Scale, out: &Path, root: &Path) -> Result<Value> {
    let Ok(python) = std::env::var("FM_TORCH_PYTHON") else {
        let why = "FM_TORCH_PYTHON is not set (see ../shared/reference/README.md for the venv): section skipped";
        eprintln!("pytorch: {why}");
        return Ok(json!({ "skipped": why }));
    };
    let script = std::env::var("FM_TORCH_SCRIPT").map_or_else(
        |_| root.join("../shared/reference/fm2d_bench.py"),
        PathBuf::from,
    );
    if !script.is_file() {
        bail!(
            "{} not found (set FM_TORCH_SCRIPT to the reference script)",
            script.display()
        );
    }
    let warmup = scale.speed_warmup.max(2);
    let steps = scale.race_steps;
    let mut training = Vec::new();
    for threads in [1usize, 2] {
        let ours_fm = fm.threads(threads);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..scale.rounds {
            eprintln!("pytorch: training, {threads} threads, round {}", round + 1);
            let run = out.join("runs").join(format!("race-{threads}"));
            ours.push(ours_train(&ours_fm, &run, warmup, steps)?);
            let r = reference(
                &python,
                &script,
                &strings(&[
                    "--steps",
                    &(warmup + steps).to_string(),
                    "--warmup",
                    &warmup.to_string(),
                    "--threads",
                    &threads.to_string(),
                    "--no-eval",
                    "--no-micro",
                ]),
            )?;
            theirs.push(
                r["train"]["steps_per_s"]
                    .as_f64()
                    .context("no steps_per_s")?,
            );
        }
        let (ours_median, theirs_median) = (median(ours.clone()), median(theirs.clone()));
        training.push(json!({
            "threads": threads,
            "ours_steps_per_s": ours,
            "pytorch_steps_per_s": theirs,
            "ours_median": ours_median,
            "pytorch_median": theirs_median,
            "ratio_of_medians": ours_median / theirs_median,
        }));
    }

    // Sampling: both train the same steps once (2 threads), then sample in turns.
    let n = scale.samples;
    let s = scale.race_sample_steps;
    eprintln!("pytorch: training both for {s} steps before sampling");
    let ours_fm = fm.threads(2);
    let run = out.join("runs").join("race-sample");
    ours_train(&ours_fm, &run, 0, s)?;
    let prefix = out.join("runs").join("race-torch");
    reference(
        &python,
        &script,
        &strings(&[
            "--steps",
            &s.to_string(),
            "--threads",
            "2",
            "--no-eval",
            "--no-micro",
            "--save",
            &prefix.display().to_string(),
        ]),
    )?;
    let checkpoint = format!("{}_step{s}.pt", prefix.display());
    let mut rounds = Vec::new();
    for round in 0..scale.rounds {
        eprintln!("pytorch: sampling, round {}", round + 1);
        let raw = ["--raw-weights"];
        let dopri5 = sample_speed(&ours_fm, &run, "cpu", n, &raw)?;
        let midpoint = sample_speed(
            &ours_fm,
            &run,
            "cpu",
            n,
            &["--raw-weights", "--solver", "midpoint", "--steps", "20"],
        )?;
        let r = reference(
            &python,
            &script,
            &strings(&[
                "--steps",
                "0",
                "--load",
                &checkpoint,
                "--threads",
                "2",
                "--n-samples",
                &n.to_string(),
                "--nll-n",
                "10",
                "--n-metric",
                "100",
                "--no-micro",
            ]),
        )?;
        rounds.push(json!({
            "ours": { "dopri5": dopri5, "midpoint20": midpoint },
            "pytorch": { "dopri5": r["eval"]["sample_dopri5"], "midpoint20": r["eval"]["sample_midpoint"] },
        }));
    }
    let per_nfe = |side: &str, solver: &str| {
        median(
            rounds
                .iter()
                .filter_map(|r| {
                    let v = &r[side][solver];
                    let secs = v["seconds"].as_f64().or_else(|| v["wall_s"].as_f64())?;
                    Some(secs / v["nfe"].as_f64()?)
                })
                .collect(),
        )
    };
    let sampling: Vec<Value> = ["dopri5", "midpoint20"]
        .iter()
        .map(|solver| {
            json!({
                "solver": solver,
                "ours_s_per_nfe": per_nfe("ours", solver),
                "pytorch_s_per_nfe": per_nfe("pytorch", solver),
                "speedup_per_nfe": per_nfe("pytorch", solver) / per_nfe("ours", solver),
            })
        })
        .collect();
    Ok(json!({
        "settings": format!(
            "checkerboard, MLP 4x512, batch 4096, Adam 1e-3; training: {steps} timed steps after {warmup}, {} rounds A B A B; sampling: {n} points after {s} training steps (raw weights), dopri5 1e-5 and midpoint with 20 steps, 2 threads",
            scale.rounds
        ),
        "training": training,
        "sampling": sampling,
        "sampling_rounds": rounds,
    }))
}
