//! Resolving a run's configuration: built-in defaults for the env's action space, then the
//! `--config` file, then command-line flags.

use crate::error::{CliError, Result};
use serde::{Deserialize, Serialize};
use taper::algos::ppo::PpoConfig;
use taper::envs::Kwargs;

/// A run's resolved configuration, written to `config.toml` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The algorithm.
    pub algo: String,
    /// The env id.
    pub env: String,
    /// The seed.
    pub seed: u64,
    /// Env steps to train for.
    pub total_steps: u64,
    /// Keyword arguments for the env.
    #[serde(default)]
    pub env_kwargs: Kwargs,
    /// PPO's hyperparameters.
    pub ppo: PpoConfig,
    /// HDPO's hyperparameters (HDPO runs only; `total_steps` is its number of gradient steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdpo: Option<taper::algos::hdpo::HdpoConfig>,
    /// MAPPO's hyperparameters (`--algo mappo` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappo: Option<taper::algos::marl::MappoConfig>,
    /// IPPO's hyperparameters (`--algo ippo` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ippo: Option<taper::algos::marl::MappoConfig>,
    /// MADDPG's hyperparameters (`--algo maddpg` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maddpg: Option<taper::algos::maddpg::MaddpgConfig>,
}

/// The multi-agent algorithms (on `SimpleSpread-v3`).
pub const MULTI_AGENT_ALGOS: &[&str] = &["mappo", "ippo", "maddpg"];

/// The default budget (env steps) of a multi-agent algorithm.
pub fn marl_default_budget(algo: &str) -> u64 {
    taper::algos::marl::default_budget(algo)
}

/// The parts of a config file, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    algo: Option<String>,
    env: Option<String>,
    seed: Option<u64>,
    total_steps: Option<u64>,
    #[serde(default, deserialize_with = "scalar_kwargs")]
    env_kwargs: Kwargs,
    ppo: Option<toml::Table>,
    hdpo: Option<toml::Table>,
    mappo: Option<toml::Table>,
    ippo: Option<toml::Table>,
    maddpg: Option<toml::Table>,
}

/// `[env_kwargs]` values as the env registry takes them: strings, and booleans and numbers
/// written as TOML scalars (`continuous = true`, `agents = 5`).
fn scalar_kwargs<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Kwargs, D::Error> {
    use serde::Deserialize;
    let raw = std::collections::BTreeMap::<String, toml::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "env_kwargs.{k}: expected a string, boolean or number, got {}",
                        other.type_str()
                    )))
                }
            };
            Ok((k, s))
        })
        .collect()
}

/// Flags given on the command line (None = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub algo: Option<String>,
    pub env: Option<String>,
    pub seed: Option<u64>,
    pub total_steps: Option<u64>,
    pub env_kwargs: Kwargs,
}

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

/// A TOML error as one line: `line L, column C: message`.
fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

