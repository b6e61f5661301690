//! `taper diagnose`: Patient-0 attribution on a multi-agent run with centralized Q critics
//! (MADDPG): for each reset seed, reference episodes for the calibration bands, a clean episode
//! for the influence of each ordered pair of agents, fault injection at the high- and
//! low-influence steps of every pair, detection and traceback (`taper::diagnostics::patient0`).
//!
//! It writes `report.json` (the settings, the scores per `K_σ` overall and split by influence,
//! the runtime and every case), `summary.md` (the table it also prints) and, for the first
//! `--graphs` attacked episodes, their contagion graphs as `graphs/*.dot`, `*.svg` and `*.png`,
//! into `RUN_DIR/diagnosis` or `--out`.

use crate::error::{CliError, Result};
use crate::{out, DiagnoseArgs};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;
use taper::algos::maddpg::Maddpg;
use taper::algos::Algorithm;
use taper::diagnostics::patient0::{diagnose_seed, Case, Influence, Patient0Config, Scores, Team};
use taper::train::checkpoint::Checkpoint;

/// Writes `text` through a temporary file renamed into place (the trainer's helper).
fn write_atomic(path: &std::path::Path, text: &str) -> Result<()> {
    Ok(taper::train::checkpoint::write_atomic(path, text.as_bytes())?)
}

