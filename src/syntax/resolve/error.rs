//! The problems name resolution finds, as data: spans and names, no formatted text. One
//! function, `Error::into_diagnostic` in `report.rs`, turns each into a diagnostic.

use super::ty::ArithError;
use crate::diagnostics::Span;
use crate::syntax::builtins::Arity;

/// Where a compile-time value was required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StaticCtx {
    /// `repeat count { … }`.
    RepeatCount,
    /// `if cond { … }`.
    IfCond,
    /// A dimension of a tensor type or of `zeros[…]`.
    Dim,
    /// An element of an array.
    ArrayElement,
    /// A parameter's default.
    Default,
    /// The initial value of a cell state.
    StateInit,
    /// An argument of a layer, block or cell (named).
    Argument,
    /// The value of a constant.
    Const,
}

/// What kind of body lacks a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyWhat {
    /// A block's body.
    Block,
    /// One branch of `concat { … }`, `add { … }`.
    Branch,
    /// A body of `if` or `else`.
    If,
    /// The body of `repeat`.
    Repeat,
}

/// Why a constant is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConstProblem {
    /// A row whose length differs from the first row's.
    Ragged,
    /// An element that is not a number.
    NotNumber,
    /// A constant that is neither a number nor an array.
    NotNumeric,
}

/// Why a parameter is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ParamProblem {
    /// A net parameter with neither a tensor type nor a default.
    NetUntyped,
    /// A net parameter with a scalar type but no default.
    NetNoDefault,
    /// A net input with both a tensor type and a default.
    TensorDefault,
    /// A block or cell parameter with a tensor type.
    TensorInBlock,
    /// A block parameter named `in`.
    ReservedIn,
}

