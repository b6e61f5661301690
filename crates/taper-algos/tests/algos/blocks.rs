//! Data blocks: a run of `B` blocks in one process equals, bit for bit, the same run over `B`
//! processes joined by a link. Here the processes are threads joined by an in-memory link, so
//! that the exactness of the learner itself is tested without MPI (the CLI's tests run the
//! same comparison under `mpirun`).

use std::sync::{Arc, Barrier, Mutex};
use taper_algos::blocks::BlockLink;
use taper_algos::prelude::*;
use taper_train::LearnerState;

/// `size` threads as the processes of a run: each gather writes its part, waits for all,
/// reads every part, and waits again before the slots are reused.
#[derive(Debug)]
struct ThreadLink {
    rank: usize,
    shared: Arc<(Barrier, Mutex<Vec<Vec<u8>>>)>,
}

fn links(size: usize) -> Vec<Arc<dyn BlockLink>> {
    let shared = Arc::new((Barrier::new(size), Mutex::new(vec![Vec::new(); size])));
    (0..size)
        .map(|rank| {
            Arc::new(ThreadLink {
                rank,
                shared: shared.clone(),
            }) as Arc<dyn BlockLink>
        })
        .collect()
}

impl BlockLink for ThreadLink {
    fn size(&self) -> usize {
        self.shared.1.lock().unwrap().len()
    }
    fn rank(&self) -> usize {
        self.rank
    }
    fn all_gather(&self, local: &[f32]) -> taper_algos::Result<Vec<f32>> {
        let bytes: Vec<u8> = local.iter().flat_map(|x| x.to_le_bytes()).collect();
        Ok(self
            .all_gather_bytes(&bytes)?
            .iter()
            .flat_map(|p| p.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect())
    }
    fn all_gather_bytes(&self, local: &[u8]) -> taper_algos::Result<Vec<Vec<u8>>> {
        let (barrier, slots) = &*self.shared;
        slots.lock().unwrap()[self.rank] = local.to_vec();
        barrier.wait();
        let all = slots.lock().unwrap().clone();
        barrier.wait();
        Ok(all)
    }
}

/// The metrics rows without their timing columns, and the learner's checkpoint state.
fn train(learner: &mut dyn Learner, steps: u64) -> (Vec<Vec<(String, f64)>>, LearnerState) {
    learner.plan(steps).unwrap();
    let mut rows = Vec::new();
    while !learner.is_done() {
        let row = learner.step().unwrap();
        rows.push(
            row.entries()
                .filter(|(k, _)| !matches!(*k, "sps" | "time_elapsed"))
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
    }
    (rows, learner.export().unwrap())
}

/// The weights as bits, by name.
fn bits(s: &LearnerState) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = s
        .tensors
        .iter()
        .map(|(name, t)| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (name.clone(), v.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    out.sort();
    out
}

/// Trains `make(None)` (every block in this process) and `make(Some(link))` on one thread per
/// block, and checks that every thread ends with the single process's weights, rows and
/// checkpoint state.
fn same_as_one_process(
    blocks: usize,
    steps: u64,
    make: impl Fn(Option<Arc<dyn BlockLink>>) -> Box<dyn Learner> + Sync,
) {
    let (rows, state) = train(&mut *make(None), steps);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = links(blocks)
            .into_iter()
            .map(|link| {
                let make = &make;
                s.spawn(move || train(&mut *make(Some(link)), steps))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rank, (r, st)) in results.iter().enumerate() {
        assert_eq!(bits(st), bits(&state), "process {rank}: weights");
        assert_eq!(r, &rows, "process {rank}: metrics rows");
        assert_eq!(
            st.algo_state, state.algo_state,
            "process {rank}: streams, counters, episodes"
        );
        assert_eq!(st.env_state, state.env_state, "process {rank}: the first block's envs");
    }
}

#[test]
fn ppo_two_blocks_over_two_processes_equal_one_process() {
    let config = PpoConfig {
        num_envs: 8,
        data_blocks: 2,
        ..PpoConfig::default()
    };
    same_as_one_process(2, 3 * 1024, |link| match link {
        None => Box::new(Ppo::new(config.clone(), "CartPole-v1", &Kwargs::new(), 3).unwrap()),
        Some(l) => Box::new(Ppo::data_parallel(config.clone(), "CartPole-v1", &Kwargs::new(), 3, l).unwrap()),
    });
}

#[test]
fn mappo_two_blocks_over_two_processes_equal_one_process() {
    let config = MappoConfig {
        num_envs: 8,
        num_steps: 32,
        data_blocks: 2,
        ..MappoConfig::mappo()
    };
    same_as_one_process(2, 3 * 8 * 32, |link| match link {
        None => Box::new(MaPpo::new(config.clone(), "SimpleSpread-v3", &Kwargs::new(), 5).unwrap()),
        Some(l) => Box::new(MaPpo::data_parallel(config.clone(), "SimpleSpread-v3", &Kwargs::new(), 5, l).unwrap()),
    });
}

#[test]
fn one_block_is_the_ordinary_run_and_two_blocks_are_another() {
    let run = |blocks| {
        let config = PpoConfig {
            num_envs: 8,
            data_blocks: blocks,
            ..PpoConfig::default()
        };
        let mut ppo = Ppo::new(config, "CartPole-v1", &Kwargs::new(), 3).unwrap();
        bits(&train(&mut ppo, 2048).1)
    };
    let plain = {
        let config = PpoConfig {
            num_envs: 8,
            ..PpoConfig::default()
        };
        let mut ppo = Ppo::new(config, "CartPole-v1", &Kwargs::new(), 3).unwrap();
        bits(&train(&mut ppo, 2048).1)
    };
    assert_eq!(run(1), plain);
    assert_ne!(run(2), plain, "two blocks draw other actions and minibatches");
}

#[test]
fn data_blocks_are_checked() {
    let bad = |config: PpoConfig| {
        Ppo::new(config, "CartPole-v1", &Kwargs::new(), 0)
            .unwrap_err()
            .to_string()
    };
    let e = bad(PpoConfig {
        num_envs: 6,
        data_blocks: 4,
        ..PpoConfig::default()
    });
    assert!(
        e.contains("data_blocks") && e.contains("must divide num_envs = 6"),
        "{e}"
    );
    let e = bad(PpoConfig {
        num_envs: 4,
        data_blocks: 2,
        step_radius_target: Some(0.5),
        ..PpoConfig::default()
    });
    assert!(e.contains("step_radius_target"), "{e}");
    let e = Ppo::data_parallel(
        PpoConfig {
            num_envs: 8,
            data_blocks: 4,
            ..PpoConfig::default()
        },
        "CartPole-v1",
        &Kwargs::new(),
        0,
        links(2).remove(0),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("4 data blocks but 2 processes"), "{e}");
    let gru = MaPpo::new(
        MappoConfig {
            data_blocks: 2,
            ..MappoConfig::mappo_gru()
        },
        "SimpleSpread-v3",
        &Kwargs::new(),
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(gru.contains("data blocks need network"), "{gru}");
}

/// A small GRPO config on SeqCopy-v0 at a learning rate that moves the policy within a few
/// iterations, after a short warm start.
fn small_grpo(data_blocks: usize) -> GrpoConfig {
    GrpoConfig {
        learning_rate: 1e-3,
        sft_steps: 100,
        sft_batch: 16,
        sft_target_accuracy: 1.0,
        prompts_per_step: 4,
        num_generations: 8,
        eval_every: 2,
        eval_prompts: 16,
        data_blocks,
        ..GrpoConfig::default()
    }
}

/// GRPO with a KL term to the reference, DAPO with every stage (dynamic sampling, whose
/// refills differ between the blocks, ADORA, and D³S's sample and token selection), Dr. GRPO
/// with per-group D³S, and BNPO with batch-scaled rewards, over two processes (threads here)
/// equal two blocks in one process.
#[test]
fn grpo_two_blocks_over_two_processes_equal_one_process() {
    use taper_algos::group::token_loss::LossType;
    let variants = [
        GrpoConfig {
            beta: 0.04,
            ..small_grpo(2)
        },
        GrpoConfig {
            dapo: true,
            adora: true,
            d3s: true,
            ..small_grpo(2)
        },
        GrpoConfig {
            loss_type: LossType::DrGrpo,
            d3s: true,
            d3s_cross_group: false,
            ..small_grpo(2)
        },
        // Token-normalised, with each block's rewards scaled by the block's deviation.
        GrpoConfig {
            loss_type: LossType::Bnpo,
            scale_rewards: taper_algos::group::advantage::ScaleRewards::Batch,
            ..small_grpo(2)
        },
    ];
    for config in variants {
        same_as_one_process(2, 8 * 32, |link| match link {
            None => Box::new(Grpo::new(config.clone(), "SeqCopy-v0", &Kwargs::new(), 7).unwrap()),
            Some(l) => Box::new(Grpo::data_parallel(config.clone(), "SeqCopy-v0", &Kwargs::new(), 7, l).unwrap()),
        });
    }
}

/// A GRPO run of one block saves no block list (its state is the ordinary run's; the CLI
/// fixture holds its numbers); two blocks sample other prompts, and count every block's
/// completions.
#[test]
fn grpo_two_blocks_are_another_run_of_the_same_budget() {
    let run = |config: GrpoConfig| {
        let mut g = Grpo::new(config, "SeqCopy-v0", &Kwargs::new(), 7).unwrap();
        train(&mut g, 8 * 32)
    };
    let (rows1, one) = run(small_grpo(1));
    let (rows2, two) = run(small_grpo(2));
    assert!(one.algo_state.get("blocks").is_none(), "{}", one.algo_state);
    assert_eq!(two.algo_state["blocks"].as_array().map(Vec::len), Some(1));
    assert_ne!(bits(&one), bits(&two), "two blocks sample other prompts");
    let last = |rows: &[Vec<(String, f64)>], key: &str| rows.last().unwrap().iter().find(|(k, _)| k == key).unwrap().1;
    for rows in [&rows1, &rows2] {
        assert_eq!(last(rows, "global_step"), 256.0);
        assert_eq!(last(rows, "update"), 8.0);
    }
}

#[test]
fn grpo_data_blocks_are_checked() {
    let bad = |config: GrpoConfig| {
        Grpo::new(config, "SeqCopy-v0", &Kwargs::new(), 0)
            .unwrap_err()
            .to_string()
    };
    let e = bad(GrpoConfig {
        prompts_per_step: 6,
        data_blocks: 4,
        ..GrpoConfig::default()
    });
    assert!(e.contains("must divide prompts_per_step = 6"), "{e}");
    let e = bad(GrpoConfig {
        data_blocks: 2,
        step_radius_target: Some(0.5),
        ..GrpoConfig::default()
    });
    assert!(e.contains("step_radius_target"), "{e}");
    let e = Grpo::data_parallel(small_grpo(4), "SeqCopy-v0", &Kwargs::new(), 0, links(2).remove(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("4 data blocks but 2 processes"), "{e}");
}

/// What each process computes alone but must share is checked: a difference is an error on
/// every process, naming the one that differs.
#[test]
fn processes_that_computed_other_weights_are_told() {
    use taper_algos::blocks::Blocks;
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = links(3)
            .into_iter()
            .map(|link| {
                s.spawn(move || {
                    let bits = if link.rank() == 2 { 8 } else { 7 };
                    let place = Blocks::linked(link, 3).unwrap();
                    place.check_same("warm-started weights", 7).unwrap();
                    place.check_same("warm-started weights", bits).unwrap_err().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in errors {
        assert!(e.contains("process 2 computed other warm-started weights"), "{e}");
    }
}
