//! Seeded weight initialisers that build plain buffers (and tensors) from a `rand` generator.
//!
//! ```
//! use taper_tensor::{init, rng::{stream, Purpose}};
//! let mut rng = stream(0, Purpose::Init, 0);
//! let w = init::orthogonal(&mut rng, 4, 3, 2f32.sqrt());
//! assert_eq!(w.len(), 12);
//! ```

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// `n` values uniform in `[low, high)`.
pub fn uniform<R: Rng + ?Sized>(rng: &mut R, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(low..high)).collect()
}

/// `n` values from `N(mean, std^2)`.
pub fn normal<R: Rng + ?Sized>(rng: &mut R, n: usize, mean: f32, std: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            mean + std * z as f32
        })
        .collect()
}

/// A `rows x cols` row-major matrix with orthonormal rows or columns (whichever are fewer),
/// scaled by `gain`: the initialiser of PyTorch's `nn.init.orthogonal_`, which CleanRL uses.
///
/// A Gaussian matrix is orthonormalised by modified Gram–Schmidt in f64 (the QR
/// decomposition up to signs, with the sign convention `diag(R) > 0`, as PyTorch applies).
pub fn orthogonal<R: Rng + ?Sized>(rng: &mut R, rows: usize, cols: usize, gain: f32) -> Vec<f32> {
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    // Work on the tall orientation: n vectors of length d, n <= d.
    let transpose = rows < cols;
    let (n, d) = if transpose { (rows, cols) } else { (cols, rows) };
    let mut q: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..d).map(|_| StandardNormal.sample(rng)).collect())
        .collect();
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = (0..d).map(|t| q[i][t] * q[j][t]).sum();
            let (head, tail) = q.split_at_mut(i);
            for t in 0..d {
                tail[0][t] -= dot * head[j][t];
            }
        }
        let norm: f64 = q[i].iter().map(|v| v * v).sum::<f64>().sqrt();
        let norm = if norm < 1e-12 { 1.0 } else { norm };
        for v in q[i].iter_mut() {
            *v /= norm;
        }
    }
    let mut out = vec![0f32; rows * cols];
    for (i, vec) in q.iter().enumerate() {
        for (t, &v) in vec.iter().enumerate() {
            // vec i is column i of a (d x n) matrix when !transpose, row i when transpose.
            let (r, c) = if transpose { (i, t) } else { (t, i) };
            out[r * cols + c] = gain * v as f32;
        }
    }
    out
}

/// Builds a candle tensor of the given shape from a buffer.
pub fn to_tensor(values: Vec<f32>, shape: &[usize]) -> crate::Result<candle_core::Tensor> {
    Ok(candle_core::Tensor::from_vec(values, shape, &candle_core::Device::Cpu)?)
}

/// The values of `tensors` named and shaped as `expected` (a model's own `to_tensors`, in its
/// parameter order), concatenated: what a model's `load_tensors` copies into its flat buffer.
/// An error names a missing tensor or one whose shape differs.
pub(crate) fn read_like(
    expected: &[(String, candle_core::Tensor)],
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
) -> crate::Result<Vec<f32>> {
    let mut flat = Vec::new();
    for (name, want) in expected {
        let got = tensors.get(name).ok_or_else(|| crate::TensorError::Invalid {
            name: "tensors",
            reason: format!("missing tensor `{name}`"),
        })?;
        if got.dims() != want.dims() {
            return Err(crate::TensorError::Invalid {
                name: "tensors",
                reason: format!("tensor `{name}` has shape {:?}, expected {:?}", got.dims(), want.dims()),
            });
        }
        flat.extend(got.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    type Getter<'a> = Box<dyn Fn(usize, usize) -> f32 + 'a>;

    #[test]
    fn orthogonal_rows_are_orthonormal_times_gain() {
        let mut rng = stream(3, Purpose::Init, 0);
        for &(r, c) in &[(4usize, 7usize), (7, 4), (5, 5)] {
            let g = 1.5f32;
            let w = orthogonal(&mut rng, r, c, g);
            // The smaller dimension's vectors are orthonormal.
            let (n, d, get): (usize, usize, Getter) = if r <= c {
                (r, c, Box::new(|i, t| w[i * c + t]))
            } else {
                (c, r, Box::new(|i, t| w[t * c + i]))
            };
            for i in 0..n {
                for j in 0..n {
                    let dot: f32 = (0..d).map(|t| get(i, t) * get(j, t)).sum();
                    let want = if i == j { g * g } else { 0.0 };
                    assert!((dot - want).abs() < 1e-4, "{r}x{c} ({i},{j}) {dot}");
                }
            }
        }
    }

    #[test]
    fn normal_moments() {
        let mut rng = stream(1, Purpose::Init, 0);
        let v = normal(&mut rng, 20000, 2.0, 3.0);
        let m = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len() as f32;
        assert!((m - 2.0).abs() < 0.1 && (var.sqrt() - 3.0).abs() < 0.1);
    }
}
