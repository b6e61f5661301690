//! One run keeps a second thread of rayon's pool awake while it trains
//! ([`TrainOptions::keep_awake`](crate::TrainOptions::keep_awake), which `taper train` sets for
//! a single run).
//!
//! The networks' large passes split into two exact halves with `rayon::join`. Between passes
//! the second thread finds no work and, after a short spin, sleeps; the next join must wake it
//! through the kernel. Where a wake-up is dear (measured on a virtual machine: the default
//! MADDPG run took 38 s on two threads against 34 s on one), that costs more than the split
//! saves. So a single run lends a thread to a poller that takes the pool's pending work
//! (`rayon::yield_now`) the moment it appears and otherwise spins, until the run ends. The
//! threads that compute a pass do not change its numbers (the passes are exact at any thread
//! count), so only the time changes. The price is a core kept runnable while the run lasts;
//! after a few idle polls the poller offers it to any other thread at each poll, so runs side
//! by side in other processes are not starved.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Polls without work before the poller starts offering its core to the system's other
/// threads at each poll (`sched_yield`), so that processes side by side lose little to it.
const SPINS: u32 = 256;

/// Runs `f` on this thread while another thread of rayon's pool, if it has one, polls for the
/// pool's work instead of sleeping. This thread must be one of the pool's (inside
/// `rayon::scope` or `ThreadPool::install`, as `taper train` runs its command), so that its
/// fork-joins hand their halves to the poller; on any other thread `f` simply runs. Runs that
/// share the cores with others (a sweep's) should not use it.
///
/// ```
/// let (a, b) = rayon::scope(|_| taper_train::keep_awake::keep_awake(|| rayon::join(|| 1 + 1, || 2 + 2)));
/// assert_eq!((a, b), (2, 4));
/// ```
pub fn keep_awake<R>(f: impl FnOnce() -> R) -> R {
    counted(f).0
}

/// [`keep_awake`], and how many pieces of the pool's work the poller ran.
fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    if rayon::current_num_threads() < 2 || rayon::current_thread_index().is_none() {
        return (f(), 0);
    }
    let done = AtomicBool::new(false);
    let ran = AtomicUsize::new(0);
    let caller = rayon::current_thread_index();
    let r = rayon::in_place_scope(|s| {
        let (done, ran) = (&done, &ran);
        s.spawn(move |_| {
            // Never on the run's own thread (which takes it back only when the run is over):
            // there it would have nothing to wait for.
            if rayon::current_thread_index() == caller {
                return;
            }
            let mut idle = 0u32;
            while !done.load(Ordering::Acquire) {
                if rayon::yield_now() == Some(rayon::Yield::Executed) {
                    ran.fetch_add(1, Ordering::Relaxed);
                    idle = 0;
                } else if idle < SPINS {
                    idle += 1;
                    std::hint::spin_loop();
                } else {
                    // Runnable, but ready to give the core to any other thread that wants it.
                    std::thread::yield_now();
                }
            }
        });
        // Set on the way out, by return or by panic: the scope waits for the poller.
        let _stop = Stop(done);
        f()
    });
    (r, ran.into_inner())
}

/// Tells the poller to stop when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The poller runs the run's fork-joins and stops when the run ends, on a pool of two
    /// threads and of one.
    #[test]
    fn a_run_keeps_a_thread_awake_and_ends() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let sum = pool.install(|| {
                keep_awake(|| {
                    (0..200)
                        .map(|i| {
                            let (a, b) = rayon::join(|| i * 2, || i + 1);
                            a + b
                        })
                        .sum::<u64>()
                })
            });
            assert_eq!(sum, (0..200).map(|i| i * 3 + 1).sum::<u64>());
        }
    }

    /// The other thread is the poller, and it takes the run's work: a join's first half waits
    /// until its second half has run, which only another thread can do. Off the pool, nothing
    /// polls.
    #[test]
    fn the_poller_takes_the_second_halves() {
        use std::sync::atomic::AtomicBool;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let (sum, ran) = pool.install(|| {
            counted(|| {
                (0..50u64)
                    .map(|i| {
                        let second_ran = AtomicBool::new(false);
                        let (a, b) = rayon::join(
                            || {
                                while !second_ran.load(Ordering::Acquire) {
                                    std::hint::spin_loop();
                                }
                                i
                            },
                            || {
                                second_ran.store(true, Ordering::Release);
                                1
                            },
                        );
                        a + b
                    })
                    .sum::<u64>()
            })
        });
        assert_eq!(sum, (0..50).map(|i| i + 1).sum::<u64>());
        assert_eq!(ran, 50, "every second half ran on the poller");
        let (x, ran) = std::thread::spawn(|| counted(|| 7)).join().unwrap();
        assert_eq!((x, ran), (7, 0));
    }

    /// A run that panics still stops the poller, so the panic reaches the caller instead of
    /// the scope waiting for ever.
    #[test]
    fn a_panicking_run_stops_the_poller() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let r = pool.install(|| std::panic::catch_unwind(|| keep_awake(|| panic!("the run failed"))));
        assert!(r.is_err());
    }
}
