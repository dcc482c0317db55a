//! The fused group norm with SiLU against `silu(GroupNorm::forward)`, and without it against
//! `GroupNorm::forward`: values and the gradients of input, scale and shift, for channel counts
//! and group sizes of the U-Nets and odd ones, one and three threads, views, half precision,
//! and rank 3.
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

/// The fused norm, with SiLU when `act`.
fn fused<const D: usize>(gn: &GroupNorm, x: Tensor<D>, act: bool) -> Tensor<D> {
    let (gamma, beta) = (
        gn.gamma.as_ref().unwrap().val(),
        gn.beta.as_ref().unwrap().val(),
    );
    if act {
        fm_flex::group_norm_silu(x, gamma, beta, gn.num_groups, gn.epsilon)
    } else {
        fm_flex::group_norm(x, gamma, beta, gn.num_groups, gn.epsilon)
    }
}

/// burn's norm, then its SiLU when `act`.
fn reference<const D: usize>(gn: &GroupNorm, x: Tensor<D>, act: bool) -> Tensor<D> {
    let y = gn.forward(x);
    if act { silu(y) } else { y }
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
            for act in [true, false] {
                dev.seed(3);
                let gn = norm(c, groups, &dev);
                let x = input([n, c, h, w], &dev);
                let diff = max_rel_diff(fused(&gn, x.clone(), act), reference(&gn, x, act));
                assert!(
                    diff < 2e-5,
                    "{n}x{c}x{h}x{w}/{groups}, silu {act}, {threads} threads: {diff}"
                );
            }
        }
    });
}

/// Gradients of `sum(r * f(x))` for `x`, `gamma` and `beta` agree with burn's autodiff of the
/// composition.
#[test]
fn gradients_match_burn_autodiff() {
    let dev = Device::flex().autodiff();
    in_pools(|threads| {
        for ((n, c, h, w, groups), act) in CASES.into_iter().flat_map(|c| [(c, true), (c, false)]) {
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
            let (fx, fg, fb) = grads_of(fused(&gn, x.clone(), act));
            let (bx, bg, bb) = grads_of(reference(&gn, x.clone(), act));
            let at = format!("{n}x{c}x{h}x{w}/{groups}, silu {act}, {threads} threads");
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
    let x3 = Tensor::<3>::random([3, 6, 11], Distribution::Normal(-1.0, 3.0), &dev);
    for act in [true, false] {
        let (f, want) = (fused(&gn, x.clone(), act), reference(&gn, x.clone(), act));
        assert!(max_rel_diff(f, want) < 2e-5, "silu {act}");
        let (f, want) = (fused(&gn, x3.clone(), act), reference(&gn, x3.clone(), act));
        assert!(max_rel_diff(f, want) < 2e-5, "rank 3, silu {act}");
    }
}

/// Half precision takes the composition (same values and gradients to f16's precision), with
/// and without SiLU.
#[test]
fn other_dtypes_take_the_composition() {
    let dev = Device::flex().autodiff();
    dev.seed(8);
    let gn = norm(8, 4, &dev);
    let x = input([2, 8, 4, 4], &dev);
    let half = |t: Tensor<1>| t.cast(DType::F16).detach().require_grad();
    let (gamma, beta) = (
        gn.gamma.as_ref().unwrap().val(),
        gn.beta.as_ref().unwrap().val(),
    );
    let (gamma, beta) = (half(gamma), half(beta));
    let x16 = x.clone().cast(DType::F16).require_grad();
    for act in [true, false] {
        let want = reference(&gn, x.clone(), act);
        let got = if act {
            fm_flex::group_norm_silu(x16.clone(), gamma.clone(), beta.clone(), 4, 1e-5)
        } else {
            fm_flex::group_norm(x16.clone(), gamma.clone(), beta.clone(), 4, 1e-5)
        };
        assert_eq!(got.dtype(), DType::F16);
        assert!(
            max_rel_diff(got.clone().cast(DType::F32), want) < 1e-2,
            "silu {act}"
        );
        // The composition's backward pass against burn's autodiff of its own, both in f16.
        let mut gn16 = gn.clone();
        gn16.gamma = Some(burn::module::Param::from_tensor(gamma.clone()));
        gn16.beta = Some(burn::module::Param::from_tensor(beta.clone()));
        let grads = got.sum().backward();
        let burn = reference(&gn16, x16.clone(), act).sum().backward();
        let f32 = |t: Tensor<4>| t.cast(DType::F32);
        let (fx, bx) = (x16.grad(&grads).unwrap(), x16.grad(&burn).unwrap());
        assert!(max_rel_diff(f32(fx), f32(bx)) < 1e-2, "dx, silu {act}");
    }
}
