//! Where metrics rows go: `metrics.jsonl` and `metrics.csv` ([`MetricsWriter`]), and
//! TensorBoard event files ([`crate::tensorboard::EventWriter`]).
//!
//! ```
//! use taper_train::metrics::Metrics;
//! use taper_train::sinks::MetricsWriter;
//! let dir = tempfile::tempdir()?;
//! let mut w = MetricsWriter::create(dir.path())?;
//! let mut m = Metrics::new();
//! m.push("global_step", 512.0);
//! m.push("x", f64::NAN);
//! w.write(&m)?;
//! assert_eq!(std::fs::read_to_string(dir.path().join("metrics.csv"))?, "global_step,x\n512,\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::checkpoint::write_atomic;
use crate::error::{Result, TrainError};
use crate::metrics::{fmt_value, Metrics};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes each row to `metrics.jsonl` and `metrics.csv`, flushed after every row.
#[derive(Debug)]
pub struct MetricsWriter {
    jsonl: std::io::BufWriter<std::fs::File>,
    csv: std::io::BufWriter<std::fs::File>,
    columns: Option<Vec<String>>,
    dir: PathBuf,
}

fn open_append(p: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .map(std::io::BufWriter::new)
        .map_err(|e| TrainError::io(p, e))
}

impl MetricsWriter {
    /// Creates (truncating) the two files in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let open = |name: &str| {
            let p = dir.join(name);
            std::fs::File::create(&p)
                .map(std::io::BufWriter::new)
                .map_err(|e| TrainError::io(&p, e))
        };
        Ok(MetricsWriter {
            jsonl: open("metrics.jsonl")?,
            csv: open("metrics.csv")?,
            columns: None,
            dir: dir.to_path_buf(),
        })
    }

    /// Reopens the files of a run being resumed from a checkpoint at env step `keep_steps`:
    /// rows after it (written by a session that went on past its last checkpoint) are
    /// dropped, and new rows are appended.
    pub fn resume(dir: &Path, keep_steps: u64) -> Result<Self> {
        let jp = dir.join("metrics.jsonl");
        let cp = dir.join("metrics.csv");
        let jsonl = std::fs::read_to_string(&jp).unwrap_or_default();
        let csv = std::fs::read_to_string(&cp).unwrap_or_default();
        let keep: Vec<&str> = jsonl
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("global_step").and_then(|u| u.as_f64()))
                    .is_some_and(|u| u <= keep_steps as f64)
            })
            .collect();
        let mut csv_lines = csv.lines();
        let header = csv_lines.next();
        let jtext: String = keep.iter().map(|l| format!("{l}\n")).collect();
        write_atomic(&jp, jtext.as_bytes())?;
        let mut ctext = String::new();
        if let (Some(h), false) = (header, keep.is_empty()) {
            ctext.push_str(h);
            ctext.push('\n');
            for l in csv_lines.take(keep.len()) {
                ctext.push_str(l);
                ctext.push('\n');
            }
        }
        write_atomic(&cp, ctext.as_bytes())?;
        let columns = header
            .filter(|_| !keep.is_empty())
            .map(|h| h.split(',').map(str::to_string).collect());
        Ok(MetricsWriter {
            jsonl: open_append(&jp)?,
            csv: open_append(&cp)?,
            columns,
            dir: dir.to_path_buf(),
        })
    }

    /// Appends one row to both files and flushes them. The CSV header is the first row's
    /// columns; later rows fill those columns (a missing value is an empty cell).
    pub fn write(&mut self, m: &Metrics) -> Result<()> {
        let dir = self.dir.clone();
        let io = |e| TrainError::io(&dir, e);
        writeln!(self.jsonl, "{}", m.to_json_line()).map_err(io)?;
        if self.columns.is_none() {
            let cols: Vec<String> = m.columns().iter().map(|c| c.to_string()).collect();
            writeln!(self.csv, "{}", cols.join(",")).map_err(io)?;
            self.columns = Some(cols);
        }
        let cols = self.columns.as_ref().expect("set above");
        let row: Vec<String> = cols
            .iter()
            .map(|c| {
                m.get(c)
                    .map(fmt_value)
                    .map(|s| if s == "null" { String::new() } else { s })
                    .unwrap_or_default()
            })
            .collect();
        writeln!(self.csv, "{}", row.join(",")).map_err(io)?;
        self.jsonl.flush().map_err(io)?;
        self.csv.flush().map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_keeps_rows_up_to_the_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::create(d.path()).unwrap();
        for s in [100.0, 200.0, 300.0] {
            let mut m = Metrics::new();
            m.push("global_step", s);
            m.push("loss", s / 100.0);
            w.write(&m).unwrap();
        }
        drop(w);
        let mut w = MetricsWriter::resume(d.path(), 200).unwrap();
        let mut m = Metrics::new();
        m.push("global_step", 300.0);
        m.push("loss", 9.0);
        w.write(&m).unwrap();
        let csv = std::fs::read_to_string(d.path().join("metrics.csv")).unwrap();
        assert_eq!(csv, "global_step,loss\n100,1\n200,2\n300,9\n");
        let jl = std::fs::read_to_string(d.path().join("metrics.jsonl")).unwrap();
        assert_eq!(jl.lines().count(), 3);
        assert!(jl.ends_with("{\"global_step\":300,\"loss\":9}\n"));
    }
}
