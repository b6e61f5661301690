//! `taper plot`: learning curves from run folders, with plotters.
//!
//! Runs whose `config.toml` agree except for the seed form a group, drawn as the mean over
//! seeds with a min–max band; different groups are separate curves, labelled by the config
//! keys in which they differ.

use crate::error::{CliError, Result};
use crate::PlotArgs;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default metric: the mean return of the last 20 episodes.
pub const DEFAULT_METRIC: &str = "recent_return";

/// One run's metrics.
#[derive(Debug)]
pub struct Run {
    /// Its folder.
    pub dir: PathBuf,
    /// Flattened config without the seed (`key=value`), the grouping key.
    pub config: BTreeMap<String, String>,
    /// Rows of `metrics.jsonl`.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Reads a run folder.
pub fn load_run(dir: &Path) -> Result<Run> {
    let mp = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&mp).map_err(|_| CliError::Arg {
        arg: "DIR",
        reason: format!("{} has no metrics.jsonl (is it a run folder?)", dir.display()),
    })?;
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if rows.is_empty() {
        return Err(CliError::Arg {
            arg: "DIR",
            reason: format!("{} has no metrics rows yet", dir.display()),
        });
    }
    let mut config = BTreeMap::new();
    if let Ok(t) = std::fs::read_to_string(dir.join("config.toml")) {
        if let Ok(v) = toml::from_str::<toml::Value>(&t) {
            flatten("", &v, &mut config);
        }
    }
    config.remove("seed");
    config.remove("total_steps");
    Ok(Run {
        dir: dir.to_path_buf(),
        config,
        rows,
    })
}

fn series(run: &Run, metric: &str, xcol: &str) -> Vec<(f64, f64)> {
    run.rows
        .iter()
        .map(|r| {
            let x = r.get(xcol).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            let y = r.get(metric).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            (x, y)
        })
        .collect()
}

/// Trailing moving average over `k` points, skipping NaN.
pub fn smooth(ys: &[f64], k: usize) -> Vec<f64> {
    if k <= 1 {
        return ys.to_vec();
    }
    (0..ys.len())
        .map(|i| {
            let w: Vec<f64> = ys[i.saturating_sub(k - 1)..=i]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if w.is_empty() {
                f64::NAN
            } else {
                w.iter().sum::<f64>() / w.len() as f64
            }
        })
        .collect()
}

/// A group's curve: x, mean, min, max (finite points only).
pub type Curve = Vec<(f64, f64, f64, f64)>;

/// Aggregates runs of one group: per update index present in every run, the mean, min and
/// max over runs of the (smoothed) metric, at the mean over runs of the x column.
pub fn aggregate(runs: &[&Run], metric: &str, xcol: &str, k: usize) -> Curve {
    let all: Vec<(Vec<f64>, Vec<f64>)> = runs
        .iter()
        .map(|r| {
            let s = series(r, metric, xcol);
            let xs = s.iter().map(|p| p.0).collect();
            let ys = smooth(&s.iter().map(|p| p.1).collect::<Vec<_>>(), k);
            (xs, ys)
        })
        .collect();
    let n = all.iter().map(|s| s.0.len()).min().unwrap_or(0);
    (0..n)
        .filter_map(|i| {
            let vals: Vec<f64> = all.iter().map(|s| s.1[i]).filter(|v| v.is_finite()).collect();
            let xs: Vec<f64> = all.iter().map(|s| s.0[i]).filter(|v| v.is_finite()).collect();
            if vals.is_empty() || xs.is_empty() {
                return None;
            }
            let x = xs.iter().sum::<f64>() / xs.len() as f64;
            if !x.is_finite() {
                return None;
            }
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let min = vals.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            Some((x, mean, min, max))
        })
        .collect()
}

/// Known places of a TrueType font for plot text; `TAPER_FONT` overrides them.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a font for plotters' text (once per process).
pub fn ensure_font() -> Result<()> {
    static DONE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let mut candidates: Vec<String> = Vec::new();
        if let Ok(p) = std::env::var("TAPER_FONT") {
            candidates.push(p);
        }
        candidates.extend(FONT_PATHS.iter().map(|s| s.to_string()));
        for p in &candidates {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, bytes);
                    return Ok(());
                }
            }
        }
        Err("no TrueType font found for plot text; set TAPER_FONT=/path/to/font.ttf".to_string())
    })
    .clone()
    .map_err(|reason| CliError::Arg {
        arg: "TAPER_FONT",
        reason,
    })
}

