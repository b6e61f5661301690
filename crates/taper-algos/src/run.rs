//! Run folders: metrics sinks and checkpoints, shared by every algorithm.
//!
//! A run folder holds `config.toml` (written by the caller), `metrics.jsonl` and `metrics.csv`
//! (one row per update, written by [`MetricsWriter`]), and `checkpoint/` with
//! `model.safetensors` (the weights, PyTorch-style names) and `state.json` (everything else:
//! algorithm, env id, config, spaces, optimizer moments, normalizer statistics, counters).
//!
//! Checkpoints are written into a temporary folder, then swapped in by renames, so a crash
//! mid-write leaves the previous checkpoint readable (as `checkpoint/` or, between the two
//! renames, `checkpoint.old/`, which [`load_checkpoint`] falls back to).

use crate::callback::Learner;
use crate::error::{AlgoError, Result};
use crate::metrics::{fmt_value, Metrics};
use crate::policy::ActorCritic;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use taper_envs::{Kwargs, NormalizerState, VecEnv, VecEnvState};

/// Writes each update's metrics to `metrics.jsonl` and `metrics.csv`.
#[derive(Debug)]
pub struct MetricsWriter {
    jsonl: std::io::BufWriter<std::fs::File>,
    csv: std::io::BufWriter<std::fs::File>,
    columns: Option<Vec<String>>,
    dir: PathBuf,
}

impl MetricsWriter {
    /// Creates (truncating) the two files in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| AlgoError::io(dir, e))?;
        let open = |name: &str| {
            let p = dir.join(name);
            std::fs::File::create(&p)
                .map(std::io::BufWriter::new)
                .map_err(|e| AlgoError::io(&p, e))
        };
        Ok(MetricsWriter {
            jsonl: open("metrics.jsonl")?,
            csv: open("metrics.csv")?,
            columns: None,
            dir: dir.to_path_buf(),
        })
    }
    /// Reopens the files of a run being resumed: rows after update `keep_updates` (written
    /// after the checkpoint by a run that went on) are dropped, and new rows are appended.
    pub fn resume(dir: &Path, keep_updates: u64) -> Result<Self> {
        Self::resume_where(dir, "update", keep_updates)
    }

    /// Like [`MetricsWriter::resume`], keeping the rows up to env step `keep_steps`: for
    /// learners whose rows do not follow updates (MADDPG writes one every 100 episodes).
    pub fn resume_at_step(dir: &Path, keep_steps: u64) -> Result<Self> {
        Self::resume_where(dir, "global_step", keep_steps)
    }

    fn resume_where(dir: &Path, column: &str, keep_max: u64) -> Result<Self> {
        let jp = dir.join("metrics.jsonl");
        let cp = dir.join("metrics.csv");
        let jsonl = std::fs::read_to_string(&jp).unwrap_or_default();
        let csv = std::fs::read_to_string(&cp).unwrap_or_default();
        let keep: Vec<&str> = jsonl
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get(column).and_then(|u| u.as_f64()))
                    .is_some_and(|u| u <= keep_max as f64)
            })
            .collect();
        let mut csv_lines = csv.lines();
        let header = csv_lines.next();
        let csv_keep: Vec<&str> = csv_lines.take(keep.len()).collect();
        let mut jtext: String = keep.iter().map(|l| format!("{l}\n")).collect();
        if keep.is_empty() {
            jtext.clear();
        }
        write_atomic(&jp, jtext.as_bytes())?;
        let mut ctext = String::new();
        if let (Some(h), false) = (header, keep.is_empty()) {
            ctext.push_str(h);
            ctext.push('\n');
            for l in &csv_keep {
                ctext.push_str(l);
                ctext.push('\n');
            }
        }
        write_atomic(&cp, ctext.as_bytes())?;
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .map(std::io::BufWriter::new)
                .map_err(|e| AlgoError::io(p, e))
        };
        let columns = header
            .filter(|_| !keep.is_empty())
            .map(|h| h.split(',').map(str::to_string).collect());
        Ok(MetricsWriter {
            jsonl: open(&jp)?,
            csv: open(&cp)?,
            columns,
            dir: dir.to_path_buf(),
        })
    }

    /// Appends one row to both files and flushes them.
    pub fn write(&mut self, m: &Metrics) -> Result<()> {
        let dir = self.dir.clone();
        let io = |e| AlgoError::io(&dir, e);
        writeln!(self.jsonl, "{}", m.to_json_line()).map_err(io)?;
        if self.columns.is_none() {
            let cols: Vec<String> = m.columns().iter().map(|c| c.to_string()).collect();
            writeln!(self.csv, "{}", cols.join(",")).map_err(io)?;
            self.columns = Some(cols);
        }
        let cols = self.columns.as_ref().unwrap();
        let row: Vec<String> = cols
            .iter()
            .map(|c| {
                m.get(c)
                    .map(fmt_value)
                    .map(|s| if s == "null" { String::new() } else { s })
                    .unwrap_or_default()
            })
            .collect();
        writeln!(self.csv, "{}", row.join(",")).map_err(io)?;
        self.jsonl.flush().map_err(io)?;
        self.csv.flush().map_err(io)?;
        Ok(())
    }
}

