//! The 3x3 stride-1 "same" convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin &
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of output
//! pixels is `A^T [(G w G^T) . (B^T d B)] A` of its 4x4 input tile `d`, so the products multiply
//! 16 numbers per block and channel pair where the patch matrix's multiply 36 (2.25x fewer).
//! There are 16 products, one per tile position `xi`: `[co, c] x [c, tiles]` over a group of
//! images' tiles side by side. The weight gradient is the same computation transposed: `dU =
//! dM V^T` at each position, with `dM = A g A^T` of the output gradient's 2x2 blocks, and `dw
//! = G^T dU G` (16 products `[co, tiles] x [tiles, c]`). The transforms run over all of a
//! channel's tiles at once (each tile entry is a shifted slice of one of the padded image's
//! four phases, see [`Phases`]), compiled for the CPU's SIMD level by pulp's dispatch, so that
//! they vectorise.

use super::patches::ConvShape;
use crate::buffer::Batch;
use crate::matrix::{Matrix, gemm_into};
use pulp::{Arch, Simd, WithSimd};
use std::mem::MaybeUninit;

/// Positions in a 4x4 tile: one product each.
pub(super) const XI: usize = 16;

/// Whether `s` is a convolution Winograd's F(2x2, 3x3) computes here, and faster than the
/// patch matrix's product: a 3x3 kernel, stride 1, padding 1 (the output has the input's
/// size), at least [`MIN_WIDTH`] columns and [`MIN_CHANNELS`] channels in and out.
pub(super) fn applies(s: &ConvShape) -> bool {
    s.k == 3 && s.s == 1 && s.p == 1 && s.w >= MIN_WIDTH && s.c.min(s.co) >= MIN_CHANNELS
}

/// The narrowest image Winograd's transforms pay on: on the `mnist` U-Net's 7x7 and 14x14
/// layers (16 and 49 tiles a channel, passes too short to fill the vectors, and a 7x7 image
/// padded to 8x8 tiles) they cost more than the products saved (`conv_unet` in
/// benches/kernels.rs: 64 -> 64 at 7x7 2.8 ms by the patch matrix, 4.5 ms by Winograd, one
/// thread), where its 28x28 forward passes gained 1.1-1.6x (between runs on a noisy machine).
/// Measured again with the faster transforms, Winograd still only matched the patch matrix
/// at 14x14 and was 1.2-1.6x slower at 7x7; those layers take the direct kernel
/// (`direct.rs`), faster than either.
const MIN_WIDTH: usize = 16;

/// The fewest channels in and out: the input transform's cost per product is `1 / co`, the
/// output transform's `1 / c` (the U-Nets' first and last layers, 1 -> 32 and 32 -> 1, were
/// 4x and 1.5x slower by Winograd).
const MIN_CHANNELS: usize = 16;

/// Columns of one image in the products: its tiles (2x2 output blocks), `ceil(h / 2)` rows
/// of `ceil(w / 2)`, each row followed by one unused column, `ceil(h / 2) (ceil(w / 2) + 1)`.
/// The unused columns let every transform pass run over all of a channel's tiles in one loop
/// (see [`Phases`]); they cost `1 / (ceil(w / 2) + 1)` more product columns, and the gradient
/// transform zeroes them so that they add nothing to the weight gradient.
pub(super) fn tiles(s: &ConvShape) -> usize {
    s.h.div_ceil(2) * (s.w.div_ceil(2) + 1)
}

/// The weights `w` (`[co, c, 3, 3]`) transformed, `U = G w G^T` with `G = [[1, 0, 0], [1/2,
/// 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`, laid out `[16, co, c]`: position `xi`'s matrix is
/// the `[co, c]` left operand of its product.
pub(super) fn weights(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let g_of = |[a, b, c]: [f32; 3]| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut u = vec![0.0; XI * s.co * s.c];
    for (o, filters) in w.chunks(s.c * 9).enumerate() {
        for (ch, g) in filters.chunks(9).enumerate() {
            // G g, one kernel column at a time: gg[j][i] = (G g)[i][j].
            let gg = [0, 1, 2].map(|j| g_of([g[j], g[3 + j], g[6 + j]]));
            for i in 0..4 {
                for (j, v) in g_of([gg[0][i], gg[1][i], gg[2][i]]).into_iter().enumerate() {
                    u[((4 * i + j) * s.co + o) * s.c + ch] = v;
                }
            }
        }
    }
    u
}

