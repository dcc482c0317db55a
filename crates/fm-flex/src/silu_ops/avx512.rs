//! The SiLU kernels' per-element math written for AVX-512, 16 lanes at a time.
//!
//! The portable kernels (the scalar functions in `kernel.rs`, vectorised by the compiler) spend
//! about 0.52 ns an element on an activation in cache (4096 x 512, passed over repeatedly, one
//! thread), compute-bound: `1 / (1 + e)` compiles to a full-precision
//! division, and `2^n` to four integer operations. This path computes the same formulas with
//! `vrcp14ps` and one Newton step for the reciprocal (relative error about 2^-28, below `f32`'s
//! rounding) and `vscalefps` for `2^n`: 0.35 ns an element on the same data. Rows of any width
//! are covered with masked loads and stores for the last partial vector.

use super::kernel::{EXP_POLY, EXP_RANGE, LN2_HI, LN2_LO};
use std::arch::x86_64::*;

/// Whether this CPU runs the AVX-512 kernels (checked once, then a cached load).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `dst[i, j] <- v sigmoid(v)` with `v = src[i, j] + b[j]` over `len` elements in rows of
/// `b.len()` (one row, no bias, when `b` is `None`).
///
/// # Safety
/// [`available`] is true; `src` is readable and `dst` writable for `len` elements, and the two
/// are either the same pointer or do not overlap; `len` is a multiple of the row width.
pub unsafe fn forward(dst: *mut f32, src: *const f32, len: usize, b: Option<&[f32]>) {
    // SAFETY: forwarded from the caller.
    unsafe { rows::<false>(dst, src, len, b, None) }
}

/// `g[i, j] <- g s (1 + v (1 - s))` with `v = src[i, j] + b[j]`, `s = sigmoid(v)`, in place, over
/// `len` elements in rows of `b.len()`, adding each result into `sums[j]` when given.
///
/// # Safety
/// As [`forward`], with `g` for `dst`; `sums`, when given, has one element per column.
pub unsafe fn backward(
    g: *mut f32,
    src: *const f32,
    len: usize,
    b: Option<&[f32]>,
    sums: Option<&mut [f32]>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { rows::<true>(g, src, len, b, sums) }
}

/// The shared row loop, a vector at a time, masked at each row's end: `dst <- silu(src + b)`,
/// or with `BACKWARD`, `dst <- silu_grad(dst, src + b)`.
#[target_feature(enable = "avx512f")]
unsafe fn rows<const BACKWARD: bool>(
    dst: *mut f32,
    src: *const f32,
    len: usize,
    b: Option<&[f32]>,
    mut sums: Option<&mut [f32]>,
) {
    let n = b.map_or(len, <[f32]>::len);
    if let Some(sums) = sums.as_deref() {
        assert_eq!(sums.len(), n, "silu: one sum per column");
    }
    for row in (0..len).step_by(n.max(1)) {
        for j in (0..n).step_by(16) {
            let mask: __mmask16 = if n - j >= 16 { !0 } else { (1 << (n - j)) - 1 };
            // SAFETY: `row + j + lane < len` for every lane the mask keeps (the caller's
            // bounds), and `j + lane < n` for the bias and the sums.
            unsafe {
                let at = row + j;
                let mut v = _mm512_maskz_loadu_ps(mask, src.add(at));
                if let Some(b) = b {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(j)));
                }
                let out = if BACKWARD {
                    silu_grad(_mm512_maskz_loadu_ps(mask, dst.add(at)), v)
                } else {
                    silu(v)
                };
                _mm512_mask_storeu_ps(dst.add(at), mask, out);
                if let Some(sums) = sums.as_deref_mut() {
                    let s = sums.as_mut_ptr().add(j);
                    let acc = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, s), out);
                    _mm512_mask_storeu_ps(s, mask, acc);
                }
            }
        }
    }
}

/// `v sigmoid(v)`.
#[inline]
#[target_feature(enable = "avx512f")]
fn silu(v: __m512) -> __m512 {
    _mm512_mul_ps(v, sigmoid(v))
}

/// `g s (1 + v (1 - s))` with `s = sigmoid(v)`.
#[inline]
#[target_feature(enable = "avx512f")]
fn silu_grad(g: __m512, v: __m512) -> __m512 {
    let s = sigmoid(v);
    let one = _mm512_set1_ps(1.0);
    let inner = _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one);
    _mm512_mul_ps(_mm512_mul_ps(g, s), inner)
}

/// `1 / (1 + exp(-v))`: `vrcp14ps` (14 bits) refined by one Newton step `q (2 - d q)`.
#[inline]
#[target_feature(enable = "avx512f")]
pub fn sigmoid(v: __m512) -> __m512 {
    let d = _mm512_add_ps(
        exp(_mm512_sub_ps(_mm512_setzero_ps(), v)),
        _mm512_set1_ps(1.0),
    );
    let q = _mm512_rcp14_ps(d);
    _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(2.0)))
}

/// `e^z` for `z` clamped to `[-87, 88]`, as `kernel::exp` (the same reduction and Cephes
/// polynomial), with `vrndscaleps` for the rounding and `vscalefps` for the product by `2^n`.
#[inline]
#[target_feature(enable = "avx512f")]
pub fn exp(z: __m512) -> __m512 {
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let [lo, hi] = EXP_RANGE;
    let z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
    let n =
        _mm512_roundscale_ps::<NEAREST>(_mm512_mul_ps(z, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), z);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let [first, rest @ ..] = EXP_POLY;
    let p = rest.iter().fold(_mm512_set1_ps(first), |p, &c| {
        _mm512_fmadd_ps(p, r, _mm512_set1_ps(c))
    });
    let er = _mm512_fmadd_ps(
        p,
        _mm512_mul_ps(r, r),
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    _mm512_scalef_ps(er, n)
}
