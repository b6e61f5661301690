//! The processes of one launch: a single process, or the ranks of an MPI job started by
//! `mpirun -np K taper …` or Slurm's `srun` (with the `mpi` feature).
//!
//! A sweep shares its seeds out over the ranks, round robin in the order given; rank 0
//! prepares the sweep's folder and prints the summary. Without the `mpi` feature a launch
//! over several processes is refused: each process would believe it is alone and train every
//! seed into the same folders.

use crate::error::{CliError, Result};

/// The number of processes an MPI launcher says this job has, if it was launched by one.
pub fn launched_size() -> Option<usize> {
    launched_size_in(&|v| std::env::var(v).ok())
}

/// [`launched_size`] from the variables `get` reads: Open MPI's `mpirun`
/// (`OMPI_COMM_WORLD_SIZE`), a PMI-1/2 launcher such as MPICH's Hydra or Slurm's
/// `srun --mpi=pmi2` (`PMI_SIZE`), or Slurm's `srun --mpi=pmix` (a `PMIX_RANK`, and the step's
/// `SLURM_STEP_NUM_TASKS`; Slurm's variables alone do not say that a process was launched as
/// one of several, since a batch script's own commands see them too).
fn launched_size_in(get: &dyn Fn(&str) -> Option<String>) -> Option<usize> {
    let num = |v: &str| count_in(get, v);
    num("OMPI_COMM_WORLD_SIZE")
        .or_else(|| num("PMI_SIZE"))
        .or_else(|| get("PMIX_RANK").and_then(|_| num("SLURM_STEP_NUM_TASKS")))
}

/// The processes of this launch on this machine, from the launcher's environment (Open MPI's,
/// MPICH's, Slurm's `srun`); 1 when unknown.
pub fn local_processes() -> usize {
    local_processes_in(&|v| std::env::var(v).ok())
}

/// [`local_processes`] from the variables `get` reads.
fn local_processes_in(get: &dyn Fn(&str) -> Option<String>) -> usize {
    let num = |v: &str| count_in(get, v);
    num("OMPI_COMM_WORLD_LOCAL_SIZE")
        .or_else(|| num("MPI_LOCALNRANKS"))
        .or_else(|| {
            get("PMIX_RANK")?;
            slurm_tasks_on(&get("SLURM_STEP_TASKS_PER_NODE")?, num("SLURM_NODEID")?)
        })
        .unwrap_or(1)
}

/// The count that variable `v` holds, if `get` finds it and it parses.
fn count_in(get: &dyn Fn(&str) -> Option<String>, v: &str) -> Option<usize> {
    get(v).and_then(|s| s.trim().parse().ok())
}

/// The tasks on node `node` of a Slurm tasks-per-node list: `2(x3),1` is 2 tasks on each of
/// the first three nodes and 1 on the fourth.
fn slurm_tasks_on(spec: &str, node: usize) -> Option<usize> {
    let mut first: usize = 0;
    for part in spec.split(',') {
        let (n, times) = match part.split_once("(x") {
            Some((n, rest)) => (n.trim().parse().ok()?, rest.strip_suffix(')')?.parse().ok()?),
            None => (part.trim().parse().ok()?, 1usize),
        };
        first = first.checked_add(times)?;
        if node < first {
            return Some(n);
        }
    }
    None
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
            // Any thread may call MPI, one at a time: a data-parallel learner's link takes a
            // lock around every call.
            let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Serialized)
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

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
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

    /// The link a data-parallel learner gathers through (a duplicate of the job's
    /// communicator, so that its messages never meet the launch's own); `None` for a single
    /// process. Collective.
    pub fn link(&self) -> Option<std::sync::Arc<dyn taper::algos::blocks::BlockLink>> {
        #[cfg(feature = "mpi")]
        if let Some((_, world)) = &self.mpi {
            use mpi::topology::Communicator;
            return Some(std::sync::Arc::new(link::MpiLink::new(world.duplicate())));
        }
        None
    }

    /// Ends every process of the launch with `code`, from any one of them: what a
    /// data-parallel run does when one process fails, since the others would wait for it.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some((_, world)) = &self.mpi {
            use mpi::topology::Communicator;
            world.abort(code);
        }
        std::process::exit(code)
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

#[cfg(feature = "mpi")]
mod link {
    //! The data-parallel learner's link over MPI.

    use mpi::collective::CommunicatorCollectives;
    use mpi::datatype::PartitionMut;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use std::sync::Mutex;
    use taper::algos::blocks::BlockLink;
    use taper::algos::{AlgoError, Result};

    /// A communicator that may move between threads.
    struct Comm(SimpleCommunicator);