/// A curve's label: algorithm and env, then the settings (at most four) where this group
/// departs from the value most groups share, so a baseline reads plainly and each variant
/// names what it changes.
fn label_for(group: &BTreeMap<String, String>, differing: &[(String, Option<String>)]) -> String {
    let env = group
        .get("env")
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_default();
    let algo = group
        .get("algo")
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_default();
    let head = format!("{algo} {env}");
    let departs = |k: &String, common: &Option<String>| group.get(k) != common.as_ref();
    // A table whose `kind` departs is named by its kind alone.
    let named_by_kind: Vec<&str> = differing
        .iter()
        .filter(|(k, c)| k.ends_with(".kind") && departs(k, c))
        .map(|(k, _)| &k[..k.len() - "kind".len()])
        .collect();
    let settings: Vec<String> = differing
        .iter()
        .filter(|(k, _)| k != "env" && k != "algo")
        .filter(|(k, common)| departs(k, common))
        // A key this group lacks (a table it has not) says nothing about it.
        .filter(|(k, _)| group.contains_key(k))
        .filter(|(k, _)| k.ends_with(".kind") || !named_by_kind.iter().any(|t| k.starts_with(t)))
        .take(4)
        .map(|(k, _)| {
            // Without the algorithm's section: `ppo.value_head.kind` reads `value_head.kind`.
            let short = match k.split_once('.') {
                Some((_, rest)) => rest,
                None => k.as_str(),
            };
            format!("{short}={}", group[k])
        })
        .collect();
    if settings.is_empty() {
        head
    } else {
        format!("{head}: {}", settings.join(", "))
    }
}

/// The settings whose values differ between groups of runs, each with the value most groups
/// share (among equally common ones: absent, i.e. the default, else the first group's); a
/// table's `kind` comes before its other keys.
fn differing_settings(groups: &[&BTreeMap<String, String>]) -> Vec<(String, Option<String>)> {
    let keys: std::collections::BTreeSet<&String> = groups.iter().flat_map(|g| g.keys()).collect();
    let mut differing: Vec<(String, Option<String>)> = keys
        .into_iter()
        .filter_map(|k| {
            let vals: Vec<Option<&String>> = groups.iter().map(|g| g.get(k)).collect();
            let distinct: std::collections::BTreeSet<_> = vals.iter().collect();
            if distinct.len() < 2 {
                return None;
            }
            let count = |v: &Option<&String>| vals.iter().filter(|w| *w == v).count();
            let mut common = vals[0];
            for v in &vals {
                if count(v) > count(&common) || (count(v) == count(&common) && v.is_none()) {
                    common = *v;
                }
            }
            Some((k.clone(), common.cloned()))
        })
        .collect();
    differing.sort_by_key(|(k, _)| (!k.ends_with(".kind"), k.clone()));
    differing
}

/// What `global_step` counts for these runs: completions sampled for GRPO, gradient steps for
/// HDPO, env steps otherwise (and for a mix).
fn steps_label(runs: &[Run]) -> &'static str {
    let algos: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r.config.get("algo"))
        .map(|a| a.trim_matches('"'))
        .collect();
    match algos.into_iter().collect::<Vec<_>>().as_slice() {
        ["grpo"] => "completions sampled",
        ["hdpo"] => "gradient steps",
        _ => "env steps",
    }
}

