//! A run's configuration ([`RunConfig`]): the algorithm, the env, the seed, the budget and
//! the algorithm's config, resolved in three layers as `taper train` does: the algorithm's
//! defaults for the env, then a TOML file, then explicit values ([`Overrides`]). The resolved
//! config is what a run folder's `config.toml` holds (only the section of its algorithm), and
//! what `--resume` reads back. A section for another algorithm than the run's is an error
//! (it would be silently ignored).
//!
//! ```no_run
//! use taper_algos::run_config::{Overrides, RunConfig};
//! let cfg = RunConfig::resolve(Some("configs/ppo-cartpole-zoo.toml".as_ref()), &Overrides::default())?;
//! let mut learner = cfg.learner()?;
//! taper_train::Trainer::new("runs/zoo").fit(learner.as_mut(), cfg.total_steps)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{AlgoError, Result};
use crate::kind::{AlgoConfig, AlgoKind};
use std::path::Path;
use taper_envs::Kwargs;
use taper_tensor::device::{Backend, DeviceSpec, Placement};
use taper_train::run_file::RunFile;
use taper_train::Learner;

/// A run's resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// The algorithm.
    pub algo: AlgoKind,
    /// The env id.
    pub env: String,
    /// The seed.
    pub seed: u64,
    /// The budget: env steps (HDPO: gradient steps).
    pub total_steps: u64,
    /// The env's keyword arguments.
    pub env_kwargs: Kwargs,
    /// The algorithm's config.
    pub config: AlgoConfig,
    /// Where the networks compute (`device`; not part of the run folder's `config.toml`:
    /// checkpoints load on any device).
    pub device: DeviceSpec,
    /// How they compute on the CPU (`backend`; `None`: the device's natural one).
    pub backend: Option<Backend>,
}

