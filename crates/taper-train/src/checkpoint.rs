//! Checkpoints: the folder format every learner shares.
//!
//! A checkpoint folder holds `model.safetensors` (the weights evaluation needs, with
//! PyTorch-style names), `state.json` ([`CheckpointState`]: the algorithm, the env, the seed,
//! the config, the counters, and the learner's whole state besides tensors), and any further
//! tensor files a learner keeps apart (MADDPG's `replay.safetensors`), read only to resume.
//!
//! Checkpoints are written into a temporary folder, then swapped in by renames, so a crash
//! mid-write leaves the previous checkpoint readable (as the folder itself or, between the two
//! renames, as `<name>.old/`, which [`Checkpoint::load`] falls back to).
//!
//! ```
//! use taper_train::checkpoint::{Checkpoint, CheckpointState};
//! let dir = tempfile::tempdir()?;
//! let t = candle_core::Tensor::new(&[1f32, 2.0], &candle_core::Device::Cpu)?;
//! let state = CheckpointState::new("demo", "CartPole-v1", 1);
//! taper_train::checkpoint::save(&dir.path().join("checkpoint"), vec![("w".into(), t)], &state, &[])?;
//! let back = Checkpoint::load(dir.path())?; // a run folder or the checkpoint folder
//! assert_eq!(back.state.algo, "demo");
//! assert_eq!(back.tensor("w")?.to_vec1::<f32>()?, vec![1.0, 2.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use taper_envs::{Kwargs, NormalizerState, Space};

/// Named tensors, as a checkpoint's tensor files hold them.
pub type NamedTensors = Vec<(String, candle_core::Tensor)>;

/// Everything in a checkpoint but the tensors (`state.json`).
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
    /// The model without weights (spaces, hidden widths), where the algorithm records one.
    #[serde(default)]
    pub model_shape: Option<ModelShape>,
    /// Observation-normaliser statistics, if the run normalised (what evaluation needs).
    #[serde(default)]
    pub normalizer: Option<NormalizerState>,
    /// The learner's state besides tensors (optimizer moments, random streams, counters), for
    /// exact resume.
    #[serde(default)]
    pub algo_state: Option<serde_json::Value>,
    /// The training envs' full state, for exact resume (absent where an env cannot save it).
    #[serde(default)]
    pub env_state: Option<serde_json::Value>,
    /// Env steps (HDPO: gradient steps) taken.
    pub global_step: u64,
    /// Updates done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// A checksum (FNV-1a, 64 bits, hex) of each tensor file, checked when it is read.
    #[serde(default)]
    pub checksums: std::collections::BTreeMap<String, String>,
}

/// The FNV-1a 64-bit hash of `bytes`, as 16 hex digits: a check against corruption, not
/// against tampering.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl CheckpointState {
    /// A state for `algo` on `env_id` with `seed`, everything else empty.
    pub fn new(algo: &str, env_id: &str, seed: u64) -> Self {
        CheckpointState {
            taper_version: env!("CARGO_PKG_VERSION").to_string(),
            algo: algo.to_string(),
            env_id: env_id.to_string(),
            env_kwargs: Kwargs::new(),
            seed,
            config: serde_json::Value::Null,
            model_shape: None,
            normalizer: None,
            algo_state: None,
            env_state: None,
            global_step: 0,
            updates: 0,
            episodes: 0,
            checksums: Default::default(),
        }
    }
}

/// The shape of a network pair, to rebuild it before loading weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Observation space.
    pub obs_space: Space,
    /// Action space.
    pub act_space: Space,
    /// Hidden widths.
    pub hidden: Vec<usize>,
}

/// A checkpoint read from disk: its state, its weights, and where its other files are.
#[derive(Debug)]
pub struct Checkpoint {
    /// `state.json`.
    pub state: CheckpointState,
    /// `model.safetensors`.
    pub tensors: HashMap<String, candle_core::Tensor>,
    /// The checkpoint folder.
    pub dir: PathBuf,
}

impl Checkpoint {
    /// Reads a checkpoint folder, or the `checkpoint/` of a run folder.
    pub fn load(path: &Path) -> Result<Self> {
        let dir = checkpoint_dir(path)?;
        let sp = dir.join("state.json");
        let bytes = std::fs::read(&sp).map_err(|e| TrainError::io(&sp, e))?;
        let state: CheckpointState = serde_json::from_slice(&bytes)
            .map_err(|e| TrainError::checkpoint(&sp, format!("unreadable state: {e}")))?;
        let tensors = read_tensors(&dir.join("model.safetensors"), "weights", &state)?;
        Ok(Checkpoint { state, tensors, dir })
    }