/// One problem found by name resolution.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Error {
    /// E0200: a value name is not in scope.
    UnknownName {
        /// The name.
        name: String,
        /// Where it is used.
        span: Span,
        /// The closest name in scope.
        suggestion: Option<String>,
        /// A more specific help line, when one is known.
        hint: Option<String>,
    },
    /// E0200: `base.field` with an unknown field.
    UnknownField {
        /// The field.
        name: String,
        /// Where.
        span: Span,
        /// The closest field.
        suggestion: Option<String>,
    },
    /// E0201: a layer, block or cell name is not in scope.
    UnknownLayer {
        /// The name.
        name: String,
        /// Where.
        span: Span,
        /// The closest layer, block or cell.
        suggestion: Option<String>,
    },
    /// E0201: a net used as a layer.
    NetAsLayer {
        /// The net.
        name: String,
        /// Where it is used.
        span: Span,
        /// Its definition.
        def: Span,
    },
    /// E0202: a keyword argument the callee does not have.
    UnknownArgument {
        /// The callee.
        callee: String,
        /// The keyword.
        name: String,
        /// Where the keyword is written.
        span: Span,
        /// The closest parameter name.
        suggestion: Option<String>,
        /// Every parameter name of the callee.
        valid: Vec<String>,
    },
    /// E0203: required parameters not given.
    MissingArgument {
        /// The callee.
        callee: String,
        /// The callee's name at the call.
        span: Span,
        /// The missing parameters.
        missing: Vec<String>,
        /// The callee's signature.
        signature: String,
    },
    /// E0204: an argument given twice.
    DuplicateArgument {
        /// The parameter.
        name: String,
        /// The second argument.
        span: Span,
        /// The first.
        first: Span,
    },
    /// E0205: an argument of a known, wrong type.
    WrongArgumentType {
        /// The callee.
        callee: String,
        /// The parameter.
        param: String,
        /// What the parameter accepts, in words.
        expected: String,
        /// What was given, in words.
        found: String,
        /// The argument's value.
        span: Span,
        /// The closest accepted symbol.
        suggestion: Option<String>,
        /// The declaration of the parameter, for blocks and cells.
        decl: Option<Span>,
    },
    /// E0205: a `repeat` count that is not an integer.
    RepeatCountType {
        /// What was given, in words.
        found: String,
        /// The count.
        span: Span,
    },
    /// E0206: more positional arguments than positional parameters.
    TooManyArguments {
        /// The callee.
        callee: String,
        /// The first argument too many.
        span: Span,
        /// How many positional parameters there are.
        max: usize,
        /// How many positional arguments were given (inputs excluded).
        given: usize,
        /// Whether the callee is a built-in layer (whose tensor inputs come first).
        layer: bool,
        /// The signature.
        signature: String,
    },
    /// E0207: a positional argument after a keyword argument.
    PositionalAfterKeyword {
        /// The positional argument.
        span: Span,
        /// The keyword argument before it.
        keyword: Span,
    },
    /// E0208: two items with one name in a file.
    DuplicateItem {
        /// The name.
        name: String,
        /// The second definition's name.
        span: Span,
        /// The first definition's name.
        first: Span,
    },
    /// E0208: a name imported from two files.
    ImportConflict {
        /// The name.
        name: String,
        /// The `use` that brings in the second definition.
        span: Span,
        /// The first definition.
        first: Span,
        /// The second definition.
        second: Span,
    },
    /// E0208: a block, cell or constant named like a built-in layer.
    ShadowsBuiltin {
        /// The name.
        name: String,
        /// The definition's name.
        span: Span,
    },
    /// E0209: a value bound twice in one body.
    DuplicateBinding {
        /// The name.
        name: String,
        /// The second binding.
        span: Span,
        /// The first.
        first: Span,
    },
    /// E0210: two parameters (or outputs, or step inputs) with one name.
    DuplicateParameter {
        /// The name.
        name: String,
        /// The second.
        span: Span,
        /// The first.
        first: Span,
    },
    /// E0211: a name used before the statement that binds it.
    UseBeforeDefinition {
        /// The name.
        name: String,
        /// The use.
        span: Span,
        /// The binding.
        def: Span,
    },
    /// E0212: blocks or cells (or constants) that refer to themselves.
    Recursive {
        /// The names around the cycle, the first repeated at the end.
        cycle: Vec<String>,
        /// The reference that closes the cycle.
        span: Span,
        /// "block", "cell" or "constant".
        kind: &'static str,
    },
    /// E0215: a declared output never bound.
    UndefinedOutput {
        /// The output.
        name: String,
        /// The output in the signature.
        span: Span,
        /// The net.
        net: String,
        /// A value bound in the body with a similar name.
        similar: Option<String>,
    },
    /// E0216: a body that ends without a value.
    MissingResult {
        /// Which body.
        what: BodyWhat,
        /// The last statement (or the empty body).
        span: Span,
        /// The name the body ends by binding; `None` for an empty body (or an `emit`).
        last: Option<String>,
    },
    /// E0216: an `if` without `else` whose value is needed.
    IfWithoutElse {
        /// The `if` keyword.
        span: Span,
    },
    /// E0217: `emit` outside a cell's step.
    EmitOutsideStep {
        /// The `emit` statement.
        span: Span,
        /// Whether it is inside a step, but nested in another body.
        nested: bool,
    },
    /// E0217: a step without `emit`.
    MissingEmit {
        /// The cell.
        cell: String,
        /// The `step` keyword.
        span: Span,
        /// A state to suggest emitting.
        state: Option<String>,
    },
    /// E0217: a second `emit`.
    DoubleEmit {
        /// The second.
        span: Span,
        /// The first.
        first: Span,
    },
    /// E0218: a value where a layer is expected (chain steps after the first).
    NotALayer {
        /// The step.
        span: Span,
        /// The step's text.
        text: String,
        /// What it is, in words.
        found: String,
        /// The text of the value before it, for tensors (suggests `add(prev, this)`).
        combine_with: Option<String>,
    },
    /// E0218: a cell used where a layer is expected.
    CellAsLayer {
        /// The cell's name or call.
        span: Span,
        /// The text of the call.
        text: String,
    },
    /// E0218: a layer where a value is expected (an argument, a chain start).
    LayerAsValue {
        /// The layer.
        span: Span,
        /// Its text.
        text: String,
        /// Where: "an argument", "the start of a chain", …
        place: &'static str,
    },
    /// E0218: a compile-time value at the start of a chain.
    StaticChainStart {
        /// The value.
        span: Span,
        /// Its text.
        text: String,
        /// What it is.
        found: String,
    },
    /// E0218: a value that is called like a layer.
    ValueCalled {
        /// The name.
        name: String,
        /// Where.
        span: Span,
    },
    /// E0219: a layer with nothing to apply to.
    NoInput {
        /// The layer's name (or branch keyword).
        span: Span,
        /// The layer's text.
        text: String,
        /// A value to start from, for the help line.
        example: Option<String>,
    },
    /// E0220: a tensor (or layer) where a compile-time value is required.
    NotStatic {
        /// The expression.
        span: Span,
        /// Its text.
        text: String,
        /// What it is.
        found: String,
        /// Where a compile-time value was needed.
        ctx: StaticCtx,
        /// For arguments: the parameter and callee, and whether it is a block.
        param: Option<(String, String, bool)>,
    },
    /// E0221: an invalid constant.
    BadConstant {
        /// The offending element (or the whole value).
        span: Span,
        /// What is wrong.
        problem: ConstProblem,
        /// What it is, in words.
        found: String,
        /// For ragged rows: the first row.
        first: Option<Span>,
    },
    /// E0222: a state updated twice.
    StateUpdatedTwice {
        /// The state.
        name: String,
        /// The second update.
        span: Span,
        /// The first.
        first: Span,
    },
    /// E0222: a step input or parameter reassigned, or a state assigned in a nested body.
    NotAState {
        /// The name.
        name: String,
        /// The assignment.
        span: Span,
        /// What the name is: "step input", "parameter", "state (nested)".
        what: &'static str,
        /// Its declaration.
        decl: Span,
    },
    /// E0223: two steps with one label in a body.
    DuplicateLabel {
        /// The label.
        name: String,
        /// The second.
        span: Span,
        /// The first.
        first: Span,
    },
    /// E0224: a layer given the wrong number of tensor inputs.
    WrongInputCount {
        /// The layer.
        callee: String,
        /// The callee's name at the call.
        span: Span,
        /// What it accepts.
        expected: Arity,
        /// How many it was given.
        given: usize,
        /// Whether one of them is the value flowing in.
        incoming: bool,
        /// Whether the inputs are the branches of `add { … }` and the like.
        branches: bool,
    },
    /// E0225: an operand an operator does not accept.
    BadOperand {
        /// The operator.
        op: String,
        /// The operand.
        span: Span,
        /// Its text.
        text: String,
        /// What it is.
        found: String,
        /// What the operator needs.
        need: &'static str,
    },
    /// E0225: a field read on something that is not a tensor.
    FieldOfNonTensor {
        /// The field.
        field: String,
        /// The base.
        span: Span,
        /// The base's text.
        text: String,
        /// What the base is.
        found: String,
    },
    /// E0226: compile-time arithmetic that fails.
    Arithmetic {
        /// The operator.
        span: Span,
        /// The operator as written.
        op: String,
        /// What went wrong.
        error: ArithError,
        /// The operand that caused it, if one did.
        operand: Option<Span>,
    },
    /// E0227: an invalid parameter.
    BadParameter {
        /// The parameter's name.
        name: String,
        /// Where.
        span: Span,
        /// What is wrong.
        problem: ParamProblem,
    },
    /// E0227: a default that does not match the declared type.
    DefaultType {
        /// The parameter.
        name: String,
        /// The default.
        span: Span,
        /// The declared type.
        declared: &'static str,
        /// What the default is.
        found: String,
    },
    /// W0001: a value never used.
    UnusedValue {
        /// The name.
        name: String,
        /// Where it is bound.
        span: Span,
    },
    /// W0002: a parameter never used.
    UnusedParameter {
        /// The name.
        name: String,
        /// The parameter.
        span: Span,
        /// The block or cell.
        owner: String,
    },
    /// W0003: a file that defines nothing.
    EmptyFile {
        /// Offset 0 of the file.
        span: Span,
    },
}
