//! The values of elaboration: compile-time numbers, booleans, strings, symbols and arrays;
//! tensors of the IR being built; recurrent states; layers and cells not yet applied.
//! Static arithmetic lives here; it is checked (an overflow or a division by zero is an
//! error, never a wrap-around).

use crate::diagnostics::{FileId, Span};
use crate::ir::graph::ValueRef;
use crate::syntax::ast::{BinOp, BlockDecl, CellDecl};
use crate::syntax::builtins::LayerSig;

/// A tensor of the IR under construction: a value of the region at stack depth `depth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TVal {
    /// The value.
    pub v: ValueRef,
    /// Which region of the lowerer's stack it lives in.
    pub depth: usize,
}

/// A layer named without being applied (`relu`, a block name), waiting for an input.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LayerRef<'p> {
    /// A built-in layer.
    Builtin(&'static LayerSig),
    /// A block, with the file it is defined in.
    Block(&'p BlockDecl, FileId),
}

/// A cell applied to its arguments (`lstm_cell(256)`), ready for `unroll`.
#[derive(Clone, Debug)]
pub(crate) struct CellInst<'p> {
    /// The cell.
    pub decl: &'p CellDecl,
    /// The file it is defined in.
    pub file: FileId,
    /// Its arguments, bound to parameter names (defaults not yet applied).
    pub args: Vec<(Option<String>, Val<'p>, Span)>,
    /// The call.
    pub span: Span,
}

/// A value during elaboration.
#[derive(Clone, Debug)]
pub(crate) enum Val<'p> {
    /// An integer.
    Int(i64),
    /// A real.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// A bare symbol such as `same` or `last`.
    Sym(String),
    /// An array (`[1, 7]`, a constant kernel).
    List(Vec<Val<'p>>),
    /// A symbolic size (`N` in `reshape(shape: [N, 64, -1])`).
    Dim(crate::ir::shape::Poly),
    /// `zeros[…]` / `ones[…]`: per-example dimensions and the fill value.
    Fill {
        /// The element value.
        value: f64,
        /// The per-example dimensions.
        dims: Vec<u64>,
    },
    /// A tensor.
    Tensor(TVal),
    /// The final state of a recurrence (`emit: state`): `h`, or `h` and `c`.
    State(Vec<TVal>),
    /// A layer not yet applied.
    Layer(LayerRef<'p>),
    /// A cell with its arguments.
    Cell(CellInst<'p>),
    /// The result of something that failed; its error was reported, so anything computed
    /// from it fails silently.
    Poison,
}

/// Why static arithmetic failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StaticError {
    /// Division or remainder by zero.
    DivisionByZero,
    /// The result does not fit in 64 bits.
    Overflow,
    /// A negative integer power.
    NegativePower,
    /// The operator does not apply to these operands.
    BadOperands,
}

impl StaticError {
    /// What went wrong, in words.
    pub fn describe(self) -> &'static str {
        match self {
            StaticError::DivisionByZero => "division by zero",
            StaticError::Overflow => "the result does not fit in 64 bits",
            StaticError::NegativePower => "an integer raised to a negative power",
            StaticError::BadOperands => "the operator does not apply to these operands",
        }
    }
}

impl Val<'_> {
    /// How the value is described in messages: "an integer", "a tensor f32[N,64,56,56]".
    pub fn describe(&self) -> String {
        match self {
            Val::Int(v) => format!("the integer {v}"),
            Val::Float(v) => format!("the number {v}"),
            Val::Bool(v) => format!("`{v}`"),
            Val::Str(_) => "a string".into(),
            Val::Sym(s) => format!("the symbol `{s}`"),
            Val::List(_) => "an array".into(),
            Val::Dim(p) => format!("the symbolic size {p}"),
            Val::Fill { .. } => "a `zeros`/`ones` fill".into(),
            Val::Tensor(_) => "a tensor".into(),
            Val::State(_) => "a recurrent state".into(),
            Val::Layer(_) => "a layer".into(),
            Val::Cell(_) => "a cell".into(),
            Val::Poison => "an invalid value".into(),
        }
    }

    /// Whether the value is known at compile time (a number, boolean, string, symbol,
    /// array or fill).
    pub fn is_static(&self) -> bool {
        match self {
            Val::Int(_)
            | Val::Float(_)
            | Val::Bool(_)
            | Val::Str(_)
            | Val::Sym(_)
            | Val::List(_)
            | Val::Dim(_)
            | Val::Fill { .. } => true,
            Val::Tensor(_) | Val::State(_) | Val::Layer(_) | Val::Cell(_) | Val::Poison => false,
        }
    }

    /// The value as a real number, for numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(v) => Some(*v as f64),
            Val::Float(v) => Some(*v),
            _ => None,
        }
    }
}

