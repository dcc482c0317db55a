//! The image race against the PyTorch twin of the `mnist` U-Net preset
//! (`../shared/reference/unet_bench.py`: the same parameters and tensor names, the same training
//! step, sampling through Meta's `flow_matching`), in turns A B A B in one invocation.

use super::Scale;
use super::fm::{Fm, strings};
use super::speed::{sample_speed, train_speed};
use super::torch::{median, reference};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Images per sampling solve, and the batch of the training race (the twin's defaults).
const SAMPLES: usize = 64;
const BATCH: &str = "32";

/// Training steps/s of the `mnist` preset at batch 32 on 1 and 2 threads, and midpoint sampling
/// (20 steps) of 64 images from the same weights on 2 threads, ours against the twin's.
pub fn race(fm: &Fm, scale: &Scale, out: &Path, root: &Path, data: &Path) -> Result<Value> {
    let Ok(python) = std::env::var("FM_TORCH_PYTHON") else {
        let why = "FM_TORCH_PYTHON is not set (see ../shared/reference/README.md for the venv): section skipped";
        eprintln!("pytorch-images: {why}");
        return Ok(json!({ "skipped": why }));
    };
    let script = std::env::var("FM_TORCH_UNET").map_or_else(
        |_| root.join("../shared/reference/unet_bench.py"),
        PathBuf::from,
    );
    if !script.is_file() {
        bail!(
            "{} not found (set FM_TORCH_UNET to the twin's script)",
            script.display()
        );
    }
    let mnist = data.join("mnist");
    if !mnist.is_dir() {
        let why = format!("{} not found: section skipped", mnist.display());
        eprintln!("pytorch-images: {why}");
        return Ok(json!({ "skipped": why }));
    }
    let spec = format!("mnist:{}", mnist.display());
    let side = Side {
        fm,
        python: &python,
        script: &script,
        spec: &spec,
    };
    let (warmup, steps) = (scale.speed_warmup.max(2), scale.image_race_steps);
    let training = [1usize, 2]
        .iter()
        .map(|&threads| side.training(threads, (warmup, steps), scale.rounds, out))
        .collect::<Result<Vec<_>>>()?;
    let sampling = side.sampling(scale, out)?;
    Ok(json!({
        "settings": format!(
            "U-Net mnist preset on MNIST, batch {BATCH}; training: {steps} timed steps after {warmup}, {} rounds A B A B; sampling: {SAMPLES} images, midpoint with 20 steps, 2 threads, both from the EMA weights of a {}-step fm run",
            scale.rounds, scale.image_sample_steps
        ),
        "training": training,
        "sampling": sampling,
    }))
}

/// What both sides of the race need.
struct Side<'a> {
    fm: &'a Fm,
    python: &'a str,
    script: &'a Path,
    spec: &'a str,
}

impl Side<'_> {
    /// `fm train`'s flags for the twin's setting: the `mnist` preset on MNIST at batch 32.
    fn train_args(&self) -> [&str; 6] {
        [
            "--data",
            self.spec,
            "--model",
            "mnist",
            "--batch-size",
            BATCH,
        ]
    }

    /// One training row: both sides' steps/s over `rounds` turns and the ratio of medians.
    fn training(
        &self,
        threads: usize,
        (warmup, steps): (usize, usize),
        rounds: usize,
        out: &Path,
    ) -> Result<Value> {
        let run = out.join("runs").join(format!("race-unet-{threads}"));
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            eprintln!(
                "pytorch-images: training, {threads} threads, round {}",
                round + 1
            );
            ours.push(train_speed(
                &self.fm.threads(threads),
                &run,
                "cpu",
                (warmup, steps),
                &self.train_args(),
            )?);
            let r = reference(
                self.python,
                self.script,
                &strings(&[
                    "--threads",
                    &threads.to_string(),
                    "--batch-size",
                    BATCH,
                    "--steps",
                    &(warmup + steps).to_string(),
                    "--warmup",
                    &warmup.to_string(),
                    "--data",
                    self.spec,
                ]),
            )?;
            theirs.push(
                r["train"][0]["steps_per_s"]
                    .as_f64()
                    .context("the twin printed no steps_per_s")?,
            );
        }
        let (a, b) = (median(ours.clone()), median(theirs.clone()));
        Ok(json!({
            "threads": threads,
            "batch": BATCH,
            "ours_steps_per_s": ours,
            "pytorch_steps_per_s": theirs,
            "ours_median": a,
            "pytorch_median": b,
            "ratio_of_medians": a / b,
        }))
    }

    /// Midpoint sampling from one fm run's EMA weights, which the twin loads, in turns.
    fn sampling(&self, scale: &Scale, out: &Path) -> Result<Value> {
        let s = scale.image_sample_steps;
        eprintln!("pytorch-images: training {s} steps for the sampling weights");
        let fm = self.fm.threads(2);
        let run = out.join("runs").join("race-unet-sample");
        train_speed(&fm, &run, "cpu", (0, s), &self.train_args())?;
        let ema = run
            .join("checkpoints")
            .join(format!("step-{s:08}"))
            .join("ema.bpk");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..scale.rounds {
            eprintln!("pytorch-images: sampling, round {}", round + 1);
            let solver = ["--solver", "midpoint", "--steps", "20"];
            let v = sample_speed(&fm, &run, "cpu", SAMPLES, &solver)?;
            ours.push(per_nfe(&v["seconds"], &v["nfe"])?);
            let r = reference(
                self.python,
                self.script,
                &strings(&[
                    "--threads",
                    "2",
                    "--steps",
                    "0",
                    "--load-bpk",
                    &ema.display().to_string(),
                    "--sample",
                    "--solvers",
                    "midpoint",
                    "--data",
                    self.spec,
                ]),
            )?;
            let m = &r["eval"]["2"]["sample_midpoint"];
            theirs.push(per_nfe(&m["wall_s"], &m["nfe"])?);
        }
        let (a, b) = (median(ours.clone()), median(theirs.clone()));
        Ok(json!({
            "ours_s_per_nfe": ours,
            "pytorch_s_per_nfe": theirs,
            "speedup_per_nfe": b / a,
        }))
    }
}

/// Seconds per evaluation from a solve's seconds and NFE.
fn per_nfe(seconds: &Value, nfe: &Value) -> Result<f64> {
    let (s, n) = (seconds.as_f64(), nfe.as_f64());
    s.zip(n)
        .map(|(s, n)| s / n)
        .context("a sampling result without seconds and nfe")
}
