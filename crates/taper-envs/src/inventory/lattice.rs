//! The integer states of one store whose inventory position is at most a bound: vectors
//! `x ∈ ℕ^d` with `x_0 + … + x_{d−1} ≤ cap`, numbered in lexicographic order (the last
//! coordinate fastest), so that the states differing only in the last coordinate are
//! neighbours in memory.
//!
//! There are `C(cap + d, d)` of them; [`Lattice::rank`] numbers one in `O(d)` from the table
//! of those counts.

use crate::error::{EnvError, Result};

/// The states `x ∈ ℕ^dims` with `Σx ≤ cap`, in lexicographic order.
#[derive(Debug, Clone)]
pub struct Lattice {
    dims: usize,
    cap: usize,
    /// `count[m][r]`: vectors of length m with sum ≤ r, `C(r + m, m)`.
    count: Vec<Vec<usize>>,
    /// Every state's coordinates, `dims` per state.
    coords: Vec<u16>,
}

impl Lattice {
    /// The lattice, or an error if it would hold more than `max_states` states.
    pub fn new(dims: usize, cap: usize, max_states: usize) -> Result<Self> {
        if dims == 0 || cap >= u16::MAX as usize {
            return Err(EnvError::Invalid {
                name: "lattice",
                reason: format!("needs 1 or more dimensions and a cap below 65535, got {dims} and {cap}"),
            });
        }
        let mut count = vec![vec![1usize; cap + 1]; dims + 1];
        for m in 1..=dims {
            let mut acc = 0usize;
            for r in 0..=cap {
                acc = acc.saturating_add(count[m - 1][r]);
                count[m][r] = acc;
            }
        }
        let n = count[dims][cap];
        if n > max_states {
            return Err(EnvError::Invalid {
                name: "max_states",
                reason: format!(
                    "{n} states (inventory position up to {cap} over {dims} slots) exceed the limit of {max_states}"
                ),
            });
        }
        let mut coords = Vec::with_capacity(n * dims);
        let mut x = vec![0usize; dims];
        'all: loop {
            coords.extend(x.iter().map(|&v| v as u16));
            // Odometer: raise the last coordinate that can rise, zeroing those after it.
            let mut i = dims;
            loop {
                if i == 0 {
                    break 'all;
                }
                i -= 1;
                let sum: usize = x.iter().sum();
                if sum < cap {
                    x[i] += 1;
                    break;
                }
                x[i] = 0;
            }
        }
        debug_assert_eq!(coords.len(), n * dims);
        Ok(Lattice {
            dims,
            cap,
            count,
            coords,
        })
    }

    /// Number of states.
    pub fn len(&self) -> usize {
        self.count[self.dims][self.cap]
    }

    /// Whether there are no states (never: the zero vector is one).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bound on the coordinates' sum.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The coordinates of state `i`.
    pub fn state(&self, i: usize) -> &[u16] {
        &self.coords[i * self.dims..(i + 1) * self.dims]
    }

    /// The number of a state given by its first `dims − 1` coordinates and a last one of 0;
    /// the states with the same first coordinates and last coordinate `q` follow it at `+ q`.
    pub fn rank_prefix(&self, prefix: impl IntoIterator<Item = usize>) -> usize {
        let mut r = self.cap;
        let mut idx = 0;
        for (i, a) in prefix.into_iter().enumerate() {
            let m = self.dims - i;
            debug_assert!(a <= r, "state outside the lattice");
            idx += self.count[m][r] - self.count[m][r - a];
            r -= a;
        }
        idx
    }

    /// The number of the state `x` (`Σx ≤ cap`).
    pub fn rank(&self, x: &[usize]) -> usize {
        self.rank_prefix(x.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_number_the_states_in_order() {
        for (dims, cap) in [(1, 7), (2, 5), (3, 6), (4, 4)] {
            let l = Lattice::new(dims, cap, 1 << 20).unwrap();
            // C(cap + dims, dims)
            let binom = (1..=dims).fold(1usize, |acc, i| acc * (cap + i) / i);
            assert_eq!(l.len(), binom);
            let mut prev: Option<Vec<u16>> = None;
            for i in 0..l.len() {
                let x: Vec<usize> = l.state(i).iter().map(|&v| v as usize).collect();
                assert!(x.iter().sum::<usize>() <= cap);
                assert_eq!(l.rank(&x), i);
                if let Some(p) = &prev {
                    assert!(p.as_slice() < l.state(i), "lexicographic order");
                }
                prev = Some(l.state(i).to_vec());
            }
        }
    }

    #[test]
    fn too_many_states_is_a_typed_error() {
        assert!(Lattice::new(6, 60, 1_000_000).is_err());
        assert!(Lattice::new(0, 3, 10).is_err());
    }
}
