//! Which intermediate states a solve returns.

/// States to save besides the final one.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SaveAt {
    /// Only the final state.
    #[default]
    Final,
    /// The states at these times, which must lie between `t0` and `t1`. Times between step
    /// ends are interpolated (dopri5's own quartic dense output, cubic Hermite for the other
    /// methods), so saving never changes the steps, the final state or the NFE.
    Times(Vec<f64>),
    /// The state after every accepted step (and the initial state).
    Steps,
}