/// Runs `taper plot`.
pub fn run(a: PlotArgs) -> Result<()> {
    if a.smooth == 0 {
        return Err(CliError::Arg {
            arg: "--smooth",
            reason: "the moving-average window must be at least 1 (1: no smoothing)".into(),
        });
    }
    plot(&a.dirs, &a.out, &a.metric, &a.x, a.smooth, a.ylim)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// Draws the plot of `dirs` into `out` (`.png` or `.svg`), `metric` against the column `xcol`
/// (`global_step`, or e.g. `time_elapsed` for wall time).
pub fn plot(
    dirs: &[PathBuf],
    out: &Path,
    metric: &str,
    xcol: &str,
    smooth_k: usize,
    ylim: Option<(f64, f64)>,
) -> Result<()> {
    if dirs.is_empty() {
        return Err(CliError::Arg {
            arg: "DIR",
            reason: "give at least one run folder".into(),
        });
    }
    let runs = dirs.iter().map(|d| load_run(d)).collect::<Result<Vec<_>>>()?;
    // Every metric must exist somewhere; list what is available otherwise.
    for r in &runs {
        if let Some((flag, bad)) = [("--metric", metric), ("--x", xcol)]
            .into_iter()
            .find(|(_, m)| !r.rows.iter().any(|row| row.contains_key(*m)))
        {
            let mut names: Vec<&str> = r.rows[0].keys().map(|s| s.as_str()).collect();
            names.sort();
            return Err(CliError::Arg {
                arg: flag,
                reason: format!(
                    "unknown column `{bad}` in {}; available: {}",
                    r.dir.display(),
                    names.join(", ")
                ),
            });
        }
    }
    let mut groups: Vec<(BTreeMap<String, String>, Vec<&Run>)> = Vec::new();
    for r in &runs {
        match groups.iter_mut().find(|g| g.0 == r.config) {
            Some(g) => g.1.push(r),
            None => groups.push((r.config.clone(), vec![r])),
        }
    }
    let configs: Vec<&BTreeMap<String, String>> = groups.iter().map(|g| &g.0).collect();
    let differing = differing_settings(&configs);
    let curves: Vec<(String, usize, Curve)> = groups
        .iter()
        .map(|(cfg, rs)| {
            (
                label_for(cfg, &differing),
                rs.len(),
                aggregate(rs, metric, xcol, smooth_k),
            )
        })
        .collect();
    let pts: Vec<&(f64, f64, f64, f64)> = curves.iter().flat_map(|c| c.2.iter()).collect();
    if pts.is_empty() {
        return Err(CliError::Arg {
            arg: "--metric",
            reason: format!("`{metric}` has no finite values to plot"),
        });
    }
    let x1 = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max).max(1.0);
    let mut y0 = pts.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let mut y1 = pts.iter().map(|p| p.3).fold(f64::NEG_INFINITY, f64::max);
    if (y1 - y0).abs() < 1e-12 {
        y0 -= 1.0;
        y1 += 1.0;
    }
    if let Some((lo, hi)) = ylim {
        if lo.is_nan() || hi.is_nan() || lo >= hi {
            return Err(CliError::Arg {
                arg: "--ylim",
                reason: format!("needs LO < HI, got {lo},{hi}"),
            });
        }
        (y0, y1) = (lo, hi);
    }
    let pad = if ylim.is_some() { 0.0 } else { 0.05 * (y1 - y0) };
    let multi = runs.iter().any(|r| {
        r.config
            .get("algo")
            .and_then(|a| taper::algos::AlgoKind::from_name(a.trim_matches('"')).ok())
            .is_some_and(|k| k.multi_agent())
    });
    let ylabel = if metric == DEFAULT_METRIC && multi {
        "per-agent return (mean of the last 100 episodes)".to_string()
    } else if metric == DEFAULT_METRIC {
        "return (mean of the last 20 episodes)".to_string()
    } else {
        metric.to_string()
    };
    let title = {
        let first = &groups[0].0;
        let env = first.get("env").map(|s| s.trim_matches('"')).unwrap_or("");
        let n: usize = groups.iter().map(|g| g.1.len()).sum();
        format!("{env}: {ylabel}, {n} run{}", if n == 1 { "" } else { "s" })
    };
    ensure_font()?;
    let spec = PlotSpec {
        curves: &curves,
        x1,
        y0: y0 - pad,
        y1: y1 + pad,
        ylabel: &ylabel,
        xlabel: match xcol {
            "global_step" => steps_label(&runs),
            "time_elapsed" => "wall time (s)",
            other => other,
        },
        steps_axis: xcol == "global_step",
        title: &title,
    };
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let res = match ext.as_str() {
        "png" => draw(BitMapBackend::new(out, (1000, 600)).into_drawing_area(), &spec),
        "svg" => draw(SVGBackend::new(out, (1000, 600)).into_drawing_area(), &spec),
        _ => {
            return Err(CliError::Arg {
                arg: "--out",
                reason: format!("{} must end in .png or .svg", out.display()),
            })
        }
    };
    res.map_err(|e| CliError::Arg {
        arg: "--out",
        reason: format!("drawing {}: {e}", out.display()),
    })
}

