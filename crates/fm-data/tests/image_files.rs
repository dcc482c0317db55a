//! IDX and CIFAR-10 readers against the real fixtures in `../shared/data` (skipped with a message
//! when absent), corrupt files, and arbitrary bytes.

use fm_data::{
    Split, load_cifar10, load_idx, parse_cifar10, parse_idx, parse_npy_images, read_npy_images,
    write_npy_u8,
};
use proptest::prelude::*;
mod common;

use common::shared;

#[test]
fn mnist_fixture_reads_with_the_known_labels() {
    let Some(dir) = shared("mnist") else { return };
    let train = load_idx(&dir, Split::Train).unwrap();
    let test = load_idx(&dir, Split::Test).unwrap();
    assert_eq!(
        (train.len(), train.height, train.width, train.channels),
        (60_000, 28, 28, 1)
    );
    assert_eq!(test.len(), 10_000);
    // The canonical first labels: 5 0 4 1 9 (train) and 7 2 1 0 4 (test).
    assert_eq!(&train.labels.as_ref().unwrap()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels.as_ref().unwrap()[..5], &[7, 2, 1, 0, 4]);
}

#[test]
fn digits_fixture_reads() {
    let Some(dir) = shared("digits8x8") else {
        return;
    };
    let set = load_idx(&dir, Split::Train).unwrap();
    assert_eq!((set.len(), set.height, set.width), (1797, 8, 8));
    assert!(set.labels.unwrap().iter().all(|&l| l < 10));
    let err = load_idx(&dir, Split::Test).unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte"), "{err}");
}

#[test]
fn cifar_fixture_reads_and_says_it_trains_on_the_test_batch() {
    let Some(dir) = shared("cifar10-foolbox20") else {
        return;
    };
    let (test, note) = load_cifar10(&dir, Split::Test).unwrap();
    assert!(note.is_none());
    assert_eq!(
        (test.len(), test.channels, test.height, test.width),
        (20, 3, 32, 32)
    );
    // CIFAR-10's test set starts cat, ship, ship, airplane, frog.
    assert_eq!(&test.labels.as_ref().unwrap()[..5], &[3, 8, 8, 0, 6]);
    let (train, note) = load_cifar10(&dir, Split::Train).unwrap();
    assert_eq!(train, test);
    assert!(note.unwrap().contains("test_batch.bin"));
}

