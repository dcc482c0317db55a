//! What a solver needs of a state: linear combinations and a scaled error norm.
//!
//! Implemented for any `Tensor<D>`, for `f64` (a scalar ODE) and for pairs of states, so the likelihood solve can carry
//! `(x, log-density change)` with different ranks, like a diffrax PyTree.

use burn::tensor::Tensor;

/// A state the solvers can integrate.
pub trait OdeState: Clone {
    /// `sum_i c_i s_i` over a non-empty list of terms.
    fn linear_combination(terms: &[(f64, &Self)]) -> Self;

    /// The root-mean-square of `self / (atol + rtol max(|a|, |b|))` over all elements; for a
    /// composite state, the largest of its parts' norms (torchdiffeq's mixed norm).
    fn scaled_rms(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64;

    /// The largest over the samples (the first axis) of each sample's root-mean-square of the
    /// same ratio ([`ErrorNorm::PerSample`](crate::ErrorNorm::PerSample)); for a composite
    /// state, the largest of its parts'. A state without a batch axis keeps the default, its
    /// [`scaled_rms`](Self::scaled_rms).
    fn scaled_sample_max(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64 {
        self.scaled_rms(a, b, rtol, atol)
    }

    /// Whether every element is finite.
    fn is_finite(&self) -> bool;
}

impl<const D: usize> OdeState for Tensor<D> {
    fn linear_combination(terms: &[(f64, &Self)]) -> Self {
        let scaled = |(c, s): &(f64, &Self)| {
            if *c == 1.0 {
                (*s).clone()
            } else {
                (*s).clone().mul_scalar(*c)
            }
        };
        let (first, rest) = terms
            .split_first()
            .expect("a linear combination of no terms");
        rest.iter()
            .filter(|(c, _)| *c != 0.0)
            .fold(scaled(first), |acc, term| acc + scaled(term))
    }

    fn scaled_rms(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64 {
        let ratio = scaled_ratio(self, a, b, rtol, atol);
        ratio.square().mean().sqrt().into_scalar::<f64>()
    }

    fn scaled_sample_max(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64 {
        let ratio = scaled_ratio(self, a, b, rtol, atol);
        let samples = ratio.dims()[0];
        let per_sample = ratio.square().reshape([samples as i64, -1]).mean_dim(1);
        // A max need not propagate NaN: adding 0 times the sum makes any non-finite sample's
        // norm NaN, which rejects the step as the RMS norm does. One read-back.
        let guard = per_sample.clone().sum().mul_scalar(0.0);
        (per_sample.max() + guard).sqrt().into_scalar::<f64>()
    }

    fn is_finite(&self) -> bool {
        Tensor::is_finite(self.clone()).all().into_scalar::<bool>()
    }
}

/// `e / (atol + rtol max(|a|, |b|))`, element-wise.
fn scaled_ratio<const D: usize>(
    e: &Tensor<D>,
    a: &Tensor<D>,
    b: &Tensor<D>,
    rtol: f64,
    atol: f64,
) -> Tensor<D> {
    let scale = a
        .clone()
        .abs()
        .max_pair(b.clone().abs())
        .mul_scalar(rtol)
        .add_scalar(atol);
    e.clone() / scale
}

/// A scalar ODE, for experiments and tests without tensors.
impl OdeState for f64 {
    fn linear_combination(terms: &[(f64, &Self)]) -> Self {
        terms.iter().map(|(c, s)| c * **s).sum()
    }

    fn scaled_rms(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64 {
        (self / (atol + rtol * a.abs().max(b.abs()))).abs()
    }

    fn is_finite(&self) -> bool {
        f64::is_finite(*self)
    }
}

impl<A: OdeState, B: OdeState> OdeState for (A, B) {
    fn linear_combination(terms: &[(f64, &Self)]) -> Self {
        let first: Vec<(f64, &A)> = terms.iter().map(|(c, s)| (*c, &s.0)).collect();
        let second: Vec<(f64, &B)> = terms.iter().map(|(c, s)| (*c, &s.1)).collect();
        (
            A::linear_combination(&first),
            B::linear_combination(&second),
        )
    }

    fn scaled_rms(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64 {
        let first = self.0.scaled_rms(&a.0, &b.0, rtol, atol);
        nan_max(first, self.1.scaled_rms(&a.1, &b.1, rtol, atol))
    }

    fn scaled_sample_max(&self, a: &Self, b: &Self, rtol: f64, atol: f64) -> f64 {
        let first = self.0.scaled_sample_max(&a.0, &b.0, rtol, atol);
        nan_max(first, self.1.scaled_sample_max(&a.1, &b.1, rtol, atol))
    }

    fn is_finite(&self) -> bool {
        self.0.is_finite() && self.1.is_finite()
    }
}

/// The larger of two norms, NaN when either is: a non-finite part must reject the step.
fn nan_max(first: f64, second: f64) -> f64 {
    if first.is_nan() || second.is_nan() {
        f64::NAN
    } else {
        first.max(second)
    }
}
