//! `fm train --mpi`: the processes of an MPI job (`mpirun -np N fm train --mpi ...`) train one
//! run together (`fm_train::train::train_in_group`, docs/scaling.md).

use anyhow::{Result, bail};
use fm_train::collective::{Alone, Collective};

/// The group this process trains in: itself alone, or the ranks of an MPI job.
pub struct Group {
    collective: Box<dyn Collective>,
    /// Declared after the communicator, so MPI is finalized after it is dropped.
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl Group {
    /// The group of this process: with `mpi`, the MPI job it was started in (each all-reduce
    /// waiting at most `timeout_s`); without, itself alone. A process started by `mpirun`
    /// without `--mpi` is refused: every rank would train the whole run on its own.
    pub fn join(mpi: bool, timeout_s: f64) -> Result<Self> {
        if !mpi {
            if let Some(n) = launched_ranks().filter(|&n| n > 1) {
                bail!(
                    "fm train runs as one of {n} MPI ranks without --mpi: each would train the whole run on its own. Add --mpi (in a build with the mpi feature), or run fm without mpirun"
                );
            }
            return Ok(Self::alone());
        }
        if !(timeout_s > 0.0 && timeout_s.is_finite()) {
            bail!("--collective-timeout must be a positive number of seconds, not {timeout_s}");
        }
        Self::mpi(std::time::Duration::from_secs_f64(timeout_s))
    }

    fn alone() -> Self {
        Self {
            collective: Box::new(Alone),
            #[cfg(feature = "mpi")]
            _universe: None,
        }
    }

    #[cfg(feature = "mpi")]
    fn mpi(timeout: std::time::Duration) -> Result<Self> {
        use fm_train::collective::mpi::MpiCollective;
        use mpi::Threading;
        // Only the training thread calls MPI (the batch thread and the replicas do not).
        let Some((universe, _)) = mpi::initialize_with_threading(Threading::Funneled) else {
            bail!("MPI was initialized already in this process");
        };
        Ok(Self {
            collective: Box::new(MpiCollective::new(universe.world(), timeout)),
            _universe: Some(universe),
        })
    }

    #[cfg(not(feature = "mpi"))]
    fn mpi(_: std::time::Duration) -> Result<Self> {
        bail!(
            "--mpi needs fm built with the mpi feature (and an MPI library, e.g. Debian's libopenmpi-dev, with libclang): cargo build --release -p fm-cli --features mpi"
        )
    }

    /// The group, for training.
    pub fn collective(&self) -> &dyn Collective {
        self.collective.as_ref()
    }

    /// Ends a failed rank of a group of several at once, and with it the job: the other ranks
    /// would otherwise wait for it in their next all-reduce (until its timeout). A group of one
    /// returns, so the caller reports the error as usual.
    pub fn end_job_on_failure(&self, error: &anyhow::Error) {
        #[cfg(feature = "mpi")]
        if self.collective.size() > 1 {
            use mpi::topology::Communicator;
            eprintln!(
                "error: rank {} of {}: {error:#}",
                self.collective.rank(),
                self.collective.size()
            );
            if let Some(universe) = &self._universe {
                universe.world().abort(1);
            }
        }
        let _ = error;
    }
}

/// The number of ranks the launcher says this process is one of (OpenMPI, MPICH).
fn launched_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}