/// The input tiles of the images `x` (`[c, h, w]` each) transformed, `V = B^T d B` with `B^T =
/// [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`, into `v` (`[16, c, ld]`, the
/// images' tiles side by side: image `j`'s tile `(ty, tx)` in column `j tiles + ty (ceil(w /
/// 2) + 1) + tx`, see [`tiles`]). The unused columns hold finite values (zero in each image's
/// last), which the output transform skips and the gradient's zeros cancel. `scratch` is
/// scratch; an upsampled convolution's images are upsampled into `upsampled` first.
pub(super) fn transform_input(
    s: &ConvShape,
    x: Batch,
    v: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
    upsampled: &mut Vec<f32>,
) {
    let ld = x.count() * tiles(s);
    v.resize(XI * s.c * ld, 0.0);
    let phases = Phases::of(s);
    scratch.resize(4 * phases.plane, 0.0);
    for (j, image) in x.images().enumerate() {
        let image = if s.up > 1 {
            s.upsample(image, upsampled);
            upsampled.as_slice()
        } else {
            image
        };
        let first = j * tiles(s);
        Arch::new().dispatch(InputTiles {
            s,
            phases,
            image,
            v,
            first,
            scratch,
        });
    }
}

/// A channel padded by one zero row and column on each side (and one more on the bottom and
/// right when the size is odd) as its four phases: `P_ab[Y][X] = padded[2 Y + a][2 X + b]`,
/// `(ceil(h / 2) + 1) x (ceil(w / 2) + 1)` each. Entry `(i, j)` of every tile `(ty, tx)` is
/// then `P_(i % 2)(j % 2)` at `q + (i / 2) (tw + 1) + j / 2`, `q = ty (tw + 1) + tx`: one
/// shifted slice of a phase for all the tiles at once, with one unused column per tile row.
#[derive(Clone, Copy)]
struct Phases {
    /// Tile columns of the image.
    tw: usize,
    /// Entries in a phase, `(th + 1) (tw + 1)`.
    plane: usize,
    /// Tile indices `q` spanned, `th (tw + 1) - 1`.
    span: usize,
}

impl Phases {
    fn of(s: &ConvShape) -> Self {
        let (th, tw) = (s.h.div_ceil(2), s.w.div_ceil(2));
        Self {
            tw,
            plane: (th + 1) * (tw + 1),
            span: th * (tw + 1) - 1,
        }
    }

    /// The phases of the channel `x` (`[h, w]`) into `p` (`[4, plane]`, phase `2 a + b`).
    #[inline(always)]
    fn split(&self, s: &ConvShape, x: &[f32], p: &mut [f32]) {
        p.fill(0.0);
        let stride = self.tw + 1;
        for (r, row) in x.chunks_exact(s.w).enumerate() {
            // Image row r is padded row r + 1: its phase row and parity.
            let padded = r + 1;
            let (big, a) = (padded / 2, padded % 2);
            let (even, odd) = p.split_at_mut((2 * a + 1) * self.plane);
            let even = &mut even[2 * a * self.plane + big * stride..][..stride];
            let odd = &mut odd[big * stride..][..stride];
            // Image column 2 k is padded column 2 k + 1 (odd phase, X = k), 2 k + 1 is padded
            // 2 k + 2 (even phase, X = k + 1).
            deinterleave(row, odd, &mut even[1..]);
        }
    }
}

