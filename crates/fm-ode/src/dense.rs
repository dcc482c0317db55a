//! Dense output: the solution between two step ends, so that saved times never change the steps
//! (as diffrax separates `SaveAt` from the step-size controller).
//!
//! Over one step from `(t0, y0)` to `(t0 + h, y1)` the state is a polynomial in
//! `x = (t - t0) / h`, fitted to what the step computed anyway:
//! - dopri5: Shampine's quartic (torchdiffeq's `_interp_fit_dopri5`) through `y0`, `y1`, the
//!   fourth-order midpoint value `y0 + h sum_i c_i^mid k_i` and the slopes `f0`, `f1`;
//! - other methods: the cubic Hermite through `y0`, `y1`, `f0 = f(t0, y0)`, `f1 = f(t1, y1)`;
//!   on the last step, whose `f1` no later step computes, the quadratic through `y0`, `f0`, `y1`
//!   (so interpolation never costs an evaluation).

use crate::state::OdeState;

/// The solution over one step, as the coefficients of `x^0, x^1, ...`.
pub(crate) struct Dense<S> {
    t0: f64,
    h: f64,
    coefficients: Vec<S>,
}

/// The ends and slopes of one step from `t0` to `t1`.
pub(crate) struct StepEnds<'a, S> {
    pub t0: f64,
    pub t1: f64,
    pub y0: &'a S,
    pub y1: &'a S,
    /// `f(t0, y0)`.
    pub f0: &'a S,
    /// `f(t1, y1)`, when it is known.
    pub f1: Option<&'a S>,
}

impl<S: OdeState> Dense<S> {
    /// The cubic Hermite interpolant (or the quadratic one without `f1`):
    /// `p(x) = y0 + h f0 x + (3 dy - 2 h f0 - h f1) x^2 + (h f0 + h f1 - 2 dy) x^3`, `dy = y1 - y0`.
    pub fn hermite(e: &StepEnds<'_, S>) -> Self {
        let h = e.t1 - e.t0;
        let coefficients = match e.f1 {
            Some(f1) => vec![
                e.y0.clone(),
                S::linear_combination(&[(h, e.f0)]),
                S::linear_combination(&[(-3.0, e.y0), (3.0, e.y1), (-2.0 * h, e.f0), (-h, f1)]),
                S::linear_combination(&[(2.0, e.y0), (-2.0, e.y1), (h, e.f0), (h, f1)]),
            ],
            None => vec![
                e.y0.clone(),
                S::linear_combination(&[(h, e.f0)]),
                S::linear_combination(&[(-1.0, e.y0), (1.0, e.y1), (-h, e.f0)]),
            ],
        };
        Self {
            t0: e.t0,
            h,
            coefficients,
        }
    }

    /// Shampine's quartic for Dormand-Prince 5(4), from the step's seven stages `ks` (the last
    /// is `f1`) and the midpoint weights `mid`.
    pub fn quartic(e: &StepEnds<'_, S>, ks: &[S], mid: &[f64]) -> Self {
        let h = e.t1 - e.t0;
        let (f0, f1) = (&ks[0], &ks[ks.len() - 1]);
        let terms: Vec<(f64, &S)> = std::iter::once((1.0, e.y0))
            .chain(mid.iter().zip(ks).map(|(&c, k)| (h * c, k)))
            .collect();
        let ym = S::linear_combination(&terms);
        let (y0, y1) = (e.y0, e.y1);
        let coefficients = vec![
            y0.clone(),
            S::linear_combination(&[(h, f0)]),
            S::linear_combination(&[
                (-4.0 * h, f0),
                (h, f1),
                (-11.0, y0),
                (-5.0, y1),
                (16.0, &ym),
            ]),
            S::linear_combination(&[
                (5.0 * h, f0),
                (-3.0 * h, f1),
                (18.0, y0),
                (14.0, y1),
                (-32.0, &ym),
            ]),
            S::linear_combination(&[
                (-2.0 * h, f0),
                (2.0 * h, f1),
                (-8.0, y0),
                (-8.0, y1),
                (16.0, &ym),
            ]),
        ];
        Self {
            t0: e.t0,
            h,
            coefficients,
        }
    }

    /// The interpolated state at `t` (within the step).
    pub fn at(&self, t: f64) -> S {
        let x = (t - self.t0) / self.h;
        let terms: Vec<(f64, &S)> = self
            .coefficients
            .iter()
            .scan(1.0, |power, c| {
                let term = (*power, c);
                *power *= x;
                Some(term)
            })
            .collect();
        S::linear_combination(&terms)
    }
}
