//! Schedulers by name, as the command line and saved configs spell them.

use super::{AnyScheduler, CondOt, Cosine, LinearVp, Polynomial, Ve, Vp};
use crate::ParseError;
use std::fmt;
use std::str::FromStr;

/// A built-in scheduler by name, without the OT path's `sigma_min` (a setting of its own in a
/// training config): `ot`, `vp`, `ve`, `cosine`, `linear-vp` or `poly:N`.
///
/// ```
/// use fm_paths::scheduler::SchedulerName;
/// use fm_paths::{AnyScheduler, Scheduler};
///
/// let name: SchedulerName = "poly:2".parse().unwrap();
/// assert_eq!(name.to_string(), "poly:2");
/// let scheduler: AnyScheduler = name.scheduler(1e-4);
/// assert_eq!(scheduler.coefficients(0.5_f64).alpha, 0.25);
/// assert!("poly:-1".parse::<SchedulerName>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SchedulerName {
    /// [`CondOt`], the paper's OT path.
    Ot,
    /// [`Vp`] with the paper's betas.
    Vp,
    /// [`Ve`] with the paper's sigmas.
    Ve,
    /// [`Cosine`].
    Cosine,
    /// [`LinearVp`].
    LinearVp,
    /// [`Polynomial`] with this exponent (> 0).
    Poly(f64),
}

const EXPECTED: &str = "ot, vp, ve, cosine, linear-vp or poly:N (N > 0)";

impl SchedulerName {
    /// The scheduler, with `sigma_min` for the OT path (the others have none).
    pub fn scheduler(self, sigma_min: f64) -> AnyScheduler {
        match self {
            Self::Ot => AnyScheduler::CondOt(CondOt::new(sigma_min)),
            Self::Vp => AnyScheduler::Vp(Vp::default()),
            Self::Ve => AnyScheduler::Ve(Ve::default()),
            Self::Cosine => AnyScheduler::Cosine(Cosine),
            Self::LinearVp => AnyScheduler::LinearVp(LinearVp),
            Self::Poly(exponent) => AnyScheduler::Polynomial(Polynomial { exponent }),
        }
    }
}

impl FromStr for SchedulerName {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "ot" => Self::Ot,
            "vp" => Self::Vp,
            "ve" => Self::Ve,
            "cosine" => Self::Cosine,
            "linear-vp" => Self::LinearVp,
            other => match other.strip_prefix("poly:").map(str::parse::<f64>) {
                Some(Ok(n)) if n > 0.0 && n.is_finite() => Self::Poly(n),
                _ => return Err(ParseError::new("path", s, EXPECTED)),
            },
        })
    }
}

impl fmt::Display for SchedulerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ot => f.write_str("ot"),
            Self::Vp => f.write_str("vp"),
            Self::Ve => f.write_str("ve"),
            Self::Cosine => f.write_str("cosine"),
            Self::LinearVp => f.write_str("linear-vp"),
            Self::Poly(n) => write!(f, "poly:{n}"),
        }
    }
}

/// `ot[:SIGMA_MIN]` (1e-4 when not given), `vp`, `ve`, `cosine`, `linear-vp` or `poly:N`, with
/// the default parameters of each.
///
/// ```
/// use fm_paths::AnyScheduler;
///
/// let s: AnyScheduler = "ot:0.01".parse().unwrap();
/// assert_eq!(s.to_string(), "ot:0.01");
/// assert_eq!("vp".parse::<AnyScheduler>().unwrap().to_string(), "vp");
/// ```
impl FromStr for AnyScheduler {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        if let Some(sigma) = s.strip_prefix("ot:") {
            return match sigma.parse::<f64>() {
                Ok(sigma_min) if (0.0..1.0).contains(&sigma_min) => {
                    Ok(Self::CondOt(CondOt::new(sigma_min)))
                }
                _ => Err(ParseError::new(
                    "path",
                    s,
                    "ot:SIGMA_MIN with SIGMA_MIN in [0, 1)",
                )),
            };
        }
        Ok(s.parse::<SchedulerName>()?.scheduler(DEFAULT_SIGMA_MIN))
    }
}

/// The OT path's `sigma_min` when none is given (the paper's 2-D experiments).
pub const DEFAULT_SIGMA_MIN: f64 = 1e-4;

/// The name that parses back to the same scheduler for the built-in parameters (`ot` with its
/// `sigma_min`); a VP or VE path with other parameters than the defaults displays as `vp`/`ve`.
impl fmt::Display for AnyScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CondOt(s) => write!(f, "ot:{}", s.sigma_min),
            Self::Vp(_) => f.write_str("vp"),
            Self::Ve(_) => f.write_str("ve"),
            Self::Cosine(_) => f.write_str("cosine"),
            Self::LinearVp(_) => f.write_str("linear-vp"),
            Self::Polynomial(p) => write!(f, "poly:{}", p.exponent),
        }
    }
}