/// `first[k] = row[2 k]` and `second[k] = row[2 k + 1]`, an odd length's last entry into
/// `first`. Indexed, so that the compiler vectorises the stride-2 reads (an iterator over
/// pairs stayed scalar, 8 % of a 28x28 layer's forward pass).
#[inline(always)]
fn deinterleave(row: &[f32], first: &mut [f32], second: &mut [f32]) {
    let n = row.len() / 2;
    let (first_n, second_n, pairs) = (&mut first[..n], &mut second[..n], &row[..2 * n]);
    for k in 0..n {
        first_n[k] = pairs[2 * k];
        second_n[k] = pairs[2 * k + 1];
    }
    if row.len() % 2 == 1 {
        first[n] = row[2 * n];
    }
}

/// One image's tiles transformed into `v` from column `first` on (see [`transform_input`]),
/// compiled for the CPU's SIMD level so that the passes over all of a channel's tiles
/// vectorise.
struct InputTiles<'a> {
    s: &'a ConvShape,
    phases: Phases,
    image: &'a [f32],
    v: &'a mut [f32],
    first: usize,
    scratch: &'a mut [f32],
}

impl WithSimd for InputTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Self {
            s,
            phases,
            image,
            v,
            first,
            scratch,
        } = self;
        let Phases { tw, span, .. } = phases;
        let ld = v.len() / (XI * s.c);
        let p = &mut scratch[..4 * phases.plane];
        for (ch, plane) in image.chunks_exact(s.h * s.w).enumerate() {
            phases.split(s, plane, p);
            let d = |i: usize, j: usize| {
                let at = (2 * (i % 2) + j % 2) * phases.plane + (i / 2) * (tw + 1) + j / 2;
                &p[at..][..span]
            };
            // Row i of B^T d is `d_a + sign d_b` (COMBOS[i]) in each tile column j; its four
            // columns of (B^T d) B go to positions 4 i + k of `v`, unused columns included. One
            // pass per row: eight slices read and four written, where a pass per row and column
            // moved twice the data through a scratch.
            for (i, (a, b, sign)) in COMBOS.into_iter().enumerate() {
                let mut dst = v
                    .chunks_exact_mut(s.c * ld)
                    .skip(4 * i)
                    .map(|block| &mut block[ch * ld + first..][..=span]);
                let dst: [&mut [f32]; 4] = std::array::from_fn(|_| dst.next().expect("4 rows"));
                let rows = [0, 1, 2, 3].map(|j| (d(a, j), d(b, j)));
                row_of_tiles(rows, sign, dst);
            }
        }
    }
}

/// One row of the input transform for all of a channel's tiles: `t_j = p_j + sign q_j` for the
/// tile columns `j` (`rows[j] = (p_j, q_j)`), then `dst[k] = t_a + sign' t_b` for the columns
/// `(a, b, sign')` of [`COMBOS`], and a zero in each `dst`'s last (unused) column.
#[inline(always)]
fn row_of_tiles(rows: [(&[f32], &[f32]); 4], sign: f32, dst: [&mut [f32]; 4]) {
    let span = rows[0].0.len();
    let [(p0, q0), (p1, q1), (p2, q2), (p3, q3)] = rows.map(|(p, q)| (&p[..span], &q[..span]));
    let [d0, d1, d2, d3] = dst;
    let (d0, d1, d2, d3) = (
        &mut d0[..=span],
        &mut d1[..=span],
        &mut d2[..=span],
        &mut d3[..=span],
    );
    for e in 0..span {
        let t = [
            p0[e] + sign * q0[e],
            p1[e] + sign * q1[e],
            p2[e] + sign * q2[e],
            p3[e] + sign * q3[e],
        ];
        // The columns of (B^T d) B: [t0 - t2, t1 + t2, t2 - t1, t1 - t3].
        d0[e] = t[0] - t[2];
        d1[e] = t[1] + t[2];
        d2[e] = t[2] - t[1];
        d3[e] = t[1] - t[3];
    }
    for d in [d0, d1, d2, d3] {
        d[span] = 0.0;
    }
}

