//! How the solver chooses its steps.

/// Step-size control, orthogonal to the [`Method`](crate::Method).
#[derive(Debug, Clone, PartialEq)]
pub enum StepControl {
    /// `n` equal steps from `t0` to `t1`.
    FixedSteps(usize),
    /// Steps of size `|h|` (in the direction of integration); the last one is shortened to end
    /// at `t1`.
    FixedSize(f64),
    /// Step exactly through these times, which must run monotonically from `t0` to `t1`.
    Grid(Vec<f64>),
    /// Error-controlled steps (needs a method with an error estimate).
    Adaptive(Adaptive),
}

/// Settings of the adaptive step-size controller.
///
/// A step is accepted when the RMS norm of `err / (atol + rtol max(|y_n|, |y_{n+1}|))` is at most
/// 1; the next step is `h * clamp(safety * norm^(-1/order), min_factor, max_factor)`, and an
/// accepted step never shrinks the next one (as in torchdiffeq, so NFE figures compare).
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptive {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Safety factor applied to the optimal step size. Default 0.9.
    pub safety: f64,
    /// Smallest factor by which a step may shrink. Default 0.2.
    pub min_factor: f64,
    /// Largest factor by which a step may grow. Default 10.
    pub max_factor: f64,
    /// The first step size; `None` selects it from the field's scale (Hairer, Norsett & Wanner,
    /// II.4), at the cost of one extra evaluation.
    pub first_step: Option<f64>,
    /// The number of attempted steps (accepted and rejected) after which the solve fails.
    /// Default 100 000.
    pub max_steps: usize,
}

impl Adaptive {
    /// Tolerances with the default controller settings.
    pub fn new(rtol: f64, atol: f64) -> Self {
        Self {
            rtol,
            atol,
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 10.0,
            first_step: None,
            max_steps: 100_000,
        }
    }

    /// Starts with step size `h` instead of selecting one.
    pub fn with_first_step(mut self, h: f64) -> Self {
        self.first_step = Some(h);
        self
    }

    /// Fails after `n` attempted steps.
    pub fn with_max_steps(mut self, n: usize) -> Self {
        self.max_steps = n;
        self
    }
}
