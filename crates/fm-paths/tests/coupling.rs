//! Couplings: the auction solver against brute force, OT on the line against sorting, the
//! Sinkhorn plan's marginals and its limit, class-aware pairing, and determinism.

use fm_paths::Coupling;
use fm_paths::coupling::{auction, sinkhorn_plan, squared_distances};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn total(cost: &[f64], n: usize, cols: &[usize]) -> f64 {
    cols.iter().enumerate().map(|(i, &j)| cost[i * n + j]).sum()
}

/// The least total cost over all permutations (n <= 7).
fn brute_force(cost: &[f64], n: usize) -> f64 {
    fn go(cost: &[f64], n: usize, row: usize, used: &mut Vec<bool>) -> f64 {
        if row == n {
            return 0.0;
        }
        let mut best = f64::INFINITY;
        for j in 0..n {
            if !used[j] {
                used[j] = true;
                best = best.min(cost[row * n + j] + go(cost, n, row + 1, used));
                used[j] = false;
            }
        }
        best
    }
    go(cost, n, 0, &mut vec![false; n])
}

fn is_permutation(cols: &[usize]) -> bool {
    let mut seen = vec![false; cols.len()];
    cols.iter()
        .all(|&j| j < cols.len() && !std::mem::replace(&mut seen[j], true))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn assignment_is_optimal(n in 1usize..=7, seed in any::<u64>(), integer in any::<bool>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Small integer costs make many ties, the hard case for augmenting paths.
        let cost: Vec<f64> = (0..n * n)
            .map(|_| if integer { rng.random_range(0..4) as f64 } else { rng.random::<f64>() * 10.0 })
            .collect();
        let cols = auction(&cost, n, 1e-9);
        prop_assert!(is_permutation(&cols));
        let (got, best) = (total(&cost, n, &cols), brute_force(&cost, n));
        prop_assert!(got - best < 1e-9 && got >= best - 1e-12, "{} vs {}", got, best);
    }
}

#[test]
fn exact_ot_on_the_line_matches_sorted_order() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 300;
    let x0: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect();
    let x1: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 6.0).collect();
    let partner = Coupling::ExactOt.pair(&x0, &x1, 1, None, &mut rng);
    assert!(is_permutation(&partner));
    // In one dimension the optimal plan for a convex cost is monotone: the k-th smallest data
    // point takes the k-th smallest source point. The auction reaches its cost (ties aside).
    let sorted = |x: &[f32]| {
        let mut v = x.to_vec();
        v.sort_by(f32::total_cmp);
        v
    };
    let monotone: f64 = sorted(&x0)
        .iter()
        .zip(sorted(&x1))
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let got: f64 = partner
        .iter()
        .enumerate()
        .map(|(j, &i)| ((x1[j] - x0[i]) as f64).powi(2))
        .sum();
    assert!(
        (got - monotone).abs() < 1e-6 * monotone,
        "{got} vs {monotone}"
    );
}

#[test]
fn sinkhorn_plan_has_uniform_marginals_and_tends_to_the_exact_plan() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = 64;
    let pts = |rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..2 * n)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect()
    };
    let (x0, x1) = (pts(&mut rng), pts(&mut rng));
    let cost = squared_distances(&x1, &x0, 2);
    let exact = total(&cost, n, &auction(&cost, n, 1e-12)) / n as f64;
    let mut previous = f64::INFINITY;
    for reg in [0.5, 0.05, 0.005] {
        let plan = sinkhorn_plan(&cost, n, reg);
        for i in 0..n {
            let row: f64 = plan[i * n..(i + 1) * n].iter().sum();
            let col: f64 = (0..n).map(|r| plan[r * n + i]).sum();
            assert!((row * n as f64 - 1.0).abs() < 1e-5, "row {i}: {row}");
            assert!((col * n as f64 - 1.0).abs() < 1e-4, "column {i}: {col}");
        }
        let transport: f64 = plan.iter().zip(&cost).map(|(p, c)| p * c).sum();
        eprintln!("reg {reg}: plan cost {transport:.5}, exact {exact:.5}");
        assert!(transport >= exact - 1e-9 && transport < previous);
        previous = transport;
    }
    assert!((previous - exact) / exact < 0.25, "{previous} vs {exact}");
}

#[test]
fn ot_lowers_the_pairing_cost_and_classes_stay_apart() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 256;
    let x0: Vec<f32> = (0..2 * n)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let x1: Vec<f32> = (0..2 * n)
        .map(|_| rng.random::<f32>() * 2.0 + 1.0)
        .collect();
    let cost_of = |partner: &[usize]| -> f64 {
        partner
            .iter()
            .enumerate()
            .map(|(j, &i)| squared_distances(&x1[2 * j..2 * j + 2], &x0[2 * i..2 * i + 2], 2)[0])
            .sum()
    };
    let independent = Coupling::Independent.pair(&x0, &x1, 2, None, &mut rng);
    let ot = Coupling::ExactOt.pair(&x0, &x1, 2, None, &mut rng);
    let sinkhorn = Coupling::Sinkhorn { reg: 0.01 }.pair(&x0, &x1, 2, None, &mut rng);
    let (ci, co, cs) = (cost_of(&independent), cost_of(&ot), cost_of(&sinkhorn));
    eprintln!("pairing cost: independent {ci:.1}, sinkhorn {cs:.1}, exact OT {co:.1}");
    assert!(co < cs && cs < ci);

    let labels: Vec<usize> = (0..n).map(|j| (j * 7) % 3).collect();
    let partner = Coupling::ExactOt.pair(&x0, &x1, 2, Some(&labels), &mut rng);
    assert!(is_permutation(&partner));
    // Class k takes one contiguous block of source rows.
    for class in 0..3 {
        let mut mine: Vec<usize> = (0..n)
            .filter(|&j| labels[j] == class)
            .map(|j| partner[j])
            .collect();
        mine.sort();
        assert!(mine.windows(2).all(|w| w[1] == w[0] + 1), "class {class}");
    }
}

#[test]
fn couplings_are_deterministic_and_parse() {
    let draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x: Vec<f32> = (0..200).map(|_| rng.random()).collect();
        Coupling::Sinkhorn { reg: 0.1 }.pair(&x[..100], &x[100..], 2, None, &mut rng)
    };
    assert_eq!(draw(4), draw(4));
    for (text, coupling) in [
        ("independent", Coupling::Independent),
        ("ot", Coupling::ExactOt),
        ("sinkhorn:0.2", Coupling::Sinkhorn { reg: 0.2 }),
    ] {
        assert_eq!(text.parse::<Coupling>(), Ok(coupling));
        assert_eq!(coupling.to_string(), text);
    }
    assert_eq!("sinkhorn".parse(), Ok(Coupling::Sinkhorn { reg: 0.05 }));
    for bad in ["emd", "sinkhorn:0", "sinkhorn:x", "ot:1"] {
        assert!(
            bad.parse::<Coupling>()
                .unwrap_err()
                .to_string()
                .contains("expected independent"),
            "{bad}"
        );
    }
}

/// All costs zero (identical points, or the same point paired with itself): every permutation
/// is optimal and the auction ends at once, at any tolerance, zero included.
#[test]
fn zero_costs_end_the_auction() {
    for n in [1, 2, 5, 64] {
        for tolerance in [0.0, 1e-7] {
            let cols = auction(&vec![0.0; n * n], n, tolerance);
            assert!(is_permutation(&cols), "{cols:?}");
        }
    }
    // Equal non-zero costs still terminate through the price increments.
    let cols = auction(&[3.0; 16], 4, 0.0);
    assert!(is_permutation(&cols), "{cols:?}");
}
