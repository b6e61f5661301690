//! A TensorBoard event-file writer (and reader), with no dependencies.
//!
//! An event file is a sequence of TFRecords: `u64 length`, `u32 masked_crc32c(length)`,
//! `data`, `u32 masked_crc32c(data)`, little-endian, where `data` is a serialized
//! `tensorflow.Event` protobuf. The first event carries `file_version = "brain.Event:2"`;
//! each later one carries `wall_time`, `step` and a `Summary` of scalar values
//! (`Summary.Value { tag = 1, simple_value = 2 }`). The protobuf is hand-encoded: only
//! varints, 64-bit and 32-bit fields, and length-delimited fields are needed.
//!
//! ```
//! use taper_train::tensorboard::{read_scalars, EventWriter};
//! let dir = std::env::temp_dir().join(format!("tb-doc-{}", std::process::id()));
//! let mut w = EventWriter::create(&dir)?;
//! w.add_scalar("loss", 0.5, 1)?;
//! w.flush()?;
//! let scalars = read_scalars(w.path())?;
//! assert_eq!(scalars[0].tag, "loss");
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), taper_train::TrainError>(())
//! ```

use crate::error::{Result, TrainError};
use crate::metrics::Metrics;
use std::io::Write;
use std::path::{Path, PathBuf};

const CRC32C_POLY: u32 = 0x82F6_3B78; // Castagnoli, reflected

fn crc32c_table() -> &'static [u32; 256] {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ CRC32C_POLY } else { c >> 1 };
            }
            *e = c;
        }
        t
    })
}

/// CRC-32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let t = crc32c_table();
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// TensorFlow's masked CRC: rotate right by 15 and add a constant.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u32, wire: u32, out: &mut Vec<u8>) {
    varint(((field << 3) | wire) as u64, out);
}

fn len_delimited(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn event_bytes(wall_time: f64, step: i64, body: EventBody<'_>) -> Vec<u8> {
    let mut e = Vec::new();
    key(1, 1, &mut e); // wall_time: double
    e.extend_from_slice(&wall_time.to_le_bytes());
    key(2, 0, &mut e); // step: int64
    varint(step as u64, &mut e);
    match body {
        EventBody::FileVersion(v) => len_delimited(3, v.as_bytes(), &mut e),
        EventBody::Scalars(vals) => {
            let mut summary = Vec::new();
            for (tag, v) in vals {
                let mut value = Vec::new();
                len_delimited(1, tag.as_bytes(), &mut value);
                key(2, 5, &mut value); // simple_value: float
                value.extend_from_slice(&v.to_le_bytes());
                len_delimited(1, &value, &mut summary);
            }
            len_delimited(5, &summary, &mut e);
        }
    }
    e
}

enum EventBody<'a> {
    FileVersion(&'a str),
    Scalars(&'a [(&'a str, f32)]),
}

/// Writes scalars to `events.out.tfevents.<time>.<host>.taper` in a folder.
#[derive(Debug)]
pub struct EventWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl EventWriter {
    /// Creates a new event file in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let t = now();
        let path = dir.join(format!("events.out.tfevents.{}.taper.{}", t as u64, std::process::id()));
        let f = std::fs::File::create(&path).map_err(|e| TrainError::io(&path, e))?;
        let mut w = EventWriter {
            file: std::io::BufWriter::new(f),
            path,
        };
        w.record(&event_bytes(t, 0, EventBody::FileVersion("brain.Event:2")))?;
        Ok(w)
    }
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let p = self.path.clone();
        let io = |e| TrainError::io(&p, e);
        self.file.write_all(&len).map_err(io)?;
        self.file.write_all(&masked_crc(&len).to_le_bytes()).map_err(io)?;
        self.file.write_all(data).map_err(io)?;
        self.file.write_all(&masked_crc(data).to_le_bytes()).map_err(io)?;
        Ok(())
    }
    /// One scalar at `step`.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<()> {
        self.record(&event_bytes(now(), step, EventBody::Scalars(&[(tag, value)])))
    }
    /// Every finite value of a metrics row as `group/name` scalars at `step` (CleanRL's tags:
    /// `losses/*`, `charts/*`).
    pub fn add_metrics(&mut self, m: &Metrics, step: i64) -> Result<()> {
        let t = now();
        for (name, v) in m.entries() {
            if !v.is_finite() || name == "global_step" {
                continue;
            }
            let tag = format!("{}/{}", tag_group(name), name);
            self.record(&event_bytes(t, step, EventBody::Scalars(&[(&tag, v as f32)])))?;
        }
        Ok(())
    }
    /// Flushes to disk.
    pub fn flush(&mut self) -> Result<()> {
        let p = self.path.clone();
        self.file.flush().map_err(|e| TrainError::io(&p, e))
    }
}

