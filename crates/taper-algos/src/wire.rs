//! The encoding of what data blocks send each other between processes: CBOR (RFC 8949).
//!
//! CBOR writes every float with its exact bits, NaN, the infinities and negative zero
//! included (JSON has no spelling for the first three), so a diverged loss or a NaN measurement
//! arrives as itself, and the receiving process reports it like the sending one. It is also
//! self-describing, so an env's JSON snapshot travels inside a block's state unchanged (as
//! long as no map key is longer than 4 KiB, the decoder's limit for a key).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{AlgoError, Result};

/// `value`'s bytes; `what` names it in the error.
pub(crate) fn to_bytes<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|e| AlgoError::Link(format!("encoding {what}: {e}")))?;
    Ok(bytes)
}

/// The value `to_bytes` wrote; `what` names it in the error.
pub(crate) fn from_bytes<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|e| AlgoError::Link(format!("decoding {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn round_trip<T: Serialize + DeserializeOwned>(v: &T) -> T {
        from_bytes(&to_bytes(v, "a test value").unwrap(), "a test value").unwrap()
    }

    #[test]
    fn every_float_arrives_with_its_bits() {
        let f64s = [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            0.1 + 0.2,
            f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            1.5,
            -1e300,
        ];
        for (a, b) in f64s.iter().zip(round_trip(&f64s.to_vec())) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a}");
        }
        let f32s = [f32::NAN, f32::INFINITY, -0.0, 0.1, f32::MIN_POSITIVE / 7.0, 3.0e38];
        for (a, b) in f32s.iter().zip(round_trip(&f32s.to_vec())) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a}");
        }
    }

    #[test]
    fn streams_and_json_snapshots_pass_unchanged() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let _: u64 = rand::Rng::random(&mut rng);
        assert_eq!(round_trip(&rng), rng);
        let snap = serde_json::json!({"state": [1.5, -2, 3e-310], "name": "CartPole-v1", "t": 18446744073709551615u64, "none": null});
        assert_eq!(round_trip(&snap), snap);
    }

    #[test]
    fn bad_bytes_are_a_link_error() {
        let e = from_bytes::<Vec<f64>>(&[0xff, 0x00], "a block's state").unwrap_err();
        assert!(
            matches!(&e, AlgoError::Link(m) if m.starts_with("decoding a block's state")),
            "{e}"
        );
    }
}
