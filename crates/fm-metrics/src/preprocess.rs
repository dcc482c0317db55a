//! u8 images to the FID network's input, as NVIDIA's metrics (and clean-fid's "legacy" mode)
//! prepare them: float pixels in `[0, 255]` (gray repeated to three channels), resized to
//! 299 x 299 by `grid_sample(x, affine_grid(theta), bilinear, padding_mode = border,
//! align_corners = False)` with `theta` the identity shifted by `1/W - 1/299` (and `1/H - 1/299`)
//! in normalised coordinates, then `(x - 128) / 128` clamped to `[-1, 127/128]`.
//!
//! With that shift the sampling position of output column `j` is exactly `j W / 299` source
//! pixels (derivation: affine_grid's `(2j + 1) / 299 - 1` plus the shift, mapped back by
//! grid_sample's `((g + 1) W - 1) / 2`), clamped to the image (border padding).

use crate::MetricsError;
use crate::inception::INPUT_SIDE;

/// The upper clamp of the normalised input, `127 / 128`.
const TOP: f32 = 0.992_187_5;

/// Bilinear taps along one axis: for each output position, the two source indices and the
/// weight of the second.
struct Taps(Vec<(usize, usize, f32)>);

impl Taps {
    /// Taps from a source of `size` pixels to `out` positions at `j * size / out`.
    fn new(size: usize, out: usize) -> Self {
        let last = (size - 1) as f64;
        Self(
            (0..out)
                .map(|j| {
                    let at = (j as f64 * size as f64 / out as f64).clamp(0.0, last);
                    let lo = at.floor();
                    let i0 = lo as usize;
                    ((i0), (i0 + 1).min(size - 1), (at - lo) as f32)
                })
                .collect(),
        )
    }
}

/// `n` images of `[height, width, channels]` u8 pixels (NHWC, channels 1 or 3) as the network's
/// input: `n * 3 * 299 * 299` values, `[N, 3, 299, 299]` row-major.
pub fn to_input(
    pixels: &[u8],
    n: usize,
    [height, width, channels]: [usize; 3],
) -> Result<Vec<f32>, MetricsError> {
    if !matches!(channels, 1 | 3) || height == 0 || width == 0 {
        return Err(MetricsError::Input(format!(
            "images of {height} x {width} x {channels}: expected 1 (gray) or 3 (RGB) channels and a non-empty size"
        )));
    }
    let per_image = height * width * channels;
    if pixels.len() != n * per_image {
        return Err(MetricsError::Input(format!(
            "{} bytes for {n} images of {height} x {width} x {channels} ({} expected)",
            pixels.len(),
            n * per_image
        )));
    }
    let side = INPUT_SIDE;
    let (rows, cols) = (Taps::new(height, side), Taps::new(width, side));
    let mut out = vec![0.0f32; n * 3 * side * side];
    let mut plane = vec![0.0f32; height * width];
    for (image, dst) in pixels
        .chunks_exact(per_image)
        .zip(out.chunks_exact_mut(3 * side * side))
    {
        for (c, channel_out) in dst.chunks_exact_mut(side * side).enumerate() {
            let src = if channels == 1 { 0 } else { c };
            for (p, v) in plane.iter_mut().enumerate() {
                *v = image[p * channels + src] as f32;
            }
            resize(&plane, width, &rows, &cols, channel_out);
        }
    }
    Ok(out)
}

/// Bilinear resize of one `[rows, width]` plane into `out` (`side * side`), then the input
/// scaling.
fn resize(plane: &[f32], width: usize, rows: &Taps, cols: &Taps, out: &mut [f32]) {
    let side = cols.0.len();
    for (&(y0, y1, wy), row) in rows.0.iter().zip(out.chunks_exact_mut(side)) {
        let (top, bottom) = (&plane[y0 * width..], &plane[y1 * width..]);
        for (&(x0, x1, wx), v) in cols.0.iter().zip(row.iter_mut()) {
            let upper = top[x0] + wx * (top[x1] - top[x0]);
            let lower = bottom[x0] + wx * (bottom[x1] - bottom[x0]);
            let value = upper + wy * (lower - upper);
            *v = (value / 128.0 - 1.0).clamp(-1.0, TOP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 299 x 299 image is sampled at its own pixels: the resize is the identity.
    #[test]
    fn a_299_image_passes_through() {
        let pixels: Vec<u8> = (0..299 * 299).map(|i| (i * 7 % 256) as u8).collect();
        let input = to_input(&pixels, 1, [299, 299, 1]).unwrap();
        for (k, &p) in pixels.iter().enumerate() {
            let want = (p as f32 / 128.0 - 1.0).min(TOP);
            assert_eq!(input[k], want);
            assert_eq!(
                input[2 * 299 * 299 + k],
                want,
                "gray repeats to the third channel"
            );
        }
    }

    /// A horizontal ramp stays a ramp: output column `j` samples the source at `j W / 299`.
    #[test]
    fn positions_follow_the_shifted_grid() {
        let (h, w) = (4, 10);
        let pixels: Vec<u8> = (0..h * w * 3).map(|i| ((i / 3) % w * 20) as u8).collect();
        let input = to_input(&pixels, 1, [h, w, 3]).unwrap();
        for j in [0, 1, 100, 250, 298] {
            let at = (j as f64 * w as f64 / 299.0).min((w - 1) as f64);
            let want = (20.0 * at / 128.0 - 1.0) as f32;
            assert!((input[5 * 299 + j] - want).abs() < 1e-5, "column {j}");
        }
        // Past the last pixel's centre the border is held.
        assert_eq!(input[298], (180.0 / 128.0 - 1.0) as f32);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        assert!(to_input(&[0; 10], 1, [2, 2, 3]).is_err());
        assert!(to_input(&[0; 8], 1, [2, 2, 2]).is_err());
    }
}