/// The TensorBoard group of a metric: losses and optimisation statistics under `losses/`,
/// the rest under `charts/` (CleanRL's layout).
pub fn tag_group(name: &str) -> &'static str {
    match name {
        "policy_loss" | "value_loss" | "entropy" | "old_approx_kl" | "approx_kl" | "clipfrac"
        | "explained_variance" | "grad_norm" => "losses",
        _ => "charts",
    }
}

/// A scalar read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// Tag.
    pub tag: String,
    /// Step.
    pub step: i64,
    /// Value.
    pub value: f32,
    /// Wall time.
    pub wall_time: f64,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for s in 0..10 {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= ((byte & 0x7F) as u64) << (7 * s);
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b: &'a [u8] = self.b;
        let s = b.get(self.i..self.i + n)?;
        self.i += n;
        Some(s)
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

/// One protobuf field: number, wire type, scalar value, bytes (length-delimited only).
type Field<'a> = (u32, u32, u64, &'a [u8]);

fn parse_fields(bytes: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut c = Cursor { b: bytes, i: 0 };
    let mut out = Vec::new();
    while !c.done() {
        let k = c.varint()?;
        let (field, wire) = ((k >> 3) as u32, (k & 7) as u32);
        match wire {
            0 => out.push((field, wire, c.varint()?, &[][..])),
            1 => out.push((field, wire, u64::from_le_bytes(c.take(8)?.try_into().ok()?), &[][..])),
            5 => out.push((
                field,
                wire,
                u32::from_le_bytes(c.take(4)?.try_into().ok()?) as u64,
                &[][..],
            )),
            2 => {
                let n = c.varint()? as usize;
                out.push((field, wire, 0, c.take(n)?));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Reads every scalar of an event file, checking both CRCs of every record.
pub fn read_scalars(path: &Path) -> Result<Vec<Scalar>> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let bad = |why: &str| TrainError::Checkpoint {
        path: path.display().to_string(),
        reason: format!("bad event file: {why}"),
    };
    let mut c = Cursor { b: &bytes, i: 0 };
    let mut out = Vec::new();
    while !c.done() {
        let len_b = c.take(8).ok_or_else(|| bad("truncated length"))?;
        let len = u64::from_le_bytes(len_b.try_into().unwrap());
        let crc = u32::from_le_bytes(c.take(4).ok_or_else(|| bad("truncated"))?.try_into().unwrap());
        if crc != masked_crc(len_b) {
            return Err(bad("length CRC mismatch"));
        }
        let data = c.take(len as usize).ok_or_else(|| bad("truncated record"))?;
        let crc = u32::from_le_bytes(c.take(4).ok_or_else(|| bad("truncated"))?.try_into().unwrap());
        if crc != masked_crc(data) {
            return Err(bad("data CRC mismatch"));
        }
        let fields = parse_fields(data).ok_or_else(|| bad("malformed event"))?;
        let (mut wall, mut step) = (0f64, 0i64);
        let mut summary: Option<&[u8]> = None;
        for (f, _, v, b) in &fields {
            match f {
                1 => wall = f64::from_bits(*v),
                2 => step = *v as i64,
                5 => summary = Some(b),
                _ => {}
            }
        }
        if let Some(s) = summary {
            for (f, _, _, vb) in parse_fields(s).ok_or_else(|| bad("malformed summary"))? {
                if f != 1 {
                    continue;
                }
                let (mut tag, mut value) = (String::new(), None);
                for (g, _, v, b) in parse_fields(vb).ok_or_else(|| bad("malformed value"))? {
                    match g {
                        1 => tag = String::from_utf8_lossy(b).to_string(),
                        2 => value = Some(f32::from_bits(v as u32)),
                        _ => {}
                    }
                }
                if let Some(value) = value {
                    out.push(Scalar {
                        tag,
                        step,
                        value,
                        wall_time: wall,
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3720 (iSCSI) appendix B.4 check values for CRC-32C.
    #[test]
    fn crc32c_reference_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn write_then_read_back() {
        let dir = std::env::temp_dir().join(format!("tb-test-{}", std::process::id()));
        let mut w = EventWriter::create(&dir).unwrap();
        let mut m = Metrics::new();
        m.push("global_step", 512.0);
        m.push("policy_loss", -0.25);
        m.push("recent_return", 21.5);
        m.push("x", f64::NAN);
        w.add_metrics(&m, 512).unwrap();
        w.add_scalar("charts/other", 3.0, 1024).unwrap();
        w.flush().unwrap();
        let s = read_scalars(w.path()).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].tag.as_str(), s[0].step, s[0].value),
            ("losses/policy_loss", 512, -0.25)
        );
        assert_eq!((s[1].tag.as_str(), s[1].value), ("charts/recent_return", 21.5));
        assert_eq!((s[2].step, s[2].value), (1024, 3.0));
        // A flipped byte is caught by the CRC.
        let mut bytes = std::fs::read(w.path()).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 0x40;
        let p = dir.join("corrupt");
        std::fs::write(&p, bytes).unwrap();
        assert!(read_scalars(&p).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
