//! Where a model runs: the device (`cpu`, `cuda:N`, `metal`) and the backend on the CPU
//! (`fast`, the flat-buffer MLP with its hand-written backward pass, or `candle`, the same
//! model as a candle graph). A device whose feature is not compiled in is a typed error that
//! says which feature to build with.
//!
//! ```
//! use taper_tensor::device::{Backend, DeviceSpec};
//! let d: DeviceSpec = "cpu".parse()?;
//! assert!(d.device()?.is_cpu());
//! assert_eq!("cuda:1".parse::<DeviceSpec>()?, DeviceSpec::Cuda(1));
//! assert!("tpu".parse::<DeviceSpec>().is_err());
//! assert_eq!("candle".parse::<Backend>()?, Backend::Candle);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::error::{Result, TensorError};
use serde::{Deserialize, Serialize};

/// A device, as written in `--device` and the `device` config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeviceSpec {
    /// The CPU.
    #[default]
    Cpu,
    /// The CUDA device with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
    /// The default Metal device.
    Metal,
}

impl std::str::FromStr for DeviceSpec {
    type Err = TensorError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || TensorError::Invalid {
            name: "device",
            reason: format!("unknown device `{s}` (cpu, cuda, cuda:N, metal)"),
        };
        match s.trim() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            "metal" => Ok(DeviceSpec::Metal),
            t => match t.strip_prefix("cuda:") {
                Some(n) => n.parse().map(DeviceSpec::Cuda).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal => write!(f, "metal"),
        }
    }
}

impl DeviceSpec {
    /// The candle device; an error naming the feature to build with when it is not compiled
    /// in, or candle's own error when the device is absent.
    pub fn device(&self) -> Result<candle_core::Device> {
        match self {
            DeviceSpec::Cpu => Ok(candle_core::Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(TensorError::Invalid {
                        name: "device",
                        reason: format!(
                            "{self} needs taper built with CUDA: cargo build --release --features cuda (which needs nvcc)"
                        ),
                    });
                }
                Ok(candle_core::Device::new_cuda(*n)?)
            }
            DeviceSpec::Metal => {
                if !candle_core::utils::metal_is_available() {
                    return Err(TensorError::Invalid {
                        name: "device",
                        reason: "metal needs taper built with Metal on macOS: cargo build --release --features metal"
                            .into(),
                    });
                }
                Ok(candle_core::Device::new_metal(0)?)
            }
        }
    }
}

/// How a model computes on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The flat-buffer MLP with its hand-written backward pass (`mlp::Mlp`).
    #[default]
    Fast,
    /// The same model as a candle graph with candle's autodiff (`candle_mlp::CandleMlp`),
    /// the path that runs on GPUs.
    Candle,
}

impl std::str::FromStr for Backend {
    type Err = TensorError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "fast" => Ok(Backend::Fast),
            "candle" => Ok(Backend::Candle),
            other => Err(TensorError::Invalid {
                name: "backend",
                reason: format!("unknown backend `{other}` (fast, candle)"),
            }),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Fast => "fast",
            Backend::Candle => "candle",
        })
    }
}

/// Where an MLP computes: the fast path on the CPU, or a candle graph on a device. Set on a
/// network with [`crate::mlp::Mlp::set_placement`]; it is never saved, so a checkpoint written
/// on one device loads on any other.
#[derive(Debug, Clone, Default)]
pub enum Placement {
    /// The flat-buffer MLP with its hand-written backward pass, on the CPU.
    #[default]
    Fast,
    /// The candle graph of [`crate::candle_mlp::CandleMlp`] on this device.
    Candle(candle_core::Device),
}

impl Placement {
    /// The placement of `--device` and `--backend`: the fast path on the CPU unless `candle`
    /// is asked for; a candle graph on a GPU. `backend` `None` picks the device's natural
    /// backend; `fast` on a GPU is an error (the fast path runs on the CPU only).
    pub fn new(device: DeviceSpec, backend: Option<Backend>) -> Result<Self> {
        match (device, backend) {
            (DeviceSpec::Cpu, None | Some(Backend::Fast)) => Ok(Placement::Fast),
            (DeviceSpec::Cpu, Some(Backend::Candle)) => Ok(Placement::Candle(candle_core::Device::Cpu)),
            (d, Some(Backend::Fast)) => Err(TensorError::Invalid {
                name: "backend",
                reason: format!("the fast backend runs on the CPU only; on {d} use the candle backend"),
            }),
            (d, _) => Ok(Placement::Candle(d.device()?)),
        }
    }

    /// Whether this is the candle graph.
    pub fn is_candle(&self) -> bool {
        matches!(self, Placement::Candle(_))
    }

    /// `fast`, `candle:cpu`, `candle:cuda:N` or `candle:metal`, as run logs name it.
    pub fn label(&self) -> String {
        match self {
            Placement::Fast => "fast".into(),
            Placement::Candle(d) => match d.location() {
                candle_core::DeviceLocation::Cpu => "candle:cpu".into(),
                candle_core::DeviceLocation::Cuda { gpu_id } => format!("candle:cuda:{gpu_id}"),
                candle_core::DeviceLocation::Metal { .. } => "candle:metal".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_missing_features_are_named() {
        for (s, d) in [
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
            ("metal", DeviceSpec::Metal),
        ] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap(), d);
            if s != "cuda" {
                assert_eq!(d.to_string(), s);
            }
        }
        for bad in ["", "gpu", "cuda:x", "cuda:-1"] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
        #[cfg(not(feature = "cuda"))]
        {
            let e = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
        #[cfg(not(feature = "metal"))]
        {
            let e = DeviceSpec::Metal.device().unwrap_err().to_string();
            assert!(e.contains("--features metal"), "{e}");
        }
        assert!("gpu".parse::<Backend>().is_err());
        assert!(!Placement::new(DeviceSpec::Cpu, None).unwrap().is_candle());
        assert!(!Placement::new(DeviceSpec::Cpu, Some(Backend::Fast))
            .unwrap()
            .is_candle());
        let p = Placement::new(DeviceSpec::Cpu, Some(Backend::Candle)).unwrap();
        assert_eq!(p.label(), "candle:cpu");
        let e = Placement::new(DeviceSpec::Cuda(0), Some(Backend::Fast))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CPU only"), "{e}");
    }
}
