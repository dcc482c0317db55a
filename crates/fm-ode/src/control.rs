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

/// How the adaptive controller measures a step's scaled error
/// `e = err / (atol + rtol max(|y_n|, |y_{n+1}|))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorNorm {
    /// One root-mean-square over the whole state, every sample of a batch together: torchdiffeq's
    /// norm, so evaluation counts compare with the paper's and with PyTorch's.
    #[default]
    Rms,
    /// The largest of the samples' own root-mean-squares (over each sample's elements, the first
    /// axis being the batch): stricter, every sample is solved to the tolerance on its own, and a
    /// solve's steps do not depend on what else is in its batch. For a state without a batch
    /// axis (a scalar), the same as [`Rms`](Self::Rms).
    PerSample,
}

impl ErrorNorm {
    /// The norm's name, as [`FromStr`](std::str::FromStr) reads it: `rms` or `per-sample`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rms => "rms",
            Self::PerSample => "per-sample",
        }
    }
}

impl std::fmt::Display for ErrorNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A norm by [name](ErrorNorm::name).
impl std::str::FromStr for ErrorNorm {
    type Err = fm_paths::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Rms, Self::PerSample]
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| fm_paths::ParseError::new("error norm", s, "rms or per-sample"))
    }
}

/// Settings of the adaptive step-size controller.
///
/// A step is accepted when the [`ErrorNorm`] of `err / (atol + rtol max(|y_n|, |y_{n+1}|))` is
/// at most 1; the next step is `h * clamp(safety * norm^(-1/order), min_factor, max_factor)`, and an
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
    /// How a step's error is measured. Default [`ErrorNorm::Rms`] (torchdiffeq's).
    pub norm: ErrorNorm,
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
            norm: ErrorNorm::Rms,
        }
    }

    /// Measures each step's error with `norm`.
    pub fn with_norm(mut self, norm: ErrorNorm) -> Self {
        self.norm = norm;
        self
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
