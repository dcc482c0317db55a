//! Training steps/s and sampling samples/s on each backend.

use super::Scale;
use super::fm::{Fm, steps_per_s, strings};
use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;

/// Trains `warmup + steps` steps on `device` (fresh run, checkpoint only at the end) and
/// returns steps/s over the last `steps`.
pub fn train_speed(
    fm: &Fm,
    run: &Path,
    device: &str,
    (warmup, steps): (usize, usize),
    args: &[&str],
) -> Result<f64> {
    if run.exists() {
        std::fs::remove_dir_all(run)?;
    }
    let total = (warmup + steps).to_string();
    let mut all = strings(&[
        "train",
        "--device",
        device,
        "--steps",
        &total,
        "--checkpoint-every",
        &total,
        "--out",
    ]);
    all.push(run.display().to_string());
    all.extend(strings(args));
    fm.json(&all)?;
    steps_per_s(run, warmup)
}

/// Samples/s and NFE of `n` samples from `run` with `solver` args, in one batch.
pub fn sample_speed(fm: &Fm, run: &Path, device: &str, n: usize, solver: &[&str]) -> Result<Value> {
    let n = n.to_string();
    let mut all = strings(&[
        "sample", "--device", device, "--n", &n, "--batch", &n, "--run",
    ]);
    all.push(run.display().to_string());
    all.extend(strings(solver));
    let (v, _) = fm.json(&all)?;
    Ok(json!({ "samples_per_s": v["samples_per_s"], "nfe": v["nfe"], "seconds": v["seconds"] }))
}

/// The speed rows of every device: the 2-D MLP 4x512 at batch 4096, a U-Net preset (mnist at
/// batch 64, or with `gpu` cifar10 at batch 128; skipped without its data), and sampling with
/// dopri5 1e-5 and midpoint with 20 steps from the table's FM-OT checkerboard run (or, without
/// it, from the speed run).
pub fn speed(
    fm: &Fm,
    scale: &Scale,
    out: &Path,
    devices: &[String],
    gpu: bool,
    data: &Path,
) -> Result<Value> {
    let (preset, batch, kind, folder) = if gpu {
        ("cifar10", "128", "cifar10", "cifar10-foolbox20")
    } else {
        ("mnist", "64", "mnist", "mnist")
    };
    let images = data.join(folder);
    let set = format!("{kind}:{}", images.display());
    let have_images = images.is_dir();
    let mut rows = Vec::new();
    for device in devices {
        eprintln!("speed: {device}");
        let run = out.join("runs").join(format!("speed-mlp-{device}"));
        let timed = (scale.speed_warmup, scale.speed_steps);
        let mlp = train_speed(fm, &run, device, timed, &["--data", "checkerboard"])?;
        let unet = if have_images {
            let run = out.join("runs").join(format!("speed-unet-{device}"));
            json!(train_speed(
                fm,
                &run,
                device,
                timed,
                &["--data", &set, "--model", preset, "--batch-size", batch]
            )?)
        } else {
            json!(null)
        };
        let table_run = out.join("runs").join("checkerboard-fm-ot");
        let source = if table_run.join("config.json").is_file() {
            table_run
        } else {
            run
        };
        rows.push(json!({
            "device": device,
            "train_mlp_steps_per_s": mlp,
            "train_unet_steps_per_s": unet,
            "sample_dopri5": sample_speed(fm, &source, device, scale.samples, &[])?,
            "sample_midpoint20": sample_speed(fm, &source, device, scale.samples, &["--solver", "midpoint", "--steps", "20"])?,
        }));
    }
    Ok(json!({
        "settings": format!(
            "training: MLP 4x512 at batch 4096 on checkerboard, U-Net preset {preset} at batch {batch}{}; {} timed steps after {} warmup steps; sampling: {} points in one batch",
            if have_images { "" } else { " (skipped: no image data)" },
            scale.speed_steps, scale.speed_warmup, scale.samples
        ),
        "rows": rows,
    }))
}