/// `a op b` on compile-time values. Integers stay integers except for a `/` that does not
/// divide exactly; arrays combine elementwise with scalars and with arrays of their
/// length (constant kernels: `[[1, 1], [1, 1]] / 4`).
pub(crate) fn static_binary<'p>(
    op: BinOp,
    a: &Val<'p>,
    b: &Val<'p>,
) -> Result<Val<'p>, StaticError> {
    use Val::{Bool, Int, List};
    match (a, b) {
        (List(xs), List(ys)) => {
            if xs.len() != ys.len() || op_is_logical(op) {
                return Err(StaticError::BadOperands);
            }
            let v: Result<Vec<Val<'p>>, StaticError> = xs
                .iter()
                .zip(ys)
                .map(|(x, y)| static_binary(op, x, y))
                .collect();
            Ok(List(v?))
        }
        (List(xs), y) if y.as_f64().is_some() && is_arith(op) => {
            let v: Result<Vec<Val<'p>>, StaticError> =
                xs.iter().map(|x| static_binary(op, x, y)).collect();
            Ok(List(v?))
        }
        (x, List(ys)) if x.as_f64().is_some() && is_arith(op) => {
            let v: Result<Vec<Val<'p>>, StaticError> =
                ys.iter().map(|y| static_binary(op, x, y)).collect();
            Ok(List(v?))
        }
        (Int(x), Int(y)) => int_binary(op, *x, *y),
        (Bool(x), Bool(y)) => match op {
            BinOp::And => Ok(Bool(*x && *y)),
            BinOp::Or => Ok(Bool(*x || *y)),
            BinOp::Eq => Ok(Bool(x == y)),
            BinOp::Ne => Ok(Bool(x != y)),
            _ => Err(StaticError::BadOperands),
        },
        (Val::Sym(x), Val::Sym(y)) | (Val::Str(x), Val::Str(y)) => match op {
            BinOp::Eq => Ok(Bool(x == y)),
            BinOp::Ne => Ok(Bool(x != y)),
            _ => Err(StaticError::BadOperands),
        },
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => float_binary(op, x, y),
            _ => Err(StaticError::BadOperands),
        },
    }
}

fn is_arith(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::Pow
    )
}

fn op_is_logical(op: BinOp) -> bool {
    !is_arith(op)
}

fn int_binary<'p>(op: BinOp, x: i64, y: i64) -> Result<Val<'p>, StaticError> {
    let ov = StaticError::Overflow;
    Ok(match op {
        BinOp::Add => Val::Int(x.checked_add(y).ok_or(ov)?),
        BinOp::Sub => Val::Int(x.checked_sub(y).ok_or(ov)?),
        BinOp::Mul => Val::Int(x.checked_mul(y).ok_or(ov)?),
        BinOp::Div => {
            if y == 0 {
                return Err(StaticError::DivisionByZero);
            }
            if x.checked_rem(y).ok_or(ov)? == 0 {
                Val::Int(x.checked_div(y).ok_or(ov)?)
            } else {
                Val::Float(x as f64 / y as f64)
            }
        }
        BinOp::Rem => {
            if y == 0 {
                return Err(StaticError::DivisionByZero);
            }
            Val::Int(x.checked_rem(y).ok_or(ov)?)
        }
        BinOp::Pow => {
            if y < 0 {
                return Err(StaticError::NegativePower);
            }
            let e = u32::try_from(y).map_err(|_| ov)?;
            Val::Int(x.checked_pow(e).ok_or(ov)?)
        }
        BinOp::Eq => Val::Bool(x == y),
        BinOp::Ne => Val::Bool(x != y),
        BinOp::Lt => Val::Bool(x < y),
        BinOp::Le => Val::Bool(x <= y),
        BinOp::Gt => Val::Bool(x > y),
        BinOp::Ge => Val::Bool(x >= y),
        BinOp::And | BinOp::Or => return Err(StaticError::BadOperands),
    })
}

