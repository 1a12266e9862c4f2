//! Normalisations and reductions along an axis, and the losses.
//!
//! Softmax and log-softmax subtract the maximum of each lane before exponentiating, so no
//! exponential overflows: `softmax(x)_i = e^(x_i − m) / Σ_j e^(x_j − m)` and
//! `log_softmax(x)_i = x_i − m − ln Σ_j e^(x_j − m)` with `m = max_j x_j`.

use super::{shape_error, KernelError};
use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD, Axis};

fn axis_of(x: &ArrayViewD<f32>, axis: usize, what: &str) -> Result<Axis, KernelError> {
    if axis < x.ndim() {
        Ok(Axis(axis))
    } else {
        Err(shape_error(
            &format!("{what}: axis {axis} out of range"),
            &[x.shape()],
        ))
    }
}

/// The maximum of a lane (`−∞` for an empty one; NaN if any element is NaN).
fn lane_max(lane: &ArrayView1<f32>) -> f32 {
    lane.iter().fold(
        f32::NEG_INFINITY,
        |m, &v| if v > m || v.is_nan() { v } else { m },
    )
}

/// `ln Σ_j e^(x_j − m)` of a lane, in `f64`.
fn log_sum_exp_shifted(lane: &ArrayView1<f32>, m: f32) -> f64 {
    lane.iter()
        .map(|&v| f64::from(v - m).exp())
        .sum::<f64>()
        .ln()
}

/// Softmax along `axis` (see the module docs).
pub fn softmax(x: &ArrayViewD<f32>, axis: usize) -> Result<ArrayD<f32>, KernelError> {
    let ax = axis_of(x, axis, "softmax")?;
    let mut y = x.to_owned();
    for mut lane in y.lanes_mut(ax) {
        let m = lane_max(&lane.view());
        let sum: f64 = lane.iter().map(|&v| f64::from(v - m).exp()).sum();
        lane.mapv_inplace(|v| (f64::from(v - m).exp() / sum) as f32);
    }
    Ok(y)
}

/// Log-softmax along `axis` (see the module docs).
pub fn log_softmax(x: &ArrayViewD<f32>, axis: usize) -> Result<ArrayD<f32>, KernelError> {
    let ax = axis_of(x, axis, "log_softmax")?;
    let mut y = x.to_owned();
    for mut lane in y.lanes_mut(ax) {
        let m = lane_max(&lane.view());
        let lse = log_sum_exp_shifted(&lane.view(), m);
        lane.mapv_inplace(|v| (f64::from(v - m) - lse) as f32);
    }
    Ok(y)
}

/// The sum over `axis`, which is removed.
pub fn sum_f32(x: &ArrayViewD<f32>, axis: usize) -> Result<ArrayD<f32>, KernelError> {
    let ax = axis_of(x, axis, "sum")?;
    Ok(x.map_axis(ax, |lane| {
        lane.iter().map(|v| f64::from(*v)).sum::<f64>() as f32
    }))
}

/// The mean over `axis`, which is removed.
pub fn mean_f32(x: &ArrayViewD<f32>, axis: usize) -> Result<ArrayD<f32>, KernelError> {
    let ax = axis_of(x, axis, "mean")?;
    let n = x.len_of(ax) as f64;
    Ok(x.map_axis(ax, |lane| {
        (lane.iter().map(|v| f64::from(*v)).sum::<f64>() / n) as f32
    }))
}

/// The integer sum over `axis` (wrapping), which is removed.
pub fn sum_i64(x: &ArrayViewD<i64>, axis: usize) -> Result<ArrayD<i64>, KernelError> {
    if axis >= x.ndim() {
        return Err(shape_error("sum: axis out of range", &[x.shape()]));
    }
    Ok(x.map_axis(Axis(axis), |lane| {
        lane.iter().fold(0i64, |s, v| s.wrapping_add(*v))
    }))
}

