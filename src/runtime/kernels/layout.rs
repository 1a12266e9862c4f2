//! Ops that move elements without computing: flatten, reshape, concat, slice, and the
//! stacking of a recurrence's per-step outputs. Generic over the element type, so they work
//! on float and integer tensors alike. Element order is row-major (C order) throughout.

use super::{shape_error, KernelError};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

/// `[N, d₁, d₂, …] → [N, d₁·d₂·…]`, row-major.
pub fn flatten<T: Clone>(x: &ArrayViewD<T>) -> Result<ArrayD<T>, KernelError> {
    let shape = x.shape();
    let n = *shape
        .first()
        .ok_or_else(|| shape_error("flatten needs a batch axis", &[shape]))?;
    let rest: usize = shape[1..].iter().product();
    reshape(x, &[n, rest])
}

/// The elements of `x` in row-major order, read into `shape` (same number of elements).
pub fn reshape<T: Clone>(x: &ArrayViewD<T>, shape: &[usize]) -> Result<ArrayD<T>, KernelError> {
    x.to_shape(IxDyn(shape))
        .map(|c| c.into_owned())
        .map_err(|_| {
            shape_error(
                "reshape changes the number of elements",
                &[x.shape(), shape],
            )
        })
}

/// The inputs joined along `axis` (all other sizes equal), in input order.
pub fn concat<T: Clone>(xs: &[ArrayViewD<T>], axis: usize) -> Result<ArrayD<T>, KernelError> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
    if xs.is_empty() || xs.iter().any(|x| axis >= x.ndim()) {
        return Err(shape_error(&format!("concat on axis {axis}"), &shapes));
    }
    ndarray::concatenate(Axis(axis), xs)
        .map_err(|_| shape_error(&format!("concat on axis {axis}"), &shapes))
}

/// Indices `start .. end` of `axis`.
pub fn slice<T: Clone>(
    x: &ArrayViewD<T>,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<ArrayD<T>, KernelError> {
    if axis >= x.ndim() || start > end || end > x.len_of(Axis(axis)) {
        return Err(shape_error(
            &format!("slice {start}..{end} of axis {axis}"),
            &[x.shape()],
        ));
    }
    Ok(x.slice_axis(Axis(axis), Slice::from(start..end)).to_owned())
}

/// Step `t` of a `[N, T, …]` sequence: `[N, …]`.
pub fn step<T: Clone>(x: &ArrayViewD<T>, t: usize) -> Result<ArrayD<T>, KernelError> {
    if x.ndim() < 2 || t >= x.len_of(Axis(1)) {
        return Err(shape_error(
            &format!("step {t} of a sequence"),
            &[x.shape()],
        ));
    }
    Ok(x.index_axis(Axis(1), t).to_owned())
}

/// Per-step values `[N, …]` stacked on a new axis 1: `[N, T, …]`.
pub fn stack_steps<T: Clone>(xs: &[ArrayD<T>]) -> Result<ArrayD<T>, KernelError> {
    let views: Vec<ArrayViewD<T>> = xs.iter().map(|x| x.view()).collect();
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
    if xs.is_empty() || xs[0].ndim() == 0 {
        return Err(shape_error("stacking steps", &shapes));
    }
    ndarray::stack(Axis(1), &views).map_err(|_| shape_error("stacking steps", &shapes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn iota(shape: &[usize]) -> ArrayD<i64> {
        let n: usize = shape.iter().product();
        Array::from_shape_vec(IxDyn(shape), (0..n as i64).collect()).expect("fits")
    }

    #[test]
    fn flatten_and_reshape_are_row_major() {
        let x = iota(&[2, 2, 3]);
        let f = flatten(&x.view()).expect("runs");
        assert_eq!(f.shape(), &[2, 6]);
        assert_eq!(f[[1, 0]], 6);
        // A transposed view is read in logical order, not memory order.
        let t = x.view().permuted_axes(vec![0, 2, 1]);
        let r = reshape(&t, &[2, 6]).expect("runs");
        assert_eq!(
            r.index_axis(Axis(0), 0).iter().copied().collect::<Vec<_>>(),
            vec![0, 3, 1, 4, 2, 5]
        );
        assert!(reshape(&x.view(), &[5]).is_err());
    }

    #[test]
    fn concat_slice_and_steps() {
        let a = iota(&[1, 2]);
        let b = iota(&[1, 3]);
        let c = concat(&[a.view(), b.view()], 1).expect("runs");
        assert_eq!(c.into_raw_vec_and_offset().0, vec![0, 1, 0, 1, 2]);
        assert!(concat(&[a.view(), b.view()], 0).is_err());
        let x = iota(&[2, 4]);
        let s = slice(&x.view(), 1, 1, 3).expect("runs");
        assert_eq!(s.into_raw_vec_and_offset().0, vec![1, 2, 5, 6]);
        assert!(slice(&x.view(), 1, 3, 5).is_err());
        let seq = iota(&[2, 3, 2]);
        let s1 = step(&seq.view(), 1).expect("runs");
        assert_eq!(s1.into_raw_vec_and_offset().0, vec![2, 3, 8, 9]);
        let steps: Vec<ArrayD<i64>> = (0..3)
            .map(|t| step(&seq.view(), t).expect("runs"))
            .collect();
        assert_eq!(stack_steps(&steps).expect("runs"), seq);
    }
}
