//! Tensor types of the IR: element types, dimensions that are either known numbers or
//! polynomials over symbolic names (`N`, `T`, `H*W`), and shapes.
//!
//! A symbolic dimension is a [`Poly`]: a sum of integer multiples of products of symbol
//! names. Polynomials are closed under the `+`, `-` and `*` that shape rules need (a
//! flatten of `[N, C, H, W]` gives `C*H*W`; a valid 3x3 convolution at stride 1 over `H`
//! gives `H-2`); a rule that would need a division or a rounding of a symbolic size (a
//! strided convolution over a symbolic height) reports an error instead of inventing a new
//! symbol. All arithmetic is checked: an overflow is `None`, which the rules turn into a
//! size-overflow error.

use std::collections::BTreeMap;
use std::fmt;

/// Element types of tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 16-bit float.
    F16,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// Boolean.
    Bool,
}

impl DType {
    /// The name as written in source and in the IR dump.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// Whether this is an integer type.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }
}

/// A product of symbol names (sorted, with repetition for powers); empty for the constant
/// term.
pub type Monomial = Vec<String>;

/// A polynomial over symbolic dimensions with `i64` coefficients. Invariant: no stored
/// coefficient is zero, so equal polynomials compare equal structurally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Poly {
    terms: BTreeMap<Monomial, i64>,
}

impl Poly {
    /// The constant `c`.
    pub fn constant(c: i64) -> Poly {
        let mut terms = BTreeMap::new();
        if c != 0 {
            terms.insert(Vec::new(), c);
        }
        Poly { terms }
    }

    /// Zero.
    pub fn zero() -> Poly {
        Poly::default()
    }

    /// The symbol `name`.
    pub fn symbol(name: &str) -> Poly {
        let mut terms = BTreeMap::new();
        terms.insert(vec![name.to_string()], 1);
        Poly { terms }
    }

    /// The value, when the polynomial has no symbols.
    pub fn as_const(&self) -> Option<i64> {
        match self.terms.len() {
            0 => Some(0),
            1 => self.terms.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// Whether the polynomial is zero.
    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }

    /// The symbols it mentions, sorted and without repetition.
    pub fn symbols(&self) -> Vec<String> {
        let mut out: Vec<String> = self.terms.keys().flatten().cloned().collect();
        out.sort();
        out.dedup();
        out
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(&self, other: &Poly) -> Option<Poly> {
        let mut terms = self.terms.clone();
        for (m, c) in &other.terms {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.checked_add(*c)?;
            if *e == 0 {
                terms.remove(m);
            }
        }
        Some(Poly { terms })
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(&self, other: &Poly) -> Option<Poly> {
        self.checked_add(&other.checked_scale(-1)?)
    }

    /// `self * k`, or `None` on overflow.
    pub fn checked_scale(&self, k: i64) -> Option<Poly> {
        let mut terms = BTreeMap::new();
        if k != 0 {
            for (m, c) in &self.terms {
                terms.insert(m.clone(), c.checked_mul(k)?);
            }
        }
        Some(Poly { terms })
    }

    /// `self * other`, or `None` on overflow.
    pub fn checked_mul(&self, other: &Poly) -> Option<Poly> {
        let mut out = Poly::zero();
        for (ma, ca) in &self.terms {
            for (mb, cb) in &other.terms {
                let mut m: Monomial = ma.iter().chain(mb.iter()).cloned().collect();
                m.sort();
                let mut term = BTreeMap::new();
                term.insert(m, ca.checked_mul(*cb)?);
                out = out.checked_add(&Poly { terms: term })?;
            }
        }
        Some(out)
    }

    /// Substitutes `value` for the symbol `name`, or `None` on overflow.
    pub fn substitute(&self, name: &str, value: i64) -> Option<Poly> {
        let mut out = Poly::zero();
        for (m, c) in &self.terms {
            let mut coeff = *c;
            let mut rest = Vec::new();
            for s in m {
                if s == name {
                    coeff = coeff.checked_mul(value)?;
                } else {
                    rest.push(s.clone());
                }
            }
            let mut term = BTreeMap::new();
            if coeff != 0 {
                term.insert(rest, coeff);
            }
            out = out.checked_add(&Poly { terms: term })?;
        }
        Some(out)
    }
}

impl fmt::Display for Poly {
    /// Terms by falling degree, then by name; the constant last: `394240*T+1000`, `H-2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("0");
        }
        let mut terms: Vec<(&Monomial, &i64)> = self.terms.iter().collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(b.0)));
        for (i, (m, c)) in terms.into_iter().enumerate() {
            let c = *c;
            if i > 0 {
                f.write_str(if c < 0 { "-" } else { "+" })?;
            } else if c < 0 {
                f.write_str("-")?;
            }
            let abs = c.unsigned_abs();
            if m.is_empty() {
                write!(f, "{abs}")?;
            } else {
                if abs != 1 {
                    write!(f, "{abs}*")?;
                }
                f.write_str(&m.join("*"))?;
            }
        }
        Ok(())
    }
}

