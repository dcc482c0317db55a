//! Toy distributions: samples on the support, densities that integrate to one, entropies that
//! agree with a grid integral.

use fm_data::{DataSource, Points, Toy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn densities_integrate_to_one_and_match_entropy() {
    let (points, area) = Points::grid(6.0, 600);
    for toy in Toy::ALL {
        let logp = toy.log_density(&points);
        let mass: f64 = logp.iter().map(|l| l.exp() * area).sum();
        let entropy: f64 = -logp
            .iter()
            .filter(|l| l.is_finite())
            .map(|l| l.exp() * l * area)
            .sum::<f64>();
        eprintln!(
            "{}: mass {mass:.4}, grid entropy {entropy:.4}, entropy() {:.4}",
            toy.name(),
            toy.entropy()
        );
        // Piecewise-constant densities lose a little mass along the cell edges of the grid.
        assert!((mass - 1.0).abs() < 0.01, "{}: mass {mass}", toy.name());
        assert!(
            (entropy - toy.entropy()).abs() < 0.02,
            "{}: {entropy} vs {}",
            toy.name(),
            toy.entropy()
        );
    }
    assert!((Toy::Checkerboard.entropy() - 3.6765).abs() < 1e-4);
}

#[test]
fn samples_lie_on_the_support() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for toy in Toy::ALL {
        let points = toy.sample(20_000, &mut rng);
        assert_eq!(points.len(), 20_000);
        let logp = toy.log_density(&points);
        let off = logp.iter().filter(|l| !l.is_finite()).count();
        assert_eq!(off, 0, "{}: {off} samples off the support", toy.name());
    }
    // The checkerboard fills all 8 squares about equally.
    let points = Toy::Checkerboard.sample(80_000, &mut rng);
    let mut counts = std::collections::HashMap::new();
    for p in points.values.chunks(2) {
        let cell = ((p[0] * 0.45).floor() as i32, (p[1] * 0.45).floor() as i32);
        *counts.entry(cell).or_insert(0usize) += 1;
    }
    assert_eq!(counts.len(), 8);
    assert!(
        counts.values().all(|&c| (9_000..11_000).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn specs_parse_and_unknown_names_are_errors() {
    for toy in Toy::ALL {
        assert!(matches!(DataSource::parse(toy.name()), Ok(DataSource::Toy(t)) if t == toy));
    }
    let err = DataSource::parse("checkers").unwrap_err().to_string();
    assert!(
        err.contains("checkers") && err.contains("checkerboard"),
        "{err}"
    );
    let err = DataSource::parse("file:points.txt")
        .unwrap_err()
        .to_string();
    assert!(err.contains("points.txt") && err.contains(".csv"), "{err}");
    let err = DataSource::parse("file:/nonexistent/x.csv")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/x.csv") && err.contains("cannot read"),
        "{err}"
    );
}
