//! Image data sets: IDX files (the MNIST format) and the binary version of CIFAR-10.
//!
//! - IDX: an optionally gzipped big-endian header, the magic `0x00000803` (u8 images, 3
//!   dimensions) or `0x00000801` (u8 labels, 1 dimension), one u32 per dimension, then the raw
//!   row-major bytes. A folder holds `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
//! - CIFAR-10 binary: records of 3073 bytes, a label (0..9) then 1024 red, 1024 green and 1024
//!   blue bytes (32 rows of 32). Training uses `data_batch_1.bin` .. `data_batch_5.bin`,
//!   evaluation `test_batch.bin`.
//! - A folder of PNG files (`images:DIR`): every `*.png` in name order, all of one size, all gray
//!   or all RGB (gray-with-alpha and RGBA are refused rather than silently flattened).
//!
//! Every fault names the file and what was expected.

use super::DataError;
use flate2::read::GzDecoder;
use rand::Rng;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Images as bytes, `[N, C, H, W]` row-major, with optional class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// `N * C * H * W` pixel values.
    pub pixels: Vec<u8>,
    /// One label per image, when the data set has them.
    pub labels: Option<Vec<u8>>,
    /// Channels (1 gray, 3 RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageSet {
    /// The pixels as `[N, H, W, C]` (channels last), the layout image files, `fm sample --out`
    /// and FID tools use.
    pub fn nhwc(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let c = self.channels;
        let mut out = vec![0u8; self.pixels.len()];
        for (image, dst) in self
            .pixels
            .chunks_exact(plane * c)
            .zip(out.chunks_exact_mut(plane * c))
        {
            for (p, px) in dst.chunks_exact_mut(c).enumerate() {
                for (k, v) in px.iter_mut().enumerate() {
                    *v = image[k * plane + p];
                }
            }
        }
        out
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / (self.channels * self.height * self.width).max(1)
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per image, `C * H * W`.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The images at `indices` mapped to [-1, 1], `[len, C, H, W]` row-major:
    /// `x = 2 (p + u) / 256 - 1` with `u ~ U[0, 1)` (uniform dequantization) when `dequantize`,
    /// else `u = 1/2` (the bin centre); each image mirrored left-right with probability 1/2 when
    /// `flip`.
    pub fn batch(
        &self,
        indices: &[usize],
        rng: &mut impl Rng,
        dequantize: bool,
        flip: bool,
    ) -> Vec<f32> {
        let size = self.image_size();
        let mut out = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            let image = &self.pixels[i * size..(i + 1) * size];
            let mirror = flip && rng.random::<bool>();
            for row in image.chunks_exact(self.width) {
                for x in 0..self.width {
                    let p = row[if mirror { self.width - 1 - x } else { x }] as f64;
                    let u = if dequantize { rng.random::<f64>() } else { 0.5 };
                    out.push((2.0 * (p + u) / 256.0 - 1.0) as f32);
                }
            }
        }
        out
    }
}

/// Rows of `[C, H, W]` images in [-1, 1] back to 8-bit pixels in `[N, H, W, C]` order (the
/// layout of PNG files and of FID tools): `p = round(128 (x + 1) - 1/2)`, the inverse of the
/// bin-centre map of [`ImageSet::batch`], clamped to 0..=255.
pub fn to_pixels_nhwc(values: &[f32], [channels, height, width]: [usize; 3]) -> Vec<u8> {
    let plane = height * width;
    let size = channels * plane;
    values
        .chunks_exact(size)
        .flat_map(|image| {
            (0..size).map(move |i| {
                // Output index i = (row * W + col) * C + c reads input c * H * W + row * W + col.
                let x = image[(i % channels) * plane + i / channels] as f64;
                (128.0 * (x + 1.0) - 0.5).round().clamp(0.0, 255.0) as u8
            })
        })
        .collect()
}

/// Bits per dimension of 8-bit data from a log-density of its [-1, 1] image:
/// `bpd = -log p(x) / (D ln 2) + 7` (the map from `[0, 256)` to `[-1, 1)` scales each dimension by
/// `1 / 128`, contributing `log2 128 = 7` bits).
pub fn bits_per_dim(log_p: f64, dims: usize) -> f64 {
    -log_p / (dims as f64 * std::f64::consts::LN_2) + 7.0
}

