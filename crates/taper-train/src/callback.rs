//! Callbacks: see each metrics row (and the learner) and decide whether training goes on.
//!
//! ```
//! use taper_train::callback::Control;
//! use taper_train::metrics::Metrics;
//! // Any closure `FnMut(&Metrics) -> Control` is a callback; implement `Callback` to see the
//! // learner too (to evaluate it, or save it your own way).
//! let mut stop_at_100 = |m: &Metrics| {
//!     if m.get("global_step").unwrap_or(0.0) >= 100.0 { Control::Stop } else { Control::Continue }
//! };
//! let mut m = Metrics::new();
//! m.push("global_step", 128.0);
//! assert_eq!(stop_at_100(&m), Control::Stop);
//! ```

use crate::learner::Learner;
use crate::metrics::Metrics;

/// What a callback sees after each metrics row.
pub struct RowContext<'a> {
    /// The row.
    pub metrics: &'a Metrics,
    /// The learner.
    pub learner: &'a dyn Learner,
}

/// What a callback asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this row (the run keeps its final checkpoint and can be resumed).
    Stop,
}

/// Sees every metrics row.
pub trait Callback {
    /// Called after each row is written.
    fn on_row(&mut self, ctx: &RowContext<'_>) -> Control;
}

/// A closure over the metrics is a callback.
impl<F: FnMut(&Metrics) -> Control> Callback for F {
    fn on_row(&mut self, ctx: &RowContext<'_>) -> Control {
        self(ctx.metrics)
    }
}

/// A callback that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCallback;

impl Callback for NoCallback {
    fn on_row(&mut self, _: &RowContext<'_>) -> Control {
        Control::Continue
    }
}
