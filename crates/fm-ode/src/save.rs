//! Which intermediate states a solve returns.

/// States to save besides the final one.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SaveAt {
    /// Only the final state.
    #[default]
    Final,
    /// The states at these times, which must lie between `t0` and `t1`. Solvers step exactly
    /// onto each of them (no interpolation), so they may add steps.
    Times(Vec<f64>),
    /// The state after every accepted step (and the initial state).
    Steps,
}
