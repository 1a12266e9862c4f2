//! Rendering: the one place where a resolution [`Error`] becomes a [`Diagnostic`] with its
//! message, labels, help and notes.

use super::error::{BodyWhat, ConstProblem, Error, ParamProblem, StaticCtx};
use super::ty::ArithError;
use crate::diagnostics::{Code, Diagnostic, Label};
use crate::syntax::builtins::Arity;

fn quote_list(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match q.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

fn did_you_mean(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| format!("did you mean `{s}`?"))
}

fn with_help(d: Diagnostic, help: Option<String>) -> Diagnostic {
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

impl StaticCtx {
    fn what(self) -> &'static str {
        match self {
            StaticCtx::RepeatCount => "a repeat count",
            StaticCtx::IfCond => "an `if` condition",
            StaticCtx::Dim => "a dimension",
            StaticCtx::ArrayElement => "an array element",
            StaticCtx::Default => "a parameter default",
            StaticCtx::StateInit => "a state's initial value",
            StaticCtx::Argument => "an argument",
            StaticCtx::Const => "a constant",
        }
    }
}

impl Error {
    /// The diagnostic for this problem.
    pub(super) fn into_diagnostic(self) -> Diagnostic {
        use Error as E;
        match self {
            E::UnknownName {
                name,
                span,
                suggestion,
                hint,
            } => {
                let d = Diagnostic::error(
                    Code::UnknownName,
                    format!("unknown name `{name}`"),
                    Label::new(span, "not defined here"),
                );
                with_help(d, did_you_mean(&suggestion).or(hint))
            }
            E::UnknownField {
                name,
                span,
                suggestion,
            } => {
                let fields: Vec<String> =
                    crate::syntax::builtins::FIELDS.iter().map(|(f, _)| f.to_string()).collect();
                let list = format!("the properties of tensors are {}", quote_list(&fields));
                let help = match suggestion {
                    Some(s) => format!("did you mean `{s}`? {list}"),
                    None => list,
                };
                Diagnostic::error(
                    Code::UnknownName,
                    format!("tensors have no property `{name}`"),
                    Label::new(span, "unknown property"),
                )
                .with_help(help)
            }
            E::UnknownLayer {
                name,
                span,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    Code::UnknownLayer,
                    format!("unknown layer `{name}`"),
                    Label::new(span, "not a layer, block or cell"),
                );
                let help = did_you_mean(&suggestion).unwrap_or_else(|| {
                    "`netc layers` lists the built-in layers; blocks from other files need `use \"file.net\"`"
                        .into()
                });
                d.with_help(help)
            }
            E::NetAsLayer { name, span, def } => Diagnostic::error(
                Code::UnknownLayer,
                format!("`{name}` is a net, which cannot be used as a layer"),
                Label::new(span, "a net, not a layer or block"),
            )
            .with_label(Label::new(def, "the net is defined here"))
            .with_help("to reuse its layers, write them as a `block`"),
            E::UnknownArgument {
                callee,
                name,
                span,
                suggestion,
                valid,
            } => {
                let d = Diagnostic::error(
                    Code::UnknownArgument,
                    format!("`{callee}` has no parameter `{name}`"),
                    Label::new(span, "unknown argument"),
                );
                let list = if valid.is_empty() {
                    format!("`{callee}` takes no arguments")
                } else {
                    format!("the parameters of `{callee}` are {}", quote_list(&valid))
                };
                match suggestion {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")).with_note(list),
                    None => d.with_help(list),
                }
            }
            E::MissingArgument {
                callee,
                span,
                missing,
                signature,
            } => {
                let what = if missing.len() == 1 {
                    format!("the argument {}", quote_list(&missing))
                } else {
                    format!("the arguments {}", quote_list(&missing))
                };
                Diagnostic::error(
                    Code::MissingArgument,
                    format!("`{callee}` is missing {what}"),
                    Label::new(span, format!("needs {}", quote_list(&missing))),
                )
                .with_help(format!("the signature is `{signature}`"))
            }
            E::DuplicateArgument { name, span, first } => Diagnostic::error(
                Code::DuplicateArgument,
                format!("argument `{name}` is given twice"),
                Label::new(span, "given again here"),
            )
            .with_label(Label::new(first, "first given here"))
            .with_help("remove one of them"),
            E::WrongArgumentType {
                callee,
                param,
                expected,
                found,
                span,
                suggestion,
                decl,
            } => {
                let mut d = Diagnostic::error(
                    Code::WrongArgumentType,
                    format!("`{param}` of `{callee}` expects {expected}, found {found}"),
                    Label::new(span, format!("this is {found}")),
                );
                if let Some(decl) = decl {
                    d = d.with_label(Label::new(decl, "the parameter is declared here"));
                }
                with_help(d, did_you_mean(&suggestion))
            }
            E::RepeatCountType { found, span } => Diagnostic::error(
                Code::WrongArgumentType,
                format!("a repeat count must be an integer, found {found}"),
                Label::new(span, "not an integer"),
            ),
            E::TooManyArguments {
                callee,
                span,
                max,
                given,
                layer,
                signature,
            } => {
                let after = if layer { " after its inputs" } else { "" };
                let s = if max == 1 { "" } else { "s" };
                let d = Diagnostic::error(
                    Code::TooManyArguments,
                    format!(
                        "`{callee}` takes {max} positional argument{s}{after}, but {given} were given"
                    ),
                    Label::new(span, "one too many"),
                );
                let help = if layer {
                    format!(
                        "the signature is `{signature}`; tensor inputs come first, other parameters may be passed by keyword"
                    )
                } else {
                    format!("the signature is `{signature}`")
                };
                d.with_help(help)
            }
            E::PositionalAfterKeyword { span, keyword } => Diagnostic::error(
                Code::PositionalAfterKeyword,
                "positional argument after a keyword argument",
                Label::new(span, "positional argument"),
            )
            .with_label(Label::new(keyword, "after this keyword argument"))
            .with_help("write the positional arguments first, or name this one"),
            E::DuplicateItem { name, span, first } => Diagnostic::error(
                Code::DuplicateItem,
                format!("`{name}` is defined twice"),
                Label::new(span, "defined again here"),
            )
            .with_label(Label::new(first, "first defined here"))
            .with_help("rename one of them"),
            E::ImportConflict {
                name,
                span,
                first,
                second,
            } => Diagnostic::error(
                Code::DuplicateItem,
                format!("`{name}` is defined in two imported files"),
                Label::new(span, format!("this import brings in a second `{name}`")),
            )
            .with_label(Label::new(first, "one definition"))
            .with_label(Label::new(second, "the other definition"))
            .with_help("rename one of them, or import only one of the files"),
            E::ShadowsBuiltin { name, span } => Diagnostic::error(
                Code::DuplicateItem,
                format!("`{name}` is already a built-in layer"),
                Label::new(span, "redefines a built-in"),
            )
            .with_help("choose another name"),
            E::DuplicateBinding { name, span, first } => Diagnostic::error(
                Code::DuplicateBinding,
                format!("`{name}` is bound twice"),
                Label::new(span, "bound again here"),
            )
            .with_label(Label::new(first, "first bound here"))
            .with_help("values cannot be reassigned; choose a new name"),
            E::DuplicateParameter { name, span, first } => Diagnostic::error(
                Code::DuplicateParameter,
                format!("`{name}` is declared twice"),
                Label::new(span, "declared again here"),
            )
            .with_label(Label::new(first, "first declared here")),
            E::UseBeforeDefinition { name, span, def } => Diagnostic::error(
                Code::UseBeforeDefinition,
                format!("`{name}` is used before it is defined"),
                Label::new(span, "used here"),
            )
            .with_label(Label::new(def, "defined here, later"))
            .with_help(format!("move the definition of `{name}` above its first use")),
            E::Recursive { cycle, span, kind } => {
                let first = cycle.first().cloned().unwrap_or_default();
                let help = if kind == "constant" {
                    "write one of the constants without the others"
                } else {
                    "networks are finite graphs: use `repeat n { … }` to stack copies"
                };
                Diagnostic::error(
                    Code::RecursiveBlock,
                    format!("{kind} `{first}` refers to itself: {}", cycle.join(" → ")),
                    Label::new(span, "this closes the cycle"),
                )
                .with_help(help)
            }
            E::UndefinedOutput {
                name,
                span,
                net,
                similar,
            } => Diagnostic::error(
                Code::UndefinedOutput,
                format!("output `{name}` of `{net}` is never defined"),
                Label::new(span, "declared here"),
            )
            .with_help(match similar {
                Some(s) => format!("the body binds `{s}`: did you mean `{name}`?"),
                None => format!("bind it in the body: `{name} = …`"),
            }),
            E::MissingResult { what, span, last } => {
                let w = match what {
                    BodyWhat::Block => "the block's body",
                    BodyWhat::Branch => "this branch",
                    BodyWhat::If => "this `if` body",
                    BodyWhat::Repeat => "the `repeat` body",
                };
                let (label, help) = match last {
                    Some(name) => (
                        "ends with a binding, not a value".to_string(),
                        format!("end the body with its value: add `{name}` as the last line, or drop `{name} =`"),
                    ),
                    None if what == BodyWhat::Branch => (
                        "empty branch".to_string(),
                        "remove the extra `|`, or write `identity` to pass the input through"
                            .to_string(),
                    ),
                    None => (
                        "no value here".to_string(),
                        "end the body with the value it gives".to_string(),
                    ),
                };
                Diagnostic::error(
                    Code::MissingResult,
                    format!("{w} has no result"),
                    Label::new(span, label),
                )
                .with_help(help)
            }
            E::IfWithoutElse { span } => Diagnostic::error(
                Code::MissingResult,
                "`if` without `else` has no value when the condition is false",
                Label::new(span, "no `else`"),
            )
            .with_help("add an `else { … }` body"),
            E::EmitOutsideStep { span, nested } => {
                let (msg, label) = if nested {
                    (
                        "`emit` must be a statement of the step itself",
                        "nested in another body",
                    )
                } else {
                    ("`emit` outside a cell's step", "not in a cell")
                };
                Diagnostic::error(Code::BadEmit, msg, Label::new(span, label)).with_help(
                    "`emit` gives a cell step's output; nets and blocks return values by name or as their last expression",
                )
            }
            E::MissingEmit { cell, span, state } => {
                let d = Diagnostic::error(
                    Code::BadEmit,
                    format!("the step of cell `{cell}` emits nothing"),
                    Label::new(span, "no `emit` in this step"),
                );
                d.with_help(match state {
                    Some(s) => format!("end the step with its output, e.g. `emit {s}`"),
                    None => "end the step with its output: `emit …`".into(),
                })
            }
            E::DoubleEmit { span, first } => Diagnostic::error(
                Code::BadEmit,
                "a step emits twice",
                Label::new(span, "second `emit`"),
            )
            .with_label(Label::new(first, "first `emit`"))
            .with_help("a step has one output; emit a `concat(…)` to return several values"),
            E::NotALayer {
                span,
                text,
                found,
                combine_with,
            } => {
                let d = Diagnostic::error(
                    Code::NotALayer,
                    format!("`{text}` is {found}, not a layer"),
                    Label::new(span, "expected a layer here"),
                );
                match combine_with {
                    Some(prev) => d.with_help(format!(
                        "to combine values use `add({prev}, {text})` or `concat({prev}, {text})`"
                    )),
                    None => d.with_help(
                        "each step after `->` must be a layer, block, branch, `if` or `repeat`",
                    ),
                }
            }
            E::CellAsLayer { span, text } => Diagnostic::error(
                Code::NotALayer,
                format!("`{text}` is a cell, not a layer"),
                Label::new(span, "a cell"),
            )
            .with_help(format!("run it over the sequence: `unroll({text})`")),
            E::LayerAsValue { span, text, place } => Diagnostic::error(
                Code::NotALayer,
                format!("`{text}` is a layer, but {place} must be a value"),
                Label::new(span, "a layer"),
            )
            .with_help(format!("apply it to a value: `x -> {text}`")),
            E::StaticChainStart { span, text, found } => Diagnostic::error(
                Code::NotALayer,
                format!("a chain must start from a tensor, but `{text}` is {found}"),
                Label::new(span, "not a tensor"),
            )
            .with_help("layers apply to tensors: start the chain from an input or a named value"),
            E::ValueCalled { name, span } => Diagnostic::error(
                Code::NotALayer,
                format!("`{name}` is a value and cannot be called"),
                Label::new(span, "a value, not a layer"),
            )
            .with_help("only layers, blocks and cells take arguments"),
            E::NoInput {
                span,
                text,
                example,
            } => {
                let d = Diagnostic::error(
                    Code::NoInput,
                    format!("`{text}` has no input"),
                    Label::new(span, "nothing flows into this layer"),
                );
                d.with_help(match example {
                    Some(x) => format!("start the chain from a value, e.g. `{x} -> {text}`"),
                    None => "start the chain from a value: `x -> …`".into(),
                })
            }
            E::NotStatic {
                span,
                text,
                found,
                ctx,
                param,
            } => {
                let (msg, help) = match param {
                    Some((p, callee, block)) => (
                        format!("`{p}` of `{callee}` must be known at compile time, but `{text}` is {found}"),
                        if block {
                            format!("a block applies to the value flowing into it: write `{text} -> {callee}(…)`")
                        } else {
                            "tensor inputs are the leading positional arguments".into()
                        },
                    ),
                    None => (
                        format!("{} must be known at compile time, but `{text}` is {found}", ctx.what()),
                        if ctx == StaticCtx::Dim {
                            "a dimension is a number, a compile-time parameter or a symbolic size such as `N`".into()
                        } else {
                            "compile-time values are numbers, constants, parameters and tensor properties such as `in.channels`".into()
                        },
                    ),
                };
                Diagnostic::error(Code::NotStatic, msg, Label::new(span, "not a compile-time value"))
                    .with_help(help)
            }
            E::BadConstant {
                span,
                problem,
                found,
                first,
            } => {
                let (msg, label) = match problem {
                    ConstProblem::Ragged => (
                        "array rows have different lengths".to_string(),
                        "this row's length differs from the first".to_string(),
                    ),
                    ConstProblem::NotNumber => (
                        format!("a constant array holds numbers, found {found}"),
                        "not a number".to_string(),
                    ),
                    ConstProblem::NotNumeric => (
                        format!("a constant must be a number or an array of numbers, found {found}"),
                        "not a number or array".to_string(),
                    ),
                };
                let mut d = Diagnostic::error(Code::BadConstant, msg, Label::new(span, label));
                if let Some(f) = first {
                    d = d.with_label(Label::new(f, "the first row"));
                }
                d
            }
            E::StateUpdatedTwice { name, span, first } => Diagnostic::error(
                Code::BadStateUpdate,
                format!("state `{name}` is updated twice in one step"),
                Label::new(span, "updated again here"),
            )
            .with_label(Label::new(first, "first update"))
            .with_help("compute the intermediate value under a new name, and update the state once"),
            E::NotAState {
                name,
                span,
                what,
                decl,
            } => {
                let msg = if what == "state" {
                    format!("state `{name}` can only be updated at the top level of the step")
                } else {
                    format!("`{name}` is a {what} and cannot be reassigned")
                };
                Diagnostic::error(Code::BadStateUpdate, msg, Label::new(span, "assigned here"))
                    .with_label(Label::new(decl, "declared here"))
                    .with_help("only state names may be assigned in a step; choose a new name")
            }
            E::DuplicateLabel { name, span, first } => Diagnostic::error(
                Code::DuplicateLabel,
                format!("layer name `{name}` is used twice in one body"),
                Label::new(span, "used again here"),
            )
            .with_label(Label::new(first, "first used here"))
            .with_help("labels name weights (`name/weight`), so they must be unique"),
            E::WrongInputCount {
                callee,
                span,
                expected,
                given,
                incoming,
                branches,
            } => {
                let plural = |n: usize| if n == 1 { "" } else { "s" };
                let takes = match expected {
                    Arity::Exactly(n) => format!("{n} input{}", plural(n)),
                    Arity::AtLeast(n) => format!("at least {n} input{}", plural(n)),
                };
                let d = Diagnostic::error(
                    Code::WrongInputCount,
                    format!("`{callee}` takes {takes}, but is given {given}"),
                    Label::new(span, format!("{given} input{}", plural(given))),
                );
                let (min, max) = match expected {
                    Arity::Exactly(n) => (n, Some(n)),
                    Arity::AtLeast(n) => (n, None),
                };
                let shown = if max.is_none() { min.max(2) } else { min };
                let names: Vec<String> = ["a", "b", "c", "d"]
                    .iter()
                    .take(shown.clamp(1, 4))
                    .map(|s| s.to_string())
                    .collect();
                let in_chain = format!("{} -> {callee}({})", names[0], names[1..].join(", "));
                let too_many = max.is_some_and(|m| given > m);
                if branches {
                    d.with_help(format!("give it at least {min} branches: `{callee} {{ a | b }}`"))
                } else if too_many && min == 1 {
                    d.with_help(format!("combine the values first, e.g. `add(a, b) -> {callee}`"))
                } else if too_many && incoming {
                    d.with_help(format!(
                        "the value flowing in is the first input: write `{in_chain}`"
                    ))
                } else if given < min {
                    let d = d.with_help(format!(
                        "write `{callee}({})`, or in a chain `{in_chain}`",
                        names.join(", ")
                    ));
                    if incoming {
                        d.with_note("in a chain, the value flowing in is the first input")
                    } else {
                        d
                    }
                } else {
                    d
                }
            }
            E::BadOperand {
                op,
                span,
                text,
                found,
                need,
            } => Diagnostic::error(
                Code::BadOperand,
                format!("`{op}` needs {need}, but `{text}` is {found}"),
                Label::new(span, found.clone()),
            )
            .with_help(if found == "a layer" {
                format!("apply the layer to a value first: `(x -> {text})`")
            } else {
                "compile-time conditions may only use numbers, parameters and tensor properties such as `in.channels`".into()
            }),
            E::FieldOfNonTensor {
                field,
                span,
                text,
                found,
            } => Diagnostic::error(
                Code::BadOperand,
                format!("`.{field}` is a property of tensors, but `{text}` is {found}"),
                Label::new(span, "not a tensor"),
            ),
            E::Arithmetic {
                span,
                op,
                error,
                operand,
            } => {
                let (msg, help) = match error {
                    ArithError::DivByZero => (format!("`{op}` by zero"), None),
                    ArithError::Overflow => (
                        format!("the result of `{op}` does not fit in a 64-bit integer"),
                        None,
                    ),
                    ArithError::NegativeExponent => (
                        "an integer raised to a negative power".into(),
                        Some("use a real base, e.g. `2.0 ^ -1`"),
                    ),
                };
                let mut d = Diagnostic::error(
                    Code::StaticArithmetic,
                    msg,
                    Label::new(span, "fails at compile time"),
                );
                if let Some(o) = operand {
                    let l = match error {
                        ArithError::DivByZero => "this is zero",
                        _ => "this operand",
                    };
                    d = d.with_label(Label::new(o, l));
                }
                with_help(d, help.map(String::from))
            }
            E::BadParameter {
                name,
                span,
                problem,
            } => {
                let (msg, help) = match problem {
                    ParamProblem::NetUntyped => (
                        format!("net parameter `{name}` has neither a tensor type nor a default"),
                        format!("an input needs a tensor type (`{name}: f32[N, …]`), a compile-time parameter a default (`{name} = 3`)"),
                    ),
                    ParamProblem::NetNoDefault => (
                        format!("compile-time parameter `{name}` of a net has no default"),
                        format!("give it a value: `{name}: … = 3`"),
                    ),
                    ParamProblem::TensorDefault => (
                        format!("tensor input `{name}` cannot have a default"),
                        "remove the default".to_string(),
                    ),
                    ParamProblem::TensorInBlock => (
                        format!("parameter `{name}` of a block or cell cannot be a tensor"),
                        "a block takes its tensor input from the chain, as `in`; a cell names its inputs in `step`".to_string(),
                    ),
                    ParamProblem::ReservedIn => (
                        "`in` is the block's input and cannot be a parameter".to_string(),
                        "choose another name".to_string(),
                    ),
                };
                Diagnostic::error(Code::BadParameter, msg, Label::new(span, "invalid parameter"))
                    .with_help(help)
            }
            E::DefaultType {
                name,
                span,
                declared,
                found,
            } => Diagnostic::error(
                Code::BadParameter,
                format!("the default of `{name}` is {found}, but `{name}` is declared `{declared}`"),
                Label::new(span, format!("not of type `{declared}`")),
            ),
            E::UnusedValue { name, span } => Diagnostic::warning(
                Code::UnusedValue,
                format!("value `{name}` is never used"),
                Label::new(span, "bound here"),
            )
            .with_help(format!("remove it, or name it `_{name}` to keep it")),
            E::UnusedParameter { name, span, owner } => Diagnostic::warning(
                Code::UnusedParameter,
                format!("parameter `{name}` of `{owner}` is never used"),
                Label::new(span, "unused"),
            )
            .with_help(format!("remove it, or name it `_{name}`")),
            E::EmptyFile { span } => Diagnostic::warning(
                Code::EmptyFile,
                "file defines no net, block, cell or constant",
                Label::new(span, ""),
            ),
        }
    }
}
