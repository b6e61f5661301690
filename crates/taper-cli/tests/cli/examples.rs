//! The library examples, run as tests: REINFORCE written outside the crates trains CartPole,
//! stops, resumes exactly and is plotted; an env defined in an example trains through the
//! facade, is saved, loaded, evaluated and resumed.

#[path = "../../../../examples/custom_env.rs"]
mod custom_env;
#[path = "../../../../examples/reinforce.rs"]
mod reinforce;

use taper::prelude::*;

/// The metrics rows of a run folder without the timing columns.
fn quiet() -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..TrainOptions::default()
    }
}

/// REINFORCE reaches a return of at least 400 on CartPole-v1 (Gymnasium's threshold for
/// solved is 475; 500 is the cap) in 300k env steps, as the mean of its last 20 training
/// episodes; a run stopped half-way and resumed equals the straight run byte for byte; and
/// `taper plot` draws it. The learner has no training infrastructure of its own.
#[test]
fn reinforce_learns_resumes_exactly_and_plots() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let total = 300_000;
    let mut l = reinforce::Reinforce::new(reinforce::config(), "CartPole-v1", 1).unwrap();
    let s = Trainer::new(&a).options(quiet()).fit(&mut l, total).unwrap();
    let r = s.last_row.unwrap().get("recent_return").unwrap();
    eprintln!("REINFORCE on CartPole-v1: mean return of the last 20 episodes {r:.1}");
    assert!(r >= 400.0, "recent return {r}");
    let half = TrainOptions {
        stop_after: Some(total / 2),
        ..quiet()
    };
    let mut l = reinforce::Reinforce::new(reinforce::config(), "CartPole-v1", 1).unwrap();
    let s = Trainer::new(&b).options(half).fit(&mut l, total).unwrap();
    assert!(s.stopped_early && s.progress.global_step < total);
    let mut l = reinforce::Reinforce::new(reinforce::config(), "CartPole-v1", 1).unwrap();
    Trainer::new(&b).options(quiet()).resume(&mut l, total).unwrap();
    assert_eq!(
        crate::common::metrics_without_timing(&a),
        crate::common::metrics_without_timing(&b)
    );
    assert_eq!(
        std::fs::read(a.join("checkpoint/model.safetensors")).unwrap(),
        std::fs::read(b.join("checkpoint/model.safetensors")).unwrap()
    );
    let png = d.path().join("reinforce.png");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_taper"))
        .args(["plot", b.to_str().unwrap(), "--out", png.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
}

/// PPO learns the corridor defined in the example: the loaded policy's greedy return equals
/// the optimal policy's (always right) on the same evaluation episodes. The run resumes
/// exactly, and bad keyword arguments are the env's own typed error.
#[test]
fn a_custom_env_trains_saves_loads_evaluates_and_resumes() {
    custom_env::register_corridor();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("corridor");
    let mut agent = Ppo::new(PpoConfig::default(), "Corridor-v0", &Kwargs::new(), 0).unwrap();
    agent.learn(20_000).unwrap();
    agent.save(&dir).unwrap();
    let loaded = Ppo::load(&dir).unwrap();
    let opts = EvalOptions {
        episodes: 20,
        deterministic: true,
        ..EvalOptions::default()
    };
    let learned = loaded.evaluate(&opts, &mut |_, _| {}).unwrap().summary();
    let mut env = make("Corridor-v0").unwrap();
    let optimal = taper::train::eval::run_episodes(
        env.as_mut(),
        &opts,
        &mut |_, a| {
            a[0] = 1.0;
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    let optimal = taper::train::eval::summarize(&optimal);
    assert!(
        (learned.mean_return - optimal.mean_return).abs() < 1e-9,
        "learned {} vs optimal {}",
        learned.mean_return,
        optimal.mean_return
    );
    // Exact resume of a run on the custom env.
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let mut p = Ppo::new(PpoConfig::default(), "Corridor-v0", &Kwargs::new(), 2).unwrap();
    Trainer::new(&a).options(quiet()).fit(&mut p, 8192).unwrap();
    let mut p = Ppo::new(PpoConfig::default(), "Corridor-v0", &Kwargs::new(), 2).unwrap();
    let half = TrainOptions {
        stop_after: Some(4096),
        ..quiet()
    };
    Trainer::new(&b).options(half).fit(&mut p, 8192).unwrap();
    let mut p = Ppo::resume(&b).unwrap();
    assert_eq!(p.progress().global_step, 4096);
    Trainer::new(&b).options(quiet()).resume(&mut p, 8192).unwrap();
    assert_eq!(
        crate::common::metrics_without_timing(&a),
        crate::common::metrics_without_timing(&b)
    );
    assert_eq!(
        std::fs::read(a.join("checkpoint/model.safetensors")).unwrap(),
        std::fs::read(b.join("checkpoint/model.safetensors")).unwrap()
    );
    let mut kw = Kwargs::new();
    kw.insert("len".into(), "1".into());
    let e = taper::envs::make_with("Corridor-v0", &kw).err().unwrap();
    assert!(e.to_string().contains("len must be"), "{e}");
}
