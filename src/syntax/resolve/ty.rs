//! The small type system of name resolution: what kind of thing an expression is (a
//! compile-time value, a tensor, a layer, a cell, …), and the evaluation of compile-time
//! arithmetic whose operands are known (literals, constants, a net's defaulted parameters).

use crate::syntax::ast::{BinOp, UnOp};

/// A compile-time value whose contents are known.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Val {
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A string.
    Str(String),
    /// A bare symbol such as `same`.
    Sym(String),
    /// An array of values.
    Array(Vec<Val>),
}

/// The type of a compile-time value whose contents may be unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SType {
    /// Some compile-time value (an untyped block parameter).
    Any,
    /// An integer.
    Int,
    /// A real number.
    Float,
    /// An integer or a real (the quotient of two unknown integers).
    Num,
    /// A boolean.
    Bool,
    /// A string.
    Str,
    /// A symbol.
    Sym,
    /// An array.
    Array,
}

/// What an expression is.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ty {
    /// Unknown because of an error already reported: nothing more is said about it.
    Unknown,
    /// A compile-time value known now.
    Known(Val),
    /// A compile-time value known only when the enclosing block is instantiated.
    Static(SType),
    /// A tensor computed by the network.
    Tensor,
    /// The final state of a recurrence (`emit: state`); tensor-like.
    State,
    /// A function of the value flowing in: a built-in layer, a block call, a branch, a
    /// `repeat`; `state` says whether applying it gives a recurrent state.
    Layer {
        /// Whether it produces a recurrent state rather than a tensor.
        state: bool,
    },
    /// A cell applied to its arguments: only `unroll`'s argument.
    Cell,
}

impl Val {
    /// The type of the value.
    pub(super) fn sty(&self) -> SType {
        match self {
            Val::Int(_) => SType::Int,
            Val::Float(_) => SType::Float,
            Val::Bool(_) => SType::Bool,
            Val::Str(_) => SType::Str,
            Val::Sym(_) => SType::Sym,
            Val::Array(_) => SType::Array,
        }
    }

    /// Whether the value is a number, or an array (of any depth) of numbers.
    pub(super) fn is_numeric(&self) -> bool {
        match self {
            Val::Int(_) | Val::Float(_) => true,
            Val::Array(xs) => xs.iter().all(Val::is_numeric),
            _ => false,
        }
    }

    /// The shape of a rectangular array (`[]` for a scalar), or `None` when ragged.
    pub(super) fn shape(&self) -> Option<Vec<usize>> {
        match self {
            Val::Array(xs) => {
                let mut inner: Option<Vec<usize>> = None;
                for x in xs {
                    let s = x.shape()?;
                    match &inner {
                        None => inner = Some(s),
                        Some(prev) if *prev != s => return None,
                        Some(_) => {}
                    }
                }
                let mut out = vec![xs.len()];
                out.extend(inner.unwrap_or_default());
                Some(out)
            }
            _ => Some(Vec::new()),
        }
    }

    /// The value as written in source (short arrays in full, long ones elided).
    pub(super) fn show(&self) -> String {
        match self {
            Val::Int(v) => v.to_string(),
            Val::Float(v) => format!("{v:?}"),
            Val::Bool(b) => b.to_string(),
            Val::Str(s) => format!("{s:?}"),
            Val::Sym(s) => s.clone(),
            Val::Array(xs) if xs.len() <= 4 => {
                let parts: Vec<String> = xs.iter().map(Val::show).collect();
                format!("[{}]", parts.join(", "))
            }
            Val::Array(_) => "[…]".into(),
        }
    }
}

impl SType {
    /// How the type is named in messages.
    pub(super) fn describe(self) -> &'static str {
        match self {
            SType::Any => "a compile-time value",
            SType::Int => "an integer",
            SType::Float | SType::Num => "a number",
            SType::Bool => "a boolean",
            SType::Str => "a string",
            SType::Sym => "a symbol",
            SType::Array => "an array",
        }
    }

    fn is_number(self) -> bool {
        matches!(self, SType::Int | SType::Float | SType::Num | SType::Any)
    }
}

impl Ty {
    /// An integer whose value is not known yet.
    pub(super) const INT: Ty = Ty::Static(SType::Int);

    /// The compile-time type, for compile-time values.
    pub(super) fn sty(&self) -> Option<SType> {
        match self {
            Ty::Known(v) => Some(v.sty()),
            Ty::Static(s) => Some(*s),
            _ => None,
        }
    }

    /// Whether this is a compile-time value.
    pub(super) fn is_static(&self) -> bool {
        self.sty().is_some()
    }