/// The rows (or columns) of `B^T d` (`(B^T d) B`) as `(a, b, sign)`: `d_a + sign d_b`.
const COMBOS: [(usize, usize, f32); 4] = [(0, 2, -1.0), (1, 2, 1.0), (2, 1, -1.0), (1, 3, -1.0)];

/// The 16 products `M_xi = U_xi V_xi` (`[co, ld]` each, into `m`, `[16, co, ld]`).
pub(super) fn products(
    s: &ConvShape,
    v: &[f32],
    u: &[f32],
    m: &mut [MaybeUninit<f32>],
    parallelism: gemm::Parallelism,
) {
    let ld = v.len() / (XI * s.c);
    let operands = |u, v| {
        let lhs = Matrix::row_major(u, s.co, s.c);
        (lhs, Matrix::row_major(v, s.c, ld))
    };
    at_each_position(m, u, v, operands, false, parallelism);
}

/// `dst_xi [+]= lhs_xi rhs_xi` at each of the 16 positions: `dst`, `a` and `b` hold 16 equal
/// blocks, one per position, and `operands` makes the two matrices of a position's blocks of
/// `a` and `b`.
fn at_each_position<'a>(
    dst: &mut [MaybeUninit<f32>],
    a: &'a [f32],
    b: &'a [f32],
    operands: impl Fn(&'a [f32], &'a [f32]) -> (Matrix, Matrix),
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let blocks = a.chunks(a.len() / XI).zip(b.chunks(b.len() / XI));
    for ((a, b), dst) in blocks.zip(dst.chunks_mut(dst.len() / XI)) {
        let (lhs, rhs) = operands(a, b);
        gemm_into(dst, lhs, rhs, accumulate, parallelism);
    }
}

/// The outputs `y` (`[co, h, w]` per image, one after the other) of the products `m` (`[16,
/// co, ld]`): each 2x2 block `A^T M A + b` with `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]`, cut at
/// the image's last row and column when they are odd. `scratch` is scratch.
pub(super) fn transform_output(
    s: &ConvShape,
    m: &[f32],
    b: &[f32],
    y: &mut [MaybeUninit<f32>],
    scratch: &mut Vec<f32>,
) {
    scratch.resize(12 * tiles(s), 0.0);
    Arch::new().dispatch(OutputTiles {
        s,
        m,
        b,
        y,
        scratch,
    });
}

/// [`transform_output`], compiled for the CPU's SIMD level so that the passes over all of an
/// output channel's tiles vectorise.
struct OutputTiles<'a> {
    s: &'a ConvShape,
    m: &'a [f32],
    b: &'a [f32],
    y: &'a mut [MaybeUninit<f32>],
    scratch: &'a mut [f32],
}

