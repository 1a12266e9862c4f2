//! Linear maps: dense layers on the last axis, batched matrix products, and embedding
//! lookups.

use super::elementwise::broadcast_shape;
use super::{shape_error, KernelError};
use ndarray::{s, Array2, Array3, ArrayD, ArrayViewD, Ix1, Ix2};

/// A dense layer on the last axis: for `x [N, …, F]`, `weight [U, F]` (one row per output
/// unit, the layout of PyTorch's `Linear` and ONNX's `Gemm` with `transB`) and
/// `bias [U]`, `y[…, u] = bias[u] + Σ_f x[…, f] · weight[u, f]`; the leading axes are
/// kept, so a `[N, T, F]` sequence is transformed at every step.
pub fn dense(
    x: &ArrayViewD<f32>,
    weight: &ArrayViewD<f32>,
    bias: Option<&ArrayViewD<f32>>,
) -> Result<ArrayD<f32>, KernelError> {
    let w = weight
        .clone()
        .into_dimensionality::<Ix2>()
        .map_err(|_| shape_error("dense weight must be [U, F]", &[weight.shape()]))?;
    let (u, f) = w.dim();
    let shape = x.shape();
    if shape.last() != Some(&f) {
        return Err(shape_error(
            "dense input's last axis must be F",
            &[shape, w.shape()],
        ));
    }
    let rows = x.len() / f.max(1);
    let x2 = x
        .to_shape((rows, f))
        .map_err(|_| shape_error("dense input", &[shape]))?;
    let mut y: Array2<f32> = x2.dot(&w.t());
    if let Some(b) = bias {
        let b = b
            .clone()
            .into_dimensionality::<Ix1>()
            .ok()
            .filter(|b| b.len() == u)
            .ok_or_else(|| shape_error("dense bias must be [U]", &[b.shape()]))?;
        y += &b;
    }
    let mut out_shape = shape.to_vec();
    if let Some(last) = out_shape.last_mut() {
        *last = u;
    }
    y.to_shape(out_shape.clone())
        .map(|a| a.into_owned())
        .map_err(|_| shape_error("dense output", &[&out_shape]))
}

/// Matrix product on the last two axes, `[…, M, K] · […, K, P] → […, M, P]`, the leading
/// axes broadcast as NumPy's `matmul` does (both operands have at least two axes).
pub fn matmul(a: &ArrayViewD<f32>, b: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    let (sa, sb) = (a.shape(), b.shape());
    let bad = || shape_error("matmul operands do not fit", &[sa, sb]);
    if sa.len() < 2 || sb.len() < 2 {
        return Err(bad());
    }
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (k2, p) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if k != k2 {
        return Err(bad());
    }
    let batch = broadcast_shape(&sa[..sa.len() - 2], &sb[..sb.len() - 2]).ok_or_else(bad)?;
    let count: usize = batch.iter().product();
    let full = |lead: &[usize], r: usize, c: usize| {
        let mut v = lead.to_vec();
        v.extend([r, c]);
        v
    };
    let ab = a.broadcast(full(&batch, m, k)).ok_or_else(bad)?;
    let bb = b.broadcast(full(&batch, k, p)).ok_or_else(bad)?;
    let a3 = ab.to_shape((count, m, k)).map_err(|_| bad())?;
    let b3 = bb.to_shape((count, k, p)).map_err(|_| bad())?;
    let mut y = Array3::<f32>::zeros((count, m, p));
    for i in 0..count {
        let prod = a3.slice(s![i, .., ..]).dot(&b3.slice(s![i, .., ..]));
        y.slice_mut(s![i, .., ..]).assign(&prod);
    }
    let out = full(&batch, m, p);
    y.to_shape(out.clone())
        .map(|a| a.into_owned())
        .map_err(|_| shape_error("matmul output", &[&out]))
}

/// Embedding lookup: for integer `ids [N, …]` and `table [V, D]`,
/// `y[…, d] = table[ids[…], d]`, shape `[N, …, D]`. An id outside `0 … V−1` is an error
/// ([`KernelError::OutOfRange`]), never a silent clamp.
pub fn embed(ids: &ArrayViewD<i64>, table: &ArrayViewD<f32>) -> Result<ArrayD<f32>, KernelError> {
    let t = table
        .clone()
        .into_dimensionality::<Ix2>()
        .map_err(|_| shape_error("embedding table must be [V, D]", &[table.shape()]))?;
    let (v, d) = t.dim();
    let mut y = Array2::<f32>::zeros((ids.len(), d));
    for (mut row, &id) in y.rows_mut().into_iter().zip(ids.iter()) {
        let i = usize::try_from(id)
            .ok()
            .filter(|&i| i < v)
            .ok_or(KernelError::OutOfRange {
                what: "token id",
                index: id,
                limit: v,
            })?;
        row.assign(&t.row(i));
    }
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    y.to_shape(shape.clone())
        .map(|a| a.into_owned())
        .map_err(|_| shape_error("embedding output", &[&shape]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, IxDyn};

    fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
        Array::from_shape_vec(IxDyn(shape), data).expect("shape fits data")
    }

    #[test]
    fn dense_on_the_last_axis() {
        // x [1, 2, 3] (two steps), weight [2, 3], bias [2].
        let x = arr(&[1, 2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0]);
        let w = arr(&[2, 3], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let b = arr(&[2], vec![0.5, -0.5]);
        let y = dense(&x.view(), &w.view(), Some(&b.view())).expect("runs");
        assert_eq!(y.shape(), &[1, 2, 2]);
        // Step 0: [1 + .5, 6 − .5]; step 1: [−1 + .5, 0 − .5].
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![1.5, 5.5, -0.5, -0.5]
        );
        let y = dense(&x.view(), &w.view(), None).expect("runs");
        assert_eq!(y[[0, 0, 1]], 6.0);
    }

    #[test]
    fn matmul_broadcasts_leading_axes() {
        // a [2, 1, 2] times b [2, 1]: two products against one matrix.
        let a = arr(&[2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let b = arr(&[2, 1], vec![10.0, 1.0]);
        let y = matmul(&a.view(), &b.view()).expect("runs");
        assert_eq!(y.shape(), &[2, 1, 1]);
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![12.0, 34.0]);
        assert!(matmul(&a.view(), &a.view()).is_err());
    }

    #[test]
    fn embedding_rows_and_range() {
        let table = arr(&[3, 2], vec![0.0, 0.1, 1.0, 1.1, 2.0, 2.1]);
        let ids = Array::from_shape_vec(IxDyn(&[1, 3]), vec![2i64, 0, 2]).expect("fits");
        let y = embed(&ids.view(), &table.view()).expect("runs");
        assert_eq!(y.shape(), &[1, 3, 2]);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![2.0, 2.1, 0.0, 0.1, 2.0, 2.1]
        );
        let bad = Array::from_shape_vec(IxDyn(&[1, 1]), vec![3i64]).expect("fits");
        assert_eq!(
            embed(&bad.view(), &table.view()),
            Err(KernelError::OutOfRange {
                what: "token id",
                index: 3,
                limit: 3
            })
        );
        let neg = Array::from_shape_vec(IxDyn(&[1]), vec![-1i64]).expect("fits");
        assert!(embed(&neg.view(), &table.view()).is_err());
    }
}
