//! The shape of a convolution and the patch matrix (im2col) of one image, gathered and added
//! back (col2im); the nearest-neighbour upsampling that may precede it, and its transpose.

/// The sizes of one fused convolution (square kernel, dilation 1, one group).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvShape {
    /// Images, input channels, and the rows and columns of the image convolved: the input
    /// upsampled `up` times on both axes.
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Output channels, kernel size, stride, padding.
    pub co: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
    /// Output rows and columns.
    pub ho: usize,
    pub wo: usize,
    /// The nearest-neighbour upsampling factor of the input (1: none): each input image is
    /// `[c, h / up, w / up]`, and each of its pixels covers `up x up` pixels of the image
    /// convolved.
    pub up: usize,
}

impl ConvShape {
    /// The shape of `x [n, c, h, w]`, upsampled `up` times (nearest neighbour), convolved
    /// with `w [co, c, k, k]` at `[stride, padding]`; `None` when they do not fit together,
    /// the kernel is not square or larger than the padded image, or any size is zero.
    pub fn new(x: &[usize], w: &[usize], [s, p, up]: [usize; 3]) -> Option<Self> {
        let (&[n, c, h, wd], &[co, ci, k, kw]) = (x, w) else {
            return None;
        };
        let (h, wd) = (h.checked_mul(up)?, wd.checked_mul(up)?);
        let fits = ci == c && kw == k && s > 0 && k > 0 && h + 2 * p >= k && wd + 2 * p >= k;
        let nonzero = n * c * h * wd * co > 0;
        (fits && nonzero).then(|| Self {
            n,
            c,
            h,
            w: wd,
            co,
            k,
            s,
            p,
            ho: (h + 2 * p - k) / s + 1,
            wo: (wd + 2 * p - k) / s + 1,
            up,
        })
    }

    /// Rows of the patch matrix: `c k k`.
    pub fn patch_rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output pixels of an image: `ho wo`, the patch matrix's columns.
    pub fn pixels(&self) -> usize {
        self.ho * self.wo
    }