impl WithSimd for OutputTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Self {
            s,
            m,
            b,
            y,
            scratch,
        } = self;
        let (tw, per, pixels) = (s.w.div_ceil(2), tiles(s), s.pixels());
        let ld = m.len() / (XI * s.co);
        let (sums, blocks) = scratch.split_at_mut(8 * per);
        for (j, y) in y.chunks_mut(s.co * pixels).enumerate() {
            for (o, (y, &bias)) in y.chunks_mut(pixels).zip(b).enumerate() {
                let e = |xi: usize| &m[(xi * s.co + o) * ld + j * per..][..per];
                // A^T M: rows [m0 + m1 + m2, m1 - m2 - m3] of each tile column c.
                let mut sums_of = sums.chunks_exact_mut(per);
                for top in 0..2 {
                    let sign = if top == 0 { 1.0 } else { -1.0 };
                    for c in 0..4 {
                        let (p, q, r) = (e(4 * top + c), e(4 * top + 4 + c), e(4 * top + 8 + c));
                        let sum = sums_of.next().expect("8 sums");
                        for (((d, &p), &q), &r) in sum.iter_mut().zip(p).zip(q).zip(r) {
                            *d = p + sign * (q + r);
                        }
                    }
                }
                // Then (A^T M) A: columns [s0 + s1 + s2, s1 - s2 - s3] of each row.
                let mut blocks_of = blocks.chunks_exact_mut(per);
                for row in sums.chunks_exact(4 * per) {
                    let t = |c: usize| &row[c * per..][..per];
                    for (p, q, r, sign) in [(0, 1, 2, 1.0), (1, 2, 3, -1.0)] {
                        let block = blocks_of.next().expect("4 blocks");
                        for (((d, &p), &q), &r) in block.iter_mut().zip(t(p)).zip(t(q)).zip(t(r)) {
                            *d = p + sign * (q + r);
                        }
                    }
                }
                // Output pixel (2 ty + a, 2 tx + b) is blocks[2 a + b] at column ty (tw + 1) + tx.
                for (oy, row) in y.chunks_exact_mut(s.w).enumerate() {
                    let at = (oy / 2) * (tw + 1);
                    let block = |b: usize| &blocks[(2 * (oy % 2) + b) * per + at..][..tw];
                    let (left, right) = (block(0), block(1));
                    // Indexed, so that the stride-2 writes vectorise (as in [`deinterleave`]).
                    let n = s.w / 2;
                    let (l, r, pairs) = (&left[..n], &right[..n], &mut row[..2 * n]);
                    for k in 0..n {
                        pairs[2 * k] = MaybeUninit::new(l[k] + bias);
                        pairs[2 * k + 1] = MaybeUninit::new(r[k] + bias);
                    }
                    // An odd width ends on the left half of a block.
                    if s.w % 2 == 1 {
                        row[2 * n] = MaybeUninit::new(left[n] + bias);
                    }
                }
            }
        }
    }
}

/// `A` of [`transform_output`] (`A^T` transposed): its rows weigh a 2x2 block's two rows (or
/// columns) into a 4x4 tile's, `[[1, 0], [1, 1], [1, -1], [0, -1]]`.
const A: [[f32; 2]; 4] = [[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, -1.0]];

/// The gradient of the products `M` of [`transform_output`] from the output gradients `g`
/// (`[co, h, w]` per image): `A g A^T` of each 2x2 block, zero past an odd last row or column,
/// into `dm` (`[16, co, ld]`, columns as [`transform_input`]'s). `scratch` is scratch.
pub(super) fn transform_gradient(
    s: &ConvShape,
    g: Batch,
    dm: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) {
    dm.resize(XI * s.co * g.count() * tiles(s), 0.0);
    scratch.resize(12 * tiles(s), 0.0);
    Arch::new().dispatch(GradientTiles { s, g, dm, scratch });
}

/// [`transform_gradient`], compiled for the CPU's SIMD level so that the passes over all of an
/// output channel's tiles vectorise.
struct GradientTiles<'a> {
    s: &'a ConvShape,
    g: Batch<'a>,
    dm: &'a mut [f32],
    scratch: &'a mut [f32],
}

impl WithSimd for GradientTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Self { s, g, dm, scratch } = self;
        let (tw, per, pixels) = (s.w.div_ceil(2), tiles(s), s.pixels());
        let ld = dm.len() / (XI * s.co);
        let (blocks, rows) = scratch.split_at_mut(4 * per);
        for (j, image) in g.images().enumerate() {
            for (o, plane) in image.chunks_exact(pixels).enumerate() {
                // blocks[2 a + b] holds pixel (2 ty + a, 2 tx + b) of every tile (ty, tx), and
                // zeros past the image and in the unused columns.
                blocks.fill(0.0);
                for (oy, row) in plane.chunks_exact(s.w).enumerate() {
                    let at = (2 * (oy % 2)) * per + (oy / 2) * (tw + 1);
                    let (left, right) = blocks[at..].split_at_mut(per);
                    deinterleave(row, left, right);
                }
                // A g: row i of each tile column b is A[i] . (g_0b, g_1b).
                for (i, coef) in A.iter().enumerate() {
                    for b in 0..2 {
                        let row = &mut rows[(2 * i + b) * per..][..per];
                        let (top, bottom) =
                            (&blocks[b * per..][..per], &blocks[(2 + b) * per..][..per]);
                        mix(row, top, bottom, coef);
                    }
                }
                // Then (A g) A^T: column k of row i is A[k] . (r_i0, r_i1).
                for i in 0..4 {
                    let (r0, r1) = (
                        &rows[2 * i * per..][..per],
                        &rows[(2 * i + 1) * per..][..per],
                    );
                    for (k, coef) in A.iter().enumerate() {
                        let dst = &mut dm[((4 * i + k) * s.co + o) * ld + j * per..][..per];
                        mix(dst, r0, r1, coef);
                    }
                }
            }
        }
    }
}

