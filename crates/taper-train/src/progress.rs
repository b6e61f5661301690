//! The progress display of a run: a bar on a terminal, a line every tenth of the plan
//! otherwise, each showing the learner's headline columns and the speed.

use crate::metrics::Metrics;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// `v` with four significant digits (at most four decimals), or in scientific notation when
/// it is very large or very small.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if !(1e-4..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 4) as usize;
    format!("{v:.decimals$}")
}

/// Progress of one session of a run, on stderr.
pub struct ProgressView {
    bar: Option<ProgressBar>,
    quiet: bool,
    planned: u64,
    next_line: u64,
    every: u64,
    headline: &'static [&'static str],
}

impl ProgressView {
    /// A display for a plan ending at `planned`, starting at `start`; nothing when `quiet`.
    pub fn new(quiet: bool, start: u64, planned: u64, headline: &'static [&'static str]) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(planned);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} | {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_position(start);
            b
        });
        let every = (planned.saturating_sub(start) / 10).max(1);
        ProgressView {
            bar,
            quiet,
            planned,
            next_line: start + every,
            every,
            headline,
        }
    }

    /// The headline columns and the speed of a row, as `name value | ...`.
    pub fn message(headline: &[&str], m: &Metrics) -> String {
        let mut parts: Vec<String> = headline
            .iter()
            .filter_map(|c| m.get(c).map(|v| format!("{c} {}", compact(v))))
            .collect();
        if let Some(s) = m.get("sps") {
            parts.push(format!("{s:.0} steps/s"));
        }
        parts.join(" | ")
    }

    /// Shows a row.
    pub fn row(&mut self, m: &Metrics) {
        if self.quiet {
            return;
        }
        let step = m.get("global_step").unwrap_or(0.0) as u64;
        let msg = Self::message(self.headline, m);
        if let Some(b) = &self.bar {
            b.set_position(step);
            b.set_message(msg);
        } else if step >= self.next_line || step >= self.planned {
            while self.next_line <= step {
                self.next_line += self.every;
            }
            eprintln!("step {step:>10}/{} | {msg}", self.planned);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn compact_keeps_four_significant_digits() {
        assert_eq!(compact(215.0), "215.0");
        assert_eq!(compact(-1167.64), "-1168");
        assert_eq!(compact(0.012345), "0.0123");
        assert_eq!(compact(9.87654), "9.877");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(2.5e7), "2.500e7");
        assert_eq!(compact(f64::NAN), "NaN");
    }
}
