//! D³S (dynamic dual-level down-sampling): learn from the samples and tokens that carry the
//! most signal.
//!
//! - **Sample level:** keep the subset of size m whose advantages have the largest variance.
//!   For any list of numbers a largest-variance subset of size m is always some k smallest
//!   plus m − k largest, so sorting once and trying every k with prefix sums finds it exactly
//!   in O(n log n) ([`max_variance_subset`]; checked against all subsets in the tests).
//!   Intra-group: per group ([`select_intra_group`]); cross-group: over the pooled batch,
//!   without renormalising ([`select_cross_group`], the paper's default).
//! - **Token level:** among the kept samples' valid tokens keep the top K% by |A|·H, the
//!   advantage magnitude times the policy's entropy at that token ([`token_mask`]).
//! - **Schedule:** `(N, K)` move linearly from aggressive to relaxed over training
//!   ([`Schedule`]). The paper gives no values; the defaults here are the project's choice
//!   (documented with the learner).

use crate::error::{AlgoError, Result};
use serde::{Deserialize, Serialize};

/// The indices (ascending) of a subset of `m` values with the largest variance; ties go to
/// the smallest k (fewest low values). `m` is clamped to `values.len()`.
pub fn max_variance_subset(values: &[f32], m: usize) -> Vec<usize> {
    let n = values.len();
    let m = m.min(n);
    if m == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let sorted: Vec<f64> = order.iter().map(|&i| values[i] as f64).collect();
    // Prefix sums of values and squares.
    let (mut s, mut q) = (vec![0f64; n + 1], vec![0f64; n + 1]);
    for i in 0..n {
        s[i + 1] = s[i] + sorted[i];
        q[i + 1] = q[i] + sorted[i] * sorted[i];
    }
    let (mut best_k, mut best_var) = (0, 0f64);
    for k in 0..=m {
        // k smallest: sorted[..k]; m − k largest: sorted[n − (m − k)..].
        let hi = n - (m - k);
        let sum = s[k] + (s[n] - s[hi]);
        let sq = q[k] + (q[n] - q[hi]);
        let mean = sum / m as f64;
        let var = sq / m as f64 - mean * mean;
        if k == 0 || var > best_var + 1e-12 * (1.0 + best_var.abs()) {
            (best_k, best_var) = (k, var);
        }
    }
    let mut pick: Vec<usize> = order[..best_k]
        .iter()
        .chain(&order[n - (m - best_k)..])
        .copied()
        .collect();
    pick.sort_unstable();
    pick
}

/// Intra-group selection: from each group of `g` rows keep `m` by [`max_variance_subset`];
/// returns the kept row indices, ascending.
pub fn select_intra_group(adv: &[f32], g: usize, m: usize) -> Result<Vec<usize>> {
    let groups = super::check_groups(adv.len(), g)?;
    let mut out = Vec::with_capacity(groups * m.min(g));
    for (gi, grp) in adv.chunks(g).enumerate() {
        out.extend(max_variance_subset(grp, m).into_iter().map(|i| gi * g + i));
    }
    Ok(out)
}

/// Cross-group selection: keep `m` rows of the whole batch by [`max_variance_subset`] over
/// the pooled (already group-normalised) advantages.
pub fn select_cross_group(adv: &[f32], m: usize) -> Vec<usize> {
    max_variance_subset(adv, m)
}

/// The token mask of the top `keep` fraction (0–1] of the valid tokens of the `rows` by the
/// score |A_row|·H (`entropy` and `mask` are `[B × T]`, row-major; `adv` is per row). Returns
/// a `[B × T]` mask with 1 on kept tokens; at least one token is kept when any is valid; ties
/// go to the earlier token.
pub fn token_mask(adv: &[f32], entropy: &[f32], mask: &[f32], t: usize, rows: &[usize], keep: f64) -> Result<Vec<f32>> {
    if t == 0 || entropy.len() != mask.len() || mask.len() != adv.len() * t {
        return Err(AlgoError::Config {
            field: "token_mask",
            reason: format!(
                "{} advantages, {} entropies and {} mask values do not make rows of {t} tokens",
                adv.len(),
                entropy.len(),
                mask.len()
            ),
        });
    }
    if !(keep > 0.0 && keep <= 1.0) {
        return Err(AlgoError::Config {
            field: "token_keep",
            reason: format!("the kept fraction must be in (0, 1], got {keep}"),
        });
    }
    let mut cand: Vec<(f32, usize)> = Vec::new();
    for &r in rows {
        for j in 0..t {
            let i = r * t + j;
            if mask[i] > 0.0 {
                cand.push((adv[r].abs() * entropy[i], i));
            }
        }
    }
    let n_keep = ((cand.len() as f64 * keep).ceil() as usize).min(cand.len());
    cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out = vec![0f32; mask.len()];
    for &(_, i) in &cand[..n_keep] {
        out[i] = 1.0;
    }
    Ok(out)
}

/// D³S's linear schedule: at training progress p ∈ [0, 1] the kept sample fraction is
/// `(1 − p)·samples_init + p·samples_final` and the kept token fraction likewise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Fraction of samples kept at the start.
    pub samples_init: f64,
    /// Fraction of samples kept at the end.
    pub samples_final: f64,
    /// Fraction of tokens kept at the start.
    pub tokens_init: f64,
    /// Fraction of tokens kept at the end.
    pub tokens_final: f64,
}

