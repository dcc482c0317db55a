//! The fused convolution against burn's `conv2d`: values and the gradients of input, weight and
//! bias (the wide 3x3 same-size ones by Winograd's F(2x2, 3x3)), for odd image sizes, strides
//! 1 and 2, kernels 1, 3 and 5, with and without padding, batches smaller and larger than the
//! pool, small images grouped into one product (with a
//! short last group), one and three threads, views and half precision; and the same after a
//! nearest-neighbour upsampling, against burn's interpolation.
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Distribution, Tensor};

/// `(n, c, h, w, co, k, stride, padding)`.
type Case = (usize, usize, usize, usize, usize, usize, usize, usize);

const CASES: [Case; 16] = [
    (3, 5, 9, 7, 4, 3, 1, 1),      // the U-Nets' 3x3, odd sizes
    (2, 4, 8, 8, 6, 3, 2, 1),      // their stride-2 downsampling
    (4, 6, 5, 5, 3, 1, 1, 0),      // their 1x1 skip projection: the image is the patch matrix
    (1, 3, 6, 6, 2, 3, 1, 0),      // one image: gemm threads instead of the batch
    (5, 2, 7, 9, 3, 3, 2, 0),      // stride 2 without padding, odd sizes
    (2, 3, 4, 4, 5, 5, 1, 2),      // a 5x5 kernel as large as the image
    (2, 8, 11, 11, 4, 1, 2, 0),    // 1x1 with stride 2: gathered, not the image itself
    (7, 16, 14, 14, 32, 3, 1, 1),  // a U-Net level's size, batch over the pool
    (2, 3, 5, 1, 2, 3, 1, 1),      // one column: every column shift falls on padding
    (1, 2, 1, 1, 3, 3, 1, 1),      // one pixel: only the kernel's centre sees the image
    (11, 3, 6, 5, 4, 3, 2, 1),     // small images in groups, one product each, the last short
    (10, 6, 4, 3, 5, 1, 1, 1),     // 1x1 with padding on small images, grouped
    (13, 16, 17, 19, 16, 3, 1, 1), // Winograd's: tiles cut at odd edges, grouped, the last short
    (5, 16, 9, 11, 20, 3, 2, 1),   // the direct kernel: stride 2, odd sizes, 20 = 16 + 4 outputs
    (3, 16, 7, 6, 17, 3, 1, 0),    // the direct kernel without padding, a last tile of one pixel
    (4, 24, 7, 7, 16, 3, 1, 1),    // the direct kernel both ways (the input gradient's too)
];

fn max_rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// Input, weight and bias of `case`, drawn on `dev`.
fn operands(case: Case, dev: &Device) -> (Tensor<4>, Tensor<4>, Tensor<1>) {
    let (n, c, h, w, co, k, _, _) = case;
    let normal = Distribution::Normal(0.0, 1.0);
    (
        Tensor::random([n, c, h, w], normal, dev),
        Tensor::random([co, c, k, k], normal, dev),
        Tensor::random([co], normal, dev),
    )
}

fn burn_conv(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, case: Case) -> Tensor<4> {
    let (.., s, p) = case;
    conv2d(x, w, Some(b), ConvOptions::new([s, s], [p, p], [1, 1], 1))
}

fn fused_conv(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, case: Case) -> Tensor<4> {
    let (.., s, p) = case;
    fm_flex::conv2d(x, w, b, s, p)
}

fn in_pools(threads: &[usize], run: impl Fn(usize) + Sync) {
    for &t in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("a thread pool");
        pool.install(|| run(t));
    }
}

#[test]
fn forward_matches_burn_conv2d() {
    let dev = Device::flex();
    in_pools(&[1, 3], |threads| {
        for case in CASES {
            dev.seed(3);
            let (x, w, b) = operands(case, &dev);
            let fused = fused_conv(x.clone(), w.clone(), b.clone(), case);
            let burn = burn_conv(x, w, b, case);
            assert_eq!(fused.dims(), burn.dims(), "{case:?}");
            let diff = max_rel_diff(fused, burn);
            assert!(diff < 1e-5, "{case:?}, {threads} threads: {diff}");
        }
    });
}