    /// Whether this is a tensor or a recurrent state.
    pub(super) fn is_tensor(&self) -> bool {
        matches!(self, Ty::Tensor | Ty::State)
    }

    /// The known value.
    pub(super) fn known(&self) -> Option<&Val> {
        match self {
            Ty::Known(v) => Some(v),
            _ => None,
        }
    }

    /// How the thing is named in messages: "a tensor", "the integer `6`", …
    pub(super) fn describe(&self) -> String {
        match self {
            Ty::Unknown => "an unknown value".into(),
            Ty::Known(Val::Int(v)) => format!("the integer `{v}`"),
            Ty::Known(Val::Float(v)) => format!("the number `{v:?}`"),
            Ty::Known(Val::Bool(b)) => format!("the boolean `{b}`"),
            Ty::Known(Val::Str(s)) => format!("the string {s:?}"),
            Ty::Known(Val::Sym(s)) => format!("the symbol `{s}`"),
            Ty::Known(v @ Val::Array(_)) => format!("the array `{}`", v.show()),
            Ty::Static(s) => s.describe().into(),
            Ty::Tensor => "a tensor".into(),
            Ty::State => "a recurrent state".into(),
            Ty::Layer { .. } => "a layer".into(),
            Ty::Cell => "a cell".into(),
        }
    }

    /// The type of an `if` whose branches have types `self` and `other`.
    pub(super) fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (Ty::Unknown, t) | (t, Ty::Unknown) => t,
            (a, b) if a == b => a,
            (a, b) if a.is_tensor() && b.is_tensor() => Ty::Tensor,
            (Ty::Layer { state: a }, Ty::Layer { state: b }) => Ty::Layer { state: a && b },
            (a, b) => match (a.sty(), b.sty()) {
                (Some(x), Some(y)) if x == y => Ty::Static(x),
                (Some(x), Some(y)) if x.is_number() && y.is_number() => Ty::Static(SType::Num),
                (Some(_), Some(_)) => Ty::Static(SType::Any),
                _ => Ty::Unknown,
            },
        }
    }
}

/// Why an operator cannot be applied.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum OpError {
    /// The operand on this side is not accepted; `need` says what is.
    Operand {
        /// Which operand: false for the left (or only) one.
        right: bool,
        /// What the operator needs, in words.
        need: &'static str,
    },
    /// Known operands, but the arithmetic fails.
    Arith(ArithError),
}

/// A failure of compile-time arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArithError {
    /// Division or remainder by zero.
    DivByZero,
    /// The result does not fit (64-bit integers) or is not finite (reals).
    Overflow,
    /// An integer raised to a negative power.
    NegativeExponent,
}

const NEED_VALUE: &str = "tensors or numbers";
const NEED_STATIC: &str = "compile-time values";
const NEED_BOOL: &str = "compile-time booleans";
const NEED_NUMBER: &str = "compile-time numbers";

/// Whether `t` may be an operand at all (layers, cells, strings and symbols may not, except
/// in `==` and `!=`).
fn operand_ok(t: &Ty, op: Option<BinOp>) -> bool {
    let eq = matches!(op, Some(BinOp::Eq | BinOp::Ne));
    match t {
        Ty::Layer { .. } | Ty::Cell => false,
        Ty::Known(Val::Str(_) | Val::Sym(_)) | Ty::Static(SType::Str | SType::Sym) => eq,
        _ => true,
    }
}

