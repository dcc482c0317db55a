//! Images per second of the FID network alone (preprocessed 299 x 299 inputs) at a batch size,
//! for the side-by-side comparison with PyTorch (docs/benchmarks.md).
//!
//! `cargo run -p fm-metrics --release --example inception_speed -- WEIGHTS [BATCH] [REPEATS]`
//! (without arguments: `$FM_INCEPTION` or `../shared/data/inception-fid/weights.safetensors`,
//! one batch of 4, which is what CI runs).

use burn::tensor::{Device, Distribution, Tensor};
use fm_metrics::InceptionFid;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let weights = args
        .next()
        .or_else(|| std::env::var("FM_INCEPTION").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/inception-fid/weights.safetensors")
        });
    let batch: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let repeats: usize = args.next().map_or(Ok(1), |s| s.parse())?;
    if !weights.is_file() {
        println!(
            "no weights at {}: pass the file (see fm-metrics' README)",
            weights.display()
        );
        return Ok(());
    }
    let dev = Device::flex();
    let net = InceptionFid::load(&weights, &dev)?;
    let x = Tensor::<4>::random([batch, 3, 299, 299], Distribution::Uniform(-1.0, 1.0), &dev);
    let _ = net.forward(x.clone()).into_data(); // warm-up: kernel choices, allocations
    let start = Instant::now();
    for _ in 0..repeats {
        let _ = net.forward(x.clone()).into_data();
    }
    let seconds = start.elapsed().as_secs_f64();
    let rate = (batch * repeats) as f64 / seconds;
    println!(
        "{{\"batch\":{batch},\"repeats\":{repeats},\"images_per_s\":{rate:.3},\"threads\":\"{}\"}}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
    );
    Ok(())
}
