//! NumPy's `.npy` format (versions 1-3) for 2-D arrays of f32 or f64, and uint8 images.
//!
//! Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (u16 little
//! endian in version 1, u32 in 2 and 3), a Python dict literal header
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }` padded with spaces to a multiple
//! of 64 bytes and ended by `\n`, then the raw values. Hand-written rather than a crate so that
//! each fault is reported with the field that holds it.

use super::{DataError, ImageSet, Points};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a 2-D array of points (rows are points).
pub fn read_npy(path: &Path) -> Result<Points, DataError> {
    read_with(path, parse_npy)
}

/// The file's bytes through `parse`, its faults naming the file.
fn read_with<T>(path: &Path, parse: fn(&[u8]) -> Result<T, String>) -> Result<T, DataError> {
    let bytes = std::fs::read(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    parse(&bytes).map_err(|message| DataError::new(path, message))
}

/// Parses `.npy` bytes holding a 2-D float array.
pub fn parse_npy(bytes: &[u8]) -> Result<Points, String> {
    let Header {
        descr,
        fortran,
        dims,
        data,
    } = parse_header(bytes)?;
    let (little, size) = match descr {
        "<f4" | "=f4" => (true, 4),
        "<f8" | "=f8" => (true, 8),
        ">f4" => (false, 4),
        ">f8" => (false, 8),
        other => {
            return Err(format!(
                "field 'descr': expected float32 or float64 ('<f4' or '<f8'), found '{other}'"
            ));
        }
    };
    let [n, dim] = dims[..] else {
        return Err(format!(
            "field 'shape': expected a 2-D array (points, dimension), found {} dimensions",
            dims.len()
        ));
    };
    if dim == 0 {
        return Err("field 'shape': the dimension is 0".into());
    }
    let want = n
        .checked_mul(dim)
        .and_then(|c| c.checked_mul(size))
        .ok_or("field 'shape': too large")?;
    if data.len() != want {
        return Err(format!(
            "field 'shape' ({n}, {dim}) needs {want} bytes of data, found {}",
            data.len()
        ));
    }
    let mut values: Vec<f32> = data
        .chunks_exact(size)
        .map(|c| match (size, little) {
            (4, true) => f32::from_le_bytes(c.try_into().unwrap()),
            (4, false) => f32::from_be_bytes(c.try_into().unwrap()),
            (_, true) => f64::from_le_bytes(c.try_into().unwrap()) as f32,
            (_, false) => f64::from_be_bytes(c.try_into().unwrap()) as f32,
        })
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let (row, col) = if fortran {
            (i % n, i / n)
        } else {
            (i / dim, i % dim)
        };
        return Err(format!("value at row {row}, column {col} is not finite"));
    }
    if fortran {
        values = (0..n * dim)
            .map(|i| values[(i % dim) * n + i / dim])
            .collect();
    }
    Ok(Points { values, dim })
}

/// The fields of an `.npy` header and the data after it.
struct Header<'a> {
    /// The dtype, without quotes (`<f4`, `|u1`).
    descr: &'a str,
    fortran: bool,
    dims: Vec<usize>,
    data: &'a [u8],
}

/// Reads the magic, the version and the header dict of `.npy` bytes.
fn parse_header(bytes: &[u8]) -> Result<Header<'_>, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not an .npy file (missing the \\x93NUMPY magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("the header is cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let descr = dict_value(header, "descr")?.trim_matches(['\'', '"']);
    let fortran = match dict_value(header, "fortran_order")? {
        "False" => false,
        "True" => true,
        other => {
            return Err(format!(
                "field 'fortran_order': expected True or False, found '{other}'"
            ));
        }
    };
    let dims: Vec<usize> = dict_value(header, "shape")?
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("field 'shape': '{s}' is not a size"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Header {
        descr,
        fortran,
        dims,
        data: &bytes[start + header_len..],
    })
}

/// Reads uint8 images, `[N, H, W, C]` (C = 1 or 3) or `[N, H, W]`, as `fm sample --out` writes
/// them for image runs and FID tools take them.
pub fn read_npy_images(path: &Path) -> Result<ImageSet, DataError> {
    read_with(path, parse_npy_images)
}

/// Parses `.npy` bytes holding uint8 images (see [`read_npy_images`]).
pub fn parse_npy_images(bytes: &[u8]) -> Result<ImageSet, String> {
    let Header {
        descr,
        fortran,
        dims,
        data,
    } = parse_header(bytes)?;
    if descr != "|u1" && descr != "<u1" {
        return Err(format!(
            "field 'descr': expected uint8 images ('|u1'), found '{descr}'"
        ));
    }
    if fortran {
        return Err("field 'fortran_order': expected C order for images".into());
    }
    let (n, height, width, channels) = match dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => {
            return Err(format!(
                "field 'shape': expected images [N, H, W, C] with C 1 or 3, or [N, H, W]; found {dims:?}"
            ));
        }
    };
    let want = [n, height, width, channels]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("field 'shape': too large")?;
    if data.len() != want {
        return Err(format!(
            "field 'shape' {dims:?} needs {want} bytes of data, found {}",
            data.len()
        ));
    }
    // NHWC to the set's NCHW.
    let plane = height * width;
    let mut pixels = vec![0u8; want];
    for (image, out) in data
        .chunks_exact(plane * channels)
        .zip(pixels.chunks_exact_mut(plane * channels))
    {
        for (p, px) in image.chunks_exact(channels).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                out[c * plane + p] = v;
            }
        }
    }
    Ok(ImageSet {
        pixels,
        labels: None,
        channels,
        height,
        width,
    })
}

/// The text of `key`'s value in the header dict (up to the next top-level comma).
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    let missing = || format!("the header has no field '{key}'");
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))
        .ok_or_else(missing)?;
    let rest = header[at + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':').ok_or_else(missing)?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    };
    Ok(rest[..end.ok_or_else(missing)?].trim())
}

/// Writes a little-endian f32 array of the given shape (version 1.0, C order).
pub fn write_npy(path: &Path, values: &[f32], shape: &[usize]) -> std::io::Result<()> {
    let mut out = NpyWriter::create(path, NpyType::F32, shape)?;
    out.write_f32(values)?;
    out.finish()
}

/// Writes a u8 array of the given shape (version 1.0, C order): images as `[N, H, W, C]`, the
/// layout FID tools read.
pub fn write_npy_u8(path: &Path, values: &[u8], shape: &[usize]) -> std::io::Result<()> {
    let mut out = NpyWriter::create(path, NpyType::U8, shape)?;
    out.write_u8(values)?;
    out.finish()
}

/// The element type of an array being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyType {
    /// Little-endian f32 (`<f4`).
    F32,
    /// Bytes (`|u1`).
    U8,
}

/// An `.npy` file written piece by piece: the header up front (the shape is known), the values
/// as they come, into a temporary file renamed into place by [`NpyWriter::finish`] once every
/// value has arrived, so an interrupted write never leaves a short file under the final name.
#[derive(Debug)]
pub struct NpyWriter {
    file: std::io::BufWriter<std::fs::File>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    kind: NpyType,
    remaining: usize,
    finished: bool,
}

/// A writer dropped before [`NpyWriter::finish`] (an error on the way) removes its partial file:
/// a failed command leaves nothing behind.
impl Drop for NpyWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl NpyWriter {
    /// Starts `path` for an array of `kind` and `shape`.
    pub fn create(path: &Path, kind: NpyType, shape: &[usize]) -> std::io::Result<Self> {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape_text = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let descr = match kind {
            NpyType::F32 => "<f4",
            NpyType::U8 => "|u1",
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
        // Pad so that magic + version + length + header + '\n' is a multiple of 64.
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let tmp = path.with_extension("npy.partial");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        file.write_all(MAGIC)?;
        file.write_all(&[1, 0])?;
        file.write_all(&(header.len() as u16).to_le_bytes())?;
        file.write_all(header.as_bytes())?;
        Ok(Self {
            file,
            tmp,
            path: path.to_path_buf(),
            kind,
            remaining: shape.iter().product(),
            finished: false,
        })
    }

    fn take(&mut self, kind: NpyType, n: usize) -> std::io::Result<()> {
        if kind != self.kind || n > self.remaining {
            return Err(std::io::Error::other(format!(
                "{}: {n} more {kind:?} values for an array of {:?} with {} left",
                self.path.display(),
                self.kind,
                self.remaining
            )));
        }
        self.remaining -= n;
        Ok(())
    }

    /// Appends f32 values.
    pub fn write_f32(&mut self, values: &[f32]) -> std::io::Result<()> {
        self.take(NpyType::F32, values.len())?;
        for v in values {
            self.file.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    }

    /// Appends bytes.
    pub fn write_u8(&mut self, values: &[u8]) -> std::io::Result<()> {
        self.take(NpyType::U8, values.len())?;
        self.file.write_all(values)
    }

    /// Checks that every value arrived, flushes, and moves the file to its name.
    pub fn finish(mut self) -> std::io::Result<()> {
        if self.remaining != 0 {
            return Err(std::io::Error::other(format!(
                "{}: {} values never arrived",
                self.path.display(),
                self.remaining
            )));
        }
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        std::fs::rename(&self.tmp, &self.path)?;
        self.finished = true;
        Ok(())
    }
}
