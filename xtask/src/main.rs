//! Project chores, run as `cargo xtask <task>`.
//!
//! - `bench`: the paper's comparison table and Figure 7, the speed figures of each backend and
//!   the race against the PyTorch reference; see `cargo xtask bench --help` and
//!   docs/benchmarks.md.

mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project chores")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Benchmarks: Table 1 and Figure 7 of the paper, speed per backend, the PyTorch race, and
    /// criterion's micro-benchmarks; writes target/bench/report.json and report.md.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("cargo xtask bench: some sections failed (see the report)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cargo xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