/// Gradients of `sum(r * conv(x))` for input, weight and bias agree with burn's autodiff of its
/// own convolution.
#[test]
fn gradients_match_burn_autodiff() {
    let dev = Device::flex().autodiff();
    in_pools(&[1, 3], |threads| {
        for case in CASES {
            dev.seed(5);
            let (x, w, b) = operands(case, &dev);
            let (x, w, b) = (x.require_grad(), w.require_grad(), b.require_grad());
            let y = burn_conv(x.clone(), w.clone(), b.clone(), case);
            let r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &dev);
            let grads_of = |y: Tensor<4>| {
                let g = (y * r.clone()).sum().backward();
                (
                    x.grad(&g).expect("x is tracked"),
                    w.grad(&g).expect("w is tracked"),
                    b.grad(&g).expect("b is tracked"),
                )
            };
            let (fx, fw, fb) = grads_of(fused_conv(x.clone(), w.clone(), b.clone(), case));
            let (bx, bw, bb) = grads_of(y);
            let at = format!("{case:?}, {threads} threads");
            assert!(max_rel_diff(fx, bx) < 1e-5, "dx {at}");
            assert!(max_rel_diff(fw, bw) < 1e-5, "dw {at}");
            assert!(max_rel_diff(fb, bb) < 1e-5, "db {at}");
        }
    });
}

/// An empty batch trains like burn's convolution: nothing to read, zero gradients.
#[test]
fn empty_batch_matches_burn_autodiff() {
    let dev = Device::flex().autodiff();
    let case = (0, 3, 5, 5, 2, 3, 1, 1);
    let (x, w, b) = operands(case, &dev);
    let (w, b) = (w.require_grad(), b.require_grad());
    let fused = fused_conv(x.clone(), w.clone(), b.clone(), case)
        .sum()
        .backward();
    let burn = burn_conv(x, w.clone(), b.clone(), case).sum().backward();
    assert!(max_rel_diff(w.grad(&fused).unwrap(), w.grad(&burn).unwrap()) < 1e-6);
    assert!(max_rel_diff(b.grad(&fused).unwrap(), b.grad(&burn).unwrap()) < 1e-6);
}

/// Data into the first convolution is not tracked: the weight and bias still get gradients.
#[test]
fn untracked_input_still_trains_the_convolution() {
    let dev = Device::flex().autodiff();
    dev.seed(6);
    let case = CASES[0];
    let (x, w, b) = operands(case, &dev);
    let (w, b) = (w.require_grad(), b.require_grad());
    let g = fused_conv(x.clone(), w.clone(), b.clone(), case)
        .sum()
        .backward();
    assert!(x.grad(&g).is_none());
    let reference = burn_conv(x, w.clone(), b.clone(), case).sum().backward();
    let (fw, bw) = (w.grad(&g).unwrap(), w.grad(&reference).unwrap());
    assert!(max_rel_diff(fw, bw) < 1e-5);
    assert!(max_rel_diff(b.grad(&g).unwrap(), b.grad(&reference).unwrap()) < 1e-5);
}

/// Views (a permuted input, a sliced weight) are read through their layout.
#[test]
fn views_match_burn_conv2d() {
    let dev = Device::flex();
    dev.seed(7);
    let case = (3, 4, 6, 5, 2, 3, 1, 1);
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([3, 6, 5, 4], normal, &dev).permute([0, 3, 1, 2]);
    let w = Tensor::<4>::random([4, 4, 3, 3], normal, &dev).slice([1..3, 0..4, 0..3, 0..3]);
    let b = Tensor::<1>::random([2], normal, &dev);
    let fused = fused_conv(x.clone(), w.clone(), b.clone(), case);
    assert!(max_rel_diff(fused, burn_conv(x, w, b, case)) < 1e-5);
}

