//! Seeded random streams.
//!
//! candle's CPU random number generator cannot be seeded, so every random number in taper
//! comes from a [`rand_chacha::ChaCha8Rng`] that the caller passes explicitly. A run's seed is
//! split into independent streams, one per purpose (initialisation, action sampling,
//! minibatch shuffling, each environment), so adding a consumer of randomness to one part of
//! a program does not shift the numbers another part sees.
//!
//! ```
//! use taper_tensor::rng::{stream, Purpose};
//! use rand::Rng;
//! let mut a = stream(7, Purpose::Init, 0);
//! let mut b = stream(7, Purpose::Init, 0);
//! assert_eq!(a.random::<u64>(), b.random::<u64>());
//! ```

use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; part of the stream's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Network initialisation.
    Init,
    /// Sampling actions during rollouts.
    Action,
    /// Shuffling minibatches.
    Shuffle,
    /// Environment dynamics and resets.
    Env,
    /// Evaluation episodes.
    Eval,
    /// Anything else, with a caller-chosen tag.
    Other(u32),
}

impl Purpose {
    fn tag(self) -> u64 {
        match self {
            Purpose::Init => 1,
            Purpose::Action => 2,
            Purpose::Shuffle => 3,
            Purpose::Env => 4,
            Purpose::Eval => 5,
            Purpose::Other(t) => 0x1000 + t as u64,
        }
    }
}

/// SplitMix64's finaliser: a bijective mixing of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives the 64-bit seed of the stream `(seed, purpose, index)`.
pub fn derive_seed(seed: u64, purpose: Purpose, index: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ purpose.tag()) ^ index)
}

/// An independent generator for `(seed, purpose, index)`.
pub fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, purpose, index))
}