/// `out = coef[0] p + coef[1] q`, elementwise (over the shortest of the three).
#[inline(always)]
fn mix(out: &mut [f32], p: &[f32], q: &[f32], coef: &[f32; 2]) {
    for ((o, &p), &q) in out.iter_mut().zip(p).zip(q) {
        *o = coef[0] * p + coef[1] * q;
    }
}

/// `dU_xi += dM_xi V_xi^T` for the 16 positions: the gradient of the transformed weights
/// (`du`, `[16, co, c]`, accumulated) from the products' gradient `dm` (`[16, co, ld]`) and the
/// transformed input tiles `v` (`[16, c, ld]`).
pub(super) fn weight_products(
    s: &ConvShape,
    dm: &[f32],
    v: &[f32],
    du: &mut [MaybeUninit<f32>],
    parallelism: gemm::Parallelism,
) {
    let ld = v.len() / (XI * s.c);
    let operands = |dm, v| {
        let lhs = Matrix::row_major(dm, s.co, ld);
        (lhs, Matrix::row_major(v, s.c, ld).t())
    };
    at_each_position(du, dm, v, operands, true, parallelism);
}

/// The weight gradient `[co, c, 3, 3]` from that of the transformed weights, `du` (`[16, co,
/// c]`): `G^T dU G`, the transpose of [`weights`]' `U = G w G^T`.
pub(super) fn weight_gradient(s: &ConvShape, du: &[f32]) -> Vec<f32> {
    const G: [[f32; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let pairs = s.co * s.c;
    let mut dw = vec![0.0; pairs * 9];
    for (pair, taps) in dw.chunks_mut(9).enumerate() {
        let du = |i: usize, j: usize| du[(4 * i + j) * pairs + pair];
        // G^T dU (3x4), then (G^T dU) G (3x3).
        let t = [0, 1, 2]
            .map(|r| [0, 1, 2, 3].map(|j| (0..4).map(|i| G[i][r] * du(i, j)).sum::<f32>()));
        for (r, row) in taps.chunks_mut(3).enumerate() {
            for (q, tap) in row.iter_mut().enumerate() {
                *tap = (0..4).map(|j| t[r][j] * G[j][q]).sum();
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `weight_gradient` is the adjoint of `weights`: `<G w G^T, dU> = <w, G^T dU G>` for any
    /// `w` and `dU`, which is what makes it the gradient of the forward pass's transform.
    #[test]
    fn weight_gradient_is_the_adjoint_of_the_weight_transform() {
        let s = ConvShape::new(&[1, 5, 4, 4], &[3, 5, 3, 3], [1, 1, 1]).expect("a 3x3 shape");
        let (w, du) = (values(3 * 5 * 9, 1), values(XI * 3 * 5, 2));
        let dot =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&a, &b)| (a * b) as f64).sum::<f64>();
        let (lhs, rhs) = (
            dot(&weights(&s, &w), &du),
            dot(&w, &weight_gradient(&s, &du)),
        );
        assert!(
            (lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0),
            "{lhs} against {rhs}"
        );
    }
}
