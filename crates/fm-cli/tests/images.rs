//! Image runs through the `fm` binary: train a class-conditional U-Net on the 8x8 digits, sample
//! a guided grid and uint8 arrays, follow image paths, and report bits per dimension.

mod common;
#[path = "../../fm-data/tests/common/mod.rs"]
mod shared_data;

use common::{fm, fm_json};

/// The 8x8 digits fixture as a data spec, if `../shared/data` is present.
fn digits() -> Option<String> {
    shared_data::shared("digits8x8").map(|dir| format!("mnist:{}", dir.display()))
}

/// `.npy` header dict of a file.
fn npy_header(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    String::from_utf8_lossy(&bytes[10..10 + len]).into_owned()
}

#[test]
fn conditional_image_run_end_to_end() {
    let Some(data) = digits() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let trained = fm_json(&[
        "train",
        "--data",
        &data,
        "--model",
        "tiny",
        "--conditional",
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--checkpoint-every",
        "2",
        "--out",
        run_s,
        "--json",
    ]);
    assert_eq!(trained["step"], 4);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["kind"], "unet");
    assert_eq!(config["model"]["num_classes"], 10);
    assert_eq!(config["label_dropout"], 0.1);

    let (npy, png) = (dir.path().join("s.npy"), dir.path().join("grid.png"));
    let sampled = fm_json(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "20",
        "--solver",
        "euler",
        "--steps",
        "4",
        "--guidance",
        "2",
        "--out",
        npy.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (sampled["nfe"].as_f64(), sampled["guidance"].as_f64()),
        (Some(4.0), Some(2.0))
    );
    let header = npy_header(&npy);
    assert!(
        header.contains("'|u1'") && header.contains("(20, 8, 8, 1)"),
        "{header}"
    );
    assert_eq!(std::fs::metadata(&npy).unwrap().len(), 128 + 20 * 64);
    // Two per class, one row per class: cells of 8 x 7 pixels plus 2-pixel gaps.
    let grid = image::open(&png).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 * 58 + 2, 10 * 58 + 2));

    let paths = dir.path().join("paths.png");
    let traced = fm_json(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "3",
        "--class",
        "7",
        "--solver",
        "rk4",
        "--steps",
        "5",
        "--save-trajectories",
        dir.path().join("t.npy").to_str().unwrap(),
        "--trajectory-png",
        paths.to_str().unwrap(),
        "--json",
    ]);
    assert!(traced["straightness"].as_f64().unwrap() >= 0.0);
    // Three rows of 11 times (t = 0, 0.1, ..., 1).
    let grid = image::open(&paths).unwrap();
    assert_eq!((grid.width(), grid.height()), (11 * 58 + 2, 3 * 58 + 2));

    let nll = fm_json(&[
        "nll",
        "--run",
        run_s,
        "--n",
        "6",
        "--dequant-samples",
        "2",
        "--solver",
        "rk4",
        "--steps",
        "4",
        "--json",
    ]);
    let bpd = nll["bpd"].as_f64().unwrap();
    assert!(bpd.is_finite() && bpd > 0.0, "{nll}");
    assert_eq!(
        (nll["images"].as_u64(), nll["dequant_samples"].as_u64()),
        (Some(6), Some(2))
    );
    assert!(
        nll["data_note"].as_str().unwrap().contains("no test files"),
        "{nll}"
    );
    // Two dequantizations under Hutchinson: biased low, not a bound, and the report says so.
    assert_eq!(nll["upper_bound"], false, "{nll}");
    assert_eq!(
        nll["estimator"], "iw-dequant(k=2), hutchinson(1 rademacher)",
        "{nll}"
    );

    let (ok, stderr) = fm(&["sample", "--run", run_s, "--n", "2", "--class", "12"]);
    assert!(!ok && stderr.contains("classes 0..9"), "{stderr}");
}

#[test]
fn image_flags_are_checked_against_the_data_and_the_run() {
    let Some(data) = digits() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("plain");
    let run_s = run.to_str().unwrap();
    let (ok, stderr) = fm(&[
        "train", "--data", "moons", "--model", "mnist", "--out", run_s,
    ]);
    assert!(!ok && stderr.contains("is a U-Net for images"), "{stderr}");
    let (ok, stderr) = fm(&["train", "--data", &data, "--model", "big", "--out", run_s]);
    assert!(
        !ok && stderr.contains("expected tiny, mnist or cifar10"),
        "{stderr}"
    );
    fm_json(&[
        "train",
        "--data",
        &data,
        "--model",
        "tiny",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--out",
        run_s,
        "--json",
    ]);
    let (ok, stderr) = fm(&["sample", "--run", run_s, "--n", "2", "--guidance", "3"]);
    assert!(!ok && stderr.contains("class-conditional run"), "{stderr}");
}
