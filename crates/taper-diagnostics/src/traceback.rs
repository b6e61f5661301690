//! Stage 2 of Patient-0 attribution over an episode: the causal window before a detection,
//! each upstream agent's influence on a flagged agent inside it, the traceback from the
//! Stage-1 candidate to the agent it blames, and the contagion graph.
//!
//! For a detection at `t_d` the causal window is `W = [max(0, t_d − 4), t_d]`. For an
//! upstream agent `k` and the current agent `c` ([`edge`]):
//!
//! ```text
//! R_{k→c} = |{t ∈ W : D_{c,k}^t > 0}| / |W|        critical rate (accelerating influence)
//! Ḡ_{k→c} = mean_{t∈W} G_{c,k}^t                   mean sensitivity
//! S_{k→c} = Σ_{t∈W, D_{c,k}^t > 0} G_{c,k}^t        influence score
//! ```
//!
//! The traceback ([`traceback`]) starts from the candidate `c₀` and repeatedly moves to the
//! upstream agent of the largest score (the lowest index on a tie), stopping when that agent's
//! critical rate is 0 or it is already on the chain; the chain's last agent is the final
//! Patient 0. This is the authors' MADDPG rule, except that the score sums `G` at each step of
//! the window where their code reads it at `t_d` for every step, which reads as a slip.
//!
//! The contagion graph ([`ContagionGraph`]) is this project's construction (the paper names it
//! without its weights): nodes are agents; for every flagged agent `c`, with its first flag at
//! `t_c`, an edge `k → c` for every `k` with `R_{k→c} > 0` in `c`'s own window, weighted
//! `R·Ḡ`. [`ContagionGraph::to_dot`] and [`ContagionGraph::to_svg`] draw it.

use crate::influence::PairInfluence;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The causal window of a detection at `t_d`: the `len` steps ending at `t_d` (fewer at the
/// start).
pub fn causal_window(t_d: usize, len: usize) -> std::ops::RangeInclusive<usize> {
    t_d.saturating_sub(len.max(1) - 1)..=t_d
}

/// One upstream agent's influence on a downstream agent over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// The upstream agent `k`.
    pub from: usize,
    /// The downstream agent `c`.
    pub to: usize,
    /// `R_{k→c}`, the share of the window's steps with `D_{c,k} > 0`.
    pub rate: f64,
    /// `Ḡ_{k→c}`, the window's mean `G_{c,k}`.
    pub mean_g: f64,
    /// `S_{k→c}`, the sum of `G_{c,k}` over the steps with `D_{c,k} > 0`.
    pub score: f64,
    /// The detection step whose window this is.
    pub t: usize,
}

impl Edge {
    /// The contagion graph's weight, `R·Ḡ`.
    pub fn weight(&self) -> f64 {
        self.rate * self.mean_g
    }
}

/// The statistics of `k → c` over the window of `t_d` in an episode's per-step influences.
pub fn edge(history: &[PairInfluence], k: usize, c: usize, t_d: usize, window: usize) -> Edge {
    let w: Vec<usize> = causal_window(t_d, window).filter(|&t| t < history.len()).collect();
    let len = w.len().max(1) as f64;
    let (mut hot, mut g_sum, mut score) = (0usize, 0f64, 0f64);
    for &t in &w {
        let p = &history[t];
        g_sum += p.g(c, k);
        if p.d(c, k) > 0.0 {
            hot += 1;
            score += p.g(c, k);
        }
    }
    Edge {
        from: k,
        to: c,
        rate: hot as f64 / len,
        mean_g: g_sum / len,
        score,
        t: t_d,
    }
}

/// The traceback from the Stage-1 candidate `c0` at detection step `t_d`: the chain of agents
/// from `c0` upstream, and the edges taken (see the module doc).
pub fn traceback(history: &[PairInfluence], c0: usize, t_d: usize, window: usize) -> (Vec<usize>, Vec<Edge>) {
    let n = history.first().map_or(0, |p| p.agents);
    let mut chain = vec![c0];
    let mut taken = Vec::new();
    let mut c = c0;
    loop {
        let mut best: Option<Edge> = None;
        for k in (0..n).filter(|&k| k != c) {
            let e = edge(history, k, c, t_d, window);
            if best.is_none_or(|b| e.score > b.score) {
                best = Some(e);
            }
        }
        match best {
            Some(e) if e.rate > 0.0 && !chain.contains(&e.from) => {
                chain.push(e.from);
                taken.push(e);
                c = e.from;
            }
            _ => return (chain, taken),
        }
    }
}