impl Default for Schedule {
    /// The project's defaults (the paper publishes none): from a quarter of the samples and a
    /// fifth of their tokens to all samples and tokens.
    fn default() -> Self {
        Schedule {
            samples_init: 0.25,
            samples_final: 1.0,
            tokens_init: 0.2,
            tokens_final: 1.0,
        }
    }
}

impl Schedule {
    /// Checks every fraction is in (0, 1].
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("d3s.samples_init", self.samples_init),
            ("d3s.samples_final", self.samples_final),
            ("d3s.tokens_init", self.tokens_init),
            ("d3s.tokens_final", self.tokens_final),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(AlgoError::Config {
                    field: "d3s",
                    reason: format!("{name} must be in (0, 1], got {v}"),
                });
            }
        }
        Ok(())
    }

    /// `(samples kept of n, token fraction kept)` at progress `p` (clamped to [0, 1]); at least
    /// 2 samples (a variance needs two) and at most n.
    pub fn at(&self, p: f64, n: usize) -> (usize, f64) {
        let p = p.clamp(0.0, 1.0);
        let frac = (1.0 - p) * self.samples_init + p * self.samples_final;
        let m = ((frac * n as f64).round() as usize).clamp(2.min(n), n);
        (m, (1.0 - p) * self.tokens_init + p * self.tokens_final)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn var(x: &[f64]) -> f64 {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64
    }

    /// The largest variance over all subsets of size m, by enumeration.
    fn brute(values: &[f32], m: usize) -> f64 {
        let n = values.len();
        let mut best = f64::NEG_INFINITY;
        for bits in 0u32..(1 << n) {
            if bits.count_ones() as usize != m {
                continue;
            }
            let s: Vec<f64> = (0..n)
                .filter(|i| bits >> i & 1 == 1)
                .map(|i| values[i] as f64)
                .collect();
            best = best.max(var(&s));
        }
        best
    }

    proptest! {
        /// The O(n log n) selection reaches the largest variance of all subsets of size m.
        #[test]
        fn selection_matches_brute_force(
            values in proptest::collection::vec(-3.0f32..3.0, 1..11),
            m_frac in 0.0f64..1.0,
            binary in any::<bool>(),
        ) {
            let values: Vec<f32> = if binary { values.iter().map(|v| (*v > 0.0) as u8 as f32).collect() } else { values };
            let n = values.len();
            let m = ((m_frac * n as f64).floor() as usize).clamp(1, n);
            let pick = max_variance_subset(&values, m);
            prop_assert_eq!(pick.len(), m);
            prop_assert!(pick.windows(2).all(|w| w[0] < w[1]));
            let got = var(&pick.iter().map(|&i| values[i] as f64).collect::<Vec<_>>());
            let want = brute(&values, m);
            prop_assert!((got - want).abs() <= 1e-9 * (1.0 + want), "{} vs {}", got, want);
        }
    }

    #[test]
    fn selections_by_hand() {
        // Binary advantages: the most balanced subset.
        let a = [1.0, 1.0, 1.0, -1.0, 1.0, -1.0];
        let p = max_variance_subset(&a, 4);
        assert_eq!(p.iter().filter(|&&i| a[i] < 0.0).count(), 2);
        // Extremes win: from [−2, −1, 0, 1, 2] keep {−2, 2} for m = 2, {−2, −1, 2} or its
        // mirror for m = 3 (ties go to fewer low values: {−2, 1, 2}).
        assert_eq!(max_variance_subset(&[-2.0, -1.0, 0.0, 1.0, 2.0], 2), vec![0, 4]);
        assert_eq!(max_variance_subset(&[-2.0, -1.0, 0.0, 1.0, 2.0], 3), vec![0, 3, 4]);
        // Intra-group keeps m per group (one low and one high here); a uniform group (A ≡ 0)
        // keeps m too, at zero variance.
        let adv = [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(select_intra_group(&adv, 4, 2).unwrap(), vec![1, 3, 6, 7]);
        // Cross-group pools: the zeros sit at the centre and are dropped.
        assert_eq!(select_cross_group(&adv, 4), vec![0, 1, 2, 3]);
        assert!(select_intra_group(&adv, 3, 2).is_err());
    }

    #[test]
    fn token_mask_by_hand() {
        // Two rows of 3 tokens, the second row's last token padding.
        let adv = [1.0, -2.0];
        let ent = [0.5, 0.1, 0.3, 0.2, 0.4, 9.0];
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        // Scores: row 0: 0.5, 0.1, 0.3; row 1: 0.4, 0.8 (the padded 18.0 is not a candidate).
        let m = token_mask(&adv, &ent, &mask, 3, &[0, 1], 0.4).unwrap();
        assert_eq!(m, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]); // ceil(0.4 × 5) = 2 tokens
        let only0 = token_mask(&adv, &ent, &mask, 3, &[0], 1.0).unwrap();
        assert_eq!(only0, vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        assert!(token_mask(&adv, &ent, &mask, 3, &[0], 0.0).is_err());
        assert!(token_mask(&adv, &ent[..5], &mask, 3, &[0], 0.5).is_err());
    }

    #[test]
    fn schedule_interpolates() {
        let s = Schedule::default();
        assert_eq!(s.at(0.0, 16), (4, 0.2));
        assert_eq!(s.at(1.0, 16), (16, 1.0));
        let (m, k) = s.at(0.5, 16);
        assert_eq!(m, 10); // 0.625 × 16
        assert!((k - 0.6).abs() < 1e-12);
        assert_eq!(s.at(0.0, 4).0, 2, "at least two samples");
        assert!(Schedule { tokens_init: 0.0, ..s }.validate().is_err());
    }
}
