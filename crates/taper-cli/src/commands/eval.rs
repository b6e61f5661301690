//! `taper eval`: load any run's policy and evaluate it, printing a summary or one JSON object
//! (`episodes`, `mean_return`, `std_return`, `success_rate`, and the algorithm's and env's own
//! figures: `mean_cost` for inventory envs, `mean_<statistic>` for multi-agent envs), drawing
//! gridworlds as text or recording the first episode.

use crate::error::{CliError, Result};
use crate::render::{self, Scene};
use crate::{out, EvalArgs};
use taper::train::checkpoint::Checkpoint;
use taper::train::eval::{EnvView, EvalOptions};

/// Runs `taper eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if a.episodes == Some(0) {
        return Err(CliError::Arg {
            arg: "--episodes",
            reason: "must be at least 1".into(),
        });
    }
    if a.max_steps == 0 {
        return Err(CliError::Arg {
            arg: "--max-steps",
            reason: "must be at least 1".into(),
        });
    }
    let ck = Checkpoint::load(&a.dir)?;
    let st = ck.state.clone();
    if a.warmup.is_some() && !taper::envs::registry::is_inventory(&st.env_id) {
        return Err(CliError::Arg {
            arg: "--warmup",
            reason: format!(
                "leaves periods out of an inventory env's mean_cost; {} reports none",
                st.env_id
            ),
        });
    }
    if let Some(w) = a.warmup {
        let horizon: u64 = taper::envs::registry::evaluation_kwargs(&st.env_id, &st.env_kwargs)
            .get("horizon")
            .and_then(|h| h.parse().ok())
            .unwrap_or(u64::MAX);
        let len = horizon.min(a.max_steps);
        if w >= len {
            return Err(CliError::Arg {
                arg: "--warmup",
                reason: format!("{w} periods leave nothing of {len}-period episodes"),
            });
        }
    }
    let multi = taper::envs::registry::is_multi_agent(&st.env_id);
    let ansi = match a.render.as_deref() {
        None => false,
        Some("ansi") => {
            let drawable = !multi
                && taper::envs::make_with(&st.env_id, &st.env_kwargs)
                    .and_then(|mut e| {
                        e.reset(Some(a.seed))?;
                        Ok(e.render_ansi().is_some())
                    })
                    .unwrap_or(false);
            if !drawable {
                return Err(CliError::Arg {
                    arg: "--render",
                    reason: format!("{} has no text rendering", st.env_id),
                });
            }
            true
        }
        Some(other) => {
            return Err(CliError::Arg {
                arg: "--render",
                reason: format!("unknown mode `{other}` (ansi)"),
            })
        }
    };
    let scene = match &a.record {
        None => None,
        Some(_) => Some(Scene::for_env(&st.env_id, &st.env_kwargs).ok_or_else(|| CliError::Arg {
            arg: "--record",
            reason: format!(
                "{} cannot be drawn yet (CartPole-v1, Pendulum-v1 and SimpleSpread-v3 can)",
                st.env_id
            ),
        })?),
    };
    let mut learner = taper::algos::AlgoKind::learner_for(&st)?;
    learner.import(&ck, false)?;
    let default_episodes = if taper::envs::registry::is_inventory(&st.env_id) {
        500
    } else {
        10
    };
    let opts = EvalOptions {
        episodes: a.episodes.unwrap_or(default_episodes),
        seed: a.seed,
        deterministic: a.deterministic,
        max_steps: a.max_steps,
        warmup: a.warmup,
    };
    let mut frames: Vec<Vec<f64>> = Vec::new();
    let mut trace = String::new();
    let mut t_in_ep = (usize::MAX, 0usize);
    let mut last_ep = usize::MAX;
    let ev = learner.evaluate(&opts, &mut |k, view| {
        if ansi {
            if let EnvView::Single(e) = view {
                if k != last_ep {
                    out!("episode {k}");
                    last_ep = k;
                }
                if let Some(t) = e.render_ansi() {
                    out!("{t}");
                }
            }
        }
        if (scene.is_some() && k == 0) || a.trace.is_some() {
            let s = match view {
                EnvView::Single(e) => e.render_state(),
                EnvView::Parallel(e) => e.render_state(),
            };
            if let Some(s) = s {
                if a.trace.is_some() {
                    t_in_ep = if t_in_ep.0 == k { (k, t_in_ep.1 + 1) } else { (k, 0) };
                    let line = serde_json::json!({"episode": k, "t": t_in_ep.1, "state": s});
                    trace.push_str(&line.to_string());
                    trace.push('\n');
                }
                if scene.is_some() && k == 0 {
                    frames.push(s);
                }
            }
        }
    })?;
    if let Some(path) = &a.trace {
        if trace.is_empty() {
            return Err(CliError::Arg {
                arg: "--trace",
                reason: format!("{} reports no state to trace", st.env_id),
            });
        }
        taper::train::checkpoint::write_atomic(path, trace.as_bytes())?;
    }
    let sum = ev.summary();
    let exact = if a.exact {
        Some(taper::algos::exact::exact_store_cost(
            learner.as_mut(),
            &st.env_id,
            &st.env_kwargs,
        )?)
    } else {
        None
    };
    if let (Some(path), Some(scene)) = (&a.record, scene) {
        render::record(
            path,
            scene,
            &frames,
            &format!("{} episode 0, return {:.1}", st.env_id, ev.episodes[0].ret),
        )?;
        eprintln!("recorded {} frames to {}", frames.len(), path.display());
    }
    if a.json {
        let mut v = serde_json::json!({
            "env": st.env_id,
            "algo": st.algo,
            "episodes": sum.episodes,
            "mean_return": sum.mean_return,
            "std_return": sum.std_return,
            "se_return": sum.se_return,
            "min_return": sum.min_return,
            "max_return": sum.max_return,
            "mean_length": sum.mean_length,
            "se_length": sum.se_length,
            "success_rate": sum.success_rate,
            "deterministic": a.deterministic,
            "seed": a.seed,
            "global_step": st.global_step,
        });
        for (k, val) in &ev.extra {
            v[k.as_str()] = val.clone();
        }
        if let Some(x) = &exact {
            v["exact"] = serde_json::json!({
                "cost": x.cost,
                "bounds": [x.bounds.0, x.bounds.1],
                "states": x.states,
                "optimal_cost": x.optimal_cost,
                "gap": x.gap,
                "method": "stationary cost of the deterministic policy's Markov chain from the empty state, orders rounded",
            });
        }
        out!("{v}");
    } else {
        out!(
            "{} ({}, trained {} steps): {} episodes",
            st.env_id,
            st.algo,
            st.global_step,
            sum.episodes
        );
        let what = if multi { "per-agent return" } else { "return" };
        out!(
            "  {what}  {:.3} ± {:.3} std, ± {:.3} s.e.  (min {:.3}, max {:.3})",
            sum.mean_return,
            sum.std_return,
            sum.se_return.unwrap_or(f64::NAN),
            sum.min_return,
            sum.max_return
        );
        out!("  length  {:.1}", sum.mean_length);
        if let Some(s) = sum.success_rate {
            out!("  success {s:.3}");
        }
        for (k, val) in &ev.extra {
            if let Some(i) = val.as_u64() {
                out!("  {k} {i}");
            } else if let Some(x) = val.as_f64() {
                out!("  {k} {x:.4}");
            }
        }
        if let Some(x) = &exact {
            out!(
                "  exact cost {:.4} (orders rounded; {} states), optimum {:.4}, gap {:+.3}%",
                x.cost,
                x.states,
                x.optimal_cost,
                100.0 * x.gap
            );
        }
    }
    Ok(())
}
