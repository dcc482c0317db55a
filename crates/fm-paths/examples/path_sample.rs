//! Samples every built-in path at a few times, and converts an exact prediction of each kind
//! into the others: the round trips agree to float rounding.
//!
//! `cargo run -p fm-paths --example path_sample`

use burn::tensor::{Device, Distribution, Tensor};
use fm_paths::{AffinePath, AnyScheduler, Parametrization, Scheduler};

fn main() {
    let dev = Device::flex();
    let kinds = [
        Parametrization::Velocity,
        Parametrization::X1,
        Parametrization::Epsilon,
        Parametrization::Score,
    ];
    for name in ["ot", "vp", "ve", "cosine", "linear-vp", "poly:2"] {
        let path = AffinePath::new(name.parse::<AnyScheduler>().expect("a built-in path"));
        let (t_min, t_max) = path.scheduler.training_range();
        let n = 512;
        let x1 = Tensor::<2>::random([n, 3], Distribution::Uniform(-1.0, 1.0), &dev);
        let x0 = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 1.0), &dev);
        let t = Tensor::<1>::random(
            [n],
            Distribution::Uniform(t_min.max(0.05), t_max.min(0.95)),
            &dev,
        );
        let s = path.sample(x0.clone(), x1.clone(), t.clone());
        // Each kind's exact value at (x_t, t), from the pair (x0, x1) that made x_t.
        let exact = |kind: Parametrization| {
            path.convert(
                Parametrization::X1,
                kind,
                x1.clone(),
                s.x_t.clone(),
                t.clone(),
            )
        };
        let mut worst = 0.0f32;
        for from in kinds {
            for to in kinds {
                let got = path.convert(from, to, exact(from), s.x_t.clone(), t.clone());
                let want = exact(to);
                let scale = want.clone().abs().max().into_scalar::<f32>().max(1.0);
                let err = (got - want).abs().max().into_scalar::<f32>() / scale;
                worst = worst.max(err);
            }
        }
        let target_err = (exact(Parametrization::Velocity) - s.target)
            .abs()
            .max()
            .into_scalar::<f32>();
        let c = path.scheduler.coefficients(0.5_f64);
        println!(
            "{:<18} alpha(0.5) = {:.4}  sigma(0.5) = {:.4}  conversions: worst relative error {worst:.1e}, target {target_err:.1e}",
            path.scheduler.to_string(),
            c.alpha,
            c.sigma
        );
        assert!(worst < 1e-3, "{name}: conversions disagree by {worst}");
    }
}