/// One dimension of a shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// A size known at compile time.
    Known(u64),
    /// A size depending on symbolic names. Invariant: never a constant polynomial (those
    /// are [`Dim::Known`]).
    Sym(Poly),
}

impl Dim {
    /// The symbolic dimension `name`.
    pub fn sym(name: &str) -> Dim {
        Dim::Sym(Poly::symbol(name))
    }

    /// The dimension of a polynomial: known when constant and not negative; `None` for a
    /// negative constant.
    pub fn from_poly(p: Poly) -> Option<Dim> {
        match p.as_const() {
            Some(c) => u64::try_from(c).ok().map(Dim::Known),
            None => Some(Dim::Sym(p)),
        }
    }

    /// The size, when known.
    pub fn known(&self) -> Option<u64> {
        match self {
            Dim::Known(k) => Some(*k),
            Dim::Sym(_) => None,
        }
    }

    /// The dimension as a polynomial, or `None` if a known size does not fit in `i64`.
    pub fn to_poly(&self) -> Option<Poly> {
        match self {
            Dim::Known(k) => i64::try_from(*k).ok().map(Poly::constant),
            Dim::Sym(p) => Some(p.clone()),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(k) => write!(f, "{k}"),
            Dim::Sym(p) => write!(f, "{p}"),
        }
    }
}

/// A list of dimensions, outermost first (NCHW for images, `[N, T, F]` for sequences).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dimensions.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// Product of all dimensions, or `None` on overflow.
    pub fn elements(&self) -> Option<Poly> {
        product(&self.0)
    }

    /// Product of the dimensions after axis 0 (the batch): the elements of one example.
    /// A scalar counts as one element.
    pub fn elements_per_example(&self) -> Option<Poly> {
        product(self.0.get(1..).unwrap_or(&[]))
    }

    /// `axis` counted from the end when negative, checked against the rank.
    pub fn axis(&self, axis: i64) -> Option<usize> {
        normalize_axis(axis, self.rank())
    }
}

/// `axis` counted from the end when negative, checked against `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let rank_i = i64::try_from(rank).ok()?;
    let a = if axis < 0 {
        axis.checked_add(rank_i)?
    } else {
        axis
    };
    if (0..rank_i).contains(&a) {
        usize::try_from(a).ok()
    } else {
        None
    }
}

/// Product of dimensions, or `None` on overflow.
pub fn product(dims: &[Dim]) -> Option<Poly> {
    let mut p = Poly::constant(1);
    for d in dims {
        p = p.checked_mul(&d.to_poly()?)?;
    }
    Some(p)
}

impl fmt::Display for Shape {
    /// `[N,6,28,28]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The type of a tensor value: element type and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
}

impl TensorType {
    /// A type from its parts.
    pub fn new(dtype: DType, dims: Vec<Dim>) -> TensorType {
        TensorType {
            dtype,
            shape: Shape(dims),
        }
    }

    /// Bytes of one example (elements after the batch axis times the element size), or
    /// `None` on overflow.
    pub fn bytes_per_example(&self) -> Option<Poly> {
        let k = i64::try_from(self.dtype.size_bytes()).ok()?;
        self.shape.elements_per_example()?.checked_scale(k)
    }
}

impl fmt::Display for TensorType {
    /// `f32[N,6,28,28]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype.as_str(), self.shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomials_print_by_degree() {
        let t = Poly::symbol("T");
        let p = t
            .checked_scale(394_240)
            .and_then(|p| p.checked_add(&Poly::constant(1000)));
        assert_eq!(p.map(|p| p.to_string()), Some("394240*T+1000".to_string()));
        let h = Poly::symbol("H").checked_sub(&Poly::constant(2));
        assert_eq!(h.map(|p| p.to_string()), Some("H-2".to_string()));
        let hw = Poly::symbol("W").checked_mul(&Poly::symbol("H"));
        assert_eq!(hw.map(|p| p.to_string()), Some("H*W".to_string()));
    }

    #[test]
    fn overflow_is_none() {
        let big = Poly::constant(i64::MAX);
        assert!(big.checked_add(&Poly::constant(1)).is_none());
        assert!(big.checked_mul(&Poly::constant(2)).is_none());
    }

    #[test]
    fn cancelling_terms_vanish() {
        let t = Poly::symbol("T");
        let z = t.checked_sub(&t);
        assert_eq!(z.map(|z| z.is_zero()), Some(true));
        assert_eq!(Dim::from_poly(Poly::constant(5)), Some(Dim::Known(5)));
        assert_eq!(Dim::from_poly(Poly::constant(-1)), None);
    }

    #[test]
    fn substitution_folds() {
        let p = Poly::symbol("N").checked_mul(&Poly::symbol("T"));
        let q = p.and_then(|p| p.substitute("N", 8));
        assert_eq!(q.map(|q| q.to_string()), Some("8*T".to_string()));
    }
}
