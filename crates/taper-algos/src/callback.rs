//! Callbacks: see each update's metrics and decide whether training goes on.
//!
//! ```
//! use taper_algos::callback::Control;
//! use taper_algos::metrics::Metrics;
//! // Any closure `FnMut(&Metrics) -> Control` is a callback; implement `Callback` to see the
//! // learner and the envs too (for checkpoints and evaluation).
//! let mut stop_at_100 = |m: &Metrics| {
//!     if m.get("global_step").unwrap_or(0.0) >= 100.0 { Control::Stop } else { Control::Continue }
//! };
//! let mut m = Metrics::new();
//! m.push("global_step", 128.0);
//! assert_eq!(stop_at_100(&m), Control::Stop);
//! ```

use crate::metrics::Metrics;
use crate::policy::ActorCritic;
use taper_envs::VecEnv;

/// What every learner exposes to callbacks: its policy (for evaluation) and its state (for
/// checkpoints).
pub trait Learner {
    /// The algorithm's name, e.g. `ppo`.
    fn algo(&self) -> &'static str;
    /// The current policy.
    fn policy(&self) -> &ActorCritic;
    /// The resolved config as JSON.
    fn config_json(&self) -> serde_json::Value;
    /// The learner's state besides weights (optimizer, random streams, counters) as JSON.
    fn state_json(&self) -> serde_json::Value;
    /// Env steps taken.
    fn global_step(&self) -> u64;
    /// Updates done.
    fn updates(&self) -> u64;
    /// Episodes finished.
    fn episodes(&self) -> u64;
}

/// What a callback sees after an update.
pub struct UpdateContext<'a> {
    /// The update's metrics.
    pub metrics: &'a Metrics,
    /// The learner.
    pub learner: &'a dyn Learner,
    /// The training envs.
    pub envs: &'a VecEnv,
}

/// What a callback asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this update.
    Stop,
}

/// Sees every update: its metrics, the learner and the envs.
pub trait Callback {
    /// Called after each update.
    fn on_update(&mut self, ctx: &UpdateContext<'_>) -> Control;
}

/// A closure over the metrics is a callback.
impl<F: FnMut(&Metrics) -> Control> Callback for F {
    fn on_update(&mut self, ctx: &UpdateContext<'_>) -> Control {
        self(ctx.metrics)
    }
}

/// A callback that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCallback;

impl Callback for NoCallback {
    fn on_update(&mut self, _: &UpdateContext<'_>) -> Control {
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
    fn on_update(&mut self, ctx: &UpdateContext<'_>) -> Control {
        let mut c = Control::Continue;
        for cb in self.list.iter_mut() {
            if cb.on_update(ctx) == Control::Stop {
                c = Control::Stop;
            }
        }
        c
    }
}
