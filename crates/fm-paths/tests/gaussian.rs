//! The Gaussian closed forms against the OT formula and against Monte Carlo.

use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use fm_paths::scheduler::{CondOt, Vp};
use fm_paths::{AffinePath, AnyScheduler, GaussianData};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_to_vec_as::<f64>().unwrap()
}

/// For the OT path, `u_t(x) = (m + k_t (x - t m) - (1 - sigma_min) x) / sigma_t` with
/// `sigma_t = 1 - (1 - sigma_min) t`, `k_t = t s^2 / (sigma_t^2 + t^2 s^2)`.
#[test]
fn ot_marginal_velocity_matches_the_written_formula() {
    let dev = Device::flex();
    let (m, s, sigma_min) = ([1.5, -0.5], 0.7, 0.01);
    let data = GaussianData::new(m.to_vec(), s);
    let path = AffinePath::new(CondOt::new(sigma_min));
    let xs = [0.3, -1.2, 2.0, 0.4, -0.7, 0.0];
    let x = Tensor::<2>::from_data(TensorData::new(xs.to_vec(), [3, 2]), (&dev, DType::F64));
    for t in [0.0, 0.2, 0.5, 0.9, 1.0] {
        let u = values(data.marginal_velocity(&path, x.clone(), t));
        let sigma_t = 1.0 - (1.0 - sigma_min) * t;
        let k = t * s * s / (sigma_t * sigma_t + t * t * s * s);
        for (i, &xi) in xs.iter().enumerate() {
            let mi = m[i % 2];
            let want = (mi + k * (xi - t * mi) - (1.0 - sigma_min) * xi) / sigma_t;
            assert!(
                (u[i] - want).abs() < 1e-12,
                "t={t} i={i}: {} vs {want}",
                u[i]
            );
        }
    }
}

/// Monte Carlo check of the marginal velocity: the conditional target averaged over pairs that
/// land near a point equals `u_t` there in expectation; cheaper and sharper, regress the target on
/// x_t linearly (the marginal field is affine in x for Gaussian data), and compare coefficients.
#[test]
fn marginal_velocity_is_conditional_expectation_of_target() {
    let dev = Device::flex();
    dev.seed(7);
    let n = 200_000;
    let data = GaussianData::new(vec![0.8], 0.5);
    let path = AffinePath::new(Vp::default());
    let t_val = 0.6;
    let x0 = Tensor::<2>::random([n, 1], Distribution::Normal(0.0, 1.0), (&dev, DType::F64));
    let x1 = Tensor::<2>::random([n, 1], Distribution::Normal(0.8, 0.5), (&dev, DType::F64));
    let t = Tensor::<1>::full([n], t_val, (&dev, DType::F64));
    let sample = path.sample(x0, x1, t);
    let (xs, ys) = (values(sample.x_t.clone()), values(sample.target));
    // Least squares y = a x + b.
    let nf = n as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / nf, ys.iter().sum::<f64>() / nf);
    let cov: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - mx) * (y - my))
        .sum::<f64>()
        / nf;
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>() / nf;
    let (a, b) = (cov / var, my - cov / var * mx);
    // Closed form evaluated at two points gives its slope and intercept.
    let probe = Tensor::<2>::from_data(TensorData::new(vec![0.0, 1.0], [2, 1]), (&dev, DType::F64));
    let u = values(data.marginal_velocity(&path, probe, t_val));
    let (a_true, b_true) = (u[1] - u[0], u[0]);
    assert!((a - a_true).abs() < 0.02, "slope {a} vs {a_true}");
    assert!((b - b_true).abs() < 0.02, "intercept {b} vs {b_true}");
    // And the marginal moments are those of the samples.
    let (scale, v) = data.marginal_moments(&path, t_val);
    let v = v[0];
    assert!((mx - scale * 0.8).abs() < 0.01 && (var - v).abs() < 0.01 * v);
}

/// The log-density integrates to one on a grid and the entropy is its negative expectation.
#[test]
fn log_density_normalises() {
    let dev = Device::flex();
    let data = GaussianData::new(vec![0.3], 0.6);
    let path = AffinePath::new(CondOt::new(0.0));
    let (lo, hi, n) = (-6.0, 6.0, 4001);
    let h = (hi - lo) / (n - 1) as f64;
    let grid: Vec<f64> = (0..n).map(|i| lo + h * i as f64).collect();
    let x = Tensor::<2>::from_data(TensorData::new(grid, [n, 1]), (&dev, DType::F64));
    let logp = values(data.log_density(&path, x, 1.0));
    let mass: f64 = logp.iter().map(|l| l.exp() * h).sum();
    let entropy: f64 = -logp.iter().map(|l| l.exp() * l * h).sum::<f64>();
    assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
    assert!((entropy - data.entropy()).abs() < 1e-6, "entropy {entropy}");
}

