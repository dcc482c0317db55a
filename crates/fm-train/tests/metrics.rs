//! The sample distances against the PyTorch reference's self-test vector
//! (`fm2d_bench.py --metric-selftest`: ED^2 = 0.06395499221377943, SW1 = 0.24987576817640697).

use fm_train::data::Points;
use fm_train::eval::{energy_distance, sliced_w1};

fn test_vectors() -> (Points, Points) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let i = i as f64;
        x.extend([
            (2.0 * (0.7 * i).sin()) as f32,
            (2.0 * (1.3 * i).cos()) as f32,
        ]);
        y.extend([
            (1.5 * (0.3 * i + 1.0).sin() + 0.2) as f32,
            (2.5 * (0.11 * i).cos()) as f32,
        ]);
    }
    (Points { values: x, dim: 2 }, Points { values: y, dim: 2 })
}

#[test]
fn distances_match_the_reference_implementation() {
    let (x, y) = test_vectors();
    // Inputs are rounded to f32 here, so agreement is to about 1e-6.
    assert!((energy_distance(&x, &y) - 0.06395499221377943).abs() < 1e-5);
    assert!((sliced_w1(&x, &y, 500) - 0.24987576817640697).abs() < 1e-5);
    assert!(energy_distance(&x, &x).abs() < 1e-9);
    assert!(sliced_w1(&x, &x, 500).abs() < 1e-9);
}

#[test]
fn straightness_is_zero_for_straight_paths_and_measures_bends() {
    use fm_train::eval::straightness;
    let times = [0.0, 0.25, 0.5, 0.75, 1.0];
    let at = |f: &dyn Fn(f64) -> [f32; 2]| -> Vec<Points> {
        times
            .iter()
            .map(|&t| Points {
                values: f(t).to_vec(),
                dim: 2,
            })
            .collect()
    };
    let straight = at(&|t| [2.0 * t as f32, -(t as f32)]);
    assert!(straightness(&straight, &times) < 1e-12);
    // A path bulging by 4 t (1 - t) in y: squared deviations 0, 0.5625, 1, 0.5625, 0; mean 0.425.
    let bent = at(&|t| [t as f32, (4.0 * t * (1.0 - t)) as f32]);
    assert!((straightness(&bent, &times) - 0.425).abs() < 1e-6);
}
