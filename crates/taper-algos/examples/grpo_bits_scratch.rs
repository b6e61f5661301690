use std::hash::{Hash, Hasher};
use taper_algos::group::token_loss::LossType;
use taper_algos::prelude::*;
fn main() {
    let base = GrpoConfig {
        sft_steps: 100,
        sft_batch: 16,
        sft_target_accuracy: 1.0,
        prompts_per_step: 4,
        num_generations: 8,
        eval_every: 2,
        eval_prompts: 16,
        learning_rate: 1e-3,
        ..GrpoConfig::default()
    };
    let variants: Vec<(&str, GrpoConfig)> = vec![
        ("grpo", base.clone()),
        (
            "dr",
            GrpoConfig {
                loss_type: LossType::DrGrpo,
                scale_rewards: taper_algos::group::advantage::ScaleRewards::None,
                beta: 0.04,
                ..base.clone()
            },
        ),
        (
            "dapo",
            GrpoConfig {
                dapo: true,
                ..base.clone()
            },
        ),
        (
            "bnpo_d3s",
            GrpoConfig {
                loss_type: LossType::Bnpo,
                d3s: true,
                ..base.clone()
            },
        ),
        (
            "d3s_intra_adora",
            GrpoConfig {
                d3s: true,
                d3s_cross_group: false,
                adora: true,
                ..base.clone()
            },
        ),
        (
            "target",
            GrpoConfig {
                step_radius_target: Some(0.5),
                ..base.clone()
            },
        ),
    ];
    for (name, c) in variants {
        let mut g = Grpo::new(c, "SeqCopy-v0", &Kwargs::new(), 7).unwrap();
        g.plan(8 * 32).unwrap();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        while !g.is_done() {
            let m = g.step().unwrap();
            for (k, v) in m.entries() {
                if k != "sps" && k != "time_elapsed" {
                    k.hash(&mut h);
                    v.to_bits().hash(&mut h);
                }
            }
        }
        let st = g.export().unwrap();
        let mut names: Vec<_> = st.tensors.iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (n, t) in names {
            n.hash(&mut h);
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            for x in v {
                x.to_bits().hash(&mut h);
            }
        }
        st.algo_state.to_string().hash(&mut h);
        println!("{name} {:016x} {}", h.finish(), g.summary());
    }
}