/// The type of `lhs op rhs`, evaluating it when both operands are known.
pub(super) fn binary(op: BinOp, lhs: &Ty, rhs: &Ty) -> Result<Ty, OpError> {
    let need = match op {
        BinOp::Or | BinOp::And => NEED_BOOL,
        BinOp::Eq | BinOp::Ne => NEED_STATIC,
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => NEED_NUMBER,
        _ => NEED_VALUE,
    };
    for (right, t) in [(false, lhs), (true, rhs)] {
        if !operand_ok(t, Some(op)) {
            return Err(OpError::Operand { right, need });
        }
    }
    if matches!((lhs, rhs), (Ty::Unknown, _) | (_, Ty::Unknown)) {
        return Ok(Ty::Unknown);
    }
    match op {
        BinOp::Or | BinOp::And => {
            for (right, t) in [(false, lhs), (true, rhs)] {
                if !matches!(t.sty(), Some(SType::Bool | SType::Any)) {
                    return Err(OpError::Operand { right, need });
                }
            }
            Ok(match (lhs.known(), rhs.known()) {
                (Some(Val::Bool(a)), Some(Val::Bool(b))) => {
                    Ty::Known(Val::Bool(if op == BinOp::Or { *a || *b } else { *a && *b }))
                }
                _ => Ty::Static(SType::Bool),
            })
        }
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ordered = !matches!(op, BinOp::Eq | BinOp::Ne);
            for (right, t) in [(false, lhs), (true, rhs)] {
                let ok = match t.sty() {
                    None => false,
                    Some(s) => !ordered || s.is_number(),
                };
                if !ok {
                    return Err(OpError::Operand { right, need });
                }
            }
            Ok(match (lhs.known(), rhs.known()) {
                (Some(a), Some(b)) => compare(op, a, b)
                    .map(|r| Ty::Known(Val::Bool(r)))
                    .unwrap_or(Ty::Static(SType::Bool)),
                _ => Ty::Static(SType::Bool),
            })
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::Pow => {
            for (right, t) in [(false, lhs), (true, rhs)] {
                if matches!(t.sty(), Some(SType::Bool)) {
                    return Err(OpError::Operand { right, need });
                }
            }
            if lhs.is_tensor() || rhs.is_tensor() {
                return Ok(Ty::Tensor);
            }
            match (lhs.known(), rhs.known()) {
                (Some(a), Some(b)) => match elementwise(op, a, b) {
                    Some(r) => r.map(Ty::Known).map_err(OpError::Arith),
                    None => Ok(Ty::Static(SType::Array)),
                },
                _ => typed_arith(op, lhs, rhs),
            }
        }
    }
}

/// The type of arithmetic with a value not known yet; still catches `x / 0` and `n ^ -1`.
fn typed_arith(op: BinOp, lhs: &Ty, rhs: &Ty) -> Result<Ty, OpError> {
    let (l, r) = (
        lhs.sty().unwrap_or(SType::Any),
        rhs.sty().unwrap_or(SType::Any),
    );
    match (op, rhs.known()) {
        (BinOp::Div | BinOp::Rem, Some(Val::Int(0))) => {
            return Err(OpError::Arith(ArithError::DivByZero))
        }
        (BinOp::Div | BinOp::Rem, Some(Val::Float(f))) if *f == 0.0 => {
            return Err(OpError::Arith(ArithError::DivByZero))
        }
        (BinOp::Pow, Some(Val::Int(e))) if *e < 0 && l == SType::Int => {
            return Err(OpError::Arith(ArithError::NegativeExponent))
        }
        _ => {}
    }
    Ok(Ty::Static(match (l, r) {
        (SType::Array, _) | (_, SType::Array) => SType::Array,
        (SType::Any, _) | (_, SType::Any) => SType::Any,
        (SType::Int, SType::Int) if op != BinOp::Div => SType::Int,
        (SType::Float, _) | (_, SType::Float) => SType::Float,
        _ => SType::Num,
    }))
}

/// The type of `op operand`.
pub(super) fn unary(op: UnOp, t: &Ty) -> Result<Ty, OpError> {
    let need = match op {
        UnOp::Neg => NEED_VALUE,
        UnOp::Not => NEED_BOOL,
    };
    if !operand_ok(t, None) {
        return Err(OpError::Operand { right: false, need });
    }
    match (op, t) {
        (_, Ty::Unknown) => Ok(Ty::Unknown),
        (UnOp::Neg, t) if t.is_tensor() => Ok(Ty::Tensor),
        (UnOp::Neg, Ty::Known(v)) => match elementwise(BinOp::Sub, &Val::Int(0), v) {
            Some(r) => r.map(Ty::Known).map_err(OpError::Arith),
            None => Ok(Ty::Static(SType::Array)),
        },
        (UnOp::Neg, Ty::Static(s)) if *s != SType::Bool => Ok(Ty::Static(*s)),
        (UnOp::Not, Ty::Known(Val::Bool(b))) => Ok(Ty::Known(Val::Bool(!b))),
        (UnOp::Not, Ty::Static(SType::Bool | SType::Any)) => Ok(Ty::Static(SType::Bool)),
        _ => Err(OpError::Operand { right: false, need }),
    }
}

fn compare(op: BinOp, a: &Val, b: &Val) -> Option<bool> {
    let ord = match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.partial_cmp(y),
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            as_f64(a).partial_cmp(&as_f64(b))
        }
        _ => {
            return match op {
                BinOp::Eq => Some(a == b),
                BinOp::Ne => Some(a != b),
                _ => None,
            }
        }
    }?;
    Some(match op {
        BinOp::Eq => ord.is_eq(),
        BinOp::Ne => ord.is_ne(),
        BinOp::Lt => ord.is_lt(),
        BinOp::Le => ord.is_le(),
        BinOp::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    })
}

fn as_f64(v: &Val) -> f64 {
    match v {
        Val::Int(i) => *i as f64,
        Val::Float(f) => *f,
        _ => f64::NAN,
    }
}