/// Which part of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training images.
    Train,
    /// The held-out images.
    Test,
}

const IDX_IMAGES: u32 = 0x0000_0803;
const IDX_LABELS: u32 = 0x0000_0801;
const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of a file, gunzipped when compressed.
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::new(path, format!("corrupt gzip stream: {e}")))?;
    Ok(out)
}

/// The bytes of an IDX file with `magic`, gunzipped when compressed. A gzip stream is inflated
/// only as far as its IDX header declares (and one byte more, to notice excess data): a small
/// file that would inflate to gigabytes is refused after its header, not after inflating.
fn read_idx_file(path: &Path, magic: u32) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let corrupt = |e: std::io::Error| DataError::new(path, format!("corrupt gzip stream: {e}"));
    let mut stream = GzDecoder::new(&raw[..]);
    let rank = (magic & 0xff) as usize;
    let mut out = vec![0u8; 4 * (rank + 1)];
    stream.read_exact(&mut out).map_err(corrupt)?;
    let declared = out[4..]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
        .try_fold(1u64, |a, d| a.checked_mul(d))
        .ok_or_else(|| DataError::new(path, "header dimensions overflow"))?;
    stream
        .take(declared.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    Ok(out)
}

/// Parses IDX bytes with the given magic: returns the dimensions and the data.
pub fn parse_idx(bytes: &[u8], magic: u32) -> Result<(Vec<usize>, &[u8]), String> {
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0).ok_or("shorter than an IDX header")?;
    if found != magic {
        return Err(format!(
            "magic number 0x{found:08x}, expected 0x{magic:08x} (an IDX {} file)",
            if magic == IDX_IMAGES {
                "image"
            } else {
                "label"
            }
        ));
    }
    let rank = (magic & 0xff) as usize;
    let dims: Vec<usize> = (1..=rank)
        .map(|i| {
            word(i)
                .map(|d| d as usize)
                .ok_or_else(|| "the header is cut short".to_string())
        })
        .collect::<Result<_, _>>()?;
    let data = &bytes[4 * (rank + 1)..];
    let want = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("dimensions overflow")?;
    if data.len() != want {
        return Err(format!(
            "header dimensions {dims:?} need {want} bytes of data, found {}",
            data.len()
        ));
    }
    Ok((dims, data))
}

/// Reads the images and labels of an IDX folder (`mnist:DIR` / `idx:DIR`).
pub fn load_idx(dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let find = |stem: String| -> Result<PathBuf, DataError> {
        [dir.join(format!("{stem}.gz")), dir.join(&stem)]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| DataError::new(dir, format!("no {stem} or {stem}.gz in the folder")))
    };
    let images_file = find(format!("{prefix}-images-idx3-ubyte"))?;
    let bytes = read_idx_file(&images_file, IDX_IMAGES)?;
    let (dims, pixels) =
        parse_idx(&bytes, IDX_IMAGES).map_err(|m| DataError::new(&images_file, m))?;
    let labels_file = find(format!("{prefix}-labels-idx1-ubyte"))?;
    let label_bytes = read_idx_file(&labels_file, IDX_LABELS)?;
    let (ldims, labels) =
        parse_idx(&label_bytes, IDX_LABELS).map_err(|m| DataError::new(&labels_file, m))?;
    if ldims[0] != dims[0] {
        return Err(DataError::new(
            &labels_file,
            format!(
                "{} labels for {} images in {}",
                ldims[0],
                dims[0],
                images_file.display()
            ),
        ));
    }
    Ok(ImageSet {
        pixels: pixels.to_vec(),
        labels: Some(labels.to_vec()),
        channels: 1,
        height: dims[1],
        width: dims[2],
    })
}