fn float_binary<'p>(op: BinOp, x: f64, y: f64) -> Result<Val<'p>, StaticError> {
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return Err(StaticError::DivisionByZero);
            }
            x / y
        }
        BinOp::Rem => {
            if y == 0.0 {
                return Err(StaticError::DivisionByZero);
            }
            x % y
        }
        BinOp::Pow => x.powf(y),
        BinOp::Eq => return Ok(Val::Bool(x == y)),
        BinOp::Ne => return Ok(Val::Bool(x != y)),
        BinOp::Lt => return Ok(Val::Bool(x < y)),
        BinOp::Le => return Ok(Val::Bool(x <= y)),
        BinOp::Gt => return Ok(Val::Bool(x > y)),
        BinOp::Ge => return Ok(Val::Bool(x >= y)),
        BinOp::And | BinOp::Or => return Err(StaticError::BadOperands),
    };
    if r.is_finite() {
        Ok(Val::Float(r))
    } else {
        Err(StaticError::Overflow)
    }
}

/// `-v` on a compile-time value.
pub(crate) fn static_neg<'p>(v: &Val<'p>) -> Result<Val<'p>, StaticError> {
    match v {
        Val::Int(x) => x.checked_neg().map(Val::Int).ok_or(StaticError::Overflow),
        Val::Float(x) => Ok(Val::Float(-x)),
        Val::List(xs) => Ok(Val::List(
            xs.iter().map(static_neg).collect::<Result<_, _>>()?,
        )),
        _ => Err(StaticError::BadOperands),
    }
}

/// A numeric array as its shape and row-major values, or `None` if it is ragged or holds
/// something other than numbers.
pub(crate) fn numeric_array(v: &Val<'_>) -> Option<(Vec<u64>, Vec<f64>)> {
    match v {
        Val::List(items) => {
            let mut inner: Option<Vec<u64>> = None;
            let mut data = Vec::new();
            for it in items {
                let (shape, vals) = match it.as_f64() {
                    Some(x) => (Vec::new(), vec![x]),
                    None => numeric_array(it)?,
                };
                match &inner {
                    None => inner = Some(shape),
                    Some(s) if *s == shape => {}
                    Some(_) => return None,
                }
                data.extend(vals);
            }
            let mut shape = vec![u64::try_from(items.len()).ok()?];
            shape.extend(inner.unwrap_or_default());
            Some((shape, data))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_division_stays_integer_when_exact() {
        assert!(matches!(
            static_binary(BinOp::Div, &Val::Int(6), &Val::Int(3)),
            Ok(Val::Int(2))
        ));
        assert!(matches!(
            static_binary(BinOp::Div, &Val::Int(7), &Val::Int(2)),
            Ok(Val::Float(_))
        ));
        assert_eq!(
            static_binary(BinOp::Div, &Val::Int(7), &Val::Int(0)).err(),
            Some(StaticError::DivisionByZero)
        );
        assert_eq!(
            static_binary(BinOp::Mul, &Val::Int(i64::MAX), &Val::Int(2)).err(),
            Some(StaticError::Overflow)
        );
        assert!(matches!(
            static_binary(BinOp::Pow, &Val::Int(2), &Val::Int(3)),
            Ok(Val::Int(8))
        ));
    }

    #[test]
    fn arrays_divide_elementwise() {
        let a = Val::List(vec![
            Val::List(vec![Val::Int(1), Val::Int(2)]),
            Val::List(vec![Val::Int(3), Val::Int(4)]),
        ]);
        let r = static_binary(BinOp::Div, &a, &Val::Int(2));
        let (shape, data) = r.ok().and_then(|v| numeric_array(&v)).unwrap_or_default();
        assert_eq!(shape, vec![2, 2]);
        assert_eq!(data, vec![0.5, 1.0, 1.5, 2.0]);
    }

    #[test]
    fn ragged_arrays_are_rejected() {
        let a = Val::List(vec![
            Val::List(vec![Val::Int(1)]),
            Val::List(vec![Val::Int(3), Val::Int(4)]),
        ]);
        assert!(numeric_array(&a).is_none());
    }
}
