//! A run's `config.toml`: the algorithm, the env, the seed, the budget, the env's keyword
//! arguments, and one section holding the algorithm's config, named after the algorithm
//! (`[ppo]`, `[mappo]`, `[hdpo]`, ... or a user's learner's own name). The trainer writes it
//! from the learner; `--resume` and `load` read it back.
//!
//! ```
//! use taper_train::run_file::RunFile;
//! let f = RunFile {
//!     algo: "ppo".into(),
//!     env: "CartPole-v1".into(),
//!     seed: 1,
//!     total_steps: 500_000,
//!     env_kwargs: Default::default(),
//!     config: serde_json::json!({ "learning_rate": 0.00025, "hidden": [64, 64] }),
//! };
//! let text = f.to_toml()?;
//! assert!(text.contains("[ppo]") && text.contains("learning_rate = 0.00025"));
//! assert_eq!(RunFile::from_toml(&text)?, f);
//! # Ok::<(), taper_train::TrainError>(())
//! ```

use crate::error::{Result, TrainError};
use taper_envs::Kwargs;

/// What `config.toml` holds. See the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFile {
    /// The algorithm.
    pub algo: String,
    /// The env id.
    pub env: String,
    /// The seed.
    pub seed: u64,
    /// The budget (env steps; HDPO: gradient steps).
    pub total_steps: u64,
    /// The env's keyword arguments.
    pub env_kwargs: Kwargs,
    /// The algorithm's config, as the section named after the algorithm.
    pub config: serde_json::Value,
}

/// JSON to TOML; TOML has no null, so null values are left out.
fn to_toml_value(v: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(a.iter().filter_map(to_toml_value).collect()),
        J::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), to_toml_value(v)?)))
                .collect(),
        ),
    })
}

fn to_json(v: &toml::Value) -> serde_json::Value {
    use toml::Value as T;
    match v {
        T::String(s) => s.clone().into(),
        T::Integer(i) => (*i).into(),
        T::Float(f) => serde_json::Number::from_f64(*f)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        T::Boolean(b) => (*b).into(),
        T::Datetime(d) => d.to_string().into(),
        T::Array(a) => a.iter().map(to_json).collect::<Vec<_>>().into(),
        T::Table(t) => t
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

impl RunFile {
    /// The file's text.
    pub fn to_toml(&self) -> Result<String> {
        let mut t = toml::Table::new();
        t.insert("algo".into(), self.algo.clone().into());
        t.insert("env".into(), self.env.clone().into());
        t.insert("seed".into(), toml::Value::Integer(self.seed as i64));
        t.insert("total_steps".into(), toml::Value::Integer(self.total_steps as i64));
        let kw: toml::Table = self
            .env_kwargs
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
            .collect();
        t.insert("env_kwargs".into(), toml::Value::Table(kw));
        match to_toml_value(&self.config) {
            Some(toml::Value::Table(c)) => {
                t.insert(self.algo.clone(), toml::Value::Table(c));
            }
            None => {}
            Some(_) => {
                return Err(TrainError::Invalid {
                    what: "config",
                    reason: format!("the `{}` config is not a table of keys", self.algo),
                })
            }
        }
        toml::to_string(&t).map_err(|e| TrainError::Invalid {
            what: "config",
            reason: e.to_string(),
        })
    }

    /// Reads a file's text; the section named after the algorithm becomes `config` (an empty
    /// object when absent). Any other section is an error naming it.
    pub fn from_toml(text: &str) -> Result<Self> {
        let bad = |reason: String| TrainError::Invalid {
            what: "config.toml",
            reason,
        };
        let t: toml::Table = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        let s = |k: &str| -> Result<String> {
            t.get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| bad(format!("`{k}` is missing or not a string")))
        };
        let n = |k: &str| -> Result<u64> {
            t.get(k)
                .and_then(|v| v.as_integer())
                .filter(|&i| i >= 0)
                .map(|i| i as u64)
                .ok_or_else(|| bad(format!("`{k}` is missing or not a non-negative integer")))
        };
        let algo = s("algo")?;
        let mut env_kwargs = Kwargs::new();
        if let Some(kw) = t.get("env_kwargs") {
            let kw = kw.as_table().ok_or_else(|| bad("`env_kwargs` is not a table".into()))?;
            for (k, v) in kw {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => v.to_string(),
                    _ => return Err(bad(format!("env_kwargs.{k} is not a string, number or boolean"))),
                };
                env_kwargs.insert(k.clone(), v);
            }
        }
        for k in t.keys() {
            if !["algo", "env", "seed", "total_steps", "env_kwargs", algo.as_str()].contains(&k.as_str()) {
                return Err(bad(format!("`{k}` is not read by a `{algo}` run")));
            }
        }
        Ok(RunFile {
            env: s("env")?,
            seed: n("seed")?,
            total_steps: n("total_steps")?,
            env_kwargs,
            config: t
                .get(&algo)
                .map(to_json)
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            algo,
        })
    }
}