/// Channel slices, read in place: an input that is channels of a larger tensor, and an output
/// concatenated with another tensor (as the U-Nets' skip connections do), so that the upstream
/// gradient reaching the convolution is a channel slice too, for every geometry.
#[test]
fn channel_slices_match_burn_autodiff() {
    let dev = Device::flex().autodiff();
    in_pools(&[1, 3], |threads| {
        for case in CASES {
            let (n, c, h, w, co, k, stride, pad) = case;
            let (ho, wo) = (
                (h + 2 * pad - k) / stride + 1,
                (w + 2 * pad - k) / stride + 1,
            );
            dev.seed(9);
            let normal = Distribution::Normal(0.0, 1.0);
            let big = Tensor::<4>::random([n, c + 3, h, w], normal, &dev).require_grad();
            let (_, wt, b) = operands(case, &dev);
            let (wt, b) = (wt.require_grad(), b.require_grad());
            let r = Tensor::<4>::random([n, 2 * co, ho, wo], normal, &dev);
            let grads_of = |conv: fn(Tensor<4>, Tensor<4>, Tensor<1>, Case) -> Tensor<4>| {
                let x = big.clone().slice([0..n, 2..c + 2, 0..h, 0..w]);
                let y = conv(x, wt.clone(), b.clone(), case);
                let joined = Tensor::cat(vec![y.clone().mul_scalar(0.5), y], 1);
                let g = (joined * r.clone()).sum().backward();
                let grad = |t: &Tensor<4>| t.grad(&g).expect("tracked");
                (grad(&big), grad(&wt), b.grad(&g).expect("tracked"))
            };
            let fused = grads_of(fused_conv);
            let burn = grads_of(burn_conv);
            let at = format!("{case:?}, {threads} threads");
            assert!(max_rel_diff(fused.0, burn.0) < 1e-5, "dx {at}");
            assert!(max_rel_diff(fused.1, burn.1) < 1e-5, "dw {at}");
            assert!(max_rel_diff(fused.2, burn.2) < 1e-5, "db {at}");
        }
    });
}

/// Half precision and unfitting geometries take burn's own convolution (same results).
#[test]
fn other_dtypes_take_burn_conv2d() {
    let dev = Device::flex();
    dev.seed(8);
    let case = CASES[1];
    let (x, w, b) = operands(case, &dev);
    let (x, w, b) = (x.cast(DType::F16), w.cast(DType::F16), b.cast(DType::F16));
    let fused = fused_conv(x.clone(), w.clone(), b.clone(), case);
    assert_eq!(fused.dtype(), DType::F16);
    let diff = max_rel_diff(
        fused.cast(DType::F32),
        burn_conv(x, w, b, case).cast(DType::F32),
    );
    assert!(diff < 1e-3, "{diff}");
}

/// `(n, c, h, w, co, k, padding, factor)` of a convolution after a nearest-neighbour upsampling.
type UpCase = (usize, usize, usize, usize, usize, usize, usize, usize);

const UP_CASES: [UpCase; 7] = [
    (3, 5, 4, 3, 6, 3, 1, 2), // the U-Nets' decoder: 3x3 after doubling, odd sizes
    (3, 6, 4, 3, 4, 3, 1, 2), // fewer outputs: the input gradient as the transposed conv
    (2, 3, 3, 5, 2, 1, 0, 3), // 1x1 after tripling: gathered, not the image itself
    (11, 2, 3, 3, 3, 3, 1, 2), // small images in groups, the last short
    (1, 4, 2, 2, 3, 3, 0, 2), // one image, no padding
    (3, 16, 5, 9, 17, 3, 1, 2), // Winograd's, after doubling to 10x18
    (3, 16, 3, 4, 18, 3, 1, 2), // the direct kernel after doubling to 6x8
];

/// burn's `interpolate` (nearest, to `factor` times the size) and then its `conv2d`.
fn burn_upsample_conv(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, case: UpCase) -> Tensor<4> {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    let (_, _, h, wd, _, _, p, f) = case;
    let options =
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([f * h, f * wd]);
    conv2d(
        interpolate(x, options),
        w,
        Some(b),
        ConvOptions::new([1, 1], [p, p], [1, 1], 1),
    )
}