/// `u'_r(x)` of the schedule transform (module docs of `ScheduleTransform`), applied to the
/// exact field of `trained`.
fn transformed_velocity(
    data: &GaussianData,
    trained: &AnyScheduler,
    target: &AnyScheduler,
    x: &Tensor<2>,
    r: f64,
) -> Tensor<2> {
    let k = fm_paths::ScheduleTransform {
        trained: trained.clone(),
        target: target.clone(),
    }
    .at(r);
    let inner = data.marginal_velocity(
        &AffinePath::new(trained.clone()),
        x.clone().div_scalar(k.scale),
        k.t,
    );
    x.clone().mul_scalar(k.d_scale / k.scale) + inner.mul_scalar(k.scale * k.d_time)
}

/// The exact marginal velocity of one scheduler, schedule-transformed, is the exact marginal
/// velocity of the other: the transform only re-times and re-scales the same path. Both ends
/// included: every solve starts at r = 0, where the ratios of both paths are 0 and the
/// re-timing's derivative must still be `rho_dot'(0) / rho_dot(0)`.
#[test]
fn schedule_transform_maps_exact_fields_onto_each_other() {
    use fm_paths::scheduler::{Cosine, LinearVp, Polynomial};
    let dev = Device::flex();
    let data = GaussianData::new(vec![1.5, -0.5], 0.4);
    let xs = vec![0.3, -1.2, 2.0, 0.7, -0.4, 0.1];
    let x = Tensor::<2>::from_data(TensorData::new(xs, [3, 2]), (&dev, DType::F64));
    let ot = AnyScheduler::CondOt(CondOt::new(1e-3));
    for target in [
        AnyScheduler::Cosine(Cosine),
        AnyScheduler::LinearVp(LinearVp),
        AnyScheduler::Polynomial(Polynomial { exponent: 2.0 }),
        AnyScheduler::CondOt(CondOt::new(0.0)),
        ot.clone(),
    ] {
        // At r = 1 linear VP's sigma' = -r / sqrt(1 - r^2) diverges while sigma' sigma -> -1: its
        // closed form is 0 * inf there, and the OT path, held at its end (sigma_min), has no such
        // term. Every other target ends with sigma' sigma = 0 and is exact at r = 1 too.
        let last = if matches!(target, AnyScheduler::LinearVp(_)) {
            1.0 - 1e-6
        } else {
            1.0
        };
        for r in [0.0, 1e-6, 0.1, 0.4, 0.7, 0.9, last] {
            let got = transformed_velocity(&data, &ot, &target, &x, r);
            let want = data.marginal_velocity(&AffinePath::new(target.clone()), x.clone(), r);
            let err = (got - want.clone()).abs().max().into_scalar::<f64>();
            let size = want.abs().max().into_scalar::<f64>();
            assert!(
                err < 1e-4 * size.max(1.0),
                "{target:?} at r = {r}: error {err}"
            );
        }
        // Past the OT path's last ratio (sigma_min) the trained time holds at 1 and the scale
        // stays near 1 rather than collapsing with the target's sigma.
        let end = fm_paths::ScheduleTransform {
            trained: ot.clone(),
            target: target.clone(),
        }
        .at(1.0);
        assert!(end.t == 1.0 && (end.scale - 1.0).abs() < 1e-3, "{end:?}");
    }
}

/// At r = 0 the closed forms are short: an OT-trained field re-timed to cosine moves every
/// point with `(pi / 2) m`, re-timed to linear VP with `m` (the source's own velocity is 0).
#[test]
fn schedule_transform_starts_with_the_target_velocity() {
    use fm_paths::scheduler::{Cosine, LinearVp};
    let dev = Device::flex();
    let m = [1.5, -0.5];
    let data = GaussianData::new(m.to_vec(), 0.4);
    let x = Tensor::<2>::from_data(TensorData::new(vec![0.3, -1.2], [1, 2]), (&dev, DType::F64));
    let ot = AnyScheduler::CondOt(CondOt::new(1e-3));
    for (target, speed) in [
        (AnyScheduler::Cosine(Cosine), std::f64::consts::FRAC_PI_2),
        (AnyScheduler::LinearVp(LinearVp), 1.0),
    ] {
        let got = values(transformed_velocity(&data, &ot, &target, &x, 0.0));
        for (g, mi) in got.iter().zip(m) {
            assert!((g - speed * mi).abs() < 1e-12, "{target:?}: {got:?}");
        }
    }
}