    /// A tensor of `model.safetensors`; an error naming it when absent.
    pub fn tensor(&self, name: &str) -> Result<&candle_core::Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            TrainError::checkpoint(self.dir.join("model.safetensors"), format!("missing tensor `{name}`"))
        })
    }

    /// A further tensor file of the checkpoint (e.g. `replay.safetensors`), read now.
    pub fn file(&self, name: &str) -> Result<HashMap<String, candle_core::Tensor>> {
        read_tensors(&self.dir.join(name), "tensors", &self.state)
    }

    /// The learner state of `state.json`, parsed as `T`; an error naming the checkpoint when
    /// it is absent or does not parse.
    pub fn algo_state<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let v = self.state.algo_state.clone().ok_or_else(|| {
            TrainError::checkpoint(&self.dir, "it holds no learner state (written by an older taper?)")
        })?;
        serde_json::from_value(v).map_err(|e| TrainError::checkpoint(&self.dir, format!("learner state: {e}")))
    }
}

/// Reads a tensor file, checks it against the checksum `state` records for it (checkpoints
/// written before checksums have none), and refuses non-finite values.
fn read_tensors(p: &Path, what: &str, state: &CheckpointState) -> Result<HashMap<String, candle_core::Tensor>> {
    if !p.exists() {
        return Err(TrainError::checkpoint(p, format!("missing {what} file")));
    }
    let bytes = std::fs::read(p).map_err(|e| TrainError::io(p, e))?;
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(want) = state.checksums.get(name) {
        let got = checksum(&bytes);
        if &got != want {
            return Err(TrainError::checkpoint(
                p,
                format!("damaged: its checksum is {got}, state.json recorded {want}"),
            ));
        }
    }
    let map = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu)
        .map_err(|e| TrainError::checkpoint(p, format!("unreadable {what}: {e}")))?;
    for (k, t) in &map {
        let finite = t
            .to_dtype(candle_core::DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .map(|v| v.iter().all(|x| x.is_finite()))
            .unwrap_or(true);
        if !finite {
            return Err(TrainError::checkpoint(
                p,
                format!("tensor `{k}` holds NaN or infinite values"),
            ));
        }
    }
    Ok(map)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| TrainError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Saves a checkpoint folder `dir` (e.g. `run/checkpoint`) atomically: `model.safetensors`
/// from `tensors`, `state.json`, and each of `files` as its own tensor file.
pub fn save(
    dir: &Path,
    tensors: NamedTensors,
    state: &CheckpointState,
    files: &[(String, NamedTensors)],
) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    let name = dir.file_name().and_then(|s| s.to_str()).unwrap_or("checkpoint");
    let tmp = parent.join(format!(".{name}.tmp{}", std::process::id()));
    let old = parent.join(format!("{name}.old"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let mut state = state.clone();
    let mut write = |file: &str, t: NamedTensors| -> Result<()> {
        let p = tmp.join(file);
        let map: HashMap<String, candle_core::Tensor> = t.into_iter().collect();
        candle_core::safetensors::save(&map, &p).map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
        let bytes = std::fs::read(&p).map_err(|e| TrainError::io(&p, e))?;
        state.checksums.insert(file.to_string(), checksum(&bytes));
        Ok(())
    };
    write("model.safetensors", tensors)?;
    for (file, t) in files {
        write(file, t.clone())?;
    }
    let json = serde_json::to_vec_pretty(&state).map_err(|e| TrainError::checkpoint(dir, e.to_string()))?;
    write_atomic(&tmp.join("state.json"), &json)?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(())
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
    // A run stopped before its final checkpoint (a kill, a NaN): its newest periodic one.
    if let Some(p) = candidates(&dir).into_iter().next() {
        return Ok(p);
    }
    Err(TrainError::checkpoint(
        path,
        "no checkpoint found (expected state.json, checkpoint/state.json or checkpoints/step_*)",
    ))
}

/// The checkpoints of a run folder (`checkpoint/`, `checkpoint.old/`, `checkpoints/step_*`)
/// whose state is readable, newest (most steps) first.
pub fn candidates(run: &Path) -> Vec<PathBuf> {
    let mut all: Vec<(u64, PathBuf)> = Vec::new();
    let mut consider = |p: PathBuf| {
        if let Ok(bytes) = std::fs::read(p.join("state.json")) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                let s = v.get("global_step").and_then(|x| x.as_u64()).unwrap_or(0);
                all.push((s, p));
            }
        }
    };
    consider(run.join("checkpoint"));
    consider(run.join("checkpoint.old"));
    if let Ok(rd) = std::fs::read_dir(run.join("checkpoints")) {
        for e in rd.flatten() {
            consider(e.path());
        }
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    all.into_iter().map(|(_, p)| p).collect()
}

/// The newest checkpoint of a run folder that loads intact (state readable, tensor files
/// matching their checksums, weights finite), with the reasons the newer ones were passed
/// over.
pub fn newest_intact(run: &Path) -> Result<(Checkpoint, Vec<String>)> {
    let mut skipped = Vec::new();
    for p in candidates(run) {
        match Checkpoint::load(&p) {
            Ok(c) => return Ok((c, skipped)),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Err(TrainError::checkpoint(
        run,
        if skipped.is_empty() {
            "no checkpoint to resume from (checkpoint/ or checkpoints/step_*)".to_string()
        } else {
            format!("no intact checkpoint: {}", skipped.join("; "))
        },
    ))
}

/// The newest checkpoint of a run folder: `checkpoint/` or `checkpoints/step_*`, whichever has
/// the most steps.
pub fn newest(run: &Path) -> Result<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut consider = |p: PathBuf| {
        if let Ok(bytes) = std::fs::read(p.join("state.json")) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                let s = v.get("global_step").and_then(|x| x.as_u64()).unwrap_or(0);
                if best.as_ref().is_none_or(|(b, _)| s > *b) {
                    best = Some((s, p));
                }
            }
        }
    };
    consider(run.join("checkpoint"));
    if let Ok(rd) = std::fs::read_dir(run.join("checkpoints")) {
        for e in rd.flatten() {
            consider(e.path());
        }
    }
    best.map(|b| b.1)
        .ok_or_else(|| TrainError::checkpoint(run, "no checkpoint to resume from (checkpoint/ or checkpoints/step_*)"))
}