/// Arithmetic on known values, elementwise over arrays (an array with a scalar, or two arrays
/// of one shape). `None` when the operands do not combine (arrays of different lengths).
fn elementwise(op: BinOp, a: &Val, b: &Val) -> Option<Result<Val, ArithError>> {
    match (a, b) {
        (Val::Array(xs), Val::Array(ys)) => {
            if xs.len() != ys.len() {
                return None;
            }
            collect(xs.iter().zip(ys).map(|(x, y)| elementwise(op, x, y)))
        }
        (Val::Array(xs), y) => collect(xs.iter().map(|x| elementwise(op, x, y))),
        (x, Val::Array(ys)) => collect(ys.iter().map(|y| elementwise(op, x, y))),
        (x, y) => Some(scalar(op, x, y)),
    }
}

fn collect(
    it: impl Iterator<Item = Option<Result<Val, ArithError>>>,
) -> Option<Result<Val, ArithError>> {
    let mut out = Vec::new();
    for r in it {
        match r? {
            Ok(v) => out.push(v),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(Val::Array(out)))
}

fn scalar(op: BinOp, a: &Val, b: &Val) -> Result<Val, ArithError> {
    if let (Val::Int(x), Val::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div | BinOp::Rem if y == 0 => return Err(ArithError::DivByZero),
            BinOp::Div if x % y != 0 => return Ok(Val::Float(x as f64 / y as f64)),
            BinOp::Div => x.checked_div(y),
            BinOp::Rem => x.checked_rem(y),
            _ if y < 0 => return Err(ArithError::NegativeExponent),
            _ => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
        };
        return r.map(Val::Int).ok_or(ArithError::Overflow);
    }
    let (x, y) = (as_f64(a), as_f64(b));
    if matches!(op, BinOp::Div | BinOp::Rem) && y == 0.0 {
        return Err(ArithError::DivByZero);
    }
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Rem => x % y,
        _ => x.powf(y),
    };
    if r.is_finite() {
        Ok(Val::Float(r))
    } else {
        Err(ArithError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_arithmetic_is_checked() {
        let k = |v| Ty::Known(Val::Int(v));
        assert_eq!(binary(BinOp::Mul, &k(64), &k(2)), Ok(k(128)));
        assert_eq!(binary(BinOp::Div, &k(6), &k(2)), Ok(k(3)));
        assert_eq!(
            binary(BinOp::Div, &k(1), &k(2)),
            Ok(Ty::Known(Val::Float(0.5)))
        );
        assert_eq!(
            binary(BinOp::Div, &k(1), &k(0)),
            Err(OpError::Arith(ArithError::DivByZero))
        );
        assert_eq!(
            binary(BinOp::Pow, &k(2), &k(64)),
            Err(OpError::Arith(ArithError::Overflow))
        );
        assert_eq!(
            binary(BinOp::Pow, &k(2), &k(-1)),
            Err(OpError::Arith(ArithError::NegativeExponent))
        );
        assert_eq!(binary(BinOp::Pow, &Ty::INT, &k(2)), Ok(Ty::INT));
    }

    #[test]
    fn arrays_combine_with_scalars() {
        let a = Ty::Known(Val::Array(vec![Val::Int(3), Val::Int(6)]));
        let r = binary(BinOp::Div, &a, &Ty::Known(Val::Int(3)));
        assert_eq!(r, Ok(Ty::Known(Val::Array(vec![Val::Int(1), Val::Int(2)]))));
        assert_eq!(binary(BinOp::Add, &Ty::Tensor, &a), Ok(Ty::Tensor));
    }

    #[test]
    fn layers_and_tensors_in_the_wrong_place_are_rejected() {
        let layer = Ty::Layer { state: false };
        assert!(matches!(
            binary(BinOp::Add, &layer, &Ty::Known(Val::Int(1))),
            Err(OpError::Operand { right: false, .. })
        ));
        assert!(matches!(
            binary(BinOp::And, &Ty::Known(Val::Bool(true)), &Ty::Tensor),
            Err(OpError::Operand { right: true, .. })
        ));
        assert_eq!(
            binary(BinOp::Ne, &Ty::INT, &Ty::Static(SType::Any)),
            Ok(Ty::Static(SType::Bool))
        );
    }

    #[test]
    fn ragged_arrays_have_no_shape() {
        let row = |n: usize| Val::Array(vec![Val::Int(0); n]);
        assert_eq!(Val::Array(vec![row(3), row(3)]).shape(), Some(vec![2, 3]));
        assert_eq!(Val::Array(vec![row(3), row(2)]).shape(), None);
    }
}
