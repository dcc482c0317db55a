//! The integration methods.

use crate::tableau::{DOPRI5, EULER, HEUN, MIDPOINT, RK4, Tableau};
use std::fmt;
use std::str::FromStr;

/// An explicit Runge-Kutta method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Forward Euler: order 1, one evaluation per step.
    Euler,
    /// Explicit midpoint: order 2, two evaluations per step.
    Midpoint,
    /// Heun (explicit trapezoid): order 2, two evaluations per step.
    Heun,
    /// The classic Runge-Kutta method: order 4, four evaluations per step.
    Rk4,
    /// Dormand-Prince 5(4) with first-same-as-last: order 5, six new evaluations per step, and
    /// an embedded fourth-order error estimate for adaptive steps.
    Dopri5,
}

impl Method {
    /// All methods, in order of increasing cost.
    pub const ALL: [Method; 5] = [
        Method::Euler,
        Method::Midpoint,
        Method::Heun,
        Method::Rk4,
        Method::Dopri5,
    ];

    pub(crate) fn tableau(self) -> &'static Tableau {
        match self {
            Self::Euler => &EULER,
            Self::Midpoint => &MIDPOINT,
            Self::Heun => &HEUN,
            Self::Rk4 => &RK4,
            Self::Dopri5 => &DOPRI5,
        }
    }

    /// The order of convergence of the method's solution.
    pub fn order(self) -> u32 {
        match self {
            Self::Euler => 1,
            Self::Midpoint | Self::Heun => 2,
            Self::Rk4 => 4,
            Self::Dopri5 => 5,
        }
    }

    /// The tableau's stages.
    pub fn stages(self) -> usize {
        self.tableau().c.len()
    }

    /// Vector-field evaluations per step, fixed or adaptive, after the first: the stages, less
    /// one for a first-same-as-last method (dopri5: 6), whose last stage is the next step's
    /// first. The first step costs one more.
    pub fn evaluations_per_step(self) -> usize {
        self.stages() - usize::from(self.tableau().fsal)
    }

    /// Whether the method carries an error estimate (and so supports adaptive steps).
    pub fn has_error_estimate(self) -> bool {
        self.tableau().b_embedded.is_some()
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Euler => "euler",
            Self::Midpoint => "midpoint",
            Self::Heun => "heun",
            Self::Rk4 => "rk4",
            Self::Dopri5 => "dopri5",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown solver '{s}': expected one of euler, midpoint, heun, rk4, dopri5")
            })
    }
}
