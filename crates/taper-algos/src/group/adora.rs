//! ADORA: weight each group's advantages by whether the prompt is, for now, advantageous.
//!
//! Two criteria per group (scores and completion lengths of its G rollouts):
//! - **length advantage:** the longest successful rollout is longer than the mean length of
//!   the failed ones, counting only failed rollouts shorter than the length threshold (the
//!   published code leaves out truncated ones); false when nothing succeeded or nothing
//!   counted as failed;
//! - **difficulty advantage:** the success rate is at most τ (0.5).
//!
//! Two published weightings ([`AdoraMode`]): the authors' code attenuates groups without a
//! length advantage by λ = 0.1 (the default here); the paper's LLM variant amplifies
//! advantageous groups (length and difficulty advantage) by 2.0. The weight multiplies the
//! group's advantages after group normalisation, so it never changes a sign.

use serde::{Deserialize, Serialize};

/// Which weighting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum AdoraMode {
    /// Groups without a length advantage get weight λ; others 1 (the authors' code).
    Attenuate {
        /// λ (0.1 published).
        lambda: f32,
    },
    /// Groups with both a length and a difficulty advantage get `weight`; others 1 (the
    /// paper's LLM variant).
    Amplify {
        /// The weight (2.0 published).
        weight: f32,
    },
}

/// ADORA's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adora {
    /// The weighting.
    pub mode: AdoraMode,
    /// A rollout succeeds when its score is above this (0.5 for 0/1 rewards).
    pub correct_above: f32,
    /// Failed rollouts this long or longer (truncated ones) are left out of the mean failed
    /// length; `None`: none are.
    pub max_length: Option<usize>,
    /// τ: the difficulty advantage holds at a success rate of at most τ (0.5).
    pub tau: f32,
}

impl Default for Adora {
    fn default() -> Self {
        Adora {
            mode: AdoraMode::Attenuate { lambda: 0.1 },
            correct_above: 0.5,
            max_length: None,
            tau: 0.5,
        }
    }
}

/// One group's classification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupClass {
    /// The length advantage.
    pub length_advantage: bool,
    /// The success rate.
    pub success_rate: f32,
    /// The difficulty advantage (success rate ≤ τ).
    pub difficulty_advantage: bool,
}

impl Adora {
    /// Classifies one group from its rollouts' scores and lengths.
    pub fn classify(&self, scores: &[f32], lengths: &[usize]) -> GroupClass {
        let mut longest_success: Option<usize> = None;
        let (mut fail_sum, mut fail_n) = (0f64, 0usize);
        let mut succ = 0usize;
        for (&s, &l) in scores.iter().zip(lengths) {
            if s > self.correct_above {
                succ += 1;
                longest_success = Some(longest_success.map_or(l, |m| m.max(l)));
            } else if self.max_length.is_none_or(|m| l < m) {
                fail_sum += l as f64;
                fail_n += 1;
            }
        }
        let length_advantage = match longest_success {
            Some(l) if fail_n > 0 => l as f64 > fail_sum / fail_n as f64,
            _ => false,
        };
        let success_rate = succ as f32 / scores.len().max(1) as f32;
        GroupClass {
            length_advantage,
            success_rate,
            difficulty_advantage: success_rate <= self.tau,
        }
    }

    /// The weight of a group of this class.
    pub fn weight(&self, c: &GroupClass) -> f32 {
        match self.mode {
            AdoraMode::Attenuate { lambda } => {
                if c.length_advantage {
                    1.0
                } else {
                    lambda
                }
            }
            AdoraMode::Amplify { weight } => {
                if c.length_advantage && c.difficulty_advantage {
                    weight
                } else {
                    1.0
                }
            }
        }
    }

    /// Multiplies each group's advantages (`[prompts × g]`) by its weight; returns the classes.
    pub fn apply(
        &self,
        adv: &mut [f32],
        scores: &[f32],
        lengths: &[usize],
        g: usize,
    ) -> crate::Result<Vec<GroupClass>> {
        super::check_groups(adv.len(), g)?;
        if scores.len() != adv.len() || lengths.len() != adv.len() {
            return Err(crate::AlgoError::Config {
                field: "adora",
                reason: format!(
                    "{} advantages, {} scores and {} lengths differ",
                    adv.len(),
                    scores.len(),
                    lengths.len()
                ),
            });
        }
        let mut classes = Vec::with_capacity(adv.len() / g);
        for ((a, s), l) in adv.chunks_mut(g).zip(scores.chunks(g)).zip(lengths.chunks(g)) {
            let c = self.classify(s, l);
            let w = self.weight(&c);
            a.iter_mut().for_each(|x| *x *= w);
            classes.push(c);
        }
        Ok(classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constructed groups of four rollouts, scores 0/1.
    #[test]
    fn classification_of_constructed_groups() {
        let a = Adora::default();
        // Successes of lengths 5 and 9; failures of lengths 4 and 6 (mean 5): 9 > 5.
        let c = a.classify(&[1.0, 1.0, 0.0, 0.0], &[5, 9, 4, 6]);
        assert!(c.length_advantage && c.difficulty_advantage);
        assert_eq!(c.success_rate, 0.5);
        // Longest success 5, failures mean 7: no length advantage; 3 of 4 succeed: not hard.
        let c = a.classify(&[1.0, 1.0, 1.0, 0.0], &[3, 5, 4, 7]);
        assert!(!c.length_advantage && !c.difficulty_advantage);
        // No success: no length advantage. No failure: none either.
        assert!(!a.classify(&[0.0; 4], &[1, 2, 3, 4]).length_advantage);
        assert!(!a.classify(&[1.0; 4], &[1, 2, 3, 4]).length_advantage);
        // A truncated failure (length ≥ threshold) is left out of the mean: 6 > mean(4) only then.
        let t = Adora {
            max_length: Some(10),
            ..a
        };
        assert!(!a.classify(&[1.0, 0.0, 0.0], &[6, 4, 10]).length_advantage); // mean 7
        assert!(t.classify(&[1.0, 0.0, 0.0], &[6, 4, 10]).length_advantage); // mean 4
    }

    #[test]
    fn weights_follow_the_mode() {
        let att = Adora::default();
        let amp = Adora {
            mode: AdoraMode::Amplify { weight: 2.0 },
            ..att
        };
        let mut adv = vec![1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -3.0];
        let scores = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let lengths = [5, 9, 4, 6, 3, 5, 4, 7];
        let mut a2 = adv.clone();
        let classes = att.apply(&mut adv, &scores, &lengths, 4).unwrap();
        assert_eq!(adv, vec![1.0, 1.0, -1.0, -1.0, 0.1, 0.1, 0.1, -0.3]);
        amp.apply(&mut a2, &scores, &lengths, 4).unwrap();
        assert_eq!(a2, vec![2.0, 2.0, -2.0, -2.0, 1.0, 1.0, 1.0, -3.0]);
        assert_eq!(classes.len(), 2);
        assert!(att.apply(&mut [0.0; 4], &scores, &lengths, 4).is_err());
    }
}
