//! One record of named numbers per update, in a fixed column order, shared by every
//! algorithm and every sink (JSONL, CSV, the progress line).
//!
//! ```
//! use taper_train::metrics::Metrics;
//! let mut m = Metrics::new();
//! m.push("global_step", 512.0);
//! m.push("policy_loss", -0.01);
//! assert_eq!(m.to_json_line(), r#"{"global_step":512,"policy_loss":-0.01}"#);
//! ```

/// Column names whose values depend on wall-clock time; excluded when comparing runs.
pub const TIMING_COLUMNS: &[&str] = &["sps", "time_elapsed"];

use std::borrow::Cow;

/// Named values in insertion order. Names are usually `&'static str`; names made at run time
/// (an env's statistics, `recent_<name>`) are owned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    entries: Vec<(Cow<'static, str>, f64)>,
}

impl Metrics {
    /// An empty record.
    pub fn new() -> Self {
        Metrics::default()
    }
    /// Appends (or overwrites) a value.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: f64) {
        let name = name.into();
        if let Some(e) = self.entries.iter_mut().find(|(n, _)| *n == name) {
            e.1 = value;
        } else {
            self.entries.push((name, value));
        }
    }
    /// Appends an f32 value, widened through its shortest decimal form so `2.5e-4f32` is
    /// recorded as `0.00025`, not `0.0002500000118743628`.
    pub fn push_f32(&mut self, name: impl Into<Cow<'static, str>>, value: f32) {
        let v = if value.is_finite() {
            value.to_string().parse::<f64>().unwrap_or(value as f64)
        } else {
            value as f64
        };
        self.push(name, v);
    }
    /// A value by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries.iter().find(|(n, _)| n == name).map(|e| e.1)
    }
    /// The entries in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(n, v)| (n.as_ref(), *v))
    }
    /// Column names in order.
    pub fn columns(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.0.as_ref()).collect()
    }
    /// One JSON object; integers print without a fraction, non-finite values as `null`.
    pub fn to_json_line(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('"');
            s.push_str(k);
            s.push_str("\":");
            s.push_str(&fmt_value(*v));
        }
        s.push('}');
        s
    }
}

/// Formats a value for JSON and CSV: integral values as integers, others with Rust's shortest
/// round-trip representation, non-finite as `null`.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "null".to_string()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
