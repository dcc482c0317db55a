//! The FID network and pipeline against the reference implementation's outputs (PyTorch with
//! the same weights, `../shared/data/inception-fid/`): the convolutions against the module
//! description, the network alone within 1e-4, the whole pipeline (resize included) within
//! 1e-3, and the FID of MNIST test[0:1000] against train[0:1000] within 1 % of the reference.
//!
//! Without `../shared` these tests say why and pass, except under `CI=true`, where they fail.

use burn::tensor::{Device, Tensor, TensorData};
use fm_metrics::{FEATURES, InceptionFid, frechet_distance};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The folder of the reference files, or `None` (with a message) outside CI.
fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.join("inception-fid/weights.safetensors").is_file() {
        return Some(dir);
    }
    let why = format!("{} has no inception-fid/weights.safetensors", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}: CI must run the FID tests");
    }
    eprintln!("skipping: {why}");
    None
}

/// The network, loaded once for all tests of this file.
fn network(dir: &Path) -> &'static InceptionFid {
    static NET: OnceLock<InceptionFid> = OnceLock::new();
    NET.get_or_init(|| {
        InceptionFid::load(
            &dir.join("inception-fid/weights.safetensors"),
            &Device::flex(),
        )
        .expect("the weights load")
    })
}

/// A little-endian `.npy` file: its shape and its values as f32 (from `<f4` or `|u1`), or its
/// bytes (`|u1`).
fn npy(path: &Path) -> (Vec<usize>, Vec<f32>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data = &bytes[10 + len..];
    if header.contains("'<f4'") {
        let values = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (shape, values, Vec::new())
    } else {
        assert!(header.contains("'|u1'"), "{header}");
        (
            shape,
            data.iter().map(|&b| b as f32).collect(),
            data.to_vec(),
        )
    }
}

/// The largest per-image relative L2 difference of two `[n, 2048]` feature sets.
fn worst_relative(got: &[f32], want: &[f32]) -> f64 {
    got.chunks(FEATURES)
        .zip(want.chunks(FEATURES))
        .map(|(g, w)| {
            let diff: f64 = g.iter().zip(w).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            let norm: f64 = w.iter().map(|b| (*b as f64).powi(2)).sum();
            (diff / norm).sqrt()
        })
        .fold(0.0, f64::max)
}

#[test]
fn every_convolution_matches_the_module_description() {
    let Some(dir) = shared() else { return };
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("inception-fid/spec.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<(String, Vec<u64>, u64, [u64; 2])> = spec
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "conv_bn_relu")
        .map(|m| {
            let pad = &m["padding"];
            let padding = match pad.as_u64() {
                Some(p) => [p, p],
                None => [pad[0].as_u64().unwrap(), pad[1].as_u64().unwrap()],
            };
            let name = m["path"]
                .as_str()
                .unwrap()
                .trim_start_matches("net.layers.");
            let weight = m["weight"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            (
                name.to_string(),
                weight,
                m["stride"].as_u64().unwrap(),
                padding,
            )
        })
        .collect();
    let got: Vec<(String, Vec<u64>, u64, [u64; 2])> = network(&dir)
        .convs()
        .into_iter()
        .map(|c| {
            let weight = c.weight.iter().map(|&d| d as u64).collect();
            let padding = c.padding.map(|p| p as u64);
            (c.name, weight, c.stride as u64, padding)
        })
        .collect();
    assert_eq!(got.len(), 94);
    assert_eq!(got, want);
}

#[test]
fn the_network_alone_matches_the_reference_within_1e_4() {
    let Some(dir) = shared() else { return };
    let (shape, input, _) = npy(&dir.join("inception-fid/golden_cifar2_input299.npy"));
    let (_, want, _) = npy(&dir.join("inception-fid/golden_cifar2_input299_features.npy"));
    let dims: [usize; 4] = shape.try_into().unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(input, dims), &Device::flex());
    let got: Vec<f32> = network(&dir).forward(x).into_data().iter::<f32>().collect();
    let worst = worst_relative(&got, &want);
    eprintln!("network alone: worst relative L2 {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
}

#[test]
fn the_pipeline_matches_the_reference_within_1e_3() {
    let Some(dir) = shared() else { return };
    let dev = Device::flex();
    for (images, features) in [
        ("golden_cifar20_u8.npy", "golden_cifar20_features.npy"),
        ("golden_mnist16_u8.npy", "golden_mnist16_features.npy"),
    ] {
        let (shape, _, pixels) = npy(&dir.join("inception-fid").join(images));
        let (_, want, _) = npy(&dir.join("inception-fid").join(features));
        let got = network(&dir)
            .features(
                &pixels,
                [shape[1], shape[2], shape[3]],
                8,
                &dev,
                &mut |_| (),
            )
            .unwrap();
        let worst = worst_relative(&got, &want);
        eprintln!("{images}: worst relative L2 {worst:.2e}");
        assert!(worst < 1e-3, "{images}: {worst}");
    }
}

/// The README's reference: MNIST test images 0..999 against train images 0..999.
#[test]
fn mnist_fid_matches_the_reference_within_one_percent() {
    const REFERENCE: f64 = 15.821072745560057;
    let Some(dir) = shared() else { return };
    let dev = Device::flex();
    let mnist = dir.join("mnist");
    let first = |split| {
        let set = fm_data::load_idx(&mnist, split).expect("the MNIST files");
        set.pixels[..1000 * 28 * 28].to_vec()
    };
    let (test, train) = (first(fm_data::Split::Test), first(fm_data::Split::Train));
    let net = network(&dir);
    let start = std::time::Instant::now();
    let a = net
        .stats(&test, [28, 28, 1], 50, &dev, &mut |_| ())
        .unwrap();
    let b = net
        .stats(&train, [28, 28, 1], 50, &dev, &mut |_| ())
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let fid = frechet_distance(&a, &b).unwrap();
    eprintln!(
        "MNIST FID {fid:.4} (reference {REFERENCE:.4}), {:.1} images/s",
        2000.0 / seconds
    );
    assert!((fid / REFERENCE - 1.0).abs() < 0.01, "{fid}");
}
