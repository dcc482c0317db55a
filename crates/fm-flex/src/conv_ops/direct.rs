//! The 3x3 convolution as an implicit product on AVX2 and FMA: `y = w x patches(x)` computed
//! tile by tile (16 output channels by 6 output pixels, twelve 8-lane accumulators, as gemm's
//! `x2x6` microkernel), with each tile's patch entries read straight from the zero-padded
//! images at an offset per pixel plus one per tap, where the patch matrix's path gathers them
//! into a matrix and gemm then packs that again. On the `mnist` U-Net's 7x7 and 14x14 layers
//! the gathering and packing around gemm's microkernel cost about as much as PyTorch's
//! oneDNN spends on the whole (direct) convolution.

use super::patches::ConvShape;
use crate::buffer::Batch;
use std::mem::MaybeUninit;

/// Output channels in a tile: two 8-lane vectors.
const ROWS: usize = 16;
/// Output pixels in a tile.
const COLS: usize = 6;

/// Whether `s` runs here: a 3x3 kernel (any stride, padding and upsampling) with at least
/// [`ROWS`] output and [`MIN_CHANNELS`] input channels, on a CPU with AVX2 and FMA.
pub(super) fn applies(s: &ConvShape) -> bool {
    s.k == 3 && s.co >= ROWS && s.c >= MIN_CHANNELS && kernel_available()
}

/// The fewest input channels: a tile's 16 x 6 sums are stored after `9 c` taps, and with the
/// U-Nets' first layer's one channel (9 taps) the stores cost more than the products (the
/// 1 -> 32 layer at 28x28 took 2.0 ms here against 0.8 ms by the patch matrix, batch 32).
const MIN_CHANNELS: usize = 16;

#[cfg(target_arch = "x86_64")]
fn kernel_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn kernel_available() -> bool {
    false
}

/// The weights `w` (`[co, c k k]`) in blocks of [`ROWS`] output channels, `[ceil(co / 16), c k
/// k, 16]`: each tap's 16 weights contiguous, for two vector loads; zero past `co`.
pub(super) fn pack_weights(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let taps = s.patch_rows();
    let mut packed = vec![0.0; s.co.div_ceil(ROWS) * taps * ROWS];
    for (o, filters) in w.chunks(taps).enumerate() {
        let block = &mut packed[(o / ROWS) * taps * ROWS..][..taps * ROWS];
        for (t, &v) in filters.iter().enumerate() {
            block[t * ROWS + o % ROWS] = v;
        }
    }
    packed
}

/// Per-task buffers: the group's padded images, the offset of each tap and of each output
/// pixel's window in them, each output pixel's offset in the output, and a packed output
/// gradient.
#[derive(Default)]
pub(super) struct Buffers {
    padded: Vec<f32>,
    padded_shape: [usize; 3],
    taps: Vec<usize>,
    pixels: Vec<usize>,
    outputs: Vec<usize>,
    packed: Vec<f32>,
}

impl Buffers {
    /// The images `x` padded, and the offsets: tap `(ch, i, j)` of output pixel `(oy, ox)` of
    /// image `n` is `padded[taps[(ch, i, j)] + pixels[(n, oy, ox)]]`.
    fn prepare(&mut self, s: &ConvShape, x: Batch) {
        let (hp, wp) = (s.h + 2 * s.p, s.w + 2 * s.p);
        pad(s, x, &mut self.padded, &mut self.padded_shape);
        self.taps.clear();
        for ch in 0..s.c {
            for (i, j) in (0..9).map(|t| (t / 3, t % 3)) {
                self.taps.push((ch * hp + i) * wp + j);
            }
        }
        self.pixels.clear();
        for image in 0..x.count() {
            for (oy, ox) in (0..s.pixels()).map(|q| (q / s.wo, q % s.wo)) {
                self.pixels
                    .push((image * s.c * hp + oy * s.s) * wp + ox * s.s);
            }
        }
    }
}