/// The mean over `axis` of integers, as floats (the IR types it `f32`).
pub fn mean_i64(x: &ArrayViewD<i64>, axis: usize) -> Result<ArrayD<f32>, KernelError> {
    if axis >= x.ndim() {
        return Err(shape_error("mean: axis out of range", &[x.shape()]));
    }
    let n = x.len_of(Axis(axis)) as f64;
    Ok(x.map_axis(Axis(axis), |lane| {
        (lane.iter().map(|v| *v as f64).sum::<f64>() / n) as f32
    }))
}

/// The labels of a cross-entropy: class indices, or a probability per class.
pub enum Labels<'a> {
    /// Integer class indices `[N, …]`.
    Classes(ArrayViewD<'a, i64>),
    /// Probabilities `[N, …, C]`, the logits' shape.
    Probabilities(ArrayViewD<'a, f32>),
}

/// Mean softmax cross-entropy over every position `[N, …]` of `logits [N, …, C]`: with
/// class labels `y`, the mean of `−log_softmax(logits)[…, y[…]]`; with probabilities `p`,
/// the mean of `−Σ_c p[…, c] · log_softmax(logits)[…, c]`. A scalar (shape `[]`).
pub fn softmax_cross_entropy(
    logits: &ArrayViewD<f32>,
    labels: &Labels<'_>,
) -> Result<ArrayD<f32>, KernelError> {
    let rank = logits.ndim();
    if rank < 2 {
        return Err(shape_error(
            "cross-entropy logits must be [N, …, C]",
            &[logits.shape()],
        ));
    }
    let classes = logits.shape()[rank - 1];
    let positions = logits.len() / classes.max(1);
    let flat = logits
        .to_shape((positions, classes))
        .map_err(|_| shape_error("cross-entropy logits", &[logits.shape()]))?;
    let mut total = 0.0f64;
    match labels {
        Labels::Classes(y) => {
            if y.shape() != &logits.shape()[..rank - 1] {
                return Err(shape_error(
                    "labels must be [N, …]",
                    &[logits.shape(), y.shape()],
                ));
            }
            for (row, &label) in flat.rows().into_iter().zip(y.iter()) {
                let c = usize::try_from(label).ok().filter(|&c| c < classes).ok_or(
                    KernelError::OutOfRange {
                        what: "label",
                        index: label,
                        limit: classes,
                    },
                )?;
                let m = lane_max(&row);
                total -= f64::from(row[c] - m) - log_sum_exp_shifted(&row, m);
            }
        }
        Labels::Probabilities(p) => {
            if p.shape() != logits.shape() {
                return Err(shape_error(
                    "probabilities must have the logits' shape",
                    &[logits.shape(), p.shape()],
                ));
            }
            let pf = p
                .to_shape((positions, classes))
                .map_err(|_| shape_error("probabilities", &[p.shape()]))?;
            for (row, prow) in flat.rows().into_iter().zip(pf.rows()) {
                let m = lane_max(&row);
                let lse = log_sum_exp_shifted(&row, m);
                for (&v, &q) in row.iter().zip(prow.iter()) {
                    total -= f64::from(q) * (f64::from(v - m) - lse);
                }
            }
        }
    }
    Ok(ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        (total / positions as f64) as f32,
    ))
}

/// Mean squared error of two tensors of one shape: `mean((a − b)²)`, a scalar.
pub fn mse(a: &ArrayViewD<f32>, b: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    if a.shape() != b.shape() {
        return Err(shape_error(
            "mse operands must have one shape",
            &[a.shape(), b.shape()],
        ));
    }
    let sum: f64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum();
    Ok(ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        (sum / a.len() as f64) as f32,
    ))
}

