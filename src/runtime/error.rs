//! What can go wrong when running a net, as structured errors holding names, shapes and
//! spans; [`RunError::diagnostic`] is the one place they become diagnostics.

use super::kernels::KernelError;
use super::tensor::shape_string;
use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::shape::{DType, Shape};

/// Why the interpreter could not run a net on the given inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    /// A declared net input was not given.
    MissingInput {
        /// The input's name.
        name: String,
        /// Its declaration.
        span: Span,
    },
    /// A value was given under a name that is not an input of the net.
    UnknownInput {
        /// The name given.
        name: String,
        /// The net's inputs, in declaration order.
        inputs: Vec<String>,
        /// The net's declaration.
        net: Span,
    },
    /// An input has another element type than declared.
    InputDType {
        /// The input's name.
        name: String,
        /// Its declaration.
        span: Span,
        /// The declared element type.
        declared: DType,
        /// The element type given.
        found: DType,
    },
    /// An input's shape does not fit its declaration.
    InputShape {
        /// The input's name.
        name: String,
        /// Its declaration.
        span: Span,
        /// The declared shape (with symbolic sizes).
        declared: Shape,
        /// The shape given.
        found: Vec<usize>,
        /// What does not fit (boxed: it is the largest part of the error).
        problem: Box<ShapeProblem>,
    },
    /// A learned parameter or buffer is absent from the weights.
    MissingWeight {
        /// The parameter's name.
        name: String,
        /// The layer that made it.
        span: Span,
    },
    /// A weight has another shape than the parameter.
    WeightShape {
        /// The parameter's name.
        name: String,
        /// The layer that made it.
        span: Span,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The weight's shape.
        found: Vec<usize>,
    },
    /// An integer index in the data (a token id, a label) is out of range.
    IndexOutOfRange {
        /// The layer that read it.
        layer: String,
        /// Its source.
        span: Span,
        /// `token id` or `label`.
        what: &'static str,
        /// The index found.
        index: i64,
        /// The number of valid indices.
        limit: usize,
    },
    /// A recurrence that returns its last step ran zero steps (an empty sequence).
    EmptySequence {
        /// The recurrent layer.
        layer: String,
        /// Its source.
        span: Span,
    },
    /// An integer division by zero in the net.
    DivideByZero {
        /// The layer.
        layer: String,
        /// Its source.
        span: Span,
    },
    /// A net input of a type the interpreter does not run (`bool`).
    UnsupportedDType {
        /// The input's name.
        name: String,
        /// Its declaration.
        span: Span,
        /// The declared type.
        dtype: DType,
    },
    /// The IR does not fit the values computed for it: a bug in netc.
    Internal {
        /// The layer (or node) where it was found.
        layer: String,
        /// Its source.
        span: Span,
        /// What did not fit.
        detail: String,
    },
}

/// What is wrong with an input's shape.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeProblem {
    /// The number of axes differs.
    Rank,
    /// A known size differs: axis `axis` must be `expected`.
    Size {
        /// The axis.
        axis: usize,
        /// The declared size (or the value of a size expression).
        expected: u64,
    },
    /// A symbolic size takes a value that another input (or an earlier axis) already
    /// fixed differently.
    Symbol {
        /// The axis.
        axis: usize,
        /// The symbol (`N`, `T`).
        symbol: String,
        /// The value it already has.
        bound: u64,
        /// The input that fixed it.
        by: String,
    },
    /// A size expression (`2*window`, `T+1`) could not be solved for its symbols.
    Unsolved {
        /// The axis.
        axis: usize,
    },
}

impl RunError {
    /// The error for a kernel failure in the layer `layer` at `span`.
    pub fn from_kernel(e: KernelError, layer: &str, span: Span) -> RunError {
        let layer = layer.to_string();
        match e {
            KernelError::OutOfRange { what, index, limit } => RunError::IndexOutOfRange {
                layer,
                span,
                what,
                index,
                limit,
            },
            KernelError::DivideByZero => RunError::DivideByZero { layer, span },
            KernelError::Shape(detail) => RunError::Internal {
                layer,
                span,
                detail,
            },
        }
    }

    /// Whether this is a bug in netc rather than a problem with the inputs or weights.
    pub fn is_internal(&self) -> bool {
        matches!(self, RunError::Internal { .. })
    }