/// `y = w patches(x) + b` for the images `x` (a group), into `y` (`[co, ho wo]` per image, one
/// after the other), with the weights `packed` by [`pack_weights`]: tiles of 16 output
/// channels by 6 output pixels.
pub(super) fn convolve(
    s: &ConvShape,
    x: Batch,
    packed: &[f32],
    b: &[f32],
    y: &mut [MaybeUninit<f32>],
    buffers: &mut Buffers,
) {
    buffers.prepare(s, x);
    let pixels = buffers.pixels.len();
    whole_tiles(&mut buffers.pixels);
    // Where each output pixel's channel 0 lies in `y`.
    let per = s.pixels();
    buffers.outputs.clear();
    buffers
        .outputs
        .extend((0..pixels).map(|q| (q / per) * s.co * per + q % per));
    for (block, weights) in packed.chunks(s.patch_rows() * ROWS).enumerate() {
        let rows = ROWS.min(s.co - block * ROWS);
        let mut bias = [0.0; ROWS];
        bias[..rows].copy_from_slice(&b[block * ROWS..][..rows]);
        let tiles = buffers
            .pixels
            .chunks(COLS)
            .zip(buffers.outputs.chunks(COLS));
        for (offsets, outputs) in tiles {
            // SAFETY: the kernel is available (`applies`); every pixel's window lies inside
            // `padded`, and `weights` holds one row of 16 per tap.
            let acc =
                unsafe { tile_product(weights, &buffers.taps, &buffers.padded, offsets, &bias) };
            for (&at, sums) in outputs.iter().zip(&acc) {
                let out = &mut y[at + block * ROWS * per..];
                for (r, &sum) in sums[..rows].iter().enumerate() {
                    out[r * per] = MaybeUninit::new(sum);
                }
            }
        }
    }
}

/// `sum += g patches(x)^T` (`[co, c k k]`) for the images `x` and their output gradients `g`
/// (a group): tiles of 16 output channels by 6 taps, each summed over the group's pixels,
/// with `g` packed per block of 16 channels, `[pixels, 16]`.
pub(super) fn add_weight_gradient(
    s: &ConvShape,
    x: Batch,
    g: Batch,
    sum: &mut [f32],
    buffers: &mut Buffers,
) {
    buffers.prepare(s, x);
    let taps = buffers.taps.len();
    whole_tiles(&mut buffers.taps);
    for block in 0..s.co.div_ceil(ROWS) {
        let rows = ROWS.min(s.co - block * ROWS);
        pack_gradient(s, g, block * ROWS, rows, &mut buffers.packed);
        for (tile, offsets) in buffers.taps.chunks(COLS).enumerate() {
            // SAFETY: as in `convolve`, with the roles of taps and pixels swapped; `packed`
            // holds one row of 16 per pixel.
            let (g, pixels, x) = (&buffers.packed, &buffers.pixels, &buffers.padded);
            let acc = unsafe { tile_product(g, pixels, x, offsets, &[0.0; ROWS]) };
            for (t, sums) in (tile * COLS..taps).zip(&acc) {
                for (r, &v) in sums[..rows].iter().enumerate() {
                    sum[(block * ROWS + r) * taps + t] += v;
                }
            }
        }
    }
}

/// Output channels `first..first + rows` of the gradients `g` (`[co, ho wo]` per image) as
/// `[images ho wo, 16]`, zero past `rows`.
fn pack_gradient(s: &ConvShape, g: Batch, first: usize, rows: usize, out: &mut Vec<f32>) {
    let per = s.pixels();
    out.clear();
    out.resize(g.count() * per * ROWS, 0.0);
    for (image, dst) in g.images().zip(out.chunks_mut(per * ROWS)) {
        for r in 0..rows {
            let src = &image[(first + r) * per..][..per];
            for (row, &v) in dst.chunks_mut(ROWS).zip(src) {
                row[r] = v;
            }
        }
    }
}

/// `offsets` extended to whole tiles of [`COLS`] by repeating the last; the copies' results
/// are not used.
fn whole_tiles(offsets: &mut Vec<usize>) {
    let last = *offsets.last().expect("at least one offset");
    offsets.resize(offsets.len().next_multiple_of(COLS), last);
}

