//! [`AlgoKind`]: every algorithm by name, with its config section, its default config and
//! budget for an env, and how to build its learner (fresh, or from a checkpoint). The CLI and
//! the library dispatch through it; nothing else compares algorithm names.
//!
//! ```
//! use taper_algos::kind::AlgoKind;
//! let k = AlgoKind::from_name("mappo")?;
//! assert!(k.multi_agent());
//! assert_eq!(k.default_env(), "SimpleSpread-v3");
//! assert_eq!(k.default_budget("SimpleSpread-v3"), 12_000_000);
//! assert!(AlgoKind::from_name("dqn").is_err());
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```

use crate::error::{AlgoError, Result};
use crate::grpo::{Grpo, GrpoConfig};
use crate::hdpo::{Hdpo, HdpoConfig, HdpoNetwork};
use crate::maddpg::{Maddpg, MaddpgConfig};
use crate::mappo::{MaPpo, MappoConfig};
use crate::ppo::{Ppo, PpoConfig};
use crate::sac::{Sac, SacConfig};
use serde::{Deserialize, Serialize};
use taper_envs::registry;
use taper_envs::Kwargs;
use taper_train::checkpoint::CheckpointState;
use taper_train::Learner;

/// An algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlgoKind {
    /// Proximal Policy Optimization.
    Ppo,
    /// Hindsight Differentiable Policy Optimization (inventory envs).
    Hdpo,
    /// Multi-agent PPO with a centralized critic.
    Mappo,
    /// Independent PPO with parameter sharing.
    Ippo,
    /// Multi-agent DDPG.
    Maddpg,
    /// Group Relative Policy Optimization and its variants (sequence tasks).
    Grpo,
    /// Soft Actor-Critic with clipped double Q.
    Sac,
    /// Distributional SAC with three refinements.
    #[serde(rename = "dsac-t")]
    DsacT,
    /// Stochastic Actor-Critic: one Gaussian critic with a pessimistic target.
    Stac,
}

/// An algorithm's config.
#[derive(Debug, Clone, PartialEq)]
pub enum AlgoConfig {
    /// PPO's.
    Ppo(PpoConfig),
    /// HDPO's.
    Hdpo(HdpoConfig),
    /// MAPPO's or IPPO's.
    Mappo(MappoConfig),
    /// MADDPG's.
    Maddpg(MaddpgConfig),
    /// GRPO's.
    Grpo(GrpoConfig),
    /// The SAC family's (SAC, DSAC-T, STAC).
    Sac(SacConfig),
}

impl AlgoConfig {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AlgoConfig::Ppo(c) => serde_json::to_value(c),
            AlgoConfig::Hdpo(c) => serde_json::to_value(c),
            AlgoConfig::Mappo(c) => serde_json::to_value(c),
            AlgoConfig::Maddpg(c) => serde_json::to_value(c),
            AlgoConfig::Grpo(c) => serde_json::to_value(c),
            AlgoConfig::Sac(c) => serde_json::to_value(c),
        }
        .unwrap_or_default()
    }
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        match self {
            AlgoConfig::Ppo(c) => c.validate(),
            AlgoConfig::Hdpo(c) => c.validate(),
            AlgoConfig::Mappo(c) => c.validate(),
            AlgoConfig::Maddpg(c) => c.validate(),
            AlgoConfig::Grpo(c) => c.validate(),
            AlgoConfig::Sac(c) => c.validate(),
        }
    }
}

impl AlgoKind {
    /// Every algorithm.
    pub const ALL: [AlgoKind; 9] = [
        AlgoKind::Ppo,
        AlgoKind::Hdpo,
        AlgoKind::Mappo,
        AlgoKind::Ippo,
        AlgoKind::Maddpg,
        AlgoKind::Grpo,
        AlgoKind::Sac,
        AlgoKind::DsacT,
        AlgoKind::Stac,
    ];

    /// The name (`--algo`, run folders, the config section).
    pub fn name(self) -> &'static str {
        match self {
            AlgoKind::Ppo => "ppo",
            AlgoKind::Hdpo => "hdpo",
            AlgoKind::Mappo => "mappo",
            AlgoKind::Ippo => "ippo",
            AlgoKind::Maddpg => "maddpg",
            AlgoKind::Grpo => "grpo",
            AlgoKind::Sac => "sac",
            AlgoKind::DsacT => "dsac-t",
            AlgoKind::Stac => "stac",
        }
    }

    /// The algorithm of a name; an error listing the known ones.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| AlgoError::UnknownAlgo {
                name: name.to_string(),
                known: Self::ALL.map(|k| k.name()).join(", "),
            })
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            AlgoKind::Ppo => "Proximal Policy Optimization (CleanRL's ppo.py / ppo_continuous_action.py)",
            AlgoKind::Hdpo => "Hindsight Differentiable Policy Optimization (inventory envs; Alvo, Russo & Kanoria)",
            AlgoKind::Mappo => {
                "Multi-agent PPO: shared actor, centralized critic with value normalisation (multi-agent envs)"
            }
            AlgoKind::Ippo => "Independent PPO with parameter sharing (multi-agent envs)",
            AlgoKind::Maddpg => "MADDPG with Gumbel-softmax actors and centralized tanh critics (multi-agent envs)",
            AlgoKind::Grpo => {
                "GRPO with Dr. GRPO, DAPO, D³S and ADORA as options: a transformer on candle (sequence tasks)"
            }
            AlgoKind::Sac => "Soft Actor-Critic with automatic temperature (CleanRL's sac_continuous_action.py)",
            AlgoKind::DsacT => "DSAC-T: twin Gaussian critics with DSAC-T's three refinements (its official code)",
            AlgoKind::Stac => "STAC: one Gaussian critic with a β·σ pessimistic target (rl-warehouse's stac.py)",
        }
    }

    /// Whether it trains multi-agent envs.
    pub fn multi_agent(self) -> bool {
        matches!(self, AlgoKind::Mappo | AlgoKind::Ippo | AlgoKind::Maddpg)
    }

    /// The env it trains when none is given.
    pub fn default_env(self) -> &'static str {
        match self {
            AlgoKind::Ppo => "CartPole-v1",
            AlgoKind::Hdpo => "InventoryLostSales-v0",
            AlgoKind::Grpo => "SeqAddition-v0",
            AlgoKind::Sac | AlgoKind::DsacT | AlgoKind::Stac => "Pendulum-v1",
            _ => "SimpleSpread-v3",
        }
    }

    /// The default budget on `env_id`: env steps (HDPO: gradient steps) that meet the
    /// project's documented results with the default config (`docs/reproducing.md`,
    /// `docs/mpe.md`, `docs/inventory.md`).
    pub fn default_budget(self, env_id: &str) -> u64 {
        match self {
            AlgoKind::Ppo => crate::ppo::default_budget(env_id),
            AlgoKind::Hdpo => {
                if registry::is_inventory_network(env_id) {
                    HdpoConfig::for_network().steps as u64
                } else {
                    HdpoConfig::default().steps as u64
                }
            }
            AlgoKind::Maddpg => 1_500_000,
            AlgoKind::Grpo => 256_000,
            AlgoKind::Mappo => 12_000_000,
            AlgoKind::Ippo => 8_000_000,
            AlgoKind::Sac | AlgoKind::DsacT | AlgoKind::Stac => crate::sac::default_budget(env_id),
        }
    }

    /// Whether it can train `env_id`; an error saying why not.
    pub fn check_env(self, env_id: &str) -> Result<()> {
        let multi = registry::is_multi_agent(env_id);
        let bad = |reason: String| Err(AlgoError::Config { field: "env", reason });
        if self.multi_agent() && !multi {
            registry::spec(env_id)?;
            return bad(format!(
                "{} is a multi-agent algorithm; `{env_id}` is a single-agent env (multi-agent: {})",
                self.name(),
                registry::parallel_specs()
                    .iter()
                    .map(|s| s.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.multi_agent() && multi {
            return bad(format!(
                "`{env_id}` is multi-agent; train it with --algo mappo, ippo or maddpg"
            ));
        }
        if self == AlgoKind::Grpo && !registry::is_sequence(env_id) {
            registry::spec(env_id)?;
            return bad(format!(
                "grpo trains the sequence tasks ({}), not `{env_id}`",
                taper_envs::seq::tasks::IDS.join(", ")
            ));
        }
        if self == AlgoKind::Hdpo && !registry::is_inventory(env_id) {
            registry::spec(env_id)?;
            return bad(format!(
                "hdpo needs a differentiable simulator; it runs on the inventory envs, not `{env_id}`"
            ));
        }
        if !multi {
            registry::spec(env_id)?;
        }
        if self.sac_family() {
            let probe = taper_envs::make(env_id)?;
            if !matches!(probe.action_space(), taper_envs::Space::Box { .. }) {
                return bad(format!(
                    "{} needs continuous actions (a Box); `{env_id}` has {}",
                    self.name(),
                    probe.action_space()
                ));
            }
        }
        Ok(())
    }

    /// The config a run starts from on `env_id`: the reference implementation's (PPO's
    /// discrete or continuous CleanRL defaults, by the env's action space), or the measured
    /// preset the CLI uses (`MaddpgConfig::tuned`, `MappoConfig::mappo`/`ippo`,
    /// `HdpoConfig::for_network` on networks).
    pub fn default_config(self, env_id: &str, env_kwargs: &Kwargs) -> Result<AlgoConfig> {
        Ok(match self {
            AlgoKind::Ppo => {
                let probe = taper_envs::make_with(env_id, env_kwargs)?;
                AlgoConfig::Ppo(PpoConfig::for_action_space(probe.action_space()))
            }
            AlgoKind::Hdpo => AlgoConfig::Hdpo(if registry::is_inventory_network(env_id) {
                HdpoConfig::for_network()
            } else {
                HdpoConfig::default()
            }),
            AlgoKind::Mappo => AlgoConfig::Mappo(MappoConfig::mappo()),
            AlgoKind::Ippo => AlgoConfig::Mappo(MappoConfig::ippo()),
            AlgoKind::Maddpg => AlgoConfig::Maddpg(MaddpgConfig::tuned()),
            AlgoKind::Grpo => AlgoConfig::Grpo(GrpoConfig::default()),
            AlgoKind::Sac | AlgoKind::DsacT | AlgoKind::Stac => self.reference_config(),
        })
    }

    /// Its reference config, independent of any env (what a config file's section of this
    /// algorithm is checked against when another algorithm runs).
    pub fn reference_config(self) -> AlgoConfig {
        match self {
            AlgoKind::Ppo => AlgoConfig::Ppo(PpoConfig::default()),
            AlgoKind::Hdpo => AlgoConfig::Hdpo(HdpoConfig::default()),
            AlgoKind::Mappo => AlgoConfig::Mappo(MappoConfig::mappo()),
            AlgoKind::Ippo => AlgoConfig::Mappo(MappoConfig::ippo()),
            AlgoKind::Maddpg => AlgoConfig::Maddpg(MaddpgConfig::tuned()),
            AlgoKind::Grpo => AlgoConfig::Grpo(GrpoConfig::default()),
            AlgoKind::Sac => AlgoConfig::Sac(SacConfig::sac()),
            AlgoKind::DsacT => AlgoConfig::Sac(SacConfig::dsac_t()),
            AlgoKind::Stac => AlgoConfig::Sac(SacConfig::stac()),
        }
    }

    /// Whether it is one of the SAC family (one learner, three presets).
    pub fn sac_family(self) -> bool {
        matches!(self, AlgoKind::Sac | AlgoKind::DsacT | AlgoKind::Stac)
    }

    /// Parses its config section (JSON of the keys given), over `base`: unknown keys and bad
    /// values are errors naming the section.
    pub fn config_over(self, base: &AlgoConfig, keys: &serde_json::Value) -> Result<AlgoConfig> {
        fn over<T: Serialize + serde::de::DeserializeOwned>(
            section: &str,
            base: &T,
            keys: &serde_json::Value,
        ) -> Result<T> {
            let mut v = serde_json::to_value(base).unwrap_or_default();
            if let (Some(o), Some(k)) = (v.as_object_mut(), keys.as_object()) {
                for (key, val) in k {
                    o.insert(key.clone(), val.clone());
                }
            }
            serde_json::from_value(v).map_err(|e| AlgoError::Config {
                field: "config",
                reason: format!("[{section}]: {e}"),
            })
        }
        let s = self.name();
        Ok(match base {
            AlgoConfig::Ppo(b) => AlgoConfig::Ppo(over(s, b, keys)?),
            AlgoConfig::Hdpo(b) => AlgoConfig::Hdpo(over(s, b, keys)?),
            AlgoConfig::Mappo(b) => AlgoConfig::Mappo(over(s, b, keys)?),
            AlgoConfig::Maddpg(b) => AlgoConfig::Maddpg(over(s, b, keys)?),
            AlgoConfig::Grpo(b) => AlgoConfig::Grpo(over(s, b, keys)?),
            AlgoConfig::Sac(b) => AlgoConfig::Sac(over(s, b, keys)?),
        })
    }

    /// A fresh learner of this algorithm.
    pub fn learner(
        self,
        config: &AlgoConfig,
        env_id: &str,
        env_kwargs: &Kwargs,
        seed: u64,
    ) -> Result<Box<dyn Learner>> {
        let mismatch = || AlgoError::Config {
            field: "config",
            reason: format!("not a {} config", self.name()),
        };
        Ok(match (self, config) {
            (AlgoKind::Ppo, AlgoConfig::Ppo(c)) => Box::new(Ppo::new(c.clone(), env_id, env_kwargs, seed)?),
            (AlgoKind::Hdpo, AlgoConfig::Hdpo(c)) => {
                if registry::is_inventory_network(env_id) {
                    Box::new(HdpoNetwork::new(c.clone(), env_id, env_kwargs, seed)?)
                } else {
                    Box::new(Hdpo::new(c.clone(), env_id, env_kwargs, seed)?)
                }
            }
            (AlgoKind::Mappo | AlgoKind::Ippo, AlgoConfig::Mappo(c)) => {
                Box::new(MaPpo::new(c.clone(), env_id, env_kwargs, seed)?)
            }
            (AlgoKind::Maddpg, AlgoConfig::Maddpg(c)) => Box::new(Maddpg::new(c.clone(), env_id, env_kwargs, seed)?),
            (AlgoKind::Grpo, AlgoConfig::Grpo(c)) => Box::new(Grpo::new(c.clone(), env_id, env_kwargs, seed)?),
            (k, AlgoConfig::Sac(c)) if k.sac_family() => {
                Box::new(Sac::new(c.clone(), env_id, env_kwargs, seed)?.named(k.name()))
            }
            _ => return Err(mismatch()),
        })
    }

    /// The learner a checkpoint's state describes (algorithm, config, env, seed), before its
    /// weights are loaded.
    pub fn learner_for(state: &CheckpointState) -> Result<Box<dyn Learner>> {
        let kind = AlgoKind::from_name(&state.algo).map_err(|_| AlgoError::Checkpoint {
            path: "state.json".into(),
            reason: format!(
                "this is a `{}` checkpoint; this taper loads {}",
                state.algo,
                Self::ALL.map(|k| k.name()).join(", ")
            ),
        })?;
        let base = kind.default_config(&state.env_id, &state.env_kwargs)?;
        let config = kind.config_over(&base, &state.config)?;
        kind.learner(&config, &state.env_id, &state.env_kwargs, state.seed)
    }
}
