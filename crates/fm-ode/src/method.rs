//! The integration methods.

use crate::tableau::{DOPRI5, EULER, HEUN, MIDPOINT, RK4, Tableau};
use std::fmt;
use std::str::FromStr;

/// An explicit Runge-Kutta method: one of the built-in tableaus, or one of your own.
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
    /// An explicit method from its Butcher tableau, with an embedded solution for adaptive
    /// steps if it has one (see [`Tableau`]'s example). [`solve`](crate::solve) checks it
    /// ([`Tableau::check`]) before the first step.
    Custom(&'static Tableau),
}

impl Method {
    /// The built-in methods, in order of increasing cost.
    pub const ALL: [Method; 5] = [
        Method::Euler,
        Method::Midpoint,
        Method::Heun,
        Method::Rk4,
        Method::Dopri5,
    ];

    /// The method's Butcher tableau.
    pub fn tableau(self) -> &'static Tableau {
        match self {
            Self::Euler => &EULER,
            Self::Midpoint => &MIDPOINT,
            Self::Heun => &HEUN,
            Self::Rk4 => &RK4,
            Self::Dopri5 => &DOPRI5,
            Self::Custom(tableau) => tableau,
        }
    }

    /// The order of convergence of the method's solution.
    pub fn order(self) -> u32 {
        self.tableau().order
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

    /// The name used on the command line (a custom tableau's own name).
    pub fn name(self) -> &'static str {
        self.tableau().name
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A built-in method by [name](Method::name).
impl FromStr for Method {
    type Err = fm_paths::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                fm_paths::ParseError::new("solver", s, "euler, midpoint, heun, rk4 or dopri5")
            })
    }
}
