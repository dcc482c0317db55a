//! Project chores, run as `cargo xtask <task>`.
//!
//! - `bench [--features F] [criterion args...]`: the criterion benches of `benches/`, on the
//!   backends of the given features (default: the CPU backend).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("help") | Some("--help") | None => {
            eprintln!("usage: cargo xtask bench [--features wgpu,...] [-- criterion args]");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("cargo xtask: unknown task '{other}'; try `cargo xtask help`");
            ExitCode::FAILURE
        }
    }
}

/// Runs the criterion benches in release mode, passing features and arguments through.
fn bench(args: &[String]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["bench", "-p", "fm-benches"])
        .args(args)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cargo xtask bench: cannot run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
