//! The project's kernels off the Flex CPU backend: burn's CubeCL kernels, forward and backward,
//! against the CPU.
//! - wgpu through OpenGL (`--device wgpu:gl`): on a machine without a GPU that is Mesa's
//!   llvmpipe (Debian: libegl1, libegl-mesa0, libgl1-mesa-dri; `.ci/run` installs them). The
//!   kernels are compiled to GLSL compute shaders.
//! - CubeCL's CPU backend (`--device cubecl-cpu`, the `cubecl-cpu` feature): the same kernels
//!   compiled by LLVM for this CPU.
//!
//! Where no GL adapter can be had the wgpu test prints why and passes, except under `CI=true`,
//! where it fails: CI must run it.
#![cfg(any(feature = "wgpu", feature = "cubecl-cpu"))]

mod common;

use common::{fm_with_env, json_line, losses};
use std::path::Path;
use std::process::Output;

/// Runs `fm` with `args` on a private `XDG_RUNTIME_DIR` (Mesa's EGL wants one), with CubeCL's
/// autotuning at its minimal level: on llvmpipe and the CPU every candidate kernel is compiled
/// by LLVM, and the tests check values, not speed.
fn fm_on(args: &[&str], runtime: &Path) -> Output {
    fm_with_env(
        args,
        &[
            ("XDG_RUNTIME_DIR", runtime.as_os_str()),
            ("CUBECL_AUTOTUNE_LEVEL", "minimal".as_ref()),
        ],
    )
}

/// On wgpu:gl, one test (the kernels compile once, and llvmpipe takes both cores): see
/// [`computes_trains_and_evaluates_like_the_cpu`].
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_on_gl_computes_trains_and_evaluates_like_the_cpu() {
    let runtime = tempfile::tempdir().unwrap();
    let check = ["devices", "--check", "wgpu:gl", "--quick", "--json"];
    let out = fm_on(&check, runtime.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No adapter available") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no OpenGL adapter for wgpu: install libegl1 libegl-mesa0 libgl1-mesa-dri ({stderr})"
        );
        eprintln!("skipped: no OpenGL adapter for wgpu on this machine ({stderr})");
        return;
    }
    computes_trains_and_evaluates_like_the_cpu("wgpu:gl", &json_line(&out, &check), &runtime);
}

/// On CubeCL's CPU backend: see [`computes_trains_and_evaluates_like_the_cpu`].
#[cfg(feature = "cubecl-cpu")]
#[test]
fn cubecl_cpu_computes_trains_and_evaluates_like_the_cpu() {
    let runtime = tempfile::tempdir().unwrap();
    let check = ["devices", "--check", "cubecl-cpu", "--quick", "--json"];
    let report = json_line(&fm_on(&check, runtime.path()), &check);
    computes_trains_and_evaluates_like_the_cpu("cubecl-cpu", &report, &runtime);
}

/// On `device`, given the report of `fm devices --check DEVICE --quick`:
/// - the check: a 2-D network's velocity and exact divergence and a small U-Net's velocity and
///   input gradient agree with the CPU's within 1e-4 of their scale, and differ from them at
///   all (another backend, summing in another order);
/// - a short training run: its loss falls; the trained run samples there;
/// - its likelihood of fixed points (the network forward and backward along a fixed-step
///   solve) is the one the CPU computes from the same checkpoint.
fn computes_trains_and_evaluates_like_the_cpu(
    device: &str,
    report: &serde_json::Value,
    runtime: &tempfile::TempDir,
) {
    eprintln!("{report}");
    agrees_but_differs(device, report);
    trains_samples_and_evaluates(device, runtime.path());
}

fn agrees_but_differs(device: &str, report: &serde_json::Value) {
    let check = &report["check"][0];
    assert_eq!(check["device"], device, "{report}");
    assert_eq!(check["agrees"], true, "{report}");
    for key in [
        "velocity_rel_diff",
        "divergence_rel_diff",
        "unet_velocity_rel_diff",
        "unet_vjp_rel_diff",
    ] {
        let d = check[key].as_f64().unwrap();
        assert!(d <= 1e-4, "{key}: {report}");
    }
    let differs = ["velocity_rel_diff", "unet_velocity_rel_diff"]
        .iter()
        .any(|k| check[k].as_f64().unwrap() > 0.0);
    assert!(
        differs,
        "bit-identical to the CPU: was it the CPU? {report}"
    );
}

fn trains_samples_and_evaluates(device: &str, runtime: &Path) {
    let dir = tempfile::tempdir().unwrap();
    // The loss falls on `device` as it does on the CPU with the same flags (the two draw other
    // noise, so the curves agree in level, not step by step).
    let (run, cpu) = (dir.path().join("run"), dir.path().join("cpu"));
    let (first, last) = loss_levels(&run, device, runtime);
    let (cpu_first, cpu_last) = loss_levels(&cpu, "cpu", runtime);
    eprintln!(
        "mean loss of the first 10 and last 20 of 100 steps: {device} {first:.4} -> {last:.4}, cpu {cpu_first:.4} -> {cpu_last:.4}"
    );
    assert!(last < 0.92 * first, "the loss did not fall on {device}");
    assert!(
        (last - cpu_last).abs() < 0.1 * cpu_last,
        "{device} ends at {last}, the CPU at {cpu_last}"
    );
    let run_s = run.to_str().unwrap();

    let out = dir.path().join("samples.npy");
    let sample = [
        "sample",
        "--run",
        run_s,
        "--device",
        device,
        "--n",
        "64",
        "--solver",
        "midpoint",
        "--steps",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    let sampled = json_line(&fm_on(&sample, runtime), &sample);
    assert_eq!(sampled["nfe"].as_f64(), Some(16.0), "{sampled}");
    let written = std::fs::metadata(&out).unwrap().len();
    assert!(written >= 64 * 2 * 4, "{written} bytes");

    let nll = |on: &str| {
        let args = [
            "nll",
            "--run",
            run_s,
            "--device",
            on,
            "--n",
            "64",
            "--divergence",
            "exact",
            "--solver",
            "midpoint",
            "--steps",
            "8",
            "--json",
        ];
        json_line(&fm_on(&args, runtime), &args)["nll_nats"]
            .as_f64()
            .unwrap()
    };
    let (there, cpu) = (nll(device), nll("cpu"));
    eprintln!("NLL of 64 fixed points: {device} {there:.9} nats, cpu {cpu:.9}");
    assert!(
        (there - cpu).abs() <= 1e-4 * cpu.abs().max(1.0),
        "{device} {there} against cpu {cpu}"
    );
}

/// Trains 100 steps on `device` into `run`: the mean loss of the first 10 and the last 20.
fn loss_levels(run: &Path, device: &str, runtime: &Path) -> (f64, f64) {
    let train = [
        "train",
        "--data",
        "moons",
        "--device",
        device,
        "--steps",
        "100",
        "--batch-size",
        "128",
        "--hidden",
        "64",
        "--depth",
        "2",
        "--lr",
        "3e-3",
        "--out",
        run.to_str().unwrap(),
        "--json",
    ];
    json_line(&fm_on(&train, runtime), &train);
    let losses = losses(run);
    assert_eq!(losses.len(), 100, "{losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()), "{device}: {losses:?}");
    let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
    (mean(&losses[..10]), mean(&losses[80..]))
}