    /// Elements of one image convolved: `c h w`.
    pub fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The dimensions of the input, before upsampling: `[n, c, h / up, w / up]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h / self.up, self.w / self.up]
    }

    /// A 1x1 convolution with stride 1, no padding and no upsampling, whose patch matrix is
    /// the image itself.
    pub fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0 && self.up == 1
    }

    /// The input image `x` (`[c, h / up, w / up]`) upsampled into `out` (`[c, h, w]`): each
    /// pixel repeated `up` times along its row, and each row `up` times.
    pub fn upsample(&self, x: &[f32], out: &mut Vec<f32>) {
        let (up, w) = (self.up, self.w);
        out.resize(self.image(), 0.0);
        for (src, rows) in x.chunks(w / up).zip(out.chunks_mut(up * w)) {
            let (first, rest) = rows.split_at_mut(w);
            for (block, &v) in first.chunks_mut(up).zip(src) {
                block.fill(v);
            }
            for row in rest.chunks_mut(w) {
                row.copy_from_slice(first);
            }
        }
    }

    /// The transpose of [`upsample`](Self::upsample): each pixel of `out` (`[c, h / up, w /
    /// up]`) set to the sum of the `up x up` pixels of `dx` (`[c, h, w]`) it was copied to.
    pub fn downsample_sum(&self, dx: &[f32], out: &mut [f32]) {
        let (up, w) = (self.up, self.w);
        for (sums, rows) in out.chunks_mut(w / up).zip(dx.chunks(up * w)) {
            sums.fill(0.0);
            for row in rows.chunks(w) {
                for (sum, block) in sums.iter_mut().zip(row.chunks(up)) {
                    *sum += block.iter().sum::<f32>();
                }
            }
        }
    }

    /// Writes the patch matrix of the image `x` (`[c, h, w]`), `[c k k, ho wo]`, into `out`
    /// with row stride `ld >= ho wo`, so that several images' matrices can sit side by side
    /// (one product for all of them).
    pub fn gather(&self, x: &[f32], out: &mut [f32], ld: usize) {
        let pixels = self.pixels();
        if let Some(shifts) = self.shifts() {
            for (row, shift) in shifts {
                shift.gather(x, &mut out[row * ld..][..pixels]);
            }
            return;
        }
        // Zero each row in one call, then copy the segments inside the image: clearing the
        // padding segment by segment cost more than the copies at stride 2.
        for row in 0..self.patch_rows() {
            out[row * ld..][..pixels].fill(0.0);
        }
        self.walk(|row, oh, Segment { start, lo, hi }| {
            let out = &mut out[row * ld + oh * self.wo..][lo..hi];
            let src = &x[start..][..(hi - lo - 1) * self.s + 1];
            if self.s == 1 {
                out.copy_from_slice(src);
            } else {
                out.iter_mut()
                    .zip(src.iter().step_by(self.s))
                    .for_each(|(o, &v)| *o = v);
            }
        });
    }

    /// Adds the patch matrix `cols` (`[c k k, ho wo]`, row stride `ld`) back into the image
    /// `dx` (`[c, h, w]`): each pixel gets the sum over the patches that contain it (the
    /// transpose of [`gather`](Self::gather)). `cols` is scratch: the same-size path clears in
    /// it the entries that fall on padding.
    pub fn add_patches(&self, cols: &mut [f32], ld: usize, dx: &mut [f32]) {
        let pixels = self.pixels();
        if let Some(shifts) = self.shifts() {
            for (row, shift) in shifts {
                shift.scatter_add(&mut cols[row * ld..][..pixels], dx);
            }
            return;
        }
        self.walk(|row, oh, Segment { start, lo, hi }| {
            let src = &cols[row * ld + oh * self.wo..][lo..hi];
            let dst = &mut dx[start..][..(hi - lo - 1) * self.s + 1];
            if self.s == 1 {
                dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
            } else {
                dst.iter_mut()
                    .step_by(self.s)
                    .zip(src)
                    .for_each(|(d, &v)| *d += v);
            }
        });
    }

    /// The convolution whose forward pass is this one's input gradient, for a stride-1
    /// convolution whose output has the input's size (`k = 2 p + 1`): it maps the `co`-channel
    /// output gradient back to `c` channels with the same geometry and the kernel flipped
    /// ([`flipped_weights`](Self::flipped_weights)), onto the image convolved (before the
    /// transpose of any upsampling). `None` for other geometries.
    pub fn transposed(&self) -> Option<Self> {
        self.same_size().then_some(Self {
            c: self.co,
            co: self.c,
            up: 1,
            ..*self
        })
    }

    /// The weights of [`transposed`](Self::transposed) from this convolution's `w`
    /// (`[co, c, k, k]`): `w'[ch, o, i, j] = w[o, ch, k - 1 - i, k - 1 - j]`, `[c, co, k, k]`.
    pub fn flipped_weights(&self, w: &[f32]) -> Vec<f32> {
        let taps = self.k * self.k;
        let mut flipped = vec![0.0; w.len()];
        for (o, filters) in w.chunks(self.c * taps).enumerate() {
            for (ch, taps_of) in filters.chunks(taps).enumerate() {
                let to = &mut flipped[(ch * self.co + o) * taps..][..taps];
                for (t, &v) in taps_of.iter().enumerate() {
                    to[taps - 1 - t] = v;
                }
            }
        }
        flipped
    }

    /// A stride-1 convolution whose output has the input's size (`k = 2 p + 1`).
    fn same_size(&self) -> bool {
        self.s == 1 && self.ho == self.h && self.wo == self.w
    }

    /// For a stride-1 convolution whose output has the input's size (`k = 2 p + 1`, the U-Nets'
    /// 3x3), each patch-matrix row `(ch, i, j)` is channel `ch` shifted by `(i - p, j - p)`:
    /// one contiguous copy per row instead of one per output row, with the entries that wrap
    /// around a row edge cleared after. `None` for other geometries.
    fn shifts(&self) -> Option<impl Iterator<Item = (usize, Shift)> + '_> {
        let (k, p) = (self.k, self.p as isize);
        self.same_size().then(move || {
            (0..self.c * k * k).map(move |row| {
                let (ch, i, j) = (row / (k * k), (row / k) % k, row % k);
                let (di, dj) = (i as isize - p, j as isize - p);
                let plane = (self.h * self.w) as isize;
                let offset = di * self.w as isize + dj;
                let shift = Shift {
                    base: ch * self.h * self.w,
                    offset,
                    lo: (-offset).clamp(0, plane) as usize,
                    hi: (plane - offset).clamp(0, plane) as usize,
                    dj,
                    w: self.w,
                    h: self.h,
                };
                (row, shift)
            })
        })
    }

