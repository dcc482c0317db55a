//! The paper's comparison: Table 1's objectives at equal training on 2-D data and MNIST, and
//! Figure 7's error against NFE.

use super::Scale;
use super::fm::{Fm, strings};
use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;

/// The objectives of Table 1, as `fm train --objective` names.
pub const OBJECTIVES: [&str; 4] = ["fm-ot", "fm-vp", "score", "ddpm"];
const DATA_2D: [&str; 2] = ["checkerboard", "8gaussians"];

/// Trains `run` with `train` args and returns the wall time; a fresh run each time.
fn train(fm: &Fm, run: &Path, args: &[String]) -> Result<(Value, f64)> {
    if run.exists() {
        std::fs::remove_dir_all(run)?;
    }
    let mut all = strings(&["train", "--out"]);
    all.push(run.display().to_string());
    all.extend_from_slice(args);
    fm.json(&all)
}

/// The folder of the 2-D run of `objective` on `data`.
fn run_dir(out: &Path, data: &str, objective: &str) -> std::path::PathBuf {
    out.join("runs").join(format!("{data}-{objective}"))
}

/// Each objective on each 2-D data set at equal steps and batch (MLP 4x512, Adam 1e-3 with 100
/// warmup steps, fewer for short runs, and cosine decay, EMA 0.99): NLL with the exact divergence, entropy gap,
/// energy distance, sliced W1 and NFE, all with dopri5 at 1e-5.
pub fn paper_table(fm: &Fm, scale: &Scale, out: &Path) -> Result<Value> {
    let mut rows = Vec::new();
    for data in DATA_2D {
        for objective in OBJECTIVES {
            eprintln!("table: {data} {objective}");
            let run = run_dir(out, data, objective);
            let steps = scale.table_steps.to_string();
            let (trained, wall) = train(
                fm,
                &run,
                &strings(&[
                    "--data",
                    data,
                    "--objective",
                    objective,
                    "--steps",
                    &steps,
                    "--batch-size",
                    &scale.table_batch.to_string(),
                    "--warmup",
                    &(scale.table_steps / 20).min(100).to_string(),
                    "--cosine",
                    "--ema",
                    "0.99",
                    "--checkpoint-every",
                    &steps,
                ]),
            )?;
            let (eval, eval_wall) = fm.json(&strings(&[
                "eval",
                "--run",
                &run.display().to_string(),
                "--n",
                &scale.eval_n.to_string(),
            ]))?;
            rows.push(json!({
                "data": data,
                "objective": objective,
                "steps": scale.table_steps,
                "batch": scale.table_batch,
                "train_wall_s": wall,
                "final_loss": trained["loss"],
                "nll_nats": eval["nll_nats"],
                "nll_stderr": eval["nll_stderr"],
                "entropy_gap_nats": eval["entropy_gap_nats"],
                "energy_distance": eval["energy_distance"],
                "sw1": eval["sw1"],
                "nfe": eval["nfe"],
                "eval_wall_s": eval_wall,
            }));
        }
    }
    Ok(json!({
        "settings": format!(
            "MLP 4x512, batch {}, {} steps, Adam 1e-3 ({} warmup steps, cosine decay), EMA 0.99; eval on {} points, dopri5 rtol = atol = 1e-5, exact divergence",
            scale.table_batch, scale.table_steps, (scale.table_steps / 20).min(100), scale.eval_n
        ),
        "rows": rows,
    }))
}

