//! `cargo xtask bench`: the paper's comparison (Table 1 and Figure 7) and the speed figures,
//! measured by driving the release `fm` binary; a JSON report and a Markdown summary under
//! `target/bench/`.

mod fm;
mod report;
mod speed;
mod table;
mod torch;
mod torch_images;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use fm::Fm;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The parts of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// FM-OT, FM-VP, score matching and DDPM on checkerboard and 8gaussians: NLL, entropy gap,
    /// energy distance, dopri5 NFE, training time.
    Table,
    /// The same objectives on MNIST with the small U-Net: bits per dimension and NFE.
    Mnist,
    /// Figure 7: fixed-step error against NFE of the table's checkerboard runs.
    Sweep,
    /// Training steps/s and sampling samples/s on each backend.
    Speed,
    /// The PyTorch reference side by side, A B A B (needs FM_TORCH_PYTHON).
    Pytorch,
    /// The U-Net presets against their PyTorch twin (unet_bench.py; for cifar10 through
    /// scripts/unet_twin_rgb.py), A B A B (needs FM_TORCH_PYTHON and the MNIST data; the
    /// cifar10 row, about 15 minutes, the 20 CIFAR-10 images).
    PytorchImages,
    /// The criterion micro-benchmarks of benches/.
    Criterion,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Smoke-sized runs of every section (a few minutes on 2 cores); without it, the full
    /// benchmark (about two hours on 2 cores: the 2-D table took 32 minutes, the PyTorch race
    /// 20; MNIST most of the rest).
    #[arg(long)]
    quick: bool,
    /// Sections to run, comma-separated [default: table, mnist, sweep, speed; pytorch and
    /// pytorch-images with --vs-pytorch].
    #[arg(long, value_delimiter = ',')]
    only: Vec<Section>,
    /// Race the PyTorch references (../shared/reference/fm2d_bench.py for 2-D, unet_bench.py
    /// for images; FM_TORCH_SCRIPT and FM_TORCH_UNET override them) with the Python named by
    /// FM_TORCH_PYTHON; skipped with a message when it is not set.
    #[arg(long)]
    vs_pytorch: bool,
    /// GPU settings for the speed section: the cifar10 U-Net at batch 128 (and the MLP) instead
    /// of the mnist U-Net at batch 64.
    #[arg(long)]
    gpu: bool,
    /// Cargo features of the fm build, i.e. its backends (e.g. `wgpu,vulkan`).
    #[arg(long)]
    features: Option<String>,
    /// Use this fm binary instead of building one (a machine without cargo).
    #[arg(long)]
    fm: Option<PathBuf>,
    /// Devices of the speed section [default: every backend compiled in].
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// Output folder: runs, report.json, report.md, error-vs-nfe.png [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The shared data folder (mnist/, cifar10-foolbox20/) [default: ../shared/data].
    #[arg(long)]
    data: Option<PathBuf>,
}