struct PlotSpec<'a> {
    curves: &'a [(String, usize, Curve)],
    x1: f64,
    y0: f64,
    y1: f64,
    ylabel: &'a str,
    xlabel: &'a str,
    steps_axis: bool,
    title: &'a str,
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, s: &PlotSpec<'_>) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(s.title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..s.x1, s.y0..s.y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(s.xlabel)
        .y_desc(s.ylabel)
        .x_label_formatter(&|v| {
            if !s.steps_axis {
                format!("{v}")
            } else if *v >= 1e6 {
                format!("{:.1}M", v / 1e6)
            } else {
                format!("{:.0}k", v / 1e3)
            }
        })
        .y_label_formatter(&|v| {
            if s.y1 - s.y0 > 20.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            }
        })
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    for (k, (label, n, curve)) in s.curves.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        if *n > 1 {
            let mut band: Vec<(f64, f64)> = curve.iter().map(|p| (p.0, p.3)).collect();
            band.extend(curve.iter().rev().map(|p| (p.0, p.2)));
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))
                .map_err(e)?;
        }
        let text = if *n > 1 {
            format!("{label} (mean of {n} seeds, min-max band)")
        } else {
            label.clone()
        };
        chart
            .draw_series(LineSeries::new(curve.iter().map(|p| (p.0, p.1)), color.stroke_width(2)))
            .map_err(e)?
            .label(text)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The x axis of `global_step` says what a step is.
    #[test]
    fn the_steps_axis_names_its_unit() {
        let run = |algo: &str| Run {
            dir: PathBuf::new(),
            config: [("algo".to_string(), format!("\"{algo}\""))].into_iter().collect(),
            rows: Vec::new(),
        };
        assert_eq!(steps_label(&[run("grpo"), run("grpo")]), "completions sampled");
        assert_eq!(steps_label(&[run("hdpo")]), "gradient steps");
        assert_eq!(steps_label(&[run("ppo")]), "env steps");
        assert_eq!(steps_label(&[run("grpo"), run("ppo")]), "env steps");
    }

    /// A label names only the settings where its group departs from the common value.
    #[test]
    fn labels_name_what_a_variant_changes() {
        let cfg = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let base = [
            ("algo", "grpo"),
            ("env", "E"),
            ("grpo.dapo", "false"),
            ("grpo.loss_type", "grpo"),
        ];
        let differing = vec![
            ("grpo.dapo".to_string(), Some("false".to_string())),
            ("grpo.loss_type".to_string(), Some("grpo".to_string())),
        ];
        assert_eq!(label_for(&cfg(&base), &differing), "grpo E");
        let mut dapo = base;
        dapo[2].1 = "true";
        assert_eq!(label_for(&cfg(&dapo), &differing), "grpo E: dapo=true");
        // Two groups, one with a nested table the other leaves at its default: the default
        // reads plainly, the other names the table by its kind.
        let plain = cfg(&[("algo", "ppo"), ("env", "E")]);
        let hl = cfg(&[
            ("algo", "ppo"),
            ("env", "E"),
            ("ppo.value_head.bins", "51"),
            ("ppo.value_head.kind", "\"hl_gauss\""),
        ]);
        let differing = differing_settings(&[&hl, &plain]);
        assert_eq!(label_for(&plain, &differing), "ppo E");
        assert_eq!(label_for(&hl, &differing), "ppo E: value_head.kind=\"hl_gauss\"");
    }

    use super::*;

    #[test]
    fn smoothing_is_a_trailing_mean_skipping_nan() {
        let s = smooth(&[1.0, f64::NAN, 3.0, 5.0], 2);
        assert_eq!(s[0], 1.0);
        assert_eq!(s[1], 1.0);
        assert_eq!(s[2], 3.0);
        assert_eq!(s[3], 4.0);
    }
}