/// Softmax of a vector (for reporting class probabilities).
pub fn softmax_vec(x: &ArrayView1<f32>) -> Array1<f32> {
    let m = lane_max(x);
    let sum: f64 = x.iter().map(|&v| f64::from(v - m).exp()).sum();
    x.mapv(|v| (f64::from(v - m).exp() / sum) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, IxDyn};

    fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
        Array::from_shape_vec(IxDyn(shape), data).expect("shape fits data")
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        // [1, 2, 3] and the same shifted by 1000 (a naive exp would overflow).
        let x = arr(&[2, 3], vec![1.0, 2.0, 3.0, 1001.0, 1002.0, 1003.0]);
        let y = softmax(&x.view(), 1).expect("runs");
        let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        for row in 0..2 {
            for j in 0..3 {
                assert!(
                    (f64::from(y[[row, j]]) - e[j] / s).abs() < 1e-6,
                    "{row},{j}"
                );
            }
        }
        let l = log_softmax(&x.view(), 1).expect("runs");
        assert!((f64::from(l[[1, 0]]) - (1.0 - s.ln())).abs() < 1e-5);
        // Along axis 0: each column of [[0, 0], [ln 3, 0]] normalised.
        let x = arr(&[2, 2], vec![0.0, 0.0, 3f32.ln(), 0.0]);
        let y = softmax(&x.view(), 0).expect("runs");
        assert!((y[[0, 0]] - 0.25).abs() < 1e-6 && (y[[1, 0]] - 0.75).abs() < 1e-6);
        assert!((y[[0, 1]] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn reductions_remove_the_axis() {
        let x = arr(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            sum_f32(&x.view(), 1)
                .expect("runs")
                .into_raw_vec_and_offset()
                .0,
            vec![6.0, 15.0]
        );
        assert_eq!(
            mean_f32(&x.view(), 0)
                .expect("runs")
                .into_raw_vec_and_offset()
                .0,
            vec![2.5, 3.5, 4.5]
        );
        let i = Array::from_shape_vec(IxDyn(&[2, 2]), vec![1i64, 2, 3, 5]).expect("fits");
        assert_eq!(
            sum_i64(&i.view(), 0)
                .expect("runs")
                .into_raw_vec_and_offset()
                .0,
            vec![4, 7]
        );
        assert_eq!(
            mean_i64(&i.view(), 1)
                .expect("runs")
                .into_raw_vec_and_offset()
                .0,
            vec![1.5, 4.0]
        );
        assert!(sum_f32(&x.view(), 2).is_err());
    }

    #[test]
    fn losses() {
        // Two positions, three classes; uniform logits give ln 3 per position.
        let logits = arr(&[2, 3], vec![0.0, 0.0, 0.0, 0.0, 2f32.ln(), 0.0]);
        let labels = Array::from_shape_vec(IxDyn(&[2]), vec![0i64, 1]).expect("fits");
        let l =
            softmax_cross_entropy(&logits.view(), &Labels::Classes(labels.view())).expect("runs");
        assert_eq!(l.shape(), &[] as &[usize]);
        // Position 1: p(class 1) = 2 / 4.
        let want = (3f64.ln() + 2f64.ln()) / 2.0;
        assert!((f64::from(l[[]]) - want).abs() < 1e-6);
        // One-hot probabilities give the same loss.
        let p = arr(&[2, 3], vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let l2 =
            softmax_cross_entropy(&logits.view(), &Labels::Probabilities(p.view())).expect("runs");
        assert!((l2[[]] - l[[]]).abs() < 1e-6);
        let bad = Array::from_shape_vec(IxDyn(&[2]), vec![0i64, 3]).expect("fits");
        assert!(matches!(
            softmax_cross_entropy(&logits.view(), &Labels::Classes(bad.view())),
            Err(KernelError::OutOfRange {
                what: "label",
                index: 3,
                limit: 3
            })
        ));
        let a = arr(&[2], vec![1.0, 2.0]);
        let b = arr(&[2], vec![0.0, 4.0]);
        assert_eq!(mse(&a.view(), &b.view()).expect("runs")[[]], 2.5);
    }
}
