//! Inventory control (Alvo, Russo & Kanoria's HDPO benchmark): one store ([`single`]), its
//! exact optimum ([`dp`], over the states of [`lattice`]), the exact cost of any policy
//! ([`chain`]), heuristics ([`heuristics`]), and networks ([`network`]: a serial chain; one
//! warehouse with many stores). See
//! `docs/inventory.md` for the period's order of events and the lead-time convention (Zipkin's: an order placed in period t meets demand from period t + L on).

pub mod chain;
pub mod dp;
pub mod heuristics;
pub mod lattice;
pub mod network;
pub mod single;

pub use network::{NetScenarios, NetStore, Network, NetworkConfig, NetworkEnv, Stage};
pub use single::{Demand, SingleStore, StoreConfig};