fn fused_upsample_conv(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, case: UpCase) -> Tensor<4> {
    let (.., p, f) = case;
    fm_flex::upsample_conv2d(x, w, b, f, p)
}

/// The upsampling convolution against burn's interpolation and convolution: values and the
/// three gradients, with the input a channel slice of a larger tensor, one and three threads.
#[test]
fn upsampled_matches_burn_interpolate_and_conv2d() {
    let dev = Device::flex().autodiff();
    in_pools(&[1, 3], |threads| {
        for case in UP_CASES {
            let (n, c, h, w, co, k, p, f) = case;
            let out = |size: usize| f * size + 2 * p + 1 - k;
            dev.seed(10);
            let normal = Distribution::Normal(0.0, 1.0);
            let big = Tensor::<4>::random([n, c + 2, h, w], normal, &dev).require_grad();
            let (_, wt, b) = operands((n, c, h, w, co, k, 1, 0), &dev);
            let (wt, b) = (wt.require_grad(), b.require_grad());
            // Drawn once for both runs: the device's generator is the process's, and the other
            // tests, running in parallel, draw from it between two seedings.
            let r = Tensor::<4>::random([n, co, out(h), out(w)], normal, &dev);
            let run = |conv: fn(Tensor<4>, Tensor<4>, Tensor<1>, UpCase) -> Tensor<4>| {
                let x = big.clone().slice([0..n, 1..c + 1, 0..h, 0..w]);
                let y = conv(x, wt.clone(), b.clone(), case);
                let g = (y.clone() * r.clone()).sum().backward();
                let grad = |t: &Tensor<4>| t.grad(&g).expect("tracked");
                (y, grad(&big), grad(&wt), b.grad(&g).expect("tracked"))
            };
            let fused = run(fused_upsample_conv);
            let burn = run(burn_upsample_conv);
            let at = format!("{case:?}, {threads} threads");
            assert_eq!(fused.0.dims(), burn.0.dims(), "{at}");
            assert!(max_rel_diff(fused.0, burn.0) < 1e-5, "y {at}");
            assert!(max_rel_diff(fused.1, burn.1) < 1e-5, "dx {at}");
            assert!(max_rel_diff(fused.2, burn.2) < 1e-5, "dw {at}");
            assert!(max_rel_diff(fused.3, burn.3) < 1e-5, "db {at}");
        }
    });
}

/// Half precision takes burn's interpolation and convolution, gradients included.
#[test]
fn upsampled_half_precision_takes_burn_interpolate() {
    let dev = Device::flex().autodiff();
    dev.seed(12);
    let case = UP_CASES[0];
    let (n, c, h, w, co, k, _, _) = case;
    let (x, wt, b) = operands((n, c, h, w, co, k, 1, 0), &dev);
    let [x, wt] = [x, wt].map(|t| t.cast(DType::F16).require_grad());
    let b = b.cast(DType::F16).require_grad();
    let run = |conv: fn(Tensor<4>, Tensor<4>, Tensor<1>, UpCase) -> Tensor<4>| {
        let y = conv(x.clone(), wt.clone(), b.clone(), case);
        let g = y.clone().sum().backward();
        let f32 = |t: Tensor<4>| t.cast(DType::F32);
        (
            f32(y),
            f32(x.grad(&g).expect("tracked")),
            f32(wt.grad(&g).expect("tracked")),
        )
    };
    let (fused, burn) = (run(fused_upsample_conv), run(burn_upsample_conv));
    assert_eq!(fused.0.dims(), burn.0.dims());
    assert!(max_rel_diff(fused.0, burn.0) < 1e-3);
    assert!(max_rel_diff(fused.1, burn.1) < 1e-3);
    assert!(max_rel_diff(fused.2, burn.2) < 1e-3);
}
