//! Callbacks: see each update's metrics and decide whether training goes on.
//!
//! ```
//! use taper_algos::callback::{Callback, Control};
//! use taper_algos::metrics::Metrics;
//! // Any closure `FnMut(&Metrics) -> Control` is a callback.
//! let mut stop_at_100 = |m: &Metrics| {
//!     if m.get("global_step").unwrap_or(0.0) >= 100.0 { Control::Stop } else { Control::Continue }
//! };
//! let mut m = Metrics::new();
//! m.push("global_step", 128.0);
//! assert_eq!(stop_at_100.on_update(&m), Control::Stop);
//! ```

use crate::metrics::Metrics;

/// What a callback asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this update.
    Stop,
}

/// Sees every update's metrics.
pub trait Callback {
    /// Called after each update.
    fn on_update(&mut self, metrics: &Metrics) -> Control;
}

impl<F: FnMut(&Metrics) -> Control> Callback for F {
    fn on_update(&mut self, metrics: &Metrics) -> Control {
        self(metrics)
    }
}

/// A callback that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCallback;

impl Callback for NoCallback {
    fn on_update(&mut self, _: &Metrics) -> Control {
        Control::Continue
    }
}

/// Several callbacks in order; training stops if any asks to.
#[derive(Default)]
pub struct CallbackList<'a> {
    list: Vec<&'a mut dyn Callback>,
}

impl<'a> CallbackList<'a> {
    /// An empty list.
    pub fn new() -> Self {
        CallbackList { list: Vec::new() }
    }
    /// Adds a callback.
    pub fn push(&mut self, cb: &'a mut dyn Callback) {
        self.list.push(cb);
    }
}

impl Callback for CallbackList<'_> {
    fn on_update(&mut self, metrics: &Metrics) -> Control {
        let mut c = Control::Continue;
        for cb in self.list.iter_mut() {
            if cb.on_update(metrics) == Control::Stop {
                c = Control::Stop;
            }
        }
        c
    }
}
