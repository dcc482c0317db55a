//! The image race against the PyTorch twin of the U-Net presets
//! (`../shared/reference/unet_bench.py`: the same parameters and tensor names, the same training
//! step, sampling through Meta's `flow_matching`), in turns A B A B in one invocation: the
//! `mnist` preset's training and sampling, and the `cifar10` preset's training through
//! `scripts/unet_twin_rgb.py` (the twin on 3x32x32 images).

use super::Scale;
use super::fm::{Fm, strings};
use super::speed::{sample_speed, train_speed};
use super::torch::{median, reference};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Images per sampling solve, and the batch of the `mnist` training race (the twin's defaults).
const SAMPLES: usize = 64;
const BATCH: usize = 32;

/// Training steps/s of the `mnist` preset at batch 32 on 1 and 2 threads, midpoint sampling (20
/// steps) of 64 images from the same weights on 2 threads, and the `cifar10` preset's training
/// on 2 threads (skipped without its data), ours against the twin's.
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
    };
    let gray = Preset {
        name: "mnist",
        data: spec.clone(),
        script: script.clone(),
        twin_data: spec,
        batch: BATCH,
    };
    let (warmup, steps) = (scale.speed_warmup.max(2), scale.image_race_steps);
    let mut training = [1usize, 2]
        .iter()
        .map(|&threads| side.training(&gray, threads, (warmup, steps), scale.rounds, out))
        .collect::<Result<Vec<_>>>()?;
    let sampling = side.sampling(&gray, scale, out)?;
    let cifar = data.join("cifar10-foolbox20");
    let (rgb_batch, rgb_warmup, rgb_steps) = scale.rgb_race;
    if cifar.is_dir() {
        let rgb = Preset {
            name: "cifar10",
            data: format!("cifar10:{}", cifar.display()),
            script: root.join("scripts/unet_twin_rgb.py"),
            twin_data: "random".into(),
            batch: rgb_batch,
        };
        let timing = (rgb_warmup, rgb_steps);
        training.push(side.training(&rgb, 2, timing, scale.rounds, out)?);
    } else {
        eprintln!(
            "pytorch-images: {} not found: the cifar10 row skipped",
            cifar.display()
        );
    }
    Ok(json!({
        "settings": format!(
            "U-Net mnist preset on MNIST, batch {BATCH}: {steps} timed steps after {warmup}; cifar10 preset on the 20 CIFAR-10 images (the twin on random 3x32x32 images), batch {rgb_batch}, 2 threads: {rgb_steps} timed steps after {rgb_warmup}; {} rounds A B A B; sampling: {SAMPLES} images, midpoint with 20 steps, 2 threads, both from the EMA weights of a {}-step fm run of the mnist preset",
            scale.rounds, scale.image_sample_steps
        ),
        "training": training,
        "sampling": sampling,
    }))
}

/// A U-Net preset's race: fm's data, and the twin's script and data.
struct Preset {
    name: &'static str,
    data: String,
    script: PathBuf,
    twin_data: String,
    batch: usize,
}

impl Preset {
    /// `fm train` of this preset in the twin's setting: steps/s over the steps after `warmup`.
    fn train(&self, fm: &Fm, run: &Path, (warmup, steps): (usize, usize)) -> Result<f64> {
        let batch = self.batch.to_string();
        let args = [
            "--data",
            &self.data,
            "--model",
            self.name,
            "--batch-size",
            &batch,
        ];
        train_speed(fm, run, "cpu", (warmup, steps), &args)
    }
}

/// The two sides of the race.
struct Side<'a> {
    fm: &'a Fm,
    python: &'a str,
}

impl Side<'_> {
    /// One training row: both sides' steps/s over `rounds` turns and the ratio of medians.
    fn training(
        &self,
        preset: &Preset,
        threads: usize,
        (warmup, steps): (usize, usize),
        rounds: usize,
        out: &Path,
    ) -> Result<Value> {
        let run = out
            .join("runs")
            .join(format!("race-unet-{}-{threads}", preset.name));
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            eprintln!(
                "pytorch-images: training {}, {threads} threads, round {}",
                preset.name,
                round + 1
            );
            ours.push(preset.train(&self.fm.threads(threads), &run, (warmup, steps))?);
            let r = reference(
                self.python,
                &preset.script,
                &strings(&[
                    "--preset",
                    preset.name,
                    "--threads",
                    &threads.to_string(),
                    "--batch-size",
                    &preset.batch.to_string(),
                    "--steps",
                    &(warmup + steps).to_string(),
                    "--warmup",
                    &warmup.to_string(),
                    "--data",
                    &preset.twin_data,
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
            "preset": preset.name,
            "threads": threads,
            "batch": preset.batch,
            "ours_steps_per_s": ours,
            "pytorch_steps_per_s": theirs,
            "ours_median": a,
            "pytorch_median": b,
            "ratio_of_medians": a / b,
        }))
    }

    /// Midpoint sampling from one fm run's EMA weights, which the twin loads, in turns.
    fn sampling(&self, preset: &Preset, scale: &Scale, out: &Path) -> Result<Value> {
        let s = scale.image_sample_steps;
        eprintln!("pytorch-images: training {s} steps for the sampling weights");
        let fm = self.fm.threads(2);
        let run = out.join("runs").join("race-unet-sample");
        preset.train(&fm, &run, (0, s))?;
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
                &preset.script,
                &strings(&[
                    "--preset",
                    preset.name,
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
                    &preset.twin_data,
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