/// The images of `x`, upsampled and padded with `p` zeros on each side: `[images, c, h + 2 p,
/// w + 2 p]`. `shape` is the `[c, h + 2 p, w + 2 p]` that `out` holds: only the images'
/// interiors are written, so the borders stay zero from one group of a convolution to the
/// next and are cleared only when the shape changes.
fn pad(s: &ConvShape, x: Batch, out: &mut Vec<f32>, shape: &mut [usize; 3]) {
    let (hp, wp, up) = (s.h + 2 * s.p, s.w + 2 * s.p, s.up);
    if *shape != [s.c, hp, wp] {
        out.clear();
        *shape = [s.c, hp, wp];
    }
    out.resize(x.count() * s.c * hp * wp, 0.0);
    let planes = x
        .images()
        .flat_map(|image| image.chunks(s.h * s.w / (up * up)));
    for (plane, dst) in planes.zip(out.chunks_mut(hp * wp)) {
        for (r, row) in dst.chunks_mut(wp).skip(s.p).take(s.h).enumerate() {
            let src = &plane[(r / up) * (s.w / up)..][..s.w / up];
            let dst = &mut row[s.p..][..s.w];
            if up == 1 {
                dst.copy_from_slice(src);
            } else {
                for (d, &v) in dst.chunks_mut(up).zip(src) {
                    d.fill(v);
                }
            }
        }
    }
}

/// `acc[p][r] = init[r] + sum_t weights[t][r] x[offsets[p] + taps[t]]`: sixteen output
/// channels of six pixels, broadcasting each pixel's patch entry against two vectors of
/// weights per tap; `init` is the bias (the sums start from it, so that storing them is all
/// that is left), or zero.
///
/// # Safety
/// AVX2 and FMA are available; `weights` holds `taps.len()` rows of [`ROWS`]; `offsets` holds
/// [`COLS`] offsets; every `offsets[p] + taps[t]` is an index of `x`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_product(
    weights: &[f32],
    taps: &[usize],
    x: &[f32],
    offsets: &[usize],
    init: &[f32; ROWS],
) -> [[f32; ROWS]; COLS] {
    use std::arch::x86_64::*;
    let offsets: &[usize; COLS] = offsets.try_into().expect("a whole tile");
    debug_assert!(weights.len() >= taps.len() * ROWS);
    // SAFETY: `init` holds 16 floats, two unaligned loads of 8.
    let start = unsafe {
        [
            _mm256_loadu_ps(init.as_ptr()),
            _mm256_loadu_ps(init.as_ptr().add(8)),
        ]
    };
    let mut acc = start.map(|v| [v; COLS]);
    let base = x.as_ptr();
    let starts = offsets.map(|o| base.wrapping_add(o));
    let mut w = weights.as_ptr();
    for &t in taps {
        // SAFETY: the caller's bounds.
        unsafe {
            let (w0, w1) = (_mm256_loadu_ps(w), _mm256_loadu_ps(w.add(8)));
            for p in 0..COLS {
                let v = _mm256_broadcast_ss(&*starts[p].add(t));
                acc[0][p] = _mm256_fmadd_ps(w0, v, acc[0][p]);
                acc[1][p] = _mm256_fmadd_ps(w1, v, acc[1][p]);
            }
            w = w.add(ROWS);
        }
    }
    let mut out = [[0.0; ROWS]; COLS];
    for (p, out) in out.iter_mut().enumerate() {
        // SAFETY: `out` holds 16 floats, two unaligned stores of 8.
        unsafe {
            _mm256_storeu_ps(out.as_mut_ptr(), acc[0][p]);
            _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1][p]);
        }
    }
    out
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_product(
    _: &[f32],
    _: &[usize],
    _: &[f32],
    _: &[usize],
    _: &[f32; ROWS],
) -> [[f32; ROWS]; COLS] {
    unreachable!("the direct kernel runs on x86-64 only")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer that held another convolution's padded images is cleared first: the new
    /// shape's borders are zero, whatever the old interiors left there.
    #[test]
    fn padding_into_a_reused_buffer_keeps_the_borders_zero() {
        let (mut out, mut shape) = (Vec::new(), [0; 3]);
        let wide = ConvShape::new(&[2, 1, 4, 6], &[16, 1, 3, 3], [1, 1, 1]).expect("a shape");
        let ones = vec![1.0; 2 * 4 * 6];
        pad(&wide, Batch::dense(&ones, 4 * 6), &mut out, &mut shape);
        let narrow = ConvShape::new(&[2, 1, 3, 3], &[16, 1, 3, 3], [1, 1, 1]).expect("a shape");
        let twos = vec![2.0; 2 * 3 * 3];
        pad(&narrow, Batch::dense(&twos, 3 * 3), &mut out, &mut shape);
        let plane: Vec<f32> = (0..25)
            .map(|q| {
                if (1..4).contains(&(q / 5)) && (1..4).contains(&(q % 5)) {
                    2.0
                } else {
                    0.0
                }
            })
            .collect();
        assert_eq!(out, [plane.clone(), plane].concat());
    }
}