/// Everything in a checkpoint but the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The taper version that wrote it.
    pub taper_version: String,
    /// The algorithm, e.g. `ppo`.
    pub algo: String,
    /// The env id.
    pub env_id: String,
    /// The env's keyword arguments.
    pub env_kwargs: Kwargs,
    /// The run's seed.
    pub seed: u64,
    /// The algorithm's resolved config, as JSON.
    pub config: serde_json::Value,
    /// The model without weights (spaces, sizes); weights are in `model.safetensors`.
    pub model_shape: ModelShape,
    /// Observation-normaliser statistics, if the run normalised (what evaluation needs).
    pub normalizer: Option<NormalizerState>,
    /// The learner's state besides weights (optimizer moments, random streams, counters),
    /// for exact resume.
    #[serde(default)]
    pub algo_state: Option<serde_json::Value>,
    /// The training envs' full state, for exact resume.
    #[serde(default)]
    pub env_state: Option<VecEnvState>,
    /// Env steps taken.
    pub global_step: u64,
    /// Updates done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
}

/// The shape of an [`ActorCritic`], to rebuild it before loading weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Observation space.
    pub obs_space: taper_envs::Space,
    /// Action space.
    pub act_space: taper_envs::Space,
    /// Hidden widths.
    pub hidden: Vec<usize>,
}

