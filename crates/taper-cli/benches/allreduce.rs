//! The cost of combining gradients over the processes of an MPI job, on this machine's
//! loopback: what a data-parallel update would add per minibatch. For each gradient size
//! (the parameter counts of taper's networks), the median time of one `MPI_Allreduce` (sum;
//! MPI does not fix the order of its additions) and of the exact alternative, an
//! `MPI_Allgather` followed by a sum in rank order on every process.
//!
//! ```bash
//! cargo bench -p taper-cli --features mpi --bench allreduce
//! ```
//!
//! Started alone (as `cargo bench` starts it), the bench starts itself again over
//! `TAPER_BENCH_PROCESSES` processes (2 by default) with `mpirun --oversubscribe`; started by
//! `mpirun` or `srun`, it measures over that launch's processes. One JSON line per gradient.

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::topology::Communicator;
use std::process::{exit, Command};
use std::time::Instant;

/// Whether this process was started by an MPI launcher (Open MPI's `mpirun`, a PMI one, or
/// Slurm's `srun --mpi=pmix`).
fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// Runs this bench again over `mpirun`, and exits with its status.
fn relaunch() -> ! {
    let np = std::env::var("TAPER_BENCH_PROCESSES").unwrap_or_else(|_| "2".into());
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("allreduce: the bench cannot find its own path: {e}");
            exit(1)
        }
    };
    match Command::new("mpirun")
        .args(["--oversubscribe", "-np", &np])
        .arg(exe)
        .status()
    {
        Ok(s) => exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("allreduce: cannot start mpirun ({e}); install Open MPI (Debian: openmpi-bin)");
            exit(1)
        }
    }
}

/// Median of `reps` timed calls of `f`, in microseconds, after `reps / 10` untimed ones.
fn median_us(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps / 10 {
        f();
    }
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn main() {
    if !launched() {
        relaunch();
    }
    let Some(universe) = mpi::initialize() else {
        eprintln!("MPI was initialised already");
        std::process::exit(1);
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    // Parameter counts (weights and biases, actor and critic together): PPO on CartPole
    // (4-64-64-2 and 4-64-64-1), IPPO on Simple Spread (18-64-64-5 and 18-64-64-1), MAPPO
    // (18-128-128-5, and a 54-wide critic input), the GRU MAPPO (FC 128, GRU 128, FC 128, both
    // networks), SAC on Pendulum (3-256-256 with two 1-wide heads, and two 4-256-256-1 critics),
    // GRPO's default transformer on the sequence tasks (width 64, 2 blocks, MLP 256).
    let sizes = [
        ("ppo_cartpole", 9_155usize),
        ("ippo_spread", 11_142),
        ("mappo_spread", 43_270),
        ("mappo_gru", 240_902),
        ("sac_pendulum", 201_988),
        ("grpo_transformer", 102_927),
    ];
    for (name, n) in sizes {
        let mine: Vec<f32> = (0..n).map(|i| (i + rank) as f32 * 1e-3).collect();
        let mut sum = vec![0f32; n];
        let reps = if n > 100_000 { 500 } else { 2_000 };
        world.barrier();
        let allreduce = median_us(reps, || {
            world.all_reduce_into(&mine[..], &mut sum[..], SystemOperation::sum());
        });
        let mut all = vec![0f32; n * size];
        world.barrier();
        let gather_sum = median_us(reps, || {
            world.all_gather_into(&mine[..], &mut all[..]);
            sum.copy_from_slice(&all[..n]);
            for r in 1..size {
                for (s, &x) in sum.iter_mut().zip(&all[r * n..(r + 1) * n]) {
                    *s += x;
                }
            }
        });
        if rank == 0 {
            println!(
                "{{\"gradient\":\"{name}\",\"floats\":{n},\"processes\":{size},\"allreduce_us\":{allreduce:.2},\"allgather_ordered_sum_us\":{gather_sum:.2}}}"
            );
        }
    }
}
