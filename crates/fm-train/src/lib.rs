//! What turns paths, solvers and networks into a program: data sources, the training loop,
//! checkpoints, and evaluation.

pub mod data;
pub mod eval;
pub mod train;
