//! Writes a small file of every format the readers take (CSV and NPY points, an IDX folder, a
//! CIFAR-10 binary folder, a PNG folder) into a temporary folder, reads each back through its
//! data spec, and shows what a corrupt file's error names.
//!
//! `cargo run -p fm-data --example read_files`

use fm_data::{DataSource, Points, Split, write_csv, write_npy};
use rand::SeedableRng;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let points = Points {
        values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        dim: 2,
    };
    write_csv(&root.join("points.csv"), &points)?;
    write_npy(&root.join("points.npy"), &points.values, &[3, 2])?;
    write_idx(&root.join("mnist"), 5, 4)?;
    write_cifar(&root.join("cifar"), 3)?;
    write_pngs(&root.join("pngs"), 2)?;

    let specs = [
        format!("file:{}", root.join("points.csv").display()),
        format!("file:{}", root.join("points.npy").display()),
        format!("mnist:{}", root.join("mnist").display()),
        format!("cifar10:{}", root.join("cifar").display()),
        format!("images:{}", root.join("pngs").display()),
        "checkerboard".to_string(),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for spec in &specs {
        let source = DataSource::parse_split(spec, Split::Train)?;
        let batch = source.sample_batch(4, &mut rng, false);
        let short = spec.split(['/', '\\']).next_back().unwrap_or(spec);
        println!(
            "{:<14} dim {:>4}  image shape {:?}  classes {:?}  first values {:?}{}",
            short,
            source.dim(),
            source.image_shape(),
            source.num_classes(),
            &batch.points.values[..3],
            source
                .note()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        );
    }

    // A truncated IDX file: the error names the file and what is wrong.
    let images = root.join("mnist/train-images-idx3-ubyte");
    let bytes = std::fs::read(&images)?;
    std::fs::write(&images, &bytes[..bytes.len() - 7])?;
    let err = DataSource::parse(&format!("mnist:{}", root.join("mnist").display())).unwrap_err();
    println!("truncated IDX: {err}");
    Ok(())
}

/// An IDX folder of `n` gray `side` x `side` images with labels (MNIST's layout).
fn write_idx(dir: &Path, n: usize, side: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut images = vec![0, 0, 8, 3];
    for d in [n, side, side] {
        images.extend((d as u32).to_be_bytes());
    }
    images.extend((0..n * side * side).map(|i| (i * 37 % 256) as u8));
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join("train-images-idx3-ubyte"), images)?;
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels)
}

/// A CIFAR-10 binary folder holding only `test_batch.bin` with `n` records (label, then 3 x 32
/// x 32 pixels).
fn write_cifar(dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.push((i % 10) as u8);
        bytes.extend((0..3 * 32 * 32).map(|p| ((p + i) % 256) as u8));
    }
    std::fs::write(dir.join("test_batch.bin"), bytes)
}

/// A folder of `n` 8 x 8 RGB PNG files.
fn write_pngs(dir: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    for i in 0..n {
        let img = image::RgbImage::from_fn(8, 8, |x, y| {
            image::Rgb([(x * 30) as u8, (y * 30) as u8, (i * 90) as u8])
        });
        img.save(dir.join(format!("{i}.png")))?;
    }
    Ok(())
}