/// Keeps only the newest `keep_last` periodic checkpoints (`checkpoints/step_*`) of a run
/// folder (0: all).
pub fn prune(run: &Path, keep_last: usize) -> Result<()> {
    if keep_last == 0 {
        return Ok(());
    }
    let dir = run.join("checkpoints");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| TrainError::io(&dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step_") && !n.ends_with(".old"))
        })
        .collect();
    all.sort();
    while all.len() > keep_last {
        let p = all.remove(0);
        std::fs::remove_dir_all(&p).map_err(|e| TrainError::io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_overwrite_and_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let t = candle_core::Tensor::new(&[1f32, 2.0, 3.0], &candle_core::Device::Cpu).unwrap();
        let mut st = CheckpointState::new("ppo", "CartPole-v1", 1);
        st.global_step = 10;
        let ck = d.path().join("checkpoint");
        let extra = vec![("replay.safetensors".to_string(), vec![("r".to_string(), t.clone())])];
        save(&ck, vec![("w".into(), t.clone())], &st, &extra).unwrap();
        save(&ck, vec![("w".into(), t.clone())], &st, &extra).unwrap();
        let back = Checkpoint::load(d.path()).unwrap();
        assert_eq!(back.state.global_step, 10);
        assert_eq!(back.tensor("w").unwrap().to_vec1::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
        assert!(back.tensor("nope").is_err());
        assert_eq!(back.file("replay.safetensors").unwrap().len(), 1);
        assert!(back.file("other.safetensors").is_err());
        // A corrupted weights file is a clear error, and so is no checkpoint at all.
        std::fs::write(ck.join("model.safetensors"), b"garbage").unwrap();
        assert!(matches!(Checkpoint::load(d.path()), Err(TrainError::Checkpoint { .. })));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Checkpoint::load(empty.path()),
            Err(TrainError::Checkpoint { .. })
        ));
        assert!(newest(empty.path()).is_err());
    }

    #[test]
    fn non_finite_weights_and_wrong_checksums_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("checkpoint");
        let t = candle_core::Tensor::new(&[1f32, f32::NAN], &candle_core::Device::Cpu).unwrap();
        save(
            &ck,
            vec![("w".into(), t)],
            &CheckpointState::new("demo", "CartPole-v1", 1),
            &[],
        )
        .unwrap();
        let e = Checkpoint::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("NaN or infinite"), "{e}");
        let t = candle_core::Tensor::new(&[1f32, 2.0], &candle_core::Device::Cpu).unwrap();
        save(
            &ck,
            vec![("w".into(), t)],
            &CheckpointState::new("demo", "CartPole-v1", 1),
            &[],
        )
        .unwrap();
        assert!(Checkpoint::load(d.path()).is_ok());
        let st = ck.join("state.json");
        let text = std::fs::read_to_string(&st).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["checksums"]["model.safetensors"] = "0000000000000000".into();
        std::fs::write(&st, v.to_string()).unwrap();
        let e = Checkpoint::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
        assert_eq!(checksum(b"a"), "af63dc4c8601ec8c"); // FNV-1a 64 of "a"
    }
}