    /// The diagnostic for this error. Input errors point at the input's declaration,
    /// weight errors at the layer that made the parameter, data errors at the layer that
    /// met them.
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            RunError::MissingInput { name, span } => Diagnostic::error(
                Code::MissingInput,
                format!("no value given for input `{name}`"),
                Label::new(*span, "declared here"),
            )
            .with_help(format!("pass it with `--input {name}=FILE`")),
            RunError::UnknownInput { name, inputs, net } => Diagnostic::error(
                Code::MissingInput,
                format!("`{name}` is not an input of this net"),
                Label::new(*net, format!("its inputs are {}", quoted(inputs))),
            ),
            RunError::InputDType {
                name,
                span,
                declared,
                found,
            } => Diagnostic::error(
                Code::InputDType,
                format!(
                    "input `{name}` is declared {} but the value given is {}",
                    declared.as_str(),
                    found.as_str()
                ),
                Label::new(*span, format!("declared {} here", declared.as_str())),
            )
            .with_help(if declared.is_int() {
                "token ids must be an integer .npy (int32 or int64), or a text file"
            } else {
                "give a float .npy (float32 or float64) or an image"
            }),
            RunError::InputShape {
                name,
                span,
                declared,
                found,
                problem,
            } => {
                let why = match problem.as_ref() {
                    ShapeProblem::Rank => {
                        format!("{} axes given, {} declared", found.len(), declared.rank())
                    }
                    ShapeProblem::Size { axis, expected } => {
                        format!("axis {axis} must be {expected}")
                    }
                    ShapeProblem::Symbol {
                        axis,
                        symbol,
                        bound,
                        by,
                    } => {
                        format!("axis {axis} is `{symbol}`, which is already {bound} (from `{by}`)")
                    }
                    ShapeProblem::Unsolved { axis } => {
                        format!("the size of axis {axis} does not fit its expression")
                    }
                };
                Diagnostic::error(
                    Code::InputShape,
                    format!(
                        "input `{name}` has shape {}, but the net declares {declared}",
                        shape_string(found)
                    ),
                    Label::new(*span, format!("declared {declared} here")),
                )
                .with_note(why)
            }
            RunError::MissingWeight { name, span } => Diagnostic::error(
                Code::WeightsMismatch,
                format!("no weight `{name}` was given"),
                Label::new(*span, "this layer needs it"),
            ),
            RunError::WeightShape {
                name,
                span,
                expected,
                found,
            } => Diagnostic::error(
                Code::WeightsMismatch,
                format!(
                    "weight `{name}` has shape {}, the layer needs {}",
                    shape_string(found),
                    shape_string(expected)
                ),
                Label::new(*span, "this layer"),
            ),
            RunError::IndexOutOfRange {
                layer,
                span,
                what,
                index,
                limit,
            } => Diagnostic::error(
                Code::IndexOutOfRange,
                format!(
                    "{what} {index} is out of range for `{layer}`, which accepts 0 to {}",
                    limit.saturating_sub(1)
                ),
                Label::new(*span, format!("{limit} valid values")),
            ),
            RunError::EmptySequence { layer, span } => Diagnostic::error(
                Code::InputShape,
                format!("`{layer}` returns its last step, but the sequence is empty"),
                Label::new(*span, "ran for 0 steps"),
            ),
            RunError::DivideByZero { layer, span } => Diagnostic::error(
                Code::IndexOutOfRange,
                format!("integer division by zero in `{layer}`"),
                Label::new(*span, "here"),
            ),
            RunError::UnsupportedDType { name, span, dtype } => Diagnostic::error(
                Code::InputDType,
                format!(
                    "input `{name}` is {}, which the interpreter does not run",
                    dtype.as_str()
                ),
                Label::new(*span, "declared here"),
            )
            .with_help("the interpreter runs float and integer inputs"),
            RunError::Internal {
                layer,
                span,
                detail,
            } => Diagnostic::error(
                Code::InternalRunError,
                format!("internal error in the interpreter at `{layer}`: {detail}"),
                Label::new(*span, "while running this"),
            )
            .with_note("this is a bug in netc; please report it with the .net file"),
        }
    }
}

fn quoted(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    q.join(", ")
}
