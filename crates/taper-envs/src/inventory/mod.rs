//! Inventory control (Alvo, Russo & Kanoria's HDPO benchmark): exact and heuristic solvers for
//! a single store. See `docs/inventory.md` for the period's order of events and the lead-time
//! convention (Zipkin's: an order placed in period t meets demand from period t + L on).

pub mod dp;
pub mod heuristics;
pub mod single;

pub use single::{Demand, SingleStore, StoreConfig};