/// The objectives on MNIST with the `mnist` U-Net (class-unconditional): bits per dimension of
/// test images (Hutchinson, dopri5 at 1e-5; 1e-3 in quick runs), sampling NFE, and FID of the
/// samples against as many test images (`data/inception-fid`'s weights or `FM_INCEPTION`).
pub fn mnist(fm: &Fm, scale: &Scale, out: &Path, data: &Path) -> Result<Value> {
    let dir = data.join("mnist");
    if !dir.join("train-images-idx3-ubyte.gz").is_file() {
        let why = format!("no MNIST at {}: section skipped", dir.display());
        eprintln!("mnist: {why}");
        return Ok(json!({ "skipped": why }));
    }
    let fid = FidSetup::new(fm, scale, out, data, &dir)?;
    let mut rows = Vec::new();
    for objective in OBJECTIVES {
        eprintln!("mnist: {objective}");
        let run = out.join("runs").join(format!("mnist-{objective}"));
        let steps = scale.mnist_steps.to_string();
        let (trained, wall) = train(
            fm,
            &run,
            &strings(&[
                "--data",
                &format!("mnist:{}", dir.display()),
                "--objective",
                objective,
                "--steps",
                &steps,
                "--batch-size",
                &scale.mnist_batch.to_string(),
                "--lr",
                "1e-3",
                "--warmup",
                &(scale.mnist_steps / 10).to_string(),
                "--cosine",
                "--ema",
                "0.999",
                "--checkpoint-every",
                &steps,
            ]),
        )?;
        let run_s = run.display().to_string();
        let n = scale.mnist_images.to_string();
        let tol = scale.mnist_tol.to_string();
        let (nll, _) = fm.json(&strings(&[
            "nll", "--run", &run_s, "--n", &n, "--batch", &n, "--rtol", &tol, "--atol", &tol,
        ]))?;
        let (sample, _) = fm.json(&strings(&[
            "sample",
            "--run",
            &run_s,
            "--n",
            &n,
            "--rtol",
            &tol,
            "--atol",
            &tol,
            "--png",
            &out.join(format!("mnist-{objective}.png"))
                .display()
                .to_string(),
        ]))?;
        let fid_value = fid.of_run(fm, scale, &run_s, &tol)?;
        rows.push(json!({
            "objective": objective,
            "steps": scale.mnist_steps,
            "batch": scale.mnist_batch,
            "train_wall_s": wall,
            "final_loss": trained["loss"],
            "bpd": nll["bpd"],
            "bpd_stderr": nll["bpd_stderr"],
            "nll_nfe": nll["nll_nfe"],
            "nfe": sample["nfe"],
            "fid": fid_value,
        }));
    }
    Ok(json!({
        "settings": format!(
            "U-Net preset mnist, batch {}, {} steps, Adam 1e-3 (cosine), EMA 0.999; bpd of {} test images (Hutchinson, dopri5 at {:e}), NFE of sampling {} images; FID of {} samples (dopri5) against test[0:{}] ({})",
            scale.mnist_batch, scale.mnist_steps, scale.mnist_images, scale.mnist_tol, scale.mnist_images,
            scale.mnist_fid, scale.mnist_fid, fid.note()
        ),
        "rows": rows,
    }))
}

/// FID for the MNIST section: the Inception weights, and the test images' statistics computed
/// once for all objectives.
struct FidSetup {
    inception: Option<String>,
    reference: String,
    skipped: Option<String>,
}

impl FidSetup {
    fn new(fm: &Fm, scale: &Scale, out: &Path, data: &Path, dir: &Path) -> Result<Self> {
        let weights = std::env::var("FM_INCEPTION")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| data.join("inception-fid").join("weights.safetensors"));
        let reference = out.join("mnist-test-fid-stats.safetensors");
        if !weights.is_file() {
            let why = format!("no FID weights at {} (set FM_INCEPTION)", weights.display());
            eprintln!("mnist: {why}");
            return Ok(Self {
                inception: None,
                reference: String::new(),
                skipped: Some(why),
            });
        }
        let inception = weights.display().to_string();
        let _ = std::fs::remove_file(&reference);
        fm.json(&strings(&[
            "fid",
            "--inception",
            &inception,
            "--data",
            &format!("mnist:{}", dir.display()),
            "--split",
            "test",
            "--n",
            &scale.mnist_fid.to_string(),
            "--out",
            &reference.display().to_string(),
        ]))?;
        Ok(Self {
            inception: Some(inception),
            reference: reference.display().to_string(),
            skipped: None,
        })
    }

    /// The FID of `scale.mnist_fid` samples of `run` (dopri5 at `tol`), or null when skipped.
    fn of_run(&self, fm: &Fm, scale: &Scale, run: &str, tol: &str) -> Result<Value> {
        let Some(inception) = &self.inception else {
            return Ok(Value::Null);
        };
        let samples = format!("{run}/fid-samples.npy");
        let _ = std::fs::remove_file(&samples);
        fm.json(&strings(&[
            "sample",
            "--run",
            run,
            "--n",
            &scale.mnist_fid.to_string(),
            "--rtol",
            tol,
            "--atol",
            tol,
            "--out",
            &samples,
        ]))?;
        let (fid, _) = fm.json(&strings(&[
            "fid",
            "--inception",
            inception,
            "--samples",
            &samples,
            "--ref",
            &self.reference,
        ]))?;
        Ok(fid["fid"].clone())
    }

    fn note(&self) -> String {
        self.skipped
            .clone()
            .unwrap_or_else(|| "TF Inception FID network, fm fid".into())
    }
}

/// Figure 7: `fm sweep` over the table's checkerboard runs; writes `error-vs-nfe.png`.
pub fn sweep(fm: &Fm, scale: &Scale, out: &Path) -> Result<Value> {
    let mut args = strings(&["sweep"]);
    for objective in OBJECTIVES {
        let run = run_dir(out, "checkerboard", objective);
        if !run.join("config.json").is_file() {
            anyhow::bail!("{} is missing: run the table section first", run.display());
        }
        args.extend(["--run".into(), run.display().to_string()]);
    }
    let png = out.join("error-vs-nfe.png");
    args.extend(strings(&[
        "--n",
        &scale.sweep_n.to_string(),
        "--png",
        &png.display().to_string(),
    ]));
    if let Some((nfe, reference_steps)) = scale.sweep_budgets {
        args.extend(strings(&[
            "--nfe",
            nfe,
            "--reference-steps",
            &reference_steps.to_string(),
        ]));
    }
    Ok(fm.json(&args)?.0)
}
