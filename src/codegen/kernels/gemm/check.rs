//! The checks the safe entry points make before any unsafe code runs: that the shapes
//! agree and that every element reachable from an operand's extents and strides lies
//! inside its slice; and the conversion of checked operands into the driver's raw form.

use super::driver::{BSrc, Problem, RawOp};
use super::pack::PackedB;
use super::{FusedOp, Isa, MatMut, MatRef};
use std::fmt;

/// Which operand an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The left factor, `m×k`.
    A,
    /// The right factor, `k×n` (strided or packed).
    B,
    /// The output, `m×n`.
    C,
    /// The operand of the fused operation with this index in the list.
    Op(usize),
}

/// Why a checked multiplication was refused; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmError {
    /// An operand's shape disagrees with the others (`m`, `n`, `k` come from A and B).
    Shape {
        /// The operand.
        operand: Operand,
        /// Its `(rows, cols)` (a vector is `(len, 1)`).
        found: (usize, usize),
        /// The `(rows, cols)` the other operands require.
        expected: (usize, usize),
    },
    /// An element the operand's extents and strides reach lies past the slice's end.
    OutOfBounds {
        /// The operand.
        operand: Operand,
        /// The largest index reached, plus one.
        needed: u128,
        /// The slice's length.
        len: usize,
    },
    /// An element the operand's extents and strides reach lies before the slice's start
    /// (a negative stride with more than one row or column).
    NegativeOffset {
        /// The operand.
        operand: Operand,
    },
    /// The machine cannot run the requested kernels.
    Unsupported(Isa),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::A => write!(f, "A"),
            Operand::B => write!(f, "B"),
            Operand::C => write!(f, "C"),
            Operand::Op(i) => write!(f, "fused op #{i}"),
        }
    }
}

impl fmt::Display for GemmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GemmError::Shape {
                operand,
                found,
                expected,
            } => write!(
                f,
                "gemm: {operand} is {}x{}, expected {}x{}",
                found.0, found.1, expected.0, expected.1
            ),
            GemmError::OutOfBounds {
                operand,
                needed,
                len,
            } => write!(
                f,
                "gemm: {operand} reaches element {} of a slice of {len}",
                needed - 1
            ),
            GemmError::NegativeOffset { operand } => {
                write!(f, "gemm: {operand}'s strides reach before its slice")
            }
            GemmError::Unsupported(isa) => write!(f, "gemm: this CPU cannot run {isa:?} kernels"),
        }
    }
}

impl std::error::Error for GemmError {}

/// Checks that every element of `x` lies inside `x.data`.
pub(crate) fn in_bounds(x: &MatRef, operand: Operand) -> Result<(), GemmError> {
    span_in_bounds(x.rows, x.cols, x.rs, x.cs, x.data.len(), operand)
}

/// Checks that every `i·rs + j·cs` for `i < rows`, `j < cols` lies in `0..len` (in exact
/// arithmetic, so no overflow can hide an access; an empty matrix reaches nothing).
fn span_in_bounds(
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    len: usize,
    operand: Operand,
) -> Result<(), GemmError> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    // |extent·stride| < 2^64·2^63, so each product and their sum fit in i128.
    let term = |extent: usize, stride: isize| (extent as i128 - 1) * stride as i128;
    let (r, c) = (term(rows, rs), term(cols, cs));
    if r.min(0) + c.min(0) < 0 {
        return Err(GemmError::NegativeOffset { operand });
    }
    let needed = (r + c + 1) as u128;
    if needed > len as u128 {
        return Err(GemmError::OutOfBounds {
            operand,
            needed,
            len,
        });
    }
    Ok(())
}

/// Checks one operand's shape against what the others require.
fn shape(
    operand: Operand,
    found: (usize, usize),
    expected: (usize, usize),
) -> Result<(), GemmError> {
    if found == expected {
        Ok(())
    } else {
        Err(GemmError::Shape {
            operand,
            found,
            expected,
        })
    }
}

/// The B operand of a checked call.
pub(crate) enum BOperand<'a> {
    /// A strided matrix.
    Strided(MatRef<'a>),
    /// A pre-packed one.
    Packed(&'a PackedB),
}

/// Checks a whole call and returns it in the driver's raw form (with no epilogue yet: the
/// caller attaches [`raw_ops`]). The raw pointers are valid as long as the borrows passed
/// in are.
pub(crate) fn checked_problem(
    a: MatRef,
    b: BOperand,
    c: MatMut,
    ops: &[FusedOp],
    accumulate: bool,
) -> Result<Problem<'static>, GemmError> {
    let (m, k) = (a.rows, a.cols);
    in_bounds(&a, Operand::A)?;
    let (n, b_src) = match b {
        BOperand::Strided(b) => {
            shape(Operand::B, (b.rows, b.cols), (k, b.cols))?;
            in_bounds(&b, Operand::B)?;
            (
                b.cols,
                BSrc::Strided {
                    p: b.data.as_ptr(),
                    rs: b.rs,
                    cs: b.cs,
                },
            )
        }
        BOperand::Packed(b) => {
            shape(Operand::B, (b.k(), b.n()), (k, b.n()))?;
            let (p, npad) = b.raw();
            (b.n(), BSrc::Packed { p, npad })
        }
    };
    shape(Operand::C, (c.rows, c.cols), (m, n))?;
    span_in_bounds(c.rows, c.cols, c.rs, c.cs, c.data.len(), Operand::C)?;
    for (i, op) in ops.iter().enumerate() {
        let operand = Operand::Op(i);
        match op {
            FusedOp::PerColAdd(v) => shape(operand, (v.len(), 1), (n, 1))?,
            FusedOp::PerRowAdd(v) => shape(operand, (v.len(), 1), (m, 1))?,
            FusedOp::AddC(r) => {
                shape(operand, (r.rows, r.cols), (m, n))?;
                in_bounds(r, operand)?;
            }
            FusedOp::ScalarMul(_) | FusedOp::Relu => {}
        }
    }
    Ok(Problem {
        m,
        n,
        k,
        a: a.data.as_ptr(),
        rsa: a.rs,
        csa: a.cs,
        b: b_src,
        c: c.data.as_mut_ptr(),
        rsc: c.rs,
        csc: c.cs,
        ops: &[],
        accumulate,
    })
}

/// The epilogue with raw pointers (valid as long as `ops` is borrowed).
pub(crate) fn raw_ops(ops: &[FusedOp]) -> Vec<RawOp> {
    ops.iter()
        .map(|op| match *op {
            FusedOp::PerColAdd(v) => RawOp::PerColAdd(v.as_ptr()),
            FusedOp::PerRowAdd(v) => RawOp::PerRowAdd(v.as_ptr()),
            FusedOp::ScalarMul(s) => RawOp::ScalarMul(s),
            FusedOp::AddC(r) => RawOp::AddC {
                p: r.data.as_ptr(),
                rs: r.rs,
                cs: r.cs,
            },
            FusedOp::Relu => RawOp::Relu,
        })
        .collect()
}
