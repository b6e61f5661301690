//! `taper-algos` integration tests: one test binary, one module per topic, so that the test
//! build links once and the slow learning tests share the cores with the rest.

mod backends;
mod blocks;
mod divergence;
mod hdpo;
mod learning;
mod library;
mod trl_golden;