/// Parses CIFAR-10 binary records into pixels (`[N, 3, 32, 32]`) and labels.
pub fn parse_cifar10(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    if bytes.first() == Some(&0x80) {
        return Err("this is the Python pickle version of CIFAR-10; use the binary version (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)".into());
    }
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR_RECORD) {
        return Err(format!(
            "{} bytes is not a whole number of {CIFAR_RECORD}-byte records",
            bytes.len()
        ));
    }
    let mut pixels = Vec::with_capacity(bytes.len());
    let mut labels = Vec::with_capacity(bytes.len() / CIFAR_RECORD);
    for (i, record) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
        if record[0] > 9 {
            return Err(format!(
                "record {i}: label {} is not a class 0..9",
                record[0]
            ));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// Reads a CIFAR-10 binary folder (`cifar10:DIR`). For training, a folder that holds only
/// `test_batch.bin` is used as it is, and the returned note says so.
pub fn load_cifar10(dir: &Path, split: Split) -> Result<(ImageSet, Option<String>), DataError> {
    let test = dir.join("test_batch.bin");
    let train: Vec<PathBuf> = (1..=5)
        .map(|i| dir.join(format!("data_batch_{i}.bin")))
        .collect();
    let (files, note) = match split {
        Split::Test => (vec![test], None),
        Split::Train if train.iter().all(|p| p.is_file()) => (train, None),
        Split::Train if test.is_file() => (
            vec![test.clone()],
            Some(format!(
                "{} has no data_batch_1..5.bin; training on {}",
                dir.display(),
                test.display()
            )),
        ),
        Split::Train => {
            let pickle = dir.join("data_batch_1");
            let why = if pickle.is_file() {
                "holds the Python pickle version of CIFAR-10; use the binary version (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)"
            } else {
                "has neither data_batch_1.bin .. data_batch_5.bin nor test_batch.bin"
            };
            return Err(DataError::new(dir, why));
        }
    };
    let mut set = ImageSet {
        pixels: Vec::new(),
        labels: Some(Vec::new()),
        channels: 3,
        height: 32,
        width: 32,
    };
    for file in files {
        let bytes = read_file(&file)?;
        let (pixels, labels) = parse_cifar10(&bytes).map_err(|m| DataError::new(&file, m))?;
        set.pixels.extend(pixels);
        set.labels
            .as_mut()
            .expect("CIFAR-10 has labels")
            .extend(labels);
    }
    Ok((set, note))
}

/// Decodes one PNG file: `(channels, height, width, pixels as [C, H, W])`, for 8-bit gray or
/// RGB images only (gray-with-alpha and RGBA are refused rather than silently flattened).
pub fn parse_png(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>), String> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    match img {
        image::DynamicImage::ImageLuma8(g) => Ok((1, height, width, g.into_raw())),
        image::DynamicImage::ImageRgb8(rgb) => {
            let raw = rgb.into_raw();
            // HWC -> CHW.
            let plane = width * height;
            let chw = (0..3 * plane)
                .map(|i| raw[(i % plane) * 3 + i / plane])
                .collect();
            Ok((3, height, width, chw))
        }
        other => Err(format!(
            "colour type {:?}: expected 8-bit gray or RGB",
            other.color()
        )),
    }
}

/// Reads every `*.png` in `dir` (sorted by name) as one image set without labels.
pub fn load_png_dir(dir: &Path) -> Result<ImageSet, DataError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::new(dir, format!("cannot read the folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        })
        .collect();
    files.sort();
    let first = files
        .first()
        .ok_or_else(|| DataError::new(dir, "the folder holds no .png files"))?
        .clone();
    let mut set: Option<ImageSet> = None;
    for file in &files {
        let bytes = std::fs::read(file)
            .map_err(|e| DataError::new(file, format!("cannot read the file: {e}")))?;
        let (channels, height, width, bytes) =
            parse_png(&bytes).map_err(|m| DataError::new(file, m))?;
        let set = set.get_or_insert_with(|| ImageSet {
            pixels: Vec::new(),
            labels: None,
            channels,
            height,
            width,
        });
        if (set.channels, set.height, set.width) != (channels, height, width) {
            return Err(DataError::new(
                file,
                format!(
                    "{channels} x {height} x {width} (channels x rows x columns), but {} is {} x {} x {}",
                    first.display(),
                    set.channels,
                    set.height,
                    set.width
                ),
            ));
        }
        set.pixels.extend(bytes);
    }
    Ok(set.expect("at least one file"))
}
