//! The processes of one launch: a single process, or the ranks of an MPI job started by
//! `mpirun -np K taper …` or Slurm's `srun` (with the `mpi` feature).
//!
//! A sweep shares its seeds out over the ranks, round robin in the order given; rank 0
//! prepares the sweep's folder and prints the summary. Without the `mpi` feature a launch
//! over several processes is refused: each process would believe it is alone and train every
//! seed into the same folders.

use crate::error::{CliError, Result};

/// The environment variables by which MPI launchers tell a process how many processes the
/// job has: Open MPI's `mpirun`, and the PMI of MPICH's Hydra and of Slurm's `srun`.
const SIZE_VARS: [&str; 2] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"];

/// The number of processes an MPI launcher says this job has, if it was launched by one.
pub fn launched_size() -> Option<usize> {
    SIZE_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok().and_then(|s| s.trim().parse().ok()))
}

/// This launch's processes, as seen from one of them.
pub struct Cluster {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<(mpi::environment::Universe, mpi::topology::SimpleCommunicator)>,
}

impl Cluster {
    /// One process on its own.
    pub fn single() -> Self {
        Cluster {
            rank: 0,
            size: 1,
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// Joins the MPI job this process was launched in, or stands alone when no launcher
    /// started it. Without the `mpi` feature, a launch over several processes is an error.
    pub fn start() -> Result<Self> {
        let Some(size) = launched_size().filter(|&n| n > 1) else {
            return Ok(Self::single());
        };
        #[cfg(feature = "mpi")]
        {
            use mpi::traits::Communicator;
            let _ = size;
            let universe = mpi::initialize()
                .ok_or_else(|| CliError::Cluster("MPI was initialised already in this process".into()))?;
            let world = universe.world();
            let (rank, size) = (world.rank() as usize, world.size() as usize);
            Ok(Cluster {
                rank,
                size,
                mpi: Some((universe, world)),
            })
        }
        #[cfg(not(feature = "mpi"))]
        Err(CliError::Cluster(format!(
            "launched as {size} processes, but this taper was built without the `mpi` feature \
             (build it with `cargo build --release -p taper-cli --features mpi`)"
        )))
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this process speaks for the launch (rank 0).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// This rank's share of `items`: every `size`-th, from its rank on.
    pub fn share<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items.iter().skip(self.rank).step_by(self.size).cloned().collect()
    }

    /// Whether `ok` holds on every rank (each rank waits for all; collective).
    pub fn all(&self, ok: bool) -> bool {
        #[cfg(feature = "mpi")]
        if let Some((_, world)) = &self.mpi {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mine = ok as i32;
            let mut every = 0i32;
            world.all_reduce_into(&mine, &mut every, SystemOperation::min());
            return every == 1;
        }
        ok
    }

    /// Every rank's `lines`, in rank order, on rank 0 (empty on the others; collective).
    pub fn gather(&self, lines: Vec<String>) -> Vec<String> {
        #[cfg(feature = "mpi")]
        if let Some((_, world)) = &self.mpi {
            use mpi::point_to_point::{Destination, Source};
            use mpi::topology::Communicator;
            let text = lines.join("\n");
            if self.rank != 0 {
                world.process_at_rank(0).send(text.as_bytes());
                return Vec::new();
            }
            let mut all = lines;
            for r in 1..self.size {
                let (bytes, _) = world.process_at_rank(r as i32).receive_vec::<u8>();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                all.extend(text.lines().map(str::to_owned));
            }
            return all;
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_item_once() {
        let items: Vec<u64> = (10..17).collect();
        let mut seen = Vec::new();
        for rank in 0..3 {
            let c = Cluster {
                rank,
                size: 3,
                #[cfg(feature = "mpi")]
                mpi: None,
            };
            seen.extend(c.share(&items));
        }
        seen.sort_unstable();
        assert_eq!(seen, items);
        assert_eq!(Cluster::single().share(&items), items);
    }
}
