//! The fused group norm with SiLU against `silu(GroupNorm::forward)`: values and the gradients
//! of input, scale and shift, for channel counts and group sizes of the U-Nets and odd ones,
//! one and three threads, views, half precision, and rank 3.
use burn::module::Param;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Distribution, Tensor};

/// `(n, c, h, w, groups)`.
const CASES: [(usize, usize, usize, usize, usize); 5] = [
    (3, 32, 7, 7, 8),    // the mnist preset's 7x7 level: 8 groups of 4 channels
    (2, 6, 5, 3, 3),     // odd sizes, two channels a group
    (1, 4, 9, 9, 1),     // one group: layer norm over the image
    (4, 8, 2, 2, 8),     // one channel a group: instance norm
    (5, 64, 14, 14, 32), // a level's size, more tasks than threads
];

/// A norm of `c` channels in `groups` with random scale and shift (burn starts them at 1, 0).
fn norm(c: usize, groups: usize, dev: &Device) -> GroupNorm {
    let mut gn = GroupNormConfig::new(groups, c).init(dev);
    let normal = Distribution::Normal(0.0, 1.0);
    gn.gamma = Some(Param::from_tensor(
        Tensor::random([c], normal, dev).add_scalar(1.0),
    ));
    gn.beta = Some(Param::from_tensor(Tensor::random([c], normal, dev)));
    gn
}

fn fused<const D: usize>(gn: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    let (gamma, beta) = (gn.gamma.as_ref().unwrap(), gn.beta.as_ref().unwrap());
    fm_flex::group_norm_silu(x, gamma.val(), beta.val(), gn.num_groups, gn.epsilon)
}

fn max_rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// Inputs with a mean and spread far from 0 and 1, so the normalisation matters.
fn input(dims: [usize; 4], dev: &Device) -> Tensor<4> {
    Tensor::random(dims, Distribution::Normal(3.0, 2.5), dev)
}

fn in_pools(run: impl Fn(usize) + Sync) {
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| run(threads));
    }
}

#[test]
fn forward_matches_burn_group_norm_and_silu() {
    let dev = Device::flex();
    in_pools(|threads| {
        for (n, c, h, w, groups) in CASES {
            dev.seed(3);
            let gn = norm(c, groups, &dev);
            let x = input([n, c, h, w], &dev);
            let diff = max_rel_diff(fused(&gn, x.clone()), silu(gn.forward(x)));
            assert!(
                diff < 2e-5,
                "{n}x{c}x{h}x{w}/{groups}, {threads} threads: {diff}"
            );
        }
    });
}

/// Gradients of `sum(r * f(x))` for `x`, `gamma` and `beta` agree with burn's autodiff of the
/// composition.
#[test]
fn gradients_match_burn_autodiff() {
    let dev = Device::flex().autodiff();
    in_pools(|threads| {
        for (n, c, h, w, groups) in CASES {
            dev.seed(5);
            let gn = norm(c, groups, &dev);
            let x = input([n, c, h, w], &dev).require_grad();
            let r = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let grads_of = |y: Tensor<4>| {
                let g = (y * r.clone()).sum().backward();
                let gamma = gn.gamma.as_ref().unwrap().val().grad(&g).unwrap();
                let beta = gn.beta.as_ref().unwrap().val().grad(&g).unwrap();
                (x.grad(&g).unwrap(), gamma, beta)
            };
            let (fx, fg, fb) = grads_of(fused(&gn, x.clone()));
            let (bx, bg, bb) = grads_of(silu(gn.forward(x.clone())));
            let at = format!("{n}x{c}x{h}x{w}/{groups}, {threads} threads");
            assert!(max_rel_diff(fx, bx) < 2e-5, "dx {at}");
            assert!(max_rel_diff(fg, bg) < 2e-5, "dgamma {at}");
            assert!(max_rel_diff(fb, bb) < 2e-5, "dbeta {at}");
        }
    });
}

/// A permuted view is read through its layout; rank 3 (`[n, c, s]`) normalises the same way.
#[test]
fn views_and_other_ranks_match() {
    let dev = Device::flex();
    dev.seed(7);
    let gn = norm(6, 3, &dev);
    let x = input([2, 5, 4, 6], &dev).permute([0, 3, 1, 2]);
    assert!(max_rel_diff(fused(&gn, x.clone()), silu(gn.forward(x))) < 2e-5);
    let x3 = Tensor::<3>::random([3, 6, 11], Distribution::Normal(-1.0, 3.0), &dev);
    assert!(max_rel_diff(fused(&gn, x3.clone()), silu(gn.forward(x3))) < 2e-5);
}

/// Half precision takes the composition (same values to f16's precision).
#[test]
fn other_dtypes_take_the_composition() {
    let dev = Device::flex();
    dev.seed(8);
    let gn = norm(8, 4, &dev);
    let x = input([2, 8, 4, 4], &dev);
    let want = silu(gn.forward(x.clone()));
    let half = |t: Tensor<1>| t.cast(DType::F16);
    let (gamma, beta) = (gn.gamma.as_ref().unwrap(), gn.beta.as_ref().unwrap());
    let got = fm_flex::group_norm_silu(
        x.cast(DType::F16),
        half(gamma.val()),
        half(beta.val()),
        4,
        1e-5,
    );
    assert_eq!(got.dtype(), DType::F16);
    assert!(max_rel_diff(got.cast(DType::F32), want) < 1e-2);
}