/// Values given explicitly (command-line flags), over the file's and the defaults.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--algo`.
    pub algo: Option<String>,
    /// `--env`.
    pub env: Option<String>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--total-steps`.
    pub total_steps: Option<u64>,
    /// Env keyword arguments (added to the file's).
    pub env_kwargs: Kwargs,
    /// `--device`.
    pub device: Option<String>,
    /// `--backend`.
    pub backend: Option<String>,
    /// Keys of the algorithm's section given as flags (e.g. GRPO's `--loss-type`), over the
    /// file's section.
    pub algo_keys: serde_json::Map<String, serde_json::Value>,
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

fn file_err(path: &str, reason: String) -> AlgoError {
    AlgoError::ConfigFile {
        path: path.to_string(),
        reason,
    }
}

impl RunConfig {
    /// Resolves a run's config: the algorithm's defaults for the env, then the file `file`
    /// (top-level `algo`, `env`, `seed`, `total_steps`, `[env_kwargs]`, and the section of the
    /// algorithm), then `ov`. Unknown keys, sections of other algorithms and bad values are
    /// errors naming them; everything is checked before anything runs.
    pub fn resolve(file: Option<&Path>, ov: &Overrides) -> Result<Self> {
        let (table, path) = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| AlgoError::io(p, e))?;
                let t: toml::Table = toml::from_str(&text)
                    .map_err(|e| file_err(&p.display().to_string(), toml_error_line(&text, &e)))?;
                (t, p.display().to_string())
            }
            None => (toml::Table::new(), "<defaults>".to_string()),
        };
        let str_key = |k: &str| -> Result<Option<String>> {
            match table.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(file_err(&path, format!("`{k}` must be a string"))),
            }
        };
        let int_key = |k: &str| -> Result<Option<u64>> {
            match table.get(k) {
                None => Ok(None),
                Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
                Some(_) => Err(file_err(&path, format!("`{k}` must be a non-negative integer"))),
            }
        };
        let algo_name = ov.algo.clone().or(str_key("algo")?).unwrap_or_else(|| "ppo".into());
        let algo = AlgoKind::from_name(&algo_name)?;
        let env = ov
            .env
            .clone()
            .or(str_key("env")?)
            .unwrap_or_else(|| algo.default_env().to_string());
        // A section of another algorithm would be ignored: refuse it.
        for k in table.keys() {
            if [
                "algo",
                "env",
                "seed",
                "total_steps",
                "env_kwargs",
                "device",
                "backend",
                algo.name(),
            ]
            .contains(&k.as_str())
            {
                continue;
            }
            AlgoKind::from_name(k).map_err(|_| file_err(&path, format!("unknown key `{k}`")))?;
            return Err(file_err(
                &path,
                format!(
                    "[{k}] configures {k}, but this run is {}; remove the section or train with --algo {k}",
                    algo.name()
                ),
            ));
        }
        let mut env_kwargs = Kwargs::new();
        if let Some(kw) = table.get("env_kwargs") {
            let kw = kw
                .as_table()
                .ok_or_else(|| file_err(&path, "`env_kwargs` must be a table".into()))?;
            for (k, v) in kw {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Boolean(_) | toml::Value::Integer(_) | toml::Value::Float(_) => v.to_string(),
                    other => {
                        return Err(file_err(
                            &path,
                            format!(
                                "env_kwargs.{k}: expected a string, boolean or number, got {}",
                                other.type_str()
                            ),
                        ))
                    }
                };
                env_kwargs.insert(k.clone(), v);
            }
        }
        env_kwargs.extend(ov.env_kwargs.clone());
        algo.check_env(&env)?;
        if algo.multi_agent() {
            taper_envs::make_parallel(&env, &env_kwargs)?;
        }
        let base = algo.default_config(&env, &env_kwargs)?;
        let config = match table.get(algo.name()) {
            None => base,
            Some(section) => {
                let t = section
                    .as_table()
                    .ok_or_else(|| file_err(&path, format!("[{}] must be a table", algo.name())))?;
                let keys = serde_json::to_value(t).map_err(|e| file_err(&path, e.to_string()))?;
                algo.config_over(&base, &keys)
                    .map_err(|e| file_err(&path, e.to_string()))?
            }
        };
        let config = if ov.algo_keys.is_empty() {
            config
        } else {
            algo.config_over(&config, &serde_json::Value::Object(ov.algo_keys.clone()))?
        };
        let seed = ov.seed.or(int_key("seed")?).unwrap_or(1);
        let steps_given = ov.total_steps.or(int_key("total_steps")?);
        let device = match ov.device.clone().or(str_key("device")?) {
            Some(d) => d.parse::<DeviceSpec>()?,
            None => DeviceSpec::Cpu,
        };
        let backend = match ov.backend.clone().or(str_key("backend")?) {
            Some(b) => Some(b.parse::<Backend>()?),
            None => None,
        };
        let mut cfg = RunConfig {
            algo,
            total_steps: steps_given.unwrap_or_else(|| algo.default_budget(&env)),
            env,
            seed,
            env_kwargs,
            config,
            device,
            backend,
        };
        // HDPO's budget is its `steps`, in gradient steps.
        if let AlgoConfig::Hdpo(h) = &mut cfg.config {
            if let Some(s) = steps_given {
                h.steps = s as usize;
            }
            cfg.total_steps = h.steps as u64;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Sets the budget (HDPO's `steps` with it, which count the same gradient steps).
    pub fn set_total_steps(&mut self, total_steps: u64) {
        self.total_steps = total_steps;
        if let AlgoConfig::Hdpo(h) = &mut self.config {
            h.steps = total_steps as usize;
        }
    }

    /// Checks the config and that the algorithm can train the env.
    pub fn validate(&self) -> Result<()> {
        self.config.validate()?;
        if let AlgoConfig::Mappo(c) = &self.config {
            let spread_continuous = self
                .env_kwargs
                .get("continuous")
                .is_some_and(|v| v == "true" || v == "True" || v == "1");
            if spread_continuous {
                return Err(AlgoError::Config {
                    field: "env_kwargs",
                    reason: format!(
                        "{} here runs discrete actions (continuous=false)",
                        if c.centralized_critic { "mappo" } else { "ippo" }
                    ),
                });
            }
        }
        Ok(())
    }

    /// The config of a run folder's `config.toml` (what `--resume` continues).
    pub fn from_run_file(f: &RunFile) -> Result<Self> {
        let algo = AlgoKind::from_name(&f.algo)?;
        let base = algo.default_config(&f.env, &f.env_kwargs)?;
        let config = algo.config_over(&base, &f.config)?;
        let cfg = RunConfig {
            algo,
            env: f.env.clone(),
            seed: f.seed,
            total_steps: f.total_steps,
            env_kwargs: f.env_kwargs.clone(),
            config,
            device: DeviceSpec::Cpu,
            backend: None,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a run folder's `config.toml`.
    pub fn from_run_dir(dir: &Path) -> Result<Self> {
        let p = dir.join("config.toml");
        let text = std::fs::read_to_string(&p).map_err(|e| AlgoError::io(&p, e))?;
        let f = RunFile::from_toml(&text).map_err(|e| file_err(&p.display().to_string(), e.to_string()))?;
        Self::from_run_file(&f)
    }

    /// What `config.toml` holds.
    pub fn to_run_file(&self) -> RunFile {
        RunFile {
            algo: self.algo.name().to_string(),
            env: self.env.clone(),
            seed: self.seed,
            total_steps: self.total_steps,
            env_kwargs: self.env_kwargs.clone(),
            config: self.config.to_json(),
        }
    }

    /// Sets the device and the backend from `--device` and `--backend` values (checked).
    pub fn set_compute(&mut self, device: Option<&str>, backend: Option<&str>) -> Result<()> {
        if let Some(d) = device {
            self.device = d.parse()?;
        }
        if let Some(b) = backend {
            self.backend = Some(b.parse()?);
        }
        self.placement().map(|_| ())
    }

    /// Where the networks compute: an error when the device is absent or its feature is not
    /// compiled in.
    pub fn placement(&self) -> Result<Placement> {
        Ok(Placement::new(self.device, self.backend)?)
    }

    /// A fresh learner for this config, its networks placed on the config's device.
    pub fn learner(&self) -> Result<Box<dyn Learner>> {
        let placement = self.placement()?;
        let mut l = self
            .algo
            .learner(&self.config, &self.env, &self.env_kwargs, self.seed)?;
        l.set_placement(&placement)?;
        Ok(l)
    }

    /// The run's data blocks (see [`crate::blocks`]): `Some` for the algorithms that learn
    /// over them (PPO, IPPO, MAPPO and GRPO), `None` for the others.
    pub fn data_blocks(&self) -> Option<usize> {
        match &self.config {
            AlgoConfig::Ppo(c) => Some(c.data_blocks),
            AlgoConfig::Mappo(c) => Some(c.data_blocks),
            AlgoConfig::Grpo(c) => Some(c.data_blocks),
            _ => None,
        }
    }

    /// Sets the run's data blocks; an error for an algorithm that does not learn over them.
    pub fn set_data_blocks(&mut self, blocks: usize) -> Result<()> {
        match &mut self.config {
            AlgoConfig::Ppo(c) => c.data_blocks = blocks,
            AlgoConfig::Mappo(c) => c.data_blocks = blocks,
            AlgoConfig::Grpo(c) => c.data_blocks = blocks,
            _ => return Err(not_data_parallel(self.algo)),
        }
        self.validate()
    }

    /// A fresh learner for one process of a data-parallel run over `link` (one data block per
    /// process), its networks placed on the config's device.
    pub fn data_parallel_learner(
        &self,
        link: std::sync::Arc<dyn crate::blocks::BlockLink>,
    ) -> Result<Box<dyn Learner>> {
        let placement = self.placement()?;
        let mut l: Box<dyn Learner> = match &self.config {
            AlgoConfig::Ppo(c) => Box::new(crate::ppo::Ppo::data_parallel(
                c.clone(),
                &self.env,
                &self.env_kwargs,
                self.seed,
                link,
            )?),
            AlgoConfig::Mappo(c) => Box::new(crate::mappo::MaPpo::data_parallel(
                c.clone(),
                &self.env,
                &self.env_kwargs,
                self.seed,
                link,
            )?),
            AlgoConfig::Grpo(c) => Box::new(crate::grpo::Grpo::data_parallel(
                c.clone(),
                &self.env,
                &self.env_kwargs,
                self.seed,
                link,
            )?),
            _ => return Err(not_data_parallel(self.algo)),
        };
        l.set_placement(&placement)?;
        Ok(l)
    }
}

/// The error for data-parallel learning of an algorithm that does not support it.
fn not_data_parallel(algo: AlgoKind) -> AlgoError {
    AlgoError::Unsupported {
        algo: algo.name(),
        what: "data-parallel learning (built for ppo, ippo, mappo and grpo)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppo::PpoConfig;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn defaults_follow_the_action_space() {
        let c = RunConfig::resolve(None, &Overrides::default()).unwrap();
        assert_eq!(c.config, AlgoConfig::Ppo(PpoConfig::default()));
        assert_eq!(c.total_steps, 500_000);
        let ov = Overrides {
            env: Some("Pendulum-v1".into()),
            ..Default::default()
        };
        let c = RunConfig::resolve(None, &ov).unwrap();
        assert_eq!(c.config, AlgoConfig::Ppo(PpoConfig::continuous()));
    }

    #[test]
    fn round_trips_through_the_run_file() {
        for algo in ["ppo", "hdpo", "mappo", "ippo", "maddpg"] {
            let ov = Overrides {
                algo: Some(algo.into()),
                ..Default::default()
            };
            let c = RunConfig::resolve(None, &ov).unwrap();
            let text = c.to_run_file().to_toml().unwrap();
            assert!(text.contains(&format!("[{algo}]")), "{text}");
            for other in ["ppo", "hdpo", "mappo", "maddpg"].iter().filter(|o| **o != algo) {
                assert!(
                    !text.contains(&format!("[{other}]")),
                    "{algo} writes only its section: {text}"
                );
            }
            let back = RunConfig::from_run_file(&RunFile::from_toml(&text).unwrap()).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn bad_files_are_named_errors() {
        for (text, needle) in [
            ("[ppo\nlearning_rate = ", "line"),
            ("[ppo]\nlearnin_rate = 0.1\n", "learnin_rate"),
            (
                "[mappo]\nnum_envz = 4\n",
                "[mappo] configures mappo, but this run is ppo",
            ),
            ("algo = \"mappo\"\n[mappo]\nnum_envz = 4\n", "unknown field `num_envz`"),
            ("colour = 1\n", "unknown key `colour`"),
            ("algo = \"dqn\"\n", "unknown algo `dqn`"),
            ("env = \"SimpleSpread-v3\"\n", "multi-agent"),
            ("algo = \"hdpo\"\nenv = \"CartPole-v1\"\n", "inventory"),
            ("[ppo]\ngamma = 1.5\n", "gamma"),
            ("device = \"tpu\"\n", "unknown device `tpu`"),
            ("backend = \"jax\"\n", "unknown backend `jax`"),
            ("device = 3\n", "`device` must be a string"),
        ] {
            let (_d, p) = write(text);
            let e = RunConfig::resolve(Some(&p), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "`{needle}` not in: {e}");
        }
    }
}