/// Who infected whom in one episode (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContagionGraph {
    /// Agents.
    pub agents: usize,
    /// Each agent's first flagged step, if any.
    pub first_flag: Vec<Option<usize>>,
    /// The edges `k → c` with `R_{k→c} > 0`, for every flagged `c` in its own window.
    pub edges: Vec<Edge>,
    /// The traceback chain from the Stage-1 candidate (its last agent: the final Patient 0).
    pub chain: Vec<usize>,
    /// The agent whose actions were perturbed, when known (a fault-injection episode).
    pub attacked: Option<usize>,
    /// A caption (the episode's seed, attack and verdict).
    pub title: String,
}

impl ContagionGraph {
    /// The graph of an episode's per-step influences, its agents' first flags, and the
    /// traceback chain.
    pub fn build(
        history: &[PairInfluence],
        first_flag: Vec<Option<usize>>,
        chain: Vec<usize>,
        window: usize,
        attacked: Option<usize>,
        title: String,
    ) -> Self {
        let n = first_flag.len();
        let mut edges = Vec::new();
        for (c, t) in first_flag.iter().enumerate() {
            let Some(t_c) = *t else { continue };
            for k in (0..n).filter(|&k| k != c) {
                let e = edge(history, k, c, t_c, window);
                if e.rate > 0.0 {
                    edges.push(e);
                }
            }
        }
        ContagionGraph {
            agents: n,
            first_flag,
            edges,
            chain,
            attacked,
            title,
        }
    }

    fn on_chain(&self, e: &Edge) -> bool {
        // The chain runs downstream → upstream: chain[h] was reached from chain[h + 1].
        self.chain.windows(2).any(|w| w[0] == e.to && w[1] == e.from)
    }

    /// Graphviz DOT: edges labelled with `R` and `Ḡ`, pen width by weight, the traceback in
    /// red; the final Patient 0 filled red, other flagged agents orange, the attacked agent
    /// drawn with a double border.
    pub fn to_dot(&self) -> String {
        let max_w = self.edges.iter().map(|e| e.weight()).fold(0.0, f64::max).max(1e-12);
        let p0 = self.chain.last().copied();
        let mut s = String::new();
        let _ = writeln!(s, "digraph contagion {{");
        let _ = writeln!(
            s,
            "  label=\"{}\"; labelloc=t; rankdir=LR;",
            self.title.replace('"', "'")
        );
        for i in 0..self.agents {
            let fill = if Some(i) == p0 {
                "#d62728"
            } else if self.first_flag[i].is_some() {
                "#ff9f40"
            } else {
                "#dddddd"
            };
            let flag = self.first_flag[i].map_or("not flagged".to_string(), |t| format!("flagged t={t}"));
            let periph = if Some(i) == self.attacked { 2 } else { 1 };
            let _ = writeln!(
                s,
                "  a{i} [label=\"agent {i}\\n{flag}\", style=filled, fillcolor=\"{fill}\", peripheries={periph}];"
            );
        }
        for e in &self.edges {
            let width = 1.0 + 5.0 * e.weight() / max_w;
            let color = if self.on_chain(e) { "#d62728" } else { "#555555" };
            let _ = writeln!(
                s,
                "  a{} -> a{} [label=\"R={:.2} Ḡ={:.3}\", penwidth={width:.2}, color=\"{color}\"];",
                e.from, e.to, e.rate, e.mean_g
            );
        }
        s.push_str("}\n");
        s
    }