/// The checkpoint of a learner and its training envs, mid-run or at the end.
pub fn learner_checkpoint(
    learner: &dyn Learner,
    envs: &VecEnv,
    env_id: &str,
    env_kwargs: &Kwargs,
    seed: u64,
) -> Result<CheckpointState> {
    let p = learner.policy();
    let sizes = p.actor.sizes();
    Ok(CheckpointState {
        taper_version: env!("CARGO_PKG_VERSION").to_string(),
        algo: learner.algo().to_string(),
        env_id: env_id.to_string(),
        env_kwargs: env_kwargs.clone(),
        seed,
        config: learner.config_json(),
        model_shape: ModelShape {
            obs_space: p.obs_space.clone(),
            act_space: p.act_space.clone(),
            hidden: sizes[1..sizes.len() - 1].to_vec(),
        },
        normalizer: envs.normalizer().cloned(),
        algo_state: Some(learner.state_json()),
        env_state: Some(envs.snapshot()?),
        global_step: learner.global_step(),
        updates: learner.updates(),
        episodes: learner.episodes(),
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| AlgoError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| AlgoError::io(&tmp, e))?;
        f.sync_all().map_err(|e| AlgoError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| AlgoError::io(path, e))
}

/// Saves `model` and `state` as the folder `dir` (e.g. `run/checkpoint`), atomically.
pub fn save_checkpoint(dir: &Path, model: &ActorCritic, state: &CheckpointState) -> Result<()> {
    save_tensors_checkpoint(dir, model.to_tensors()?, state)
}

/// Named tensors, as a checkpoint's `model.safetensors` holds them.
pub type NamedTensors = Vec<(String, candle_core::Tensor)>;

/// Saves named tensors and `state` as the folder `dir`, atomically (any algorithm's model).
pub fn save_tensors_checkpoint(
    dir: &Path,
    tensors: Vec<(String, candle_core::Tensor)>,
    state: &CheckpointState,
) -> Result<()> {
    save_checkpoint_files(dir, tensors, state, &[])
}

/// Like [`save_tensors_checkpoint`], with further named tensor files in the same folder
/// (e.g. MADDPG's `replay.safetensors`), all replaced at once.
pub fn save_checkpoint_files(
    dir: &Path,
    tensors: Vec<(String, candle_core::Tensor)>,
    state: &CheckpointState,
    extra: &[(&str, NamedTensors)],
) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| AlgoError::io(parent, e))?;
    let name = dir.file_name().and_then(|s| s.to_str()).unwrap_or("checkpoint");
    let tmp = parent.join(format!(".{name}.tmp{}", std::process::id()));
    let old = parent.join(format!("{name}.old"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| AlgoError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| AlgoError::io(&tmp, e))?;
    let tensors: HashMap<String, candle_core::Tensor> = tensors.into_iter().collect();
    let mp = tmp.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &mp).map_err(|e| AlgoError::Checkpoint {
        path: mp.display().to_string(),
        reason: e.to_string(),
    })?;
    for (file, t) in extra {
        let p = tmp.join(file);
        let map: HashMap<String, candle_core::Tensor> = t.iter().cloned().collect();
        candle_core::safetensors::save(&map, &p).map_err(|e| AlgoError::Checkpoint {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| AlgoError::Checkpoint {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    write_atomic(&tmp.join("state.json"), &json)?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| AlgoError::io(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| AlgoError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| AlgoError::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| AlgoError::io(&old, e))?;
    }
    Ok(())
}

/// Reads a checkpoint's `state.json` and its weights file, without building a model; `path`
/// is a checkpoint folder or a run folder containing `checkpoint/`.
pub fn load_raw_checkpoint(path: &Path) -> Result<(HashMap<String, candle_core::Tensor>, CheckpointState, PathBuf)> {
    let dir = checkpoint_dir(path)?;
    let sp = dir.join("state.json");
    let bytes = std::fs::read(&sp).map_err(|e| AlgoError::io(&sp, e))?;
    let state: CheckpointState = serde_json::from_slice(&bytes).map_err(|e| AlgoError::Checkpoint {
        path: sp.display().to_string(),
        reason: format!("unreadable state: {e}"),
    })?;
    let mp = dir.join("model.safetensors");
    if !mp.exists() {
        return Err(AlgoError::Checkpoint {
            path: mp.display().to_string(),
            reason: "missing weights file".into(),
        });
    }
    let tensors =
        candle_core::safetensors::load(&mp, &candle_core::Device::Cpu).map_err(|e| AlgoError::Checkpoint {
            path: mp.display().to_string(),
            reason: format!("unreadable weights: {e}"),
        })?;
    Ok((tensors, state, mp))
}

/// Loads a further tensor file of a checkpoint folder (e.g. MADDPG's `replay.safetensors`).
pub fn load_checkpoint_file(dir: &Path, file: &str) -> Result<HashMap<String, candle_core::Tensor>> {
    let p = dir.join(file);
    if !p.exists() {
        return Err(AlgoError::Checkpoint {
            path: p.display().to_string(),
            reason: "missing file".into(),
        });
    }
    candle_core::safetensors::load(&p, &candle_core::Device::Cpu).map_err(|e| AlgoError::Checkpoint {
        path: p.display().to_string(),
        reason: format!("unreadable tensors: {e}"),
    })
}

fn checkpoint_dir(path: &Path) -> Result<PathBuf> {
    let dir = path.to_path_buf();
    if dir.join("state.json").exists() {
        return Ok(dir);
    }
    for inner in [dir.join("checkpoint"), dir.join("checkpoint.old")] {
        if inner.join("state.json").exists() {
            return Ok(inner);
        }
    }
    Err(AlgoError::Checkpoint {
        path: path.display().to_string(),
        reason: "no checkpoint found (expected state.json, or checkpoint/state.json)".into(),
    })
}

/// Loads a checkpoint folder written by [`save_checkpoint`] (or a run folder containing
/// `checkpoint/`), checking that the weights fit the recorded shapes.
pub fn load_checkpoint(path: &Path) -> Result<(ActorCritic, CheckpointState)> {
    let (tensors, state, mp) = load_raw_checkpoint(path)?;
    if state.algo != "ppo" {
        return Err(AlgoError::Checkpoint {
            path: path.display().to_string(),
            reason: format!("this is a `{}` checkpoint, not a PPO one", state.algo),
        });
    }
    let sh = &state.model_shape;
    let mut r1 = taper_tensor::rng::stream(0, taper_tensor::rng::Purpose::Init, 0);
    let mut r2 = taper_tensor::rng::stream(0, taper_tensor::rng::Purpose::Init, 1);
    let mut model = ActorCritic::new(&sh.obs_space, &sh.act_space, &sh.hidden, 0.0, &mut r1, &mut r2)?;
    model.load_tensors(&tensors).map_err(|e| AlgoError::Checkpoint {
        path: mp.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok((model, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_envs::Space;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("taper-run-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn state(model: &ActorCritic) -> CheckpointState {
        CheckpointState {
            taper_version: "test".into(),
            algo: "ppo".into(),
            env_id: "CartPole-v1".into(),
            env_kwargs: Kwargs::new(),
            seed: 1,
            config: serde_json::json!({}),
            model_shape: ModelShape {
                obs_space: model.obs_space.clone(),
                act_space: model.act_space.clone(),
                hidden: vec![8],
            },
            normalizer: None,
            algo_state: None,
            env_state: None,
            global_step: 10,
            updates: 1,
            episodes: 0,
        }
    }

    #[test]
    fn checkpoint_round_trip_and_overwrite() {
        let d = tmpdir("rt");
        let mut r1 = taper_tensor::rng::stream(3, taper_tensor::rng::Purpose::Init, 0);
        let mut r2 = taper_tensor::rng::stream(3, taper_tensor::rng::Purpose::Init, 1);
        let obs = Space::uniform_box(4, -1.0, 1.0);
        let act = Space::uniform_box(2, -1.0, 1.0);
        let m = ActorCritic::new(&obs, &act, &[8], -0.5, &mut r1, &mut r2).unwrap();
        save_checkpoint(&d.join("checkpoint"), &m, &state(&m)).unwrap();
        save_checkpoint(&d.join("checkpoint"), &m, &state(&m)).unwrap();
        let (back, st) = load_checkpoint(&d).unwrap();
        assert_eq!(back, m);
        assert_eq!(st.global_step, 10);
        // A corrupted weights file is a clear error.
        std::fs::write(d.join("checkpoint/model.safetensors"), b"garbage").unwrap();
        assert!(matches!(load_checkpoint(&d), Err(AlgoError::Checkpoint { .. })));
        // No checkpoint at all.
        assert!(matches!(
            load_checkpoint(&tmpdir("none")),
            Err(AlgoError::Checkpoint { .. })
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn metrics_writer_writes_both_files() {
        let d = tmpdir("mw");
        let mut w = MetricsWriter::create(&d).unwrap();
        let mut m = Metrics::new();
        m.push("global_step", 512.0);
        m.push("x", f64::NAN);
        w.write(&m).unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_to_string(d.join("metrics.jsonl")).unwrap(),
            "{\"global_step\":512,\"x\":null}\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("metrics.csv")).unwrap(),
            "global_step,x\n512,\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
