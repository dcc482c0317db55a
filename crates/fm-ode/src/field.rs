//! The right-hand side of an ODE.

/// A vector field `dy/dt = f(t, y)` over a batched state.
///
/// Time is one scalar for the whole batch: every sample is integrated on the same time grid, so
/// the solver can take one step for all of them. A network that wants per-sample time
/// (`t: [B]`) broadcasts it inside `eval`.
pub trait VectorField<S> {
    /// `f(t, y)`.
    fn eval(&self, t: f64, y: &S) -> S;
}

impl<S, F: Fn(f64, &S) -> S> VectorField<S> for F {
    fn eval(&self, t: f64, y: &S) -> S {
        self(t, y)
    }
}