#[test]
fn corrupt_image_files_name_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let header = |magic: u32, dims: &[u32]| -> Vec<u8> {
        std::iter::once(magic)
            .chain(dims.iter().copied())
            .flat_map(u32::to_be_bytes)
            .collect()
    };
    // Labels for a different number of images.
    let mut images = header(0x803, &[2, 2, 2]);
    images.extend([0u8; 8]);
    let mut labels = header(0x801, &[3]);
    labels.extend([1u8, 2, 3]);
    std::fs::write(d.join("train-images-idx3-ubyte"), &images).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let err = load_idx(d, Split::Train).unwrap_err().to_string();
    assert!(err.contains("3 labels for 2 images"), "{err}");
    // Swapped files: the magic number says so.
    std::fs::write(d.join("train-images-idx3-ubyte"), &labels).unwrap();
    let err = load_idx(d, Split::Train).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("magic number 0x00000801"),
        "{err}"
    );
    // A gzip stream cut short.
    std::fs::write(d.join("train-images-idx3-ubyte"), b"").unwrap();
    std::fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 0]).unwrap();
    let err = load_idx(d, Split::Train).unwrap_err().to_string();
    assert!(err.contains(".gz") && err.contains("gzip"), "{err}");
    // A small gzip file whose data runs far past what its header declares: refused after the
    // declared bytes and one more, without inflating the rest.
    let mut bomb = header(0x803, &[2, 2, 2]);
    bomb.extend(vec![0u8; 50 << 20]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &bomb).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20, "{} bytes", gz.len());
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz).unwrap();
    let err = load_idx(d, Split::Train).unwrap_err().to_string();
    assert!(err.contains("need 8 bytes of data, found 9"), "{err}");
    // CIFAR: truncated, bad label, pickle.
    assert!(
        parse_cifar10(&[0u8; 3072])
            .unwrap_err()
            .contains("3073-byte records")
    );
    let mut record = vec![0u8; 3073];
    record[0] = 12;
    assert!(parse_cifar10(&record).unwrap_err().contains("label 12"));
    assert!(
        parse_cifar10(&[0x80, 0x02, 0x7d])
            .unwrap_err()
            .contains("pickle")
    );
    std::fs::write(d.join("data_batch_1"), [0x80, 0x02]).unwrap();
    let err = load_cifar10(d, Split::Train).unwrap_err().to_string();
    assert!(
        err.contains("pickle") && err.contains("data_batch_1.bin"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes never panic the parsers.
    #[test]
    fn image_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_idx(&bytes, 0x803);
        let _ = parse_idx(&bytes, 0x801);
        let _ = parse_cifar10(&bytes);
        let _ = parse_npy_images(&bytes);
    }

    /// uint8 images written as `[N, H, W, C]` read back as the set's `[N, C, H, W]`, and
    /// `nhwc` gives the file's bytes again; any cut is rejected.
    #[test]
    fn npy_images_round_trip_and_truncation(
        n in 1usize..4, h in 1usize..5, w in 1usize..5, rgb in any::<bool>(), cut in 1usize..20,
    ) {
        let c = if rgb { 3 } else { 1 };
        let pixels: Vec<u8> = (0..n * h * w * c).map(|i| (i * 7 % 256) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.npy");
        write_npy_u8(&file, &pixels, &[n, h, w, c]).unwrap();
        let set = read_npy_images(&file).unwrap();
        prop_assert_eq!((set.len(), set.channels, set.height, set.width), (n, c, h, w));
        prop_assert_eq!(set.pixels[0], pixels[0]);
        if c == 3 && h * w > 1 {
            // Channel 1 of the first pixel sits after the whole red plane.
            prop_assert_eq!(set.pixels[h * w], pixels[1]);
        }
        prop_assert_eq!(set.nhwc(), pixels);
        let bytes = std::fs::read(&file).unwrap();
        let cut = cut.min(bytes.len());
        prop_assert!(parse_npy_images(&bytes[..bytes.len() - cut]).is_err());
    }

    /// A valid IDX image file parses to its own dimensions; any cut is rejected.
    #[test]
    fn idx_round_trip_and_truncation(n in 1u32..5, h in 1u32..6, w in 1u32..6, cut in 1usize..20) {
        let mut bytes: Vec<u8> = [0x803u32, n, h, w].iter().flat_map(|v| v.to_be_bytes()).collect();
        bytes.extend((0..n * h * w).map(|i| i as u8));
        let (dims, data) = parse_idx(&bytes, 0x803).unwrap();
        prop_assert_eq!(dims, vec![n as usize, h as usize, w as usize]);
        prop_assert_eq!(data.len(), (n * h * w) as usize);
        let cut = cut.min(bytes.len());
        prop_assert!(parse_idx(&bytes[..bytes.len() - cut], 0x803).is_err());
    }
}

#[test]
fn png_folder_reads_gray_and_rgb_and_refuses_mixtures() {
    use image::{GrayImage, Luma, Rgb, RgbImage};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rgb = RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8, y as u8, 200]));
    rgb.save(d.join("a.png")).unwrap();
    rgb.save(d.join("b.png")).unwrap();
    let set = fm_data::load_png_dir(d).unwrap();
    assert_eq!(
        (set.len(), set.channels, set.height, set.width),
        (2, 3, 3, 4)
    );
    // Channel-first: the red plane is x, the green plane y, the blue plane 200.
    assert_eq!(&set.pixels[..4], &[0, 1, 2, 3]);
    assert_eq!(set.pixels[12 + 4], 1);
    assert_eq!(set.pixels[24], 200);
    GrayImage::from_pixel(4, 3, Luma([9]))
        .save(d.join("c.png"))
        .unwrap();
    let err = fm_data::load_png_dir(d).unwrap_err().to_string();
    assert!(err.contains("c.png") && err.contains("a.png"), "{err}");
    std::fs::remove_file(d.join("c.png")).unwrap();
    std::fs::write(d.join("d.png"), b"not a png").unwrap();
    let err = fm_data::load_png_dir(d).unwrap_err().to_string();
    assert!(
        err.contains("d.png") && err.contains("not a readable PNG"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(
        fm_data::load_png_dir(empty.path())
            .unwrap_err()
            .to_string()
            .contains("no .png")
    );
}

#[test]
fn batches_map_pixels_to_the_unit_interval() {
    use fm_data::{ImageSet, bits_per_dim};
    use rand::SeedableRng;
    let set = ImageSet {
        pixels: vec![0, 255, 128, 7, 1, 2],
        labels: None,
        channels: 1,
        height: 1,
        width: 3,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let centre = set.batch(&[0, 1], &mut rng, false, false);
    let want = |p: f32| 2.0 * (p + 0.5) / 256.0 - 1.0;
    assert_eq!(
        centre,
        vec![
            want(0.0),
            want(255.0),
            want(128.0),
            want(7.0),
            want(1.0),
            want(2.0)
        ]
    );
    // Dequantized values stay in their pixel's bin and average to its centre.
    let n = 20_000;
    let mut mean = 0.0;
    for _ in 0..n {
        let v = set.batch(&[0], &mut rng, true, false);
        assert!(v[1] >= 2.0 * 255.0 / 256.0 - 1.0 && v[1] < 1.0);
        mean += v[0] as f64 / n as f64;
    }
    assert!((mean - want(0.0) as f64).abs() < 1e-3, "{mean}");
    // Flipping mirrors rows, about half of the time.
    let flips = (0..1000)
        .filter(|_| set.batch(&[0], &mut rng, false, true)[0] == want(128.0))
        .count();
    assert!((400..600).contains(&flips), "{flips}");
    // A uniform density on [-1, 1]^D (log p = -D ln 2) is 8 bits per dimension.
    assert!((bits_per_dim(-3072.0 * std::f64::consts::LN_2, 3072) - 8.0).abs() < 1e-12);
}

/// Float arrays, other ranks and other channel counts are refused with the field named.
#[test]
fn npy_images_refuse_what_is_not_uint8_images() {
    let dir = tempfile::tempdir().unwrap();
    let floats = dir.path().join("f.npy");
    fm_data::write_npy(&floats, &[0.0; 4], &[2, 2]).unwrap();
    let err = read_npy_images(&floats).unwrap_err().to_string();
    assert!(err.contains("f.npy") && err.contains("'descr'"), "{err}");
    let two_channels = dir.path().join("c2.npy");
    write_npy_u8(&two_channels, &[0; 16], &[2, 2, 2, 2]).unwrap();
    let err = read_npy_images(&two_channels).unwrap_err().to_string();
    assert!(err.contains("'shape'"), "{err}");
}
