//! What turns paths, solvers and networks into a program: data sources, the training loop,
//! checkpoints, and evaluation.

/// Data sources (the `fm-data` crate).
pub use fm_data as data;
pub mod collective;
pub mod eval;
pub mod train;
pub mod weights;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
