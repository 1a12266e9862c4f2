//! Elementwise ops: broadcasting arithmetic, activations and constant fills.
//!
//! **Broadcasting** is NumPy's: shapes are aligned on their last axes, a missing leading
//! axis counts as size 1, and two sizes are compatible when equal or when one of them is 1
//! (that operand is repeated along the axis).

use super::{shape_error, KernelError};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

/// The broadcast shape of two shapes, or `None` when some pair of sizes differs and
/// neither is 1.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// A binary arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b` (IEEE for floats; truncating, and an error on zero, for integers).
    Div,
}

/// `a op b` elementwise with broadcasting, on floats.
pub fn binary_f32(
    op: BinOp,
    a: &ArrayViewD<f32>,
    b: &ArrayViewD<f32>,
) -> Result<ArrayD<f32>, KernelError> {
    let f = match op {
        BinOp::Add => |x: f32, y: f32| x + y,
        BinOp::Sub => |x: f32, y: f32| x - y,
        BinOp::Mul => |x: f32, y: f32| x * y,
        BinOp::Div => |x: f32, y: f32| x / y,
    };
    zip_broadcast(a, b, f)
}

/// `a op b` elementwise with broadcasting, on integers (wrapping on overflow).
pub fn binary_i64(
    op: BinOp,
    a: &ArrayViewD<i64>,
    b: &ArrayViewD<i64>,
) -> Result<ArrayD<i64>, KernelError> {
    if op == BinOp::Div && b.iter().any(|v| *v == 0) {
        return Err(KernelError::DivideByZero);
    }
    let f = match op {
        BinOp::Add => |x: i64, y: i64| x.wrapping_add(y),
        BinOp::Sub => |x: i64, y: i64| x.wrapping_sub(y),
        BinOp::Mul => |x: i64, y: i64| x.wrapping_mul(y),
        BinOp::Div => |x: i64, y: i64| x.wrapping_div(y),
    };
    zip_broadcast(a, b, f)
}

fn zip_broadcast<T: Copy>(
    a: &ArrayViewD<T>,
    b: &ArrayViewD<T>,
    f: impl Fn(T, T) -> T,
) -> Result<ArrayD<T>, KernelError> {
    let bad = || shape_error("operands do not broadcast", &[a.shape(), b.shape()]);
    let shape = broadcast_shape(a.shape(), b.shape()).ok_or_else(bad)?;
    let av = a.broadcast(IxDyn(&shape)).ok_or_else(bad)?;
    let bv = b.broadcast(IxDyn(&shape)).ok_or_else(bad)?;
    Ok(Zip::from(&av).and(&bv).map_collect(|x, y| f(*x, *y)))
}

/// An activation or other one-input float map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `−x`.
    Neg,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^−x)`, computed without overflow for large `|x|`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
}

/// Applies `op` to every element.
pub fn unary(op: Unary, x: &ArrayViewD<f32>) -> ArrayD<f32> {
    match op {
        Unary::Neg => x.mapv(|v| -v),
        // `max` would turn NaN into 0; keep it visible.
        Unary::Relu => x.mapv(|v| if v < 0.0 { 0.0 } else { v }),
        Unary::Sigmoid => x.mapv(sigmoid),
        Unary::Tanh => x.mapv(f32::tanh),
    }
}

/// The logistic function: `1 / (1 + e^−x)` for `x ≥ 0`, `e^x / (1 + e^x)` otherwise, so
/// that no intermediate overflows.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
        Array::from_shape_vec(IxDyn(shape), data).expect("shape fits data")
    }

    #[test]
    fn broadcast_shapes() {
        assert_eq!(broadcast_shape(&[2, 3, 1], &[4]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shape(&[], &[5, 2]), Some(vec![5, 2]));
        assert_eq!(broadcast_shape(&[3, 2], &[3]), None);
    }

    #[test]
    fn broadcasting_arithmetic() {
        // [2, 1] − [3]: a column minus a row.
        let a = arr(&[2, 1], vec![10.0, 20.0]);
        let b = arr(&[3], vec![1.0, 2.0, 3.0]);
        let y = binary_f32(BinOp::Sub, &a.view(), &b.view()).expect("runs");
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![9.0, 8.0, 7.0, 19.0, 18.0, 17.0]
        );
        // A scalar (shape []) broadcasts to anything: the `1 − z` of a GRU.
        let one = arr(&[], vec![1.0]);
        let z = arr(&[2], vec![0.25, 1.0]);
        let y = binary_f32(BinOp::Sub, &one.view(), &z.view()).expect("runs");
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![0.75, 0.0]);
        let y = binary_f32(BinOp::Div, &z.view(), &arr(&[1], vec![0.5]).view()).expect("runs");
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![0.5, 2.0]);
        let i = Array::from_shape_vec(IxDyn(&[2]), vec![7i64, -7]).expect("fits");
        let two = Array::from_shape_vec(IxDyn(&[1]), vec![2i64]).expect("fits");
        let q = binary_i64(BinOp::Div, &i.view(), &two.view()).expect("runs");
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), vec![3, -3]);
        let zero = Array::from_shape_vec(IxDyn(&[1]), vec![0i64]).expect("fits");
        assert_eq!(
            binary_i64(BinOp::Div, &i.view(), &zero.view()),
            Err(KernelError::DivideByZero)
        );
        assert!(binary_f32(BinOp::Add, &a.view(), &arr(&[3, 1], vec![0.0; 3]).view()).is_err());
    }

    #[test]
    fn activations() {
        let x = arr(&[4], vec![-2.0, 0.0, 1.0, 100.0]);
        assert_eq!(
            unary(Unary::Relu, &x.view()).into_raw_vec_and_offset().0,
            vec![0.0, 0.0, 1.0, 100.0]
        );
        let s = unary(Unary::Sigmoid, &x.view());
        assert!((s[[0]] - 1.0 / (1.0 + 2f32.exp())).abs() < 1e-7);
        assert_eq!(s[[1]], 0.5);
        assert_eq!(s[[3]], 1.0);
        assert!(sigmoid(-200.0) >= 0.0 && sigmoid(-200.0) < 1e-30);
        let t = unary(Unary::Tanh, &x.view());
        assert!((t[[2]] - 1f32.tanh()).abs() < 1e-7);
        assert_eq!(unary(Unary::Neg, &x.view())[[0]], 2.0);
    }
}