/// Runs `taper diagnose`.
pub fn run(a: DiagnoseArgs) -> Result<()> {
    if a.episodes == 0 {
        return Err(CliError::Arg {
            arg: "--episodes",
            reason: "must be at least 1".into(),
        });
    }
    if a.k_sigma.is_empty() || a.k_sigma.iter().any(|k| !(*k > 0.0 && k.is_finite())) {
        return Err(CliError::Arg {
            arg: "--k-sigma",
            reason: format!("needs positive thresholds, got {:?}", a.k_sigma),
        });
    }
    if a.references == 0 {
        return Err(CliError::Arg {
            arg: "--references",
            reason: "a calibration band needs at least one reference episode".into(),
        });
    }
    let ck = Checkpoint::load(&a.dir)?;
    let st = ck.state.clone();
    if st.algo != "maddpg" {
        return Err(CliError::Arg {
            arg: "RUN_DIR",
            reason: format!(
                "Patient-0 attribution needs a centralized Q critic per agent; the run's algorithm `{}` has none (maddpg has)",
                st.algo
            ),
        });
    }
    let m = Maddpg::load(&a.dir)?;
    let mut env = taper::envs::make_parallel(&st.env_id, &st.env_kwargs)?;
    let n = env.num_agents();
    if let Some(i) = a.attacker {
        if i >= n {
            return Err(CliError::Arg {
                arg: "--attacker",
                reason: format!("agent {i} does not exist: the run has agents 0..{}", n - 1),
            });
        }
    }
    let actors: Vec<_> = (0..n).map(|i| m.agent_actor(i)).collect();
    let critics: Vec<_> = (0..n).map(|i| m.agent_critic(i)).collect();
    let team = Team {
        actors: actors.iter().map(|x| x as &dyn taper::critics::Actor).collect(),
        critics: critics.iter().map(|x| x as &dyn taper::critics::QCritic).collect(),
    };
    team.check(env.as_ref()).map_err(|e| CliError::Arg {
        arg: "RUN_DIR",
        reason: e.to_string(),
    })?;
    let cfg = Patient0Config {
        references: a.references,
        ..Patient0Config::default()
    };
    let out_dir = a.out.clone().unwrap_or_else(|| a.dir.join("diagnosis"));
    std::fs::create_dir_all(out_dir.join("graphs")).map_err(|e| CliError::io(&out_dir, e))?;
    let bar = (!a.quiet && !a.json).then(|| {
        let b = indicatif::ProgressBar::new(a.episodes as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "diagnosing {bar:40} {pos}/{len} seeds [{elapsed_precise} < {eta_precise}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    // PNG copies of the graphs need a font for their labels; without one, DOT and SVG only.
    let fonts = crate::commands::plot::ensure_font().is_ok();
    let started = Instant::now();
    let mut cases: Vec<Vec<Case>> = vec![Vec::new(); a.k_sigma.len()];
    let mut graphs = 0usize;
    for s in 0..a.episodes as u64 {
        let seed = a.first_seed + s;
        let d = diagnose_seed(env.as_mut(), &team, seed, &cfg, &a.k_sigma).map_err(|e| CliError::Arg {
            arg: "RUN_DIR",
            reason: e.to_string(),
        })?;
        for (k, list) in d.cases.into_iter().enumerate() {
            cases[k].extend(list.into_iter().filter(|c| a.attacker.is_none_or(|i| c.attacker == i)));
        }
        for (att, g) in &d.graphs {
            if graphs < a.graphs && a.attacker.is_none_or(|i| att.agent == i) {
                let stem = out_dir
                    .join("graphs")
                    .join(format!("seed{seed}_agent{}_t{}", att.agent, att.start));
                write_atomic(&stem.with_extension("dot"), &g.to_dot())?;
                write_atomic(&stem.with_extension("svg"), &g.to_svg())?;
                if fonts {
                    draw_png(&g.layout(), &stem.with_extension("png"))?;
                }
                graphs += 1;
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut per_k = Vec::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "Patient-0 attribution: {} seeds from {}, {} agents, `{}`, {:.1} s\n",
        a.episodes, a.first_seed, n, st.env_id, seconds
    );
    let _ = writeln!(
        table,
        "| K_σ | attacks | cases | final accuracy | Stage 1 accuracy (detections) | candidate = attacker | mean agents flagged first | false alarms | no detection | Stage 1 correct | traceback correct | traceback wrong |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (k, &ks) in a.k_sigma.iter().enumerate() {
        let all = Scores::of(&cases[k]);
        let high = Scores::of(cases[k].iter().filter(|c| c.influence == Influence::High));
        let low = Scores::of(cases[k].iter().filter(|c| c.influence == Influence::Low));
        for (name, sc) in [("all", all), ("high", high), ("low", low)] {
            let _ = writeln!(
                table,
                "| {ks} | {name} | {} | {:.1}% | {:.1}% | {:.1}% | {:.2} | {:.1}% | {:.1}% | {} | {} | {} |",
                sc.cases,
                100.0 * sc.final_accuracy,
                100.0 * sc.stage1_accuracy,
                100.0 * sc.candidate_accuracy,
                sc.mean_flagged,
                100.0 * sc.false_alarm_rate,
                100.0 * sc.no_detection_rate,
                sc.stage1_correct,
                sc.traceback_correct,
                sc.traceback_wrong
            );
        }
        per_k.push(json!({"k_sigma": ks, "all": all, "high": high, "low": low, "cases": cases[k]}));
    }
    let report = json!({
        "run": a.dir.display().to_string(),
        "algo": st.algo,
        "env_id": st.env_id,
        "env_kwargs": st.env_kwargs,
        "agents": n,
        "first_seed": a.first_seed,
        "seeds": a.episodes,
        "attacker": a.attacker,
        "config": cfg,
        "seconds": seconds,
        "graphs": graphs,
        "results": per_k,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| CliError::Arg {
        arg: "--json",
        reason: e.to_string(),
    })?;
    write_atomic(&out_dir.join("report.json"), &text)?;
    write_atomic(&out_dir.join("summary.md"), &table)?;
    if a.json {
        out!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        out!("{table}");
        out!(
            "wrote {} (report.json, summary.md, {graphs} contagion graphs)",
            out_dir.display()
        );
    }
    Ok(())
}

/// Draws a contagion graph's layout as a PNG (written to a temporary file, then renamed).
fn draw_png(d: &taper::diagnostics::traceback::Drawing, path: &std::path::Path) -> Result<()> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let tmp = std::path::PathBuf::from(format!("{}.tmp.png", path.display()));
    let err = |e: String| CliError::Arg {
        arg: "--graphs",
        reason: format!("drawing {}: {e}", path.display()),
    };
    {
        let (w, h) = (d.size.0 as u32, d.size.1 as u32);
        let area = BitMapBackend::new(&tmp, (w, h)).into_drawing_area();
        let e = |x: DrawingAreaErrorKind<_>| err(x.to_string());
        area.fill(&WHITE).map_err(e)?;
        let px = |p: (f64, f64)| (p.0.round() as i32, p.1.round() as i32);
        let rgb = |c: (u8, u8, u8)| RGBColor(c.0, c.1, c.2);
        let centred = |size: u32| {
            ("sans-serif", size)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        area.draw(&Text::new(d.title.clone(), (w as i32 / 2, 24), centred(15)))
            .map_err(e)?;
        for edge in &d.edges {
            let pts: Vec<(i32, i32)> = edge.points(24).into_iter().map(px).collect();
            let c = rgb(edge.color);
            area.draw(&PathElement::new(
                pts.clone(),
                c.stroke_width(edge.width.round() as u32),
            ))
            .map_err(e)?;
            // The arrowhead along the curve's last segment.
            let (a, b) = (edge.points(24)[23], edge.end);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-9);
            let (ux, uy) = (dx / len, dy / len);
            let size = 10.0 + edge.width;
            let head = vec![
                px(b),
                px((b.0 - ux * size - uy * size * 0.5, b.1 - uy * size + ux * size * 0.5)),
                px((b.0 - ux * size + uy * size * 0.5, b.1 - uy * size - ux * size * 0.5)),
            ];
            area.draw(&Polygon::new(head, c.filled())).map_err(e)?;
            area.draw(&Text::new(
                edge.label.clone(),
                px(edge.label_at),
                ("sans-serif", 13)
                    .into_font()
                    .color(&c)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(e)?;
        }
        for v in &d.nodes {
            let (r, at) = (v.radius.round() as i32, px(v.at));
            if v.attacked {
                area.draw(&Circle::new(at, r + 6, BLACK.stroke_width(2))).map_err(e)?;
            }
            area.draw(&Circle::new(at, r, rgb(v.fill).filled())).map_err(e)?;
            area.draw(&Circle::new(at, r, BLACK.stroke_width(1))).map_err(e)?;
            area.draw(&Text::new(v.label.clone(), (at.0, at.1 - 6), centred(14)))
                .map_err(e)?;
            area.draw(&Text::new(v.sub.clone(), (at.0, at.1 + 12), centred(12)))
                .map_err(e)?;
        }
        for (k, (c, text)) in d.legend.iter().enumerate() {
            let y = h as i32 - 70 + 18 * k as i32;
            area.draw(&Circle::new((24, y), 6, rgb(*c).filled())).map_err(e)?;
            area.draw(&Text::new(
                text.clone(),
                (36, y),
                ("sans-serif", 13)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(e)?;
        }
        area.draw(&Text::new(
            format!(
                "{} (solid ring: attacked agent)",
                d.note.replace("; dashed ring: attacked agent", "")
            ),
            (w as i32 - 12, h as i32 - 14),
            ("sans-serif", 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(e)?;
        area.present().map_err(e)?;
    }
    std::fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}
