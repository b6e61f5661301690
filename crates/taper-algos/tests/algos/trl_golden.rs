//! GRPO's per-token loss and its four aggregations against TRL's own code: the golden file is
//! written by `benches/peers/grpo_golden_trl.py`, which runs `trl.GRPOTrainer._compute_loss`
//! (TRL 0.24.0) on fixed log-probabilities, old and reference log-probabilities, advantages and
//! masks, and records the loss and its gradient with respect to every token's log-probability.
#![allow(clippy::needless_range_loop)] // one index over six parallel arrays reads best

use taper_algos::group::token_loss::{aggregation_weights, token_loss, LossType, TokenLossConfig};

#[derive(serde::Deserialize)]
struct Case {
    loss_type: String,
    eps_low: f32,
    eps_high: f32,
    beta: f32,
    max_completion_length: usize,
    t: usize,
    logp: Vec<f32>,
    old_logp: Vec<f32>,
    ref_logp: Vec<f32>,
    adv: Vec<f32>,
    mask: Vec<f32>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct Golden {
    trl_version: String,
    cases: Vec<Case>,
}

#[test]
fn losses_and_gradients_equal_trls() {
    let g: Golden = serde_json::from_str(include_str!("../data/trl_grpo_golden.json")).unwrap();
    assert_eq!(g.trl_version, "0.24.0");
    assert_eq!(g.cases.len(), 8, "every loss type, with and without clip-higher and KL");
    for c in &g.cases {
        let lt: LossType = c.loss_type.parse().unwrap();
        let cfg = TokenLossConfig {
            eps_low: c.eps_low,
            eps_high: c.eps_high,
            beta: c.beta,
        };
        let w = aggregation_weights(lt, &c.mask, c.t, c.max_completion_length, None).unwrap();
        let (mut loss, mut clipped) = (0f64, 0);
        for i in 0..c.logp.len() {
            let r = (c.beta > 0.0).then_some(c.ref_logp[i]);
            let tl = token_loss(&cfg, c.logp[i], c.old_logp[i], r, c.adv[i / c.t]);
            loss += (w[i] * tl.loss) as f64;
            clipped += (tl.clipped && c.mask[i] > 0.0) as usize;
            let grad = (w[i] * tl.dlogp) as f64;
            assert!(
                (grad - c.grad[i]).abs() <= 1e-6 * (1.0 + c.grad[i].abs()),
                "{} β={} token {i}: gradient {grad} vs TRL {}",
                c.loss_type,
                c.beta,
                c.grad[i]
            );
        }
        assert!(
            (loss - c.loss).abs() <= 1e-6 * (1.0 + c.loss.abs()),
            "{} β={}: loss {loss} vs TRL {}",
            c.loss_type,
            c.beta,
            c.loss
        );
        assert!(clipped > 0, "{}: the case exercises the clip", c.loss_type);
    }
}
