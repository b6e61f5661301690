//! Drawing env frames for `taper eval --record` (GIF or PNG frames), with plotters.

use crate::error::{CliError, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const W: u32 = 480;
const H: u32 = 320;

/// Which picture an env id gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    /// Cart and pole: state `[x, ẋ, θ, θ̇]`.
    CartPole,
    /// Pendulum: state `[θ, θ̇, u]`.
    Pendulum,
    /// Simple Spread with `n` agents: state `[agent x, y …, landmark x, y …]`.
    Spread {
        /// Agents (= landmarks).
        n: usize,
    },
}

impl Scene {
    /// The scene for an env id with its keyword arguments, if it can be drawn.
    pub fn for_env(id: &str, kw: &taper::envs::Kwargs) -> Option<Scene> {
        match id {
            "CartPole-v1" => Some(Scene::CartPole),
            "Pendulum-v1" => Some(Scene::Pendulum),
            "SimpleSpread-v3" => taper::envs::registry::spread_config(id, kw)
                .ok()
                .map(|c| Scene::Spread { n: c.n }),
            _ => None,
        }
    }
    /// Milliseconds per frame (Gymnasium's `render_fps`: 50 and 30).
    pub fn frame_ms(self) -> u32 {
        match self {
            Scene::CartPole => 20,
            Scene::Pendulum => 33,
            // PettingZoo MPE's render_fps: 10.
            Scene::Spread { .. } => 100,
        }
    }
}

fn draw_frame<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    scene: Scene,
    s: &[f64],
    caption: &str,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    area.fill(&WHITE).map_err(e)?;
    let to_px = |x: f64, y: f64, xr: f64, yr: f64| -> (i32, i32) {
        (((x / xr + 0.5) * W as f64) as i32, ((0.5 - y / yr) * H as f64) as i32)
    };
    match scene {
        Scene::CartPole => {
            // World width 4.8 (±2.4), as Gymnasium draws it.
            let (xr, yr) = (4.8, 4.8 * H as f64 / W as f64);
            let (x, theta) = (s[0], s[2]);
            let track_y = -0.6;
            area.draw(&PathElement::new(
                vec![to_px(-2.4, track_y, xr, yr), to_px(2.4, track_y, xr, yr)],
                BLACK,
            ))
            .map_err(e)?;
            let (cw, ch) = (0.5, 0.3);
            let tl = to_px(x - cw / 2.0, track_y + ch, xr, yr);
            let br = to_px(x + cw / 2.0, track_y, xr, yr);
            area.draw(&Rectangle::new([tl, br], BLACK.filled())).map_err(e)?;
            let pivot = (x, track_y + ch * 0.8);
            let len = 1.0; // twice the half-length 0.5
            let tip = (pivot.0 + len * theta.sin(), pivot.1 + len * theta.cos());
            area.draw(&PathElement::new(
                vec![to_px(pivot.0, pivot.1, xr, yr), to_px(tip.0, tip.1, xr, yr)],
                RGBColor(202, 152, 101).stroke_width(10),
            ))
            .map_err(e)?;
            area.draw(&Circle::new(
                to_px(pivot.0, pivot.1, xr, yr),
                4,
                RGBColor(129, 132, 203).filled(),
            ))
            .map_err(e)?;
        }
        Scene::Pendulum => {
            let (xr, yr) = (4.4 * W as f64 / H as f64, 4.4);
            let th = s[0];
            let tip = (th.sin(), th.cos());
            area.draw(&PathElement::new(
                vec![to_px(0.0, 0.0, xr, yr), to_px(tip.0, tip.1, xr, yr)],
                RGBColor(204, 77, 77).stroke_width(12),
            ))
            .map_err(e)?;
            area.draw(&Circle::new(to_px(0.0, 0.0, xr, yr), 5, BLACK.filled()))
                .map_err(e)?;
            if let Some(u) = s.get(2) {
                let txt = format!("torque {u:+.2}");
                area.draw(&Text::new(txt, (10, H as i32 - 30), ("sans-serif", 16).into_font()))
                    .map_err(e)?;
            }
        }
        Scene::Spread { n } => {
            // A fixed window of ±2 × ±2·H/W world units (agents start in [−1, 1]²).
            let (xr, yr) = (4.0 * W as f64 / H as f64, 4.0);
            let px_per_unit = H as f64 / yr;
            for l in 0..n {
                let (x, y) = (s[2 * n + 2 * l], s[2 * n + 2 * l + 1]);
                let r = (0.05 * px_per_unit).round().max(2.0) as i32;
                area.draw(&Circle::new(to_px(x, y, xr, yr), r, RGBColor(64, 64, 64).filled()))
                    .map_err(e)?;
            }
            for a in 0..n {
                let (x, y) = (s[2 * a], s[2 * a + 1]);
                let r = (0.15 * px_per_unit).round() as i32;
                area.draw(&Circle::new(
                    to_px(x, y, xr, yr),
                    r,
                    RGBColor(89, 89, 217).mix(0.8).filled(),
                ))
                .map_err(e)?;
            }
        }
    }
    area.draw(&Text::new(
        caption.to_string(),
        (10, 10),
        ("sans-serif", 16).into_font(),
    ))
    .map_err(e)?;
    Ok(())
}

/// Writes `frames` (env states) to `out`: an animated GIF for `*.gif`, otherwise a folder of
/// PNG frames `frame_00000.png`, ….
pub fn record(out: &Path, scene: Scene, frames: &[Vec<f64>], label: &str) -> Result<()> {
    crate::commands::plot::ensure_font()?;
    let err = |m: String| CliError::Arg {
        arg: "--record",
        reason: format!("{}: {m}", out.display()),
    };
    let is_gif = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    if is_gif {
        let root = BitMapBackend::gif(out, (W, H), scene.frame_ms())
            .map_err(|e| err(e.to_string()))?
            .into_drawing_area();
        for (t, s) in frames.iter().enumerate() {
            draw_frame(&root, scene, s, &format!("{label}  t={t}")).map_err(err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
    } else {
        std::fs::create_dir_all(out).map_err(|e| CliError::io(out, e))?;
        for (t, s) in frames.iter().enumerate() {
            let p = out.join(format!("frame_{t:05}.png"));
            let root = BitMapBackend::new(&p, (W, H)).into_drawing_area();
            draw_frame(&root, scene, s, &format!("{label}  t={t}")).map_err(err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(())
}
