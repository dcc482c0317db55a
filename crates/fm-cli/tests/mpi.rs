//! `mpirun -np N fm train --mpi` on this machine (the `mpi` feature; `.ci/run` installs
//! OpenMPI and runs `cargo test --workspace --features fm-cli/mpi --test mpi`).
//!
//! The ranks of a job reproduce the one-process run; a rank that stalls makes the others end
//! the job after `--collective-timeout`, one that dies makes `mpirun` end it, and `--resume`
//! continues either with any number of ranks.
#![cfg(feature = "mpi")]

mod common;

use common::{fm, fm_json, losses};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A small run: MLP 2x64 on rings, global batch 256 (`steps` steps, a checkpoint every 10).
fn run_args<'a>(out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        "rings",
        "--hidden",
        "64",
        "--depth",
        "2",
        "--batch-size",
        "256",
        "--steps",
        steps,
        "--checkpoint-every",
        "10",
        "--out",
        out,
        "--json",
    ]
}

/// `mpirun -np ranks fm ARGS` on this machine (as root too, more ranks than cores allowed),
/// one thread per rank.
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-np", &ranks.to_string(), "--oversubscribe"])
        .arg(env!("CARGO_BIN_EXE_fm"))
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self,vader")
        .env("RAYON_NUM_THREADS", "1");
    c
}

fn finished(mut command: Command) -> Output {
    let out = command
        .output()
        .expect("mpirun runs (OpenMPI's openmpi-bin)");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Samples of the run's final weights (fixed seed, fixed steps), as `f32` values.
fn samples(run: &Path) -> Vec<f32> {
    let out = run.join("samples.npy");
    let (run_s, out_s) = (run.to_str().unwrap(), out.to_str().unwrap());
    fm_json(&[
        "sample", "--run", run_s, "--n", "64", "--seed", "3", "--solver", "midpoint", "--steps",
        "8", "--out", out_s, "--json",
    ]);
    let bytes = std::fs::read(&out).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn ranks_reproduce_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    fm_json(&run_args(one.to_str().unwrap(), "40"));
    // Two ranks, each with two devices on threads of their own: four shards of 64 rows.
    let mut args = run_args(two.to_str().unwrap(), "40");
    args.extend(["--mpi", "--devices", "cpu,cpu"]);
    let out = finished(mpirun(2, &args));
    // Only rank 0 reports.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), 40);
    assert_eq!(a.len(), b.len());
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * x.abs(),
            "step {}: {x} vs {y}",
            step + 1
        );
    }
    let (a, b) = (samples(&one), samples(&two));
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        worst <= 1e-4 * scale,
        "samples differ by {worst} (scale {scale})"
    );
}

#[test]
fn ranks_without_the_flag_and_bad_timeouts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut args = run_args(run.to_str().unwrap(), "10");
    args.extend(["--mpi", "--collective-timeout", "0"]);
    let (ok, stderr) = fm(&args);
    assert!(!ok);
    assert!(
        stderr.contains("--collective-timeout must be a positive"),
        "{stderr}"
    );
    let out = mpirun(2, &run_args(run.to_str().unwrap(), "10"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("one of 2 MPI ranks without --mpi"),
        "{stderr}"
    );
    assert!(!run.join("checkpoints").exists());
}

#[test]
fn ranks_that_disagree_are_refused_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    // One job of two programs (MPMD): the same run but another seed, then other steps.
    for (rank1_steps, rank1_seed, what) in [
        ("40", "1", "the initial weights (their sum)"),
        ("50", "0", "the planned steps"),
    ] {
        let mut rank0 = run_args(run_s, "40");
        rank0.extend(["--mpi", "--force"]);
        let mut rank1 = run_args(run_s, rank1_steps);
        rank1.extend(["--mpi", "--seed", rank1_seed]);
        let mut job = mpirun(1, &rank0);
        job.arg(":")
            .args(["-np", "1", env!("CARGO_BIN_EXE_fm")])
            .args(&rank1);
        let out = job.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("the ranks disagree on {what}")),
            "{stderr}"
        );
        assert!(!run.join("checkpoints").exists(), "{stderr}");
    }
}

/// The processes whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        if after.split(' ').nth(1).and_then(|p| p.parse().ok()) == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// Starts a long two-rank run and waits for its first checkpoint; returns the job and the pid
/// of its last rank.
fn started_job(run: &Path, timeout_s: &str) -> (Child, u32) {
    let mut args = run_args(run.to_str().unwrap(), "1000000");
    args.extend(["--mpi", "--collective-timeout", timeout_s]);
    let job = mpirun(2, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !run.join("checkpoints/step-00000020").exists() {
        assert!(began.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranks = children(job.id());
    assert_eq!(ranks.len(), 2, "mpirun's children: {ranks:?}");
    (job, *ranks.iter().max().unwrap())
}

/// Waits at most `limit` for the job to end; its exit code and stderr.
fn ended_within(mut job: Child, limit: Duration) -> (Option<i32>, String) {
    let began = Instant::now();
    while job.try_wait().unwrap().is_none() {
        if began.elapsed() > limit {
            job.kill().unwrap();
            panic!("the job still ran {limit:?} after a rank failed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = job.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Resumes `run` to `steps` steps with `ranks` ranks (1: plain `fm train`); the report.
fn resumed(run: &Path, ranks: usize, steps: &str) -> serde_json::Value {
    let run_s = run.to_str().unwrap();
    let mut args = vec![
        "train", "--resume", "--steps", steps, "--out", run_s, "--json",
    ];
    if ranks == 1 {
        return fm_json(&args);
    }
    args.push("--mpi");
    let out = finished(mpirun(ranks, &args));
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[test]
fn a_stalled_rank_ends_the_job_after_the_timeout_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (job, rank) = started_job(&run, "2");
    // A stopped process is not dead: mpirun does not notice, only the timeout does.
    signal("-STOP", rank);
    let (code, stderr) = ended_within(job, Duration::from_secs(60));
    assert_eq!(code, Some(124), "{stderr}");
    assert!(
        stderr.contains("got no answer from the other ranks within 2 s"),
        "{stderr}"
    );
    resumes_for_30_steps(&run, 3);
}

#[test]
fn a_killed_rank_ends_the_job_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (job, rank) = started_job(&run, "300");
    signal("-KILL", rank);
    // mpirun notices the death and ends the job, long before the collective's timeout.
    let (code, stderr) = ended_within(job, Duration::from_secs(60));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("signal 9"), "{stderr}");
    resumes_for_30_steps(&run, 1);
}

/// Sends `signal` (as `kill` spells it) to `pid`.
fn signal(signal: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

/// `--resume` with `ranks` ranks continues `run` from its newest checkpoint for 30 more steps.
fn resumes_for_30_steps(run: &Path, ranks: usize) {
    let last = latest_step(run);
    let report = resumed(run, ranks, &(last + 30).to_string());
    assert_eq!(report["resumed_from"], last);
    assert_eq!(report["step"], last + 30);
}

/// The step of the newest checkpoint folder.
fn latest_step(run: &Path) -> usize {
    std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .max()
        .unwrap()
}