    // SAFETY: MPI is initialised at `Threading::Serialized`, under which any thread may make
    // MPI calls as long as no two run at once; every use of the communicator goes through
    // the link's mutex.
    unsafe impl Send for Comm {}

    /// The processes of an MPI job as a [`BlockLink`]: gathers are `MPI_Allgather(v)`, so
    /// every process receives every block's part and sums them in the same order.
    pub struct MpiLink {
        comm: Mutex<Comm>,
        rank: usize,
        size: usize,
    }

    impl std::fmt::Debug for MpiLink {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "MpiLink {{ rank: {}, size: {} }}", self.rank, self.size)
        }
    }

    impl MpiLink {
        /// The link over `comm`.
        pub fn new(comm: SimpleCommunicator) -> Self {
            MpiLink {
                rank: comm.rank() as usize,
                size: comm.size() as usize,
                comm: Mutex::new(Comm(comm)),
            }
        }
    }

    impl BlockLink for MpiLink {
        fn size(&self) -> usize {
            self.size
        }
        fn rank(&self) -> usize {
            self.rank
        }
        fn all_gather(&self, local: &[f32]) -> Result<Vec<f32>> {
            let comm = self
                .comm
                .lock()
                .map_err(|_| AlgoError::Link("the MPI link's lock is poisoned".into()))?;
            // Every process must send as many values; check before the gather that assumes it.
            let n = local.len() as u64;
            let mut counts = vec![0u64; self.size];
            comm.0.all_gather_into(&n, &mut counts[..]);
            if counts.iter().any(|&c| c != n) {
                return Err(AlgoError::Link(format!(
                    "the processes gather different lengths {counts:?}; are they running the same config?"
                )));
            }
            let mut out = vec![0f32; local.len() * self.size];
            comm.0.all_gather_into(local, &mut out[..]);
            Ok(out)
        }
        fn all_gather_bytes(&self, local: &[u8]) -> Result<Vec<Vec<u8>>> {
            let comm = self
                .comm
                .lock()
                .map_err(|_| AlgoError::Link("the MPI link's lock is poisoned".into()))?;
            let n = i32::try_from(local.len()).map_err(|_| AlgoError::Link("a block's state exceeds 2 GiB".into()))?;
            let mut counts = vec![0i32; self.size];
            comm.0.all_gather_into(&n, &mut counts[..]);
            let displs: Vec<i32> = counts
                .iter()
                .scan(0i32, |at, &c| {
                    let d = *at;
                    *at += c;
                    Some(d)
                })
                .collect();
            let total: i32 = counts.iter().sum();
            let mut buf = vec![0u8; total as usize];
            {
                let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                comm.0.all_gather_varcount_into(local, &mut part);
            }
            Ok(counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| buf[d as usize..(d + c) as usize].to_vec())
                .collect())
        }
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

    fn vars<'a>(set: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |v| set.iter().find(|(k, _)| *k == v).map(|(_, x)| x.to_string())
    }

    #[test]
    fn launchers_are_recognised_by_their_variables() {
        assert_eq!(launched_size_in(&vars(&[("OMPI_COMM_WORLD_SIZE", "4")])), Some(4));
        assert_eq!(launched_size_in(&vars(&[("PMI_SIZE", "3")])), Some(3));
        let srun = [
            ("PMIX_RANK", "1"),
            ("SLURM_STEP_NUM_TASKS", "6"),
            ("SLURM_STEP_TASKS_PER_NODE", "2(x2),1,1"),
            ("SLURM_NODEID", "1"),
        ];
        assert_eq!(launched_size_in(&vars(&srun)), Some(6));
        assert_eq!(local_processes_in(&vars(&srun)), 2);
        // A batch script's own command sees Slurm's variables but was not launched as a task.
        let batch = [("SLURM_NTASKS", "2"), ("SLURM_STEP_NUM_TASKS", "1")];
        assert_eq!(launched_size_in(&vars(&batch)), None);
        assert_eq!(local_processes_in(&vars(&batch)), 1);
        assert_eq!(local_processes_in(&vars(&[("OMPI_COMM_WORLD_LOCAL_SIZE", "2")])), 2);
    }

    #[test]
    fn slurm_task_lists_are_read_per_node() {
        let spec = "2(x3),1";
        let per: Vec<Option<usize>> = (0..5).map(|n| slurm_tasks_on(spec, n)).collect();
        assert_eq!(per, vec![Some(2), Some(2), Some(2), Some(1), None]);
        assert_eq!(slurm_tasks_on("4", 0), Some(4));
        assert_eq!(slurm_tasks_on("x", 0), None);
    }
}