/// Overlays a TOML table of keys onto a config's defaults; unknown keys and bad values are
/// errors naming the section.
fn merge_onto<T: Serialize + serde::de::DeserializeOwned>(
    base: &T,
    table: toml::Table,
    path: &str,
    section: &str,
) -> Result<T> {
    let mut merged = toml::Table::try_from(base).map_err(|e| CliError::Config {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    for (k, v) in table {
        merged.insert(k, v);
    }
    merged.try_into::<T>().map_err(|e| CliError::Config {
        path: path.to_string(),
        reason: format!(
            "[{section}]: {}",
            e.message().split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    })
}

/// Resolves the run configuration.
pub fn resolve(file: Option<&std::path::Path>, ov: &Overrides) -> Result<RunConfig> {
    let fc: FileConfig = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| CliError::io(p, e))?;
            toml::from_str(&text).map_err(|e| CliError::Config {
                path: p.display().to_string(),
                reason: toml_error_line(&text, &e),
            })?
        }
        None => FileConfig::default(),
    };
    let path = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<defaults>".into());
    let algo = ov.algo.clone().or(fc.algo).unwrap_or_else(|| "ppo".into());
    let multi = MULTI_AGENT_ALGOS.contains(&algo.as_str());
    if algo != "ppo" && algo != "hdpo" && !multi {
        return Err(CliError::UnknownAlgo(algo));
    }
    let env = ov.env.clone().or(fc.env).unwrap_or_else(|| {
        if algo == "hdpo" {
            "InventoryLostSales-v0"
        } else if multi {
            "SimpleSpread-v3"
        } else {
            "CartPole-v1"
        }
        .into()
    });
    let is_ma_env = taper::envs::registry::is_multi_agent(&env);
    if multi && !is_ma_env {
        return Err(CliError::Arg {
            arg: "--algo",
            reason: format!("{algo} is a multi-agent algorithm; it runs on SimpleSpread-v3, not `{env}`"),
        });
    }
    if !multi && is_ma_env {
        return Err(CliError::Arg {
            arg: "--env",
            reason: format!("`{env}` is multi-agent; train it with --algo mappo, ippo or maddpg"),
        });
    }
    if algo == "hdpo" && !env.starts_with("Inventory") {
        return Err(CliError::Arg {
            arg: "--algo",
            reason: format!("hdpo needs a differentiable simulator; it runs on the inventory envs, not `{env}`"),
        });
    }
    let mut env_kwargs = fc.env_kwargs;
    env_kwargs.extend(ov.env_kwargs.clone());
    let seed = ov.seed.or(fc.seed).unwrap_or(1);
    let steps_given = ov.total_steps.or(fc.total_steps);
    if multi {
        let spread = taper::envs::registry::spread_config(&env, &env_kwargs)?;
        let mut cfg = RunConfig {
            algo: algo.clone(),
            env,
            seed,
            total_steps: steps_given.unwrap_or_else(|| marl_default_budget(&algo)),
            env_kwargs,
            ppo: PpoConfig::default(),
            hdpo: None,
            mappo: None,
            ippo: None,
            maddpg: None,
        };
        match algo.as_str() {
            "maddpg" => {
                let base = taper::algos::maddpg::MaddpgConfig::tuned();
                let c = match fc.maddpg {
                    None => base,
                    Some(t) => merge_onto(&base, t, &path, "maddpg")?,
                };
                c.validate()?;
                cfg.maddpg = Some(c);
            }
            a => {
                let (base, table) = if a == "mappo" {
                    (taper::algos::marl::MappoConfig::mappo(), fc.mappo)
                } else {
                    (taper::algos::marl::MappoConfig::ippo(), fc.ippo)
                };
                let c = match table {
                    None => base,
                    Some(t) => merge_onto(&base, t, &path, a)?,
                };
                c.validate()?;
                if a == "mappo" {
                    cfg.mappo = Some(c);
                } else {
                    cfg.ippo = Some(c);
                }
            }
        }
        if spread.continuous && algo != "maddpg" {
            return Err(CliError::Arg {
                arg: "--env-kwargs",
                reason: format!("{algo} here runs the discrete Simple Spread (continuous=false)"),
            });
        }
        return Ok(cfg);
    }
    // The env decides the default hyperparameters (discrete or continuous CleanRL script).
    let probe = taper::envs::make_with(&env, &env_kwargs)?;
    let base = PpoConfig::for_action_space(probe.action_space());
    let ppo = match fc.ppo {
        None => base,
        Some(table) => merge_onto(&base, table, &path, "ppo")?,
    };
    ppo.validate()?;
    let hdpo = match (algo == "hdpo", fc.hdpo) {
        (false, _) => None,
        (true, table) => {
            let base = if taper::envs::registry::is_inventory_network(&env) {
                taper::algos::hdpo::HdpoConfig::for_network()
            } else {
                taper::algos::hdpo::HdpoConfig::default()
            };
            let mut h = match table {
                None => base,
                Some(table) => merge_onto(&base, table, &path, "hdpo")?,
            };
            if let Some(s) = steps_given {
                h.steps = s as usize;
            }
            h.validate()?;
            Some(h)
        }
    };
    // HDPO counts gradient steps; PPO env steps.
    let total_steps = match &hdpo {
        Some(h) => h.steps as u64,
        None => steps_given.unwrap_or_else(|| taper::algos::ppo::default_budget(&env)),
    };
    Ok(RunConfig {
        algo,
        env,
        seed,
        total_steps,
        env_kwargs,
        ppo,
        hdpo,
        mappo: None,
        ippo: None,
        maddpg: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_action_space() {
        let c = resolve(None, &Overrides::default()).unwrap();
        assert_eq!(c.ppo, PpoConfig::default());
        assert_eq!(c.total_steps, 500_000);
        let c = resolve(
            None,
            &Overrides {
                env: Some("Pendulum-v1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.ppo, PpoConfig::continuous());
    }

    #[test]
    fn resolved_config_round_trips_through_toml() {
        let c = resolve(None, &Overrides::default()).unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: RunConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn kwargs_parse() {
        let kw = parse_kwargs("is_slippery=false, map_name=8x8").unwrap();
        assert_eq!(kw.get("is_slippery").unwrap(), "false");
        assert!(parse_kwargs("oops").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        /// Arbitrary config text never panics the resolver: it resolves or returns an error.
        #[test]
        fn config_parser_never_panics(text in "(\\[ppo\\]\n|\\[env_kwargs\\]\n|[a-z_]{1,16} = (-?[0-9.e]{1,8}|\"[A-Za-z0-9-]{0,12}\"|true|\\[[0-9, ]{0,8}\\])\n|.{0,20}\n){0,8}") {
            let dir = std::env::temp_dir().join(format!("taper-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join("c.toml");
            std::fs::write(&p, &text).unwrap();
            let _ = resolve(Some(&p), &Overrides::default());
        }

        /// Arbitrary `k=v` lists never panic the kwargs parser.
        #[test]
        fn kwargs_parser_never_panics(s in ".{0,40}") {
            let _ = parse_kwargs(&s);
        }
    }
}
