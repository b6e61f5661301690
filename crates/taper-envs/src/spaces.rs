//! Observation and action spaces, as Gymnasium's `Discrete`, `Box` and `MultiDiscrete`.
//!
//! ```
//! use taper_envs::spaces::Space;
//! let s = Space::Discrete { n: 2 };
//! assert!(s.contains_discrete(1) && !s.contains_discrete(2));
//! let b = Space::boxed(vec![-2.0], vec![2.0])?;
//! assert_eq!(b.flat_dim(), 1);
//! assert!(Space::boxed(vec![0.0], vec![1.0, 2.0]).is_err());
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A space of observations or actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// `{0, 1, …, n−1}`.
    Discrete {
        /// Number of elements.
        n: usize,
    },
    /// A box `[low, high]` of f32 vectors (bounds may be infinite).
    Box {
        /// Lower bounds.
        #[serde(with = "bounds")]
        low: Vec<f32>,
        /// Upper bounds.
        #[serde(with = "bounds")]
        high: Vec<f32>,
    },
    /// A vector of independent discrete choices, `nvec[i]` options each.
    MultiDiscrete {
        /// Options per component.
        nvec: Vec<usize>,
    },
}

impl Space {
    /// A box space from bounds; an error unless `low` and `high` have the same length, no
    /// NaN, and `low <= high` everywhere.
    pub fn boxed(low: Vec<f32>, high: Vec<f32>) -> crate::Result<Self> {
        let s = Space::Box { low, high };
        s.validate()?;
        Ok(s)
    }
    /// Checks a space's own consistency (as built by hand or read from JSON): a `Discrete` of
    /// at least one element, box bounds of equal length without NaN and with `low <= high`,
    /// `MultiDiscrete` components of at least one option.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |reason: String| Err(crate::EnvError::Invalid { name: "space", reason });
        match self {
            Space::Discrete { n: 0 } => bad("Discrete needs at least one element".into()),
            Space::Box { low, high } if low.len() != high.len() => bad(format!(
                "Box bounds differ in length: {} lower, {} upper",
                low.len(),
                high.len()
            )),
            Space::Box { low, high } => match low.iter().zip(high).position(|(l, h)| !(l <= h)) {
                Some(i) => bad(format!("Box bound {i}: low {} is not <= high {}", low[i], high[i])),
                None => Ok(()),
            },
            Space::MultiDiscrete { nvec } if nvec.contains(&0) => {
                bad("MultiDiscrete components need at least one option".into())
            }
            _ => Ok(()),
        }
    }
    /// A box with the same bounds in every one of `dim` dimensions.
    pub fn uniform_box(dim: usize, low: f32, high: f32) -> Self {
        Space::Box {
            low: vec![low; dim],
            high: vec![high; dim],
        }
    }
    /// Width of one element as a flat f32 vector: 1 for `Discrete` (the index; observations
    /// are one-hot encoded by the learner, see [`Space::encoded_dim`]), the box width, or the
    /// number of components.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::Box { low, .. } => low.len(),
            Space::MultiDiscrete { nvec } => nvec.len(),
        }
    }
    /// Width of an observation as a network input: `n` for `Discrete` (one-hot), the sum of
    /// `nvec` for `MultiDiscrete`, the width for `Box`.
    pub fn encoded_dim(&self) -> usize {
        match self {
            Space::Discrete { n } => *n,
            Space::Box { low, .. } => low.len(),
            Space::MultiDiscrete { nvec } => nvec.iter().sum(),
        }
    }
    /// Whether a discrete value is in this (discrete) space.
    pub fn contains_discrete(&self, a: i64) -> bool {
        matches!(self, Space::Discrete { n } if a >= 0 && (a as usize) < *n)
    }
    /// Whether a flat vector is in this space (finite and within bounds for `Box`, integral
    /// and in range for the discrete spaces).
    pub fn contains(&self, x: &[f32]) -> bool {
        match self {
            Space::Discrete { n } => x.len() == 1 && x[0].fract() == 0.0 && x[0] >= 0.0 && (x[0] as usize) < *n,
            Space::Box { low, high } => {
                x.len() == low.len()
                    && x.iter()
                        .zip(low.iter().zip(high))
                        .all(|(v, (l, h))| !v.is_nan() && v >= l && v <= h)
            }
            Space::MultiDiscrete { nvec } => {
                x.len() == nvec.len()
                    && x.iter()
                        .zip(nvec)
                        .all(|(v, n)| v.fract() == 0.0 && *v >= 0.0 && (*v as usize) < *n)
            }
        }
    }
    /// A uniform sample written as a flat vector (unbounded box dimensions draw from N(0,1),
    /// as Gymnasium does).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        match self {
            Space::Discrete { n } => out[0] = rng.random_range(0..*n) as f32,
            Space::Box { low, high } => {
                for i in 0..low.len() {
                    let (l, h) = (low[i], high[i]);
                    out[i] = if l.is_finite() && h.is_finite() {
                        rng.random_range(l..=h)
                    } else {
                        let z: f32 = rand_normal(rng);
                        if l.is_finite() {
                            l + z.abs()
                        } else if h.is_finite() {
                            h - z.abs()
                        } else {
                            z
                        }
                    };
                }
            }
            Space::MultiDiscrete { nvec } => {
                for (o, n) in out.iter_mut().zip(nvec) {
                    *o = rng.random_range(0..*n) as f32;
                }
            }
        }
    }
}

fn rand_normal<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    // Box–Muller; one value.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Space::Discrete { n } => write!(f, "Discrete({n})"),
            Space::Box { low, high } => write!(f, "Box(low={low:?}, high={high:?})"),
            Space::MultiDiscrete { nvec } => write!(f, "MultiDiscrete({nvec:?})"),
        }
    }
}

/// Box bounds in JSON: finite values as numbers, infinities as the strings `"inf"` and
/// `"-inf"` (JSON has no infinity).
mod bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Num(f32),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let out: Vec<Bound> = v
            .iter()
            .map(|&x| {
                if x == f32::INFINITY {
                    Bound::Text("inf".into())
                } else if x == f32::NEG_INFINITY {
                    Bound::Text("-inf".into())
                } else {
                    Bound::Num(x)
                }
            })
            .collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let v = Vec::<Bound>::deserialize(d)?;
        v.into_iter()
            .map(|b| match b {
                Bound::Num(x) => Ok(x),
                Bound::Text(t) if t == "inf" => Ok(f32::INFINITY),
                Bound::Text(t) if t == "-inf" => Ok(f32::NEG_INFINITY),
                Bound::Text(t) => Err(serde::de::Error::custom(format!("bad bound `{t}`"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinite_bounds_round_trip_through_json() {
        let s = Space::boxed(vec![f32::NEG_INFINITY, 0.0], vec![f32::INFINITY, 2.5]).unwrap();
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains("\"-inf\""), "{j}");
        let back: Space = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn inconsistent_spaces_are_errors() {
        assert!(Space::boxed(vec![0.0], vec![1.0, 2.0]).is_err());
        assert!(Space::boxed(vec![1.0], vec![0.0]).is_err());
        assert!(Space::boxed(vec![f32::NAN], vec![0.0]).is_err());
        assert!(Space::Discrete { n: 0 }.validate().is_err());
        assert!(Space::MultiDiscrete { nvec: vec![2, 0] }.validate().is_err());
        let j = r#"{"Box":{"low":[0.0],"high":[1.0,2.0]}}"#;
        let s: Space = serde_json::from_str(j).unwrap();
        assert!(s.validate().is_err());
    }
}
