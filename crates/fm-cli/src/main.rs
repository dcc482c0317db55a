//! `fm`: train, sample and evaluate flow matching models (Lipman et al., ICLR 2023).

mod chart;
mod demo;
mod device;
mod eval_cmd;
mod fid_cmd;
mod group;
mod plot;
mod sample_cmd;
mod sweep_cmd;
mod train_cmd;
mod weights_cmd;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "fm",
    version,
    about = "Flow Matching for Generative Modeling: train, sample, evaluate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a velocity network with conditional flow matching.
    Train(train_cmd::TrainArgs),
    /// Draw samples from a trained run.
    Sample(sample_cmd::SampleArgs),
    /// Negative log-likelihood of points (bits per dimension of images) under a trained run.
    Nll(eval_cmd::NllArgs),
    /// NLL (bpd for images), entropy gap, energy distance, sliced W1 and NFE of a trained run.
    Eval(eval_cmd::EvalArgs),
    /// Write a run's weights as safetensors in PyTorch's names and layouts (linear weights
    /// [out, in]), with the run's config in the file's metadata.
    Export(weights_cmd::ExportArgs),
    /// Make a run from safetensors weights (a network trained in PyTorch with this project's
    /// layout, or a file from fm export), for fm sample, fm nll and fm eval.
    Import(weights_cmd::ImportArgs),
    /// FID between image sets (samples.npy, image data sets, saved statistics), with the TF
    /// Inception of pytorch-fid, clean-fid and NVIDIA's metrics.
    Fid(fid_cmd::FidArgs),
    /// Error of fixed-step solvers against NFE, for one or more runs (the paper's Figure 7).
    Sweep(sweep_cmd::SweepArgs),
    /// Train on the checkerboard (or --data mnist:DIR), sample, evaluate and write pictures to
    /// runs/demo.
    Demo(demo::DemoArgs),
    /// List the devices this build can use.
    Devices {
        /// Also check that other backends compute what the CPU does: the 2-D network's velocity
        /// and divergence, and a small U-Net's velocity and input gradient, on fixed weights and
        /// inputs; fails if one disagrees. Alone, checks every backend of this build but the
        /// CPU (a build with only the CPU has nothing to compare and says so); with names
        /// (`--check wgpu:gl,ndarray`), checks those devices.
        #[arg(long, num_args = 0.., value_delimiter = ',', value_name = "DEVICES")]
        check: Option<Vec<String>>,
        /// With --check: small networks and batches (MLP 2x64 on 64 points, the U-Net on 2
        /// images), for software drivers such as Mesa's llvmpipe, which compile every kernel the
        /// check tries (the paper-sized check does not finish there: docs/scaling.md).
        #[arg(long, requires = "check")]
        quick: bool,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Backend: cpu (default), ndarray, wgpu (or wgpu:gl, wgpu:vulkan, wgpu:metal, wgpu:dx12 to
    /// pin the graphics API), vulkan, cuda or cuda:N, cubecl-cpu (CubeCL's kernels on the CPU),
    /// as compiled in.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object as the last line of stdout, and no progress bar.
    #[arg(long)]
    json: bool,
}

/// A count that must be positive (`--n`).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

fn main() {
    // A binary's choice, not a library's: malloc settings for large, short-lived CPU tensors.
    #[cfg(feature = "flex")]
    fm_flex::allocator::tune_for_tensors();
    let command = Cli::command();
    let json = std::env::args().any(|a| a == "--json");
    let matches = command
        .clone()
        .try_get_matches()
        .unwrap_or_else(|e| usage_error(e, json));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| usage_error(e, json));
    // The flags typed on the command line (not defaults, not argument groups), for checks
    // such as what --resume may change.
    let given: Vec<String> = matches
        .subcommand()
        .map(|(name, sub)| {
            let flags: Vec<&str> = command
                .find_subcommand(name)
                .map(|c| c.get_arguments().map(|a| a.get_id().as_str()).collect())
                .unwrap_or_default();
            sub.ids()
                .filter(|id| flags.contains(&id.as_str()))
                .filter(|id| sub.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.to_string())
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = run(cli, &given) {
        eprintln!("error: {e:#}");
        let (kind, code) = failure_kind(&e);
        if json {
            println!("{}", json!({ "error": format!("{e:#}"), "kind": kind }));
        }
        std::process::exit(code);
    }
}

/// Exit codes (docs/reliability.md): 0 success; 1 a run error (settings, files of a run,
/// non-finite training, a busy run folder, a failed solve); 2 a usage error (flags); 3 a data
/// error (a data file or set that cannot be used); 130 interrupted by a signal, with a
/// checkpoint written.
fn failure_kind(e: &anyhow::Error) -> (&'static str, i32) {
    use fm_train::train::TrainError;
    for cause in e.chain() {
        if let Some(t) = cause.downcast_ref::<TrainError>() {
            return match t {
                TrainError::Interrupted { .. } => ("interrupted", 130),
                TrainError::Data(_) => ("data", 3),
                _ => ("run", 1),
            };
        }
        if cause.downcast_ref::<fm_train::data::DataError>().is_some() {
            return ("data", 3);
        }
    }
    ("run", 1)
}

/// A flag error: clap's message (and help or version output as usual), plus the JSON object
/// under --json; exit code 2.
fn usage_error(e: clap::Error, json: bool) -> ! {
    if json && e.use_stderr() {
        let _ = e.print();
        let message = e.render().to_string();
        let first = message.lines().next().unwrap_or("usage error");
        let error = first.trim_start_matches("error: ");
        println!("{}", json!({ "error": error, "kind": "usage" }));
        std::process::exit(2);
    }
    e.exit()
}

fn run(cli: Cli, given: &[String]) -> Result<()> {
    match cli.command {
        Command::Train(a) => train_cmd::cmd_train(&a, given).map(|v| finish(&a.common, v)),
        Command::Sample(a) => sample_cmd::cmd_sample(&a).map(|v| finish(&a.common, v)),
        Command::Nll(a) => eval_cmd::cmd_nll(&a).map(|v| finish(&a.common, v)),
        Command::Eval(a) => eval_cmd::cmd_eval(&a).map(|v| finish(&a.common, v)),
        Command::Sweep(a) => sweep_cmd::cmd_sweep(&a).map(|v| finish(&a.common, v)),
        Command::Demo(a) => demo::cmd_demo(&a).map(|v| finish(&a.common, v)),
        Command::Fid(a) => fid_cmd::cmd_fid(&a).map(|v| finish(&a.common, v)),
        Command::Export(a) => weights_cmd::cmd_export(&a).map(|v| finish(&a.common, v)),
        Command::Import(a) => weights_cmd::cmd_import(&a).map(|v| finish(&a.common, v)),
        Command::Devices { check, quick, json } => {
            let common = Common {
                device: "cpu".into(),
                json,
            };
            let mut report = json!({ "devices": device::available() });
            let mut disagree = Vec::new();
            if let Some(named) = check {
                // The CPU is the reference: comparing it with itself would prove nothing.
                if let Some(cpu) = named.iter().find(|n| matches!(n.as_str(), "cpu" | "flex")) {
                    anyhow::bail!(
                        "--check {cpu}: the CPU (flex) is the reference the others are checked against; name other devices"
                    );
                }
                let others: Vec<String> = if named.is_empty() {
                    device::available()
                        .into_iter()
                        .filter(|name| *name != "cpu")
                        .map(String::from)
                        .collect()
                } else {
                    named
                };
                if others.is_empty() {
                    report["check_note"] = json!(
                        "no backend besides the CPU reference in this build: rebuild with --features ndarray, wgpu, vulkan, cuda or cubecl-cpu to compare"
                    );
                }
                let size = if quick {
                    device::CheckSize::Quick
                } else {
                    device::CheckSize::Paper
                };
                let checks = others
                    .into_iter()
                    .map(|name| {
                        let c = device::check(&name, size)?;
                        if c["agrees"] != true {
                            disagree.push(name);
                        }
                        Ok(c)
                    })
                    .collect::<Result<Vec<_>>>()?;
                report["check"] = json!(checks);
            }
            finish(&common, report);
            if !disagree.is_empty() {
                anyhow::bail!(
                    "{} disagree with the CPU backend beyond a relative {:e}",
                    disagree.join(", "),
                    device::AGREEMENT
                );
            }
            Ok(())
        }
    }
}

/// Prints the result: a JSON line under --json, readable lines otherwise; nothing for `null`
/// (a rank other than 0 of `fm train --mpi`).
fn finish(common: &Common, value: Value) {
    if value.is_null() {
        return;
    }
    if common.json {
        println!("{value}");
    } else if let Value::Object(map) = value {
        for (k, v) in map {
            println!("{k:>18}: {v}");
        }
    }
}