    /// The picture's geometry, shared by [`ContagionGraph::to_svg`] and any raster backend:
    /// agents on a circle, each edge a curve bent to its left (so that `k → c` and `c → k`
    /// do not overlap) with its width by weight, the traceback in red.
    pub fn layout(&self) -> Drawing {
        let (w, h) = (760.0f64, 560.0f64);
        let (cx, cy, radius, node) = (w / 2.0, 290.0, 170.0, 34.0);
        let n = self.agents.max(1);
        let pos = |i: usize| {
            let a = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            (cx + radius * a.cos(), cy + radius * a.sin())
        };
        let max_w = self.edges.iter().map(|e| e.weight()).fold(0.0, f64::max).max(1e-12);
        let p0 = self.chain.last().copied();
        let edges = self
            .edges
            .iter()
            .map(|e| {
                let (x0, y0) = pos(e.from);
                let (x1, y1) = pos(e.to);
                let (dx, dy) = (x1 - x0, y1 - y0);
                let len = (dx * dx + dy * dy).sqrt().max(1e-9);
                let (ux, uy) = (dx / len, dy / len);
                let (nx, ny) = (-uy, ux);
                let start = (x0 + ux * node, y0 + uy * node);
                let end = (x1 - ux * (node + 2.0), y1 - uy * (node + 2.0));
                let mid = ((start.0 + end.0) / 2.0 + nx * 30.0, (start.1 + end.1) / 2.0 + ny * 30.0);
                // The label sits a third of the way along, on the outer side of the bend, so
                // that the labels of k → c and c → k land apart.
                let at = |t: f64| {
                    let u = 1.0 - t;
                    (
                        u * u * start.0 + 2.0 * u * t * mid.0 + t * t * end.0,
                        u * u * start.1 + 2.0 * u * t * mid.1 + t * t * end.1,
                    )
                };
                let third = at(1.0 / 3.0);
                DrawEdge {
                    start,
                    control: mid,
                    end,
                    width: 1.0 + 7.0 * e.weight() / max_w,
                    color: if self.on_chain(e) { RED } else { GREY },
                    label: format!("R={:.2} Ḡ={:.3}", e.rate, e.mean_g),
                    label_at: (third.0 + nx * 16.0, third.1 + ny * 16.0),
                }
            })
            .collect();
        let nodes = (0..self.agents)
            .map(|i| {
                let (x, y) = pos(i);
                DrawNode {
                    at: (x, y),
                    radius: node,
                    fill: if Some(i) == p0 {
                        RED
                    } else if self.first_flag[i].is_some() {
                        ORANGE
                    } else {
                        LIGHT
                    },
                    label: format!("agent {i}"),
                    sub: self.first_flag[i].map_or("—".to_string(), |t| format!("t={t}")),
                    attacked: Some(i) == self.attacked,
                }
            })
            .collect();
        Drawing {
            size: (w, h),
            title: self.title.clone(),
            nodes,
            edges,
            legend: vec![
                (RED, "final Patient 0 (end of the red traceback)".into()),
                (ORANGE, "flagged (t = first flag)".into()),
                (LIGHT, "not flagged".into()),
            ],
            note: "arrow k → c: k's actions accelerate c's critic drop; width ∝ R·Ḡ; dashed ring: attacked agent"
                .into(),
        }
    }

    /// A standalone SVG of the same picture ([`ContagionGraph::layout`]), with a legend.
    pub fn to_svg(&self) -> String {
        let d = self.layout();
        let (w, h) = d.size;
        let hex = |c: (u8, u8, u8)| format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        s.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>"##);
        s.push('\n');
        let _ = writeln!(
            s,
            r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
            w / 2.0,
            xml(&d.title)
        );
        for e in &d.edges {
            let c = hex(e.color);
            let _ = writeln!(
                s,
                r#"<path d="M {:.1} {:.1} Q {:.1} {:.1} {:.1} {:.1}" fill="none" stroke="{c}" stroke-width="{:.2}" marker-end="url(#arrow)"/>"#,
                e.start.0, e.start.1, e.control.0, e.control.1, e.end.0, e.end.1, e.width
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="{c}">{}</text>"#,
                e.label_at.0,
                e.label_at.1,
                xml(&e.label)
            );
        }
        for v in &d.nodes {
            let (x, y) = v.at;
            if v.attacked {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="{:.1}" fill="none" stroke="black" stroke-width="2" stroke-dasharray="5,3"/>"#,
                    v.radius + 6.0
                );
            }
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{}" fill="{}" stroke="black"/>"#,
                v.radius,
                hex(v.fill)
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="14">{}</text>"#,
                y - 2.0,
                v.label
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
                y + 14.0,
                v.sub
            );
        }
        for (k, (c, text)) in d.legend.iter().enumerate() {
            let y = h - 70.0 + 18.0 * k as f64;
            let _ = writeln!(
                s,
                r#"<circle cx="24" cy="{y}" r="6" fill="{}" stroke="black"/>"#,
                hex(*c)
            );
            let _ = writeln!(s, r#"<text x="36" y="{}" font-size="12">{text}</text>"#, y + 4.0);
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>"#,
            w - 12.0,
            h - 12.0,
            d.note
        );
        s.push_str("</svg>\n");
        s
    }
}

const RED: (u8, u8, u8) = (0xd6, 0x27, 0x28);
const ORANGE: (u8, u8, u8) = (0xff, 0x9f, 0x40);
const LIGHT: (u8, u8, u8) = (0xdd, 0xdd, 0xdd);
const GREY: (u8, u8, u8) = (0x55, 0x55, 0x55);

/// A contagion graph's geometry in pixels ([`ContagionGraph::layout`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Drawing {
    /// Width and height.
    pub size: (f64, f64),
    /// The caption.
    pub title: String,
    /// The agents.
    pub nodes: Vec<DrawNode>,
    /// The edges.
    pub edges: Vec<DrawEdge>,
    /// Legend entries: a fill colour and its meaning.
    pub legend: Vec<((u8, u8, u8), String)>,
    /// A line explaining the arrows.
    pub note: String,
}

/// An agent's disc.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawNode {
    /// Centre.
    pub at: (f64, f64),
    /// Radius.
    pub radius: f64,
    /// Fill colour (RGB).
    pub fill: (u8, u8, u8),
    /// The agent's name.
    pub label: String,
    /// Its first flag.
    pub sub: String,
    /// Whether it was the attacked agent (a dashed ring).
    pub attacked: bool,
}