    /// Calls `f(row, oh, segment)` for every patch-matrix row `(ch, i, j)` and output row `oh`
    /// whose input row `oh s + i - p` lies inside the image, with the output columns `lo..hi`
    /// whose input lies inside it too, the first of them at `start` in the image.
    fn walk(&self, mut f: impl FnMut(usize, usize, Segment)) {
        let (k, s, p) = (self.k, self.s, self.p);
        for ch in 0..self.c {
            for i in 0..k {
                for j in 0..k {
                    let row = (ch * k + i) * k + j;
                    // Output columns with 0 <= ow s + j - p < w.
                    let lo = p.saturating_sub(j).div_ceil(s).min(self.wo);
                    let hi = if self.w + p > j {
                        ((self.w + p - j - 1) / s + 1).min(self.wo)
                    } else {
                        0
                    };
                    if lo >= hi {
                        continue;
                    }
                    for oh in 0..self.ho {
                        let Some(ih) = (oh * s + i).checked_sub(p).filter(|&ih| ih < self.h) else {
                            continue;
                        };
                        let start = (ch * self.h + ih) * self.w + lo * s + j - p;
                        f(row, oh, Segment { start, lo, hi });
                    }
                }
            }
        }
    }
}

/// Output columns `lo..hi` of one patch-matrix row segment, read from the image at `start`,
/// `start + s`, ...
struct Segment {
    start: usize,
    lo: usize,
    hi: usize,
}

/// One patch-matrix row of a same-size stride-1 convolution: entry `q` (an output pixel) reads
/// the channel plane at `base` at `q + offset`, inside the plane for `q` in `lo..hi`, except
/// where the column shift `dj` carries it across a row edge (those entries are padding).
struct Shift {
    base: usize,
    offset: isize,
    lo: usize,
    hi: usize,
    dj: isize,
    w: usize,
    h: usize,
}

impl Shift {
    /// The row `out` (`h w` entries) gathered from the image `x`.
    fn gather(&self, x: &[f32], out: &mut [f32]) {
        out[..self.lo].fill(0.0);
        out[self.hi..].fill(0.0);
        if self.lo < self.hi {
            let from = self.base + self.lo;
            let src = &x[from.wrapping_add_signed(self.offset)..][..self.hi - self.lo];
            out[self.lo..self.hi].copy_from_slice(src);
        }
        self.clear_wrapped(out);
    }

    /// Adds the row `cols` (`h w` entries) into the image `dx` where it lies inside it; clears
    /// the wrapped entries of `cols` first.
    fn scatter_add(&self, cols: &mut [f32], dx: &mut [f32]) {
        if self.lo >= self.hi {
            return;
        }
        self.clear_wrapped(cols);
        let from = (self.base + self.lo).wrapping_add_signed(self.offset);
        dx[from..][..self.hi - self.lo]
            .iter_mut()
            .zip(&cols[self.lo..self.hi])
            .for_each(|(d, &v)| *d += v);
    }

    /// Zeroes the entries whose column `ow + dj` falls outside `0..w`: the first `-dj` or last
    /// `dj` columns of every output row (a strided loop: a few stores per row).
    fn clear_wrapped(&self, row: &mut [f32]) {
        let w = self.w;
        let columns = if self.dj < 0 {
            0..self.dj.unsigned_abs().min(w)
        } else {
            w - (self.dj as usize).min(w)..w
        };
        for c in columns {
            for oh in 0..self.h {
                row[oh * w + c] = 0.0;
            }
        }
    }
}
