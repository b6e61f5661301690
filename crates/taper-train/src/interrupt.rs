//! Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM: after [`install`], the first signal
//! asks the [`Trainer`](crate::Trainer) to finish the current update, write a checkpoint and
//! return [`TrainError::Interrupted`](crate::TrainError::Interrupted); a second signal ends the
//! process at once (exit status 128 + the signal's number).
//!
//! ```
//! // Without a signal, nothing is asked.
//! assert!(!taper_train::interrupt::requested());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for (by a signal, or by [`request`]).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks the running trainer to stop as a signal would (for tests and embedding programs).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Forgets a stop request (before starting another run in the same process).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
}

/// Installs the handlers for SIGINT and SIGTERM (Unix; elsewhere the default behaviour stays).
pub fn install() {
    #[cfg(unix)]
    {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only touches an atomic and calls _exit, both
            // async-signal-safe; the sigaction struct is fully initialised.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }
}
