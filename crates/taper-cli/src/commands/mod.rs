//! One file per subcommand.

pub mod algos;
pub mod diagnose;
pub mod envs;
pub mod eval;
pub mod plot;
pub mod solve;
pub mod train;
pub mod train_parallel;

use crate::error::{CliError, Result};
use taper::envs::Kwargs;

/// Parses `k=v,k=v` env keyword arguments.
pub fn parse_kwargs(s: &str) -> Result<Kwargs> {
    let mut kw = Kwargs::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| CliError::Arg {
            arg: "--env-kwargs",
            reason: format!("`{part}` is not key=value"),
        })?;
        kw.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(kw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kwargs_parse() {
        let kw = parse_kwargs("is_slippery=false, map_name=8x8").unwrap();
        assert_eq!(kw.get("is_slippery").unwrap(), "false");
        assert!(parse_kwargs("oops").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        /// Arbitrary `k=v` lists never panic the kwargs parser.
        #[test]
        fn kwargs_parser_never_panics(s in ".{0,40}") {
            let _ = parse_kwargs(&s);
        }

        /// Arbitrary config text never panics the resolver: it resolves or returns an error.
        #[test]
        fn config_parser_never_panics(text in "(\\[ppo\\]\n|\\[env_kwargs\\]\n|[a-z_]{1,16} = (-?[0-9.e]{1,8}|\"[A-Za-z0-9-]{0,12}\"|true|\\[[0-9, ]{0,8}\\])\n|.{0,20}\n){0,8}") {
            // Removed with the case, so that the run leaves nothing in the temp folder.
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("c.toml");
            std::fs::write(&p, &text).unwrap();
            let _ = taper::algos::run_config::RunConfig::resolve(Some(&p), &Default::default());
        }
    }
}
