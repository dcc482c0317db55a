//! Processes that train one run together: each takes its share of every global batch, and
//! their gradients are summed (all-reduced) before the optimizer step, so every process takes
//! the same step as one process on the whole batch (docs/scaling.md).
//!
//! [`Collective`] is the one operation training needs from a communication engine: an
//! element-wise sum of an `f32` buffer over the processes ("ranks"). [`Alone`] is the group of
//! one; the `mpi` feature adds `mpi::MpiCollective` over an MPI communicator (`mpirun`).

#[cfg(feature = "mpi")]
pub mod mpi;

/// A group of processes ("ranks") that all-reduce buffers.
///
/// Every rank must call [`all_reduce_sum`](Collective::all_reduce_sum) the same number of times
/// with buffers of the same length, in the same order: a collective operation.
pub trait Collective {
    /// This process's index, `0..size()`; rank 0 writes the run's files.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Replaces `buf` by its element-wise sum over all ranks; every rank gets the same sums.
    /// `what` names the buffer for error messages (e.g. "the gradients of step 12").
    fn all_reduce_sum(&self, buf: &mut [f32], what: &str) -> Result<(), CollectiveError>;
}

/// Why an all-reduce failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rank {rank} of {size}: {message}")]
pub struct CollectiveError {
    /// The rank that saw the failure.
    pub rank: usize,
    /// The group's size.
    pub size: usize,
    /// What happened.
    pub message: String,
}

/// The group of one process: the sum over one rank is the buffer itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Collective for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _: &mut [f32], _: &str) -> Result<(), CollectiveError> {
        Ok(())
    }
}

/// Part `i` of `0..n` cut into `k` contiguous parts as evenly as whole rows allow: a rank's
/// rows of the global batch, and a device's rows of its rank's.
pub fn share(n: usize, i: usize, k: usize) -> std::ops::Range<usize> {
    (i * n / k)..((i + 1) * n / k)
}
