//! [`Collective`] over MPI (the `mpi` feature): `mpirun -np N fm train --mpi ...` on one
//! machine or many (docs/scaling.md).
//!
//! The caller initialises MPI (`mpi::initialize_with_threading`) and hands over a
//! communicator: this crate sets no process-wide state. Only the thread that trains calls MPI
//! (`Threading::Funneled` suffices).
//!
//! A blocking `MPI_Allreduce` waits forever for a rank that stalls (a stopped process, a hung
//! device, a network partition the launcher does not notice). So the sum is started with
//! `MPI_Iallreduce` and polled against a deadline. MPI cannot cancel a collective once started
//! (its buffers stay MPI's), so on timeout this rank reports what it waited for and ends the
//! job with `MPI_Abort`; `--resume` continues from the newest checkpoint.

use super::{Collective, CollectiveError};
use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::topology::{Communicator, SimpleCommunicator};
use std::time::{Duration, Instant};

/// The exit code of a job ended by a collective's timeout.
pub const TIMEOUT_EXIT_CODE: i32 = 124;

/// An MPI communicator with a deadline on each all-reduce.
pub struct MpiCollective {
    comm: SimpleCommunicator,
    timeout: Duration,
}

impl MpiCollective {
    /// All-reduces over `comm` (usually `universe.world()`), waiting at most `timeout` for each.
    pub fn new(comm: SimpleCommunicator, timeout: Duration) -> Self {
        Self { comm, timeout }
    }

    /// Reports a timed-out all-reduce and ends the whole job.
    fn give_up(&self, what: &str) -> ! {
        let error = CollectiveError {
            rank: self.rank(),
            size: self.size(),
            message: format!(
                "the all-reduce of {what} got no answer from the other ranks within {:.0} s: a rank has died or stalls. Ending the job (MPI cannot cancel a started collective); continue it from the newest checkpoint with --resume",
                self.timeout.as_secs_f64()
            ),
        };
        eprintln!("error: {error}");
        self.comm.abort(TIMEOUT_EXIT_CODE)
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn all_reduce_sum(&self, buf: &mut [f32], what: &str) -> Result<(), CollectiveError> {
        let send = buf.to_vec();
        let began = Instant::now();
        mpi::request::scope(|scope| {
            let mut request =
                self.comm
                    .immediate_all_reduce_into(scope, &send[..], buf, SystemOperation::sum());
            while let Err(pending) = request.test() {
                request = pending;
                if began.elapsed() > self.timeout {
                    // Never returns: dropping the pending request would abort anyway.
                    self.give_up(what);
                }
                // Polling drives MPI's progress; a short sleep leaves the core to the other
                // ranks on an oversubscribed machine, at little cost next to a step.
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        Ok(())
    }
}
