//! Reused host buffers for the transformer's host kernels. A forward and backward pass over a
//! batch allocates tens of megabytes of activations; fresh allocations of that size come from
//! the kernel as zeroed pages, and their page faults cost more than the arithmetic (measured:
//! a third of a training step). A [`Scratch`] buffer returns to a pool when it is dropped and
//! the next request of at most its size reuses it. The pool is shared by all threads: a
//! buffer filled on a worker thread is often dropped on another.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers smaller than this go back to the allocator (small allocations are cheap).
const MIN_POOLED: usize = 1 << 12;
/// The most floats the pool keeps (256 MiB).
const MAX_POOLED: usize = 1 << 26;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// The pool; a poisoned lock (a panic elsewhere while it was held) still holds valid buffers.
fn pool() -> std::sync::MutexGuard<'static, Vec<Vec<f32>>> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A zero-initialised `f32` buffer that returns to the pool when dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch(Vec<f32>);

impl Scratch {
    /// `n` zeros, in the smallest pooled buffer that holds them, or a new one.
    pub(crate) fn zeros(n: usize) -> Self {
        if n < MIN_POOLED {
            return Scratch(vec![0.0; n]);
        }
        match Scratch::take(n) {
            Some(mut s) => {
                s.0.clear();
                s.0.resize(n, 0.0);
                s
            }
            None => Scratch(vec![0.0; n]),
        }
    }
}

impl Scratch {
    /// `n` floats whose values are unspecified (zeros or what a pooled buffer last held), for
    /// a buffer that is written in full before it is read: it skips the zeroing.
    pub(crate) fn for_overwrite(n: usize) -> Self {
        if n < MIN_POOLED {
            return Scratch(vec![0.0; n]);
        }
        let mut s = Scratch::take(n).unwrap_or_else(|| Scratch(vec![0.0; n]));
        if s.0.len() >= n {
            s.0.truncate(n);
        } else {
            s.0.resize(n, 0.0);
        }
        s
    }

    /// The smallest pooled buffer with room for `n`, as it was left.
    fn take(n: usize) -> Option<Self> {
        let mut p = pool();
        let best = p
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        best.map(|i| Scratch(p.swap_remove(i)))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() < MIN_POOLED {
            return;
        }
        let mut p = pool();
        let held: usize = p.iter().map(Vec::capacity).sum();
        if held + v.capacity() <= MAX_POOLED {
            p.push(v);
        }
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_and_reused() {
        let mut a = Scratch::zeros(10_000);
        a.iter_mut().for_each(|x| *x = 7.0);
        drop(a);
        // Whatever buffer comes back (the pool is shared with other tests), it holds zeros.
        let b = Scratch::zeros(9_000);
        assert!(b.iter().all(|&x| x == 0.0) && b.len() == 9_000);
        drop(b);
        let c = Scratch::for_overwrite(5_000);
        assert_eq!(c.len(), 5_000);
        let small = Scratch::zeros(3);
        assert_eq!(&*small, &[0.0; 3]);
    }
}
