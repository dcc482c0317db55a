//! Pictures a person would rather look at than read: 2-D histograms, trajectories, densities,
//! and grids of sampled images.

use anyhow::{Context, Result};
use fm_train::data::Points;
use image::{Rgb, RgbImage};
use std::path::Path;

/// Half-width of the square shown, in data units (the checkerboard spans +-4.44).
pub const LIMIT: f64 = 5.0;
const PANEL: u32 = 400;

fn to_pixel(v: f64) -> Option<u32> {
    let p = ((v + LIMIT) / (2.0 * LIMIT) * PANEL as f64).floor();
    (0.0..PANEL as f64).contains(&p).then_some(p as u32)
}

/// A perceptually ordered colour for `u` in [0, 1] (a compact approximation of viridis).
fn colour(u: f64) -> Rgb<u8> {
    let u = u.clamp(0.0, 1.0);
    let r = (0.267 + u * (-0.6 + u * 1.33)).clamp(0.0, 1.0);
    let g = (0.005 + u * 0.9).clamp(0.0, 1.0);
    let b = (0.33 + u * (1.1 - u * 1.3)).clamp(0.0, 1.0);
    Rgb([(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8])
}

/// Side of a histogram bin, in pixels.
const BIN: u32 = 4;

/// Draws a log-scaled 2-D histogram of `points` (bins of `BIN` pixels) into the panel at x
/// offset `left`.
fn histogram(img: &mut RgbImage, left: u32, points: &Points) {
    let bins = PANEL / BIN;
    let mut counts = vec![0u32; (bins * bins) as usize];
    for p in points.values.chunks_exact(points.dim) {
        if let (Some(x), Some(y)) = (to_pixel(p[0] as f64), to_pixel(p[1] as f64)) {
            counts[((bins - 1 - y / BIN) * bins + x / BIN) as usize] += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    for (i, &c) in counts.iter().enumerate() {
        let u = if c == 0 {
            0.0
        } else {
            (1.0 + c as f64).ln() / (1.0 + max).ln()
        };
        let (bx, by) = (i as u32 % bins, i as u32 / bins);
        for dx in 0..BIN {
            for dy in 0..BIN {
                img.put_pixel(left + bx * BIN + dx, by * BIN + dy, colour(u));
            }
        }
    }
}

/// Writes `img` as a PNG to `path`, which must end in `.png` (any case): checked before the
/// file is created, so a wrong name leaves no empty file behind.
pub fn save(img: &RgbImage, path: &Path) -> Result<()> {
    let png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !png {
        anyhow::bail!(
            "{}: pictures are written as PNG; name the file ….png",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Samples (left) beside data (right), as 2-D histograms.
pub fn samples_beside_data(samples: &Points, data: &Points, path: &Path) -> Result<()> {
    let mut img = RgbImage::new(2 * PANEL + 8, PANEL);
    histogram(&mut img, 0, samples);
    histogram(&mut img, PANEL + 8, data);
    save(&img, path)
}

/// Paths from noise to data: each saved time is a set of points (same order), drawn as line
/// segments coloured from t = 0 (dark) to t = 1 (bright), over the final samples' histogram.
pub fn trajectories(states: &[Points], path: &Path) -> Result<()> {
    let mut img = RgbImage::from_pixel(PANEL, PANEL, Rgb([255, 255, 255]));
    let steps = states.len().saturating_sub(1).max(1);
    for (k, pair) in states.windows(2).enumerate() {
        let c = colour(k as f64 / steps as f64);
        for (a, b) in pair[0]
            .values
            .chunks_exact(2)
            .zip(pair[1].values.chunks_exact(2))
        {
            for s in 0..=16 {
                let f = s as f64 / 16.0;
                let x = a[0] as f64 + f * (b[0] - a[0]) as f64;
                let y = a[1] as f64 + f * (b[1] - a[1]) as f64;
                if let (Some(px), Some(py)) = (to_pixel(x), to_pixel(y)) {
                    img.put_pixel(px, PANEL - 1 - py, c);
                }
            }
        }
    }
    save(&img, path)
}

/// A heat map of `log p` on the `k x k` grid `Points::grid(LIMIT, k)`, clipped below at
/// `max - 8` nats.
pub fn log_density(logp: &[f64], k: usize, path: &Path) -> Result<()> {
    let max = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let cell = PANEL as usize / k;
    let mut img = RgbImage::new((k * cell) as u32, (k * cell) as u32);
    for (i, &l) in logp.iter().enumerate() {
        let (gx, gy) = (i / k, i % k);
        let c = colour(((l - max + 8.0) / 8.0).max(0.0));
        for dx in 0..cell {
            for dy in 0..cell {
                img.put_pixel(
                    (gx * cell + dx) as u32,
                    ((k - 1 - gy) * cell + dy) as u32,
                    c,
                );
            }
        }
    }
    save(&img, path)
}

/// A grid of 8-bit images (`[N, H, W, C]`, C = 1 or 3), `cols` to a row in the given order,
/// each scaled up by a whole factor so that a cell is at least 56 pixels, 2-pixel gaps.
pub fn image_grid(
    pixels: &[u8],
    [height, width, channels]: [usize; 3],
    cols: usize,
    path: &Path,
) -> Result<()> {
    let size = height * width * channels;
    let n = pixels.len() / size.max(1);
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let scale = 56_usize.div_ceil(height.max(width)).max(1);
    let (cell_h, cell_w) = (height * scale + 2, width * scale + 2);
    let mut img = RgbImage::from_pixel(
        (cols * cell_w + 2) as u32,
        (rows * cell_h + 2) as u32,
        Rgb([255, 255, 255]),
    );
    for (k, image) in pixels.chunks_exact(size).enumerate() {
        let (top, left) = (2 + (k / cols) * cell_h, 2 + (k % cols) * cell_w);
        for (i, px) in image.chunks_exact(channels).enumerate() {
            let rgb = if channels == 3 {
                Rgb([px[0], px[1], px[2]])
            } else {
                Rgb([px[0]; 3])
            };
            let (y, x) = (i / width, i % width);
            for dy in 0..scale {
                for dx in 0..scale {
                    img.put_pixel(
                        (left + x * scale + dx) as u32,
                        (top + y * scale + dy) as u32,
                        rgb,
                    );
                }
            }
        }
    }
    save(&img, path)
}
