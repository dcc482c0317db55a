//! The one error type of every choice made by name: schedulers, predictions, couplings (here),
//! solver methods and divergence estimators (`fm-ode`), float types (`fm-train`).

use std::fmt;

/// A name that names none of the choices: what was being chosen, what was given, and what is
/// accepted. Its message reads `unknown path 'foo': expected ot, vp, ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What the name chooses (`path`, `coupling`, `solver`, ...).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The accepted spellings.
    pub expected: &'static str,
}

impl ParseError {
    /// `given` is no `what`; `expected` lists what is.
    pub fn new(what: &'static str, given: &str, expected: &'static str) -> Self {
        Self {
            what,
            given: given.to_string(),
            expected,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} '{}': expected {}",
            self.what, self.given, self.expected
        )
    }
}

impl std::error::Error for ParseError {}
