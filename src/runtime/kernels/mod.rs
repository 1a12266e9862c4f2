//! The reference implementations of the IR's ops, one function per op (or per family of
//! ops that share a formula), over ndarray views.
//!
//! These are the semantics of the ops, written for clarity: each function documents its
//! formula, and its unit tests check it against values computed by hand. The interpreter
//! ([`super::interp`]) only gathers arguments and calls them.
//!
//! | family | module |
//! |---|---|
//! | convolution, pooling, LRN, batch norm | [`spatial`] |
//! | dense, matmul, embedding | [`linear`] |
//! | elementwise arithmetic, activations, fills | [`elementwise`] |
//! | softmax, reductions, losses | [`reduce`] |
//! | flatten, reshape, concat, slice, stack | [`layout`] |
//!
//! Floats are `f32`; long sums (averages, softmax denominators, reductions) accumulate in
//! `f64` and round once. Integers are `i64` with wrapping arithmetic.

pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod reduce;
pub mod spatial;

/// Why a kernel could not compute its result.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelError {
    /// An integer index (a token id, a class label) lies outside `0..limit`.
    OutOfRange {
        /// What the index is (`token id`, `label`).
        what: &'static str,
        /// The index found.
        index: i64,
        /// The number of valid indices.
        limit: usize,
    },
    /// An integer division by zero.
    DivideByZero,
    /// The arguments do not have the shapes or types the op needs. Shape inference rules
    /// this out, so this is a bug in netc (or hand-built IR).
    Shape(String),
}

/// A [`KernelError::Shape`] saying `what` and showing the shapes involved.
pub(crate) fn shape_error(what: &str, shapes: &[&[usize]]) -> KernelError {
    let shapes: Vec<String> = shapes
        .iter()
        .map(|s| super::tensor::shape_string(s))
        .collect();
    KernelError::Shape(format!("{what} (shapes {})", shapes.join(", ")))
}