/// How long each section runs: smoke-sized or the documented full length.
pub struct Scale {
    /// Training steps and batch of each 2-D table run.
    pub table_steps: usize,
    pub table_batch: usize,
    /// Points for NLL and distances.
    pub eval_n: usize,
    /// MNIST: steps, batch, test images for bpd.
    pub mnist_steps: usize,
    pub mnist_batch: usize,
    pub mnist_images: usize,
    /// dopri5 tolerance of the MNIST likelihood and samples.
    pub mnist_tol: f64,
    /// MNIST: samples per objective for FID, against as many test images.
    pub mnist_fid: usize,
    /// Figure 7: points, and budgets and reference RK4 steps when not `fm sweep`'s (the
    /// paper's).
    pub sweep_n: usize,
    pub sweep_budgets: Option<(&'static str, usize)>,
    /// Speed: timed steps (after `warmup`) and samples drawn.
    pub speed_steps: usize,
    pub speed_warmup: usize,
    pub samples: usize,
    /// PyTorch race: timed training steps, the steps both train before sampling, rounds.
    pub race_steps: usize,
    pub race_sample_steps: usize,
    pub rounds: usize,
    /// Image race: timed U-Net training steps, and the steps of the run both sample from.
    pub image_race_steps: usize,
    pub image_sample_steps: usize,
    /// Image race, `cifar10` preset: batch, warmup steps and timed steps.
    pub rgb_race: (usize, usize, usize),
}

impl Scale {
    fn new(quick: bool) -> Self {
        if quick {
            Scale {
                table_steps: 100,
                table_batch: 256,
                eval_n: 300,
                mnist_steps: 4,
                mnist_batch: 8,
                mnist_images: 2,
                mnist_tol: 1e-3,
                mnist_fid: 10,
                sweep_n: 200,
                sweep_budgets: Some(("4,8,16,32", 100)),
                speed_steps: 6,
                speed_warmup: 2,
                samples: 5000,
                race_steps: 10,
                race_sample_steps: 20,
                rounds: 2,
                image_race_steps: 3,
                image_sample_steps: 2,
                rgb_race: (2, 1, 2),
            }
        } else {
            Scale {
                table_steps: 2000,
                table_batch: 1024,
                eval_n: 5000,
                mnist_steps: 500,
                mnist_batch: 32,
                mnist_images: 20,
                mnist_tol: 1e-5,
                mnist_fid: 100,
                sweep_n: 1000,
                sweep_budgets: None,
                speed_steps: 30,
                speed_warmup: 5,
                samples: 50_000,
                race_steps: 60,
                race_sample_steps: 500,
                rounds: 2,
                image_race_steps: 20,
                image_sample_steps: 60,
                rgb_race: (32, 1, 3),
            }
        }
    }
}

/// Runs the benchmark and writes `report.json` and `report.md`.
pub fn run(args: &BenchArgs) -> Result<bool> {
    let root = workspace_root()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target").join("bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| root.join("..").join("shared").join("data"));
    let fm = Fm {
        binary: match &args.fm {
            Some(path) => path.clone(),
            None => build_fm(&root, args.features.as_deref())?,
        },
        env: Vec::new(),
    };
    let scale = Scale::new(args.quick);
    let sections = if args.only.is_empty() {
        let mut s = vec![
            Section::Table,
            Section::Mnist,
            Section::Sweep,
            Section::Speed,
        ];
        if args.vs_pytorch {
            s.extend([Section::Pytorch, Section::PytorchImages]);
        }
        s
    } else {
        args.only.clone()
    };
    let mut report = json!({
        "mode": if args.quick { "quick" } else { "full" },
        "machine": machine(),
        "commit": commit(&root),
        "fm": fm.binary,
    });
    let mut ok = true;
    for section in sections {
        eprintln!("== {section:?}");
        let result = match section {
            Section::Table => table::paper_table(&fm, &scale, &out),
            Section::Mnist => table::mnist(&fm, &scale, &out, &data),
            Section::Sweep => table::sweep(&fm, &scale, &out),
            Section::Speed => {
                let devices = if args.devices.is_empty() {
                    fm.json(&["devices".into()])?.0["devices"]
                        .as_array()
                        .map(|d| {
                            d.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                } else {
                    args.devices.clone()
                };
                speed::speed(&fm, &scale, &out, &devices, args.gpu, &data)
            }
            Section::Pytorch => torch::race(&fm, &scale, &out, &root),
            Section::PytorchImages => torch_images::race(&fm, &scale, &out, &root, &data),
            Section::Criterion => criterion(&root, args.features.as_deref()),
        };
        let key = format!("{section:?}").to_lowercase();
        report[&key] = result.unwrap_or_else(|e| {
            ok = false;
            eprintln!("{key}: {e:#}");
            json!({ "error": format!("{e:#}") })
        });
        // Written after every section, so a long run that stops keeps what it measured.
        write_report(&out, &report)?;
    }
    eprintln!(
        "report: {} and {}",
        out.join("report.json").display(),
        out.join("report.md").display()
    );
    Ok(ok)
}

fn write_report(out: &Path, report: &Value) -> Result<()> {
    std::fs::write(out.join("report.json"), format!("{report:#}\n"))?;
    std::fs::write(out.join("report.md"), report::markdown(report))?;
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn workspace_root() -> Result<PathBuf> {
    // xtask lives one level below the workspace root.
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent folder")?
        .to_path_buf())
}

/// Builds `fm` in release mode with `features`; returns the binary's path.
fn build_fm(root: &Path, features: Option<&str>) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["build", "--release", "-p", "fm-cli"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    if !cmd.status()?.success() {
        bail!("building fm failed");
    }
    let meta = cargo()
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()?;
    let meta: Value = serde_json::from_slice(&meta.stdout).context("cargo metadata")?;
    let target = meta["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(Path::new(target).join("release").join("fm"))
}

fn criterion(root: &Path, features: Option<&str>) -> Result<Value> {
    let mut cmd = cargo();
    cmd.current_dir(root).args(["bench", "-p", "fm-benches"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    if !cmd.status()?.success() {
        bail!("cargo bench failed");
    }
    Ok(json!({ "results": "target/criterion (criterion's own reports)" }))
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    json!({
        "cpu": cpu,
        "threads": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "os": std::env::consts::OS,
    })
}

fn commit(root: &Path) -> Value {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            json!(if dirty { format!("{rev}+changes") } else { rev })
        }
        None => Value::Null,
    }
}
