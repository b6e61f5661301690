//! The `taper` binary end to end: one test binary, one module per topic (fewer binaries to
//! link keeps the test build short).

mod backend;
mod common;
mod data_parallel;
mod diagnose;
mod docs;
mod eval;
mod examples;
mod fixture;
mod grpo;
mod inventory;
mod kill;
mod multi_agent;
mod plot;
mod resume;
mod safety;
mod sweep;
mod train;