/// An edge: a quadratic Bézier curve from `start` to `end` bent through `control`, with an
/// arrowhead at `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawEdge {
    /// Where it leaves the infector's disc.
    pub start: (f64, f64),
    /// The control point.
    pub control: (f64, f64),
    /// Where it meets the infected agent's disc.
    pub end: (f64, f64),
    /// Stroke width, by weight.
    pub width: f64,
    /// Colour (RGB): red on the traceback.
    pub color: (u8, u8, u8),
    /// `R` and `Ḡ`.
    pub label: String,
    /// Where the label goes.
    pub label_at: (f64, f64),
}

impl DrawEdge {
    /// `k + 1` points along the curve.
    pub fn points(&self, k: usize) -> Vec<(f64, f64)> {
        (0..=k)
            .map(|i| {
                let t = i as f64 / k.max(1) as f64;
                let u = 1.0 - t;
                (
                    u * u * self.start.0 + 2.0 * u * t * self.control.0 + t * t * self.end.0,
                    u * u * self.start.1 + 2.0 * u * t * self.control.1 + t * t * self.end.1,
                )
            })
            .collect()
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history of `steps` steps over 3 agents where only the listed `(owner, source)` pairs
    /// have `D > 0`, with the given `G`.
    fn history(steps: usize, hot: &[(usize, usize, f64)]) -> Vec<PairInfluence> {
        (0..steps)
            .map(|_| {
                let mut p = PairInfluence {
                    agents: 3,
                    g: vec![0.1; 9],
                    d: vec![-1.0; 9],
                };
                for &(i, j, g) in hot {
                    p.g[i * 3 + j] = g;
                    p.d[i * 3 + j] = 1.0;
                }
                p
            })
            .collect()
    }

    #[test]
    fn window_and_edge_statistics() {
        assert_eq!(causal_window(2, 5), 0..=2);
        assert_eq!(causal_window(9, 5), 5..=9);
        // D_{0,1} > 0 at steps 3 and 4 only, with G = 2 there.
        let mut h = history(6, &[]);
        for t in [3, 4] {
            h[t].d[1] = 1.0;
            h[t].g[1] = 2.0;
        }
        let e = edge(&h, 1, 0, 5, 5);
        assert_eq!(e.rate, 2.0 / 5.0);
        assert!((e.mean_g - (2.0 * 2.0 + 3.0 * 0.1) / 5.0).abs() < 1e-12);
        assert_eq!(e.score, 4.0);
        assert!((e.weight() - e.rate * e.mean_g).abs() < 1e-15);
    }

    /// Detected agent 0; agent 1 accelerates 0's critic and agent 2 accelerates 1's: the chain
    /// runs 0 → 1 → 2 and stops (nobody accelerates 2). A cycle stops at the repeat; all-zero
    /// rates leave the candidate alone; ties go to the lowest index.
    #[test]
    fn traceback_on_hand_built_cases() {
        let h = history(5, &[(0, 1, 1.0), (1, 2, 1.0)]);
        let (chain, edges) = traceback(&h, 0, 4, 5);
        assert_eq!(chain, vec![0, 1, 2]);
        assert_eq!(edges.len(), 2);
        let cyc = history(5, &[(0, 1, 1.0), (1, 0, 1.0)]);
        assert_eq!(traceback(&cyc, 0, 4, 5).0, vec![0, 1]);
        let none = history(5, &[]);
        assert_eq!(traceback(&none, 2, 4, 5).0, vec![2]);
        let tie = history(5, &[(2, 0, 1.0), (2, 1, 1.0)]);
        assert_eq!(traceback(&tie, 2, 4, 5).0, vec![2, 0]);
        // The larger score wins over the lower index.
        let strong = history(5, &[(2, 0, 1.0), (2, 1, 3.0)]);
        assert_eq!(traceback(&strong, 2, 4, 5).0, vec![2, 1]);
    }

    #[test]
    fn graph_draws_who_infected_whom() {
        let h = history(5, &[(0, 1, 1.0), (1, 2, 2.0)]);
        let (chain, _) = traceback(&h, 0, 4, 5);
        let g = ContagionGraph::build(&h, vec![Some(4), Some(3), None], chain, 5, Some(2), "seed 7".into());
        // Edges into the flagged agents 0 and 1 only, from their accelerating sources.
        assert_eq!(g.edges.len(), 2);
        assert!(g.edges.iter().any(|e| (e.from, e.to) == (1, 0)));
        assert!(g.edges.iter().any(|e| (e.from, e.to) == (2, 1)));
        let dot = g.to_dot();
        assert!(dot.contains("a1 -> a0") && dot.contains("a2 -> a1") && dot.contains("peripheries=2"));
        let svg = g.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("marker-end").count(), 2);
    }
}
