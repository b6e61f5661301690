//! `taper algos`: every algorithm, with the env it trains by default.

use crate::error::Result;
use crate::out;
use taper::algos::AlgoKind;

/// Lists the algorithms.
pub fn run() -> Result<()> {
    for k in AlgoKind::ALL {
        out!("{}\t{} [default env: {}]", k.name(), k.about(), k.default_env());
    }
    Ok(())
}
