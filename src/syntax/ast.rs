//! The abstract syntax tree of a `.net` file.
//!
//! Every node carries the byte [`Span`] of the text it came from, so that any later stage
//! (resolution, shape inference, the language server) can point back into the source.
//! Invariants, established by the parser:
//! - spans lie inside their file, on character boundaries, and a node's span covers its
//!   children's spans;
//! - [`ExprKind::Chain`] has at least two steps, or one step with a label;
//! - expression trees are at most [`MAX_DEPTH`](super::parser::MAX_DEPTH) levels deep (the
//!   parser bounds brackets, operators, field and `else if` chains, and the total depth), so
//!   recursive walks are safe on any thread's stack.

use crate::diagnostics::{FileId, Span};

/// A name with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A doc comment (`/// …` lines), joined with newlines, without the slashes.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    /// The text.
    pub text: String,
    /// The span of all its lines.
    pub span: Span,
}

/// One parsed file.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    /// The file.
    pub file: FileId,
    /// Its items in source order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `use "path.net"`.
    Use(UseDecl),
    /// `const name = expr`.
    Const(ConstDecl),
    /// `block name(params) { body }`.
    Block(BlockDecl),
    /// `cell name(params) { state …  step x { … } }`.
    Cell(CellDecl),
    /// `net name(inputs and params) -> outputs { body }`.
    Net(NetDecl),
}

impl Item {
    /// The item's name (the path for a `use`).
    pub fn name(&self) -> &str {
        match self {
            Item::Use(u) => &u.path,
            Item::Const(c) => &c.name.name,
            Item::Block(b) => &b.name.name,
            Item::Cell(c) => &c.name.name,
            Item::Net(n) => &n.name.name,
        }
    }

    /// The span of the whole item.
    pub fn span(&self) -> Span {
        match self {
            Item::Use(u) => u.span,
            Item::Const(c) => c.span,
            Item::Block(b) => b.span,
            Item::Cell(c) => c.span,
            Item::Net(n) => n.span,
        }
    }
}

/// `use "path"`: brings the blocks, cells and constants of another file into scope.
#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    /// The path as written, relative to the importing file.
    pub path: String,
    /// The span of the string literal.
    pub path_span: Span,
    /// The span of the whole item.
    pub span: Span,
}

/// `const name = expr`: a compile-time constant (number or array).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDecl {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// Name.
    pub name: Ident,
    /// Value.
    pub value: Expr,
    /// The whole item.
    pub span: Span,
}

/// A parameter of a net, block or cell: `x: f32[N, 3, 224, 224]`, `c`, `stride = 1`,
/// `rate: float = 0.5`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Name.
    pub name: Ident,
    /// Declared type, if any.
    pub ty: Option<TypeAnn>,
    /// Default value, if any.
    pub default: Option<Expr>,
    /// The whole parameter.
    pub span: Span,
}

/// A type annotation.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeAnn {
    /// A tensor type: the parameter is a tensor input.
    Tensor(TensorType),
    /// A scalar compile-time type.
    Scalar(ScalarType, Span),
}

/// `f32[N, 3, 224, 224]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Span of the element type.
    pub dtype_span: Span,
    /// Dimensions: compile-time integer expressions or symbolic names such as `N`, `T`.
    pub dims: Vec<Expr>,
    /// The whole type.
    pub span: Span,
}

/// Element types of tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// The name as written in source.
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
}

/// Types of compile-time parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// Integer.
    Int,
    /// Real number (integers are accepted).
    Float,
    /// Boolean.
    Bool,
    /// String.
    Str,
}

impl ScalarType {
    /// The name as written in source.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::Int => "int",
            ScalarType::Float => "float",
            ScalarType::Bool => "bool",
            ScalarType::Str => "str",
        }
    }
}

/// `block name(params) { body }`: a reusable function of the value flowing into it (`in`).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDecl {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// Name.
    pub name: Ident,
    /// Compile-time parameters.
    pub params: Vec<Param>,
    /// Body; its last statement is the result.
    pub body: Body,
    /// The whole item.
    pub span: Span,
}

/// `cell name(params) { state … step x { … } }`: a recurrent cell written as equations.
#[derive(Clone, Debug, PartialEq)]
pub struct CellDecl {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// Name.
    pub name: Ident,
    /// Compile-time parameters.
    pub params: Vec<Param>,
    /// State variables with their initial values, in declaration order.
    pub states: Vec<StateVar>,
    /// The step function.
    pub step: Step,
    /// The whole item.
    pub span: Span,
}

/// `h = zeros[hidden]` in a `state` declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct StateVar {
    /// Name.
    pub name: Ident,
    /// Initial value (per example: the batch dimension is implied).
    pub init: Expr,
    /// The whole declaration.
    pub span: Span,
}

/// `step x { … emit h }`: one time step; `inputs` name the per-step inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The per-step input names.
    pub inputs: Vec<Ident>,
    /// The equations; assigning a state name updates that state.
    pub body: Body,
    /// The whole step.
    pub span: Span,
}

/// `net name(params) -> outputs { body }`.
#[derive(Clone, Debug, PartialEq)]
pub struct NetDecl {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// Name.
    pub name: Ident,
    /// Inputs (tensor-typed parameters) and compile-time parameters.
    pub params: Vec<Param>,
    /// Output names, bound in the body.
    pub outputs: Vec<Ident>,
    /// Body.
    pub body: Body,
    /// The whole item.
    pub span: Span,
}

/// A `{ … }` list of statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}` (for branch bodies: the statements' extent).
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `name = expr`.
    Let {
        /// The bound name.
        name: Ident,
        /// Its value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `emit expr` (cells only).
    Emit {
        /// The emitted value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// An expression; as the last statement of a body it is the body's result.
    Expr(Expr),
}

impl Stmt {
    /// The span of the whole statement.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. } | Stmt::Emit { span, .. } => *span,
            Stmt::Expr(e) => e.span,
        }
    }
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// Kinds of expressions. The same syntax serves compile-time arithmetic (`4 * c`), tensor
/// equations (`f * c + i * g`) and layer chains (`x -> conv(6, kernel: 5) -> relu`); which is
/// which is decided by name resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A real literal.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal (escapes decoded).
    Str(String),
    /// A name: a value, a parameter, a constant, a keyword symbol such as `same`, or a layer
    /// used without arguments such as `relu`.
    Name(Ident),
    /// `callee(args)`: a layer, block or cell applied with arguments.
    Call {
        /// What is called.
        callee: Ident,
        /// The arguments, in order.
        args: Vec<Arg>,
        /// The span of the parenthesised argument list.
        args_span: Span,
    },
    /// `base.field`, such as `in.channels`.
    Field {
        /// The value whose property is read.
        base: Box<Expr>,
        /// The property.
        field: Ident,
    },
    /// A prefix operator.
    Unary {
        /// The operator.
        op: UnOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// A binary operator.
    Binary {
        /// The operator.
        op: BinOp,
        /// Span of the operator token.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `[a, b, c]`: an array constant or a list argument (`kernel: [1, 7]`).
    Array(Vec<Expr>),
    /// `zeros[d…]` or `ones[d…]`.
    Fill {
        /// Which fill.
        kind: FillKind,
        /// Dimensions.
        dims: Vec<Expr>,
    },
    /// `a -> b -> c`: each step is applied to the value before it.
    Chain(Vec<ChainStep>),
    /// `concat { a | b }` / `add { a | b }`: each branch receives the incoming value.
    Branch {
        /// Which merge.
        kind: BranchKind,
        /// Span of the keyword.
        kind_span: Span,
        /// Arguments such as `axis: 1`.
        args: Vec<Arg>,
        /// The branches.
        branches: Vec<Body>,
    },
    /// `if cond { … } else { … }`, with a compile-time condition.
    If {
        /// The condition.
        cond: Box<Expr>,
        /// Taken when true.
        then: Body,
        /// Taken when false (an `else if` is a body holding one `If`).
        els: Option<Body>,
    },
    /// `repeat count as i { … }`: `count` copies of the body, chained.
    Repeat {
        /// How many copies.
        count: Box<Expr>,
        /// The index name, bound to 0, 1, … in the body.
        index: Option<Ident>,
        /// The body.
        body: Body,
    },
}

/// One step of a chain, optionally named: `conv1: conv(64, kernel: 3)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainStep {
    /// The explicit name given to the layer, if any.
    pub label: Option<Ident>,
    /// The step.
    pub expr: Expr,
}

/// A call argument, positional or `name: value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword, for keyword arguments.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `-x`.
    Neg,
    /// `!x`.
    Not,
}

/// Binary operators, by increasing precedence group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `||`.
    Or,
    /// `&&`.
    And,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
    /// `^` (right-associative).
    Pow,
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Pow => "^",
        }
    }

    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 5,
            BinOp::Pow => 6,
        }
    }

    /// Whether `a op b op c` groups as `a op (b op c)`.
    pub fn is_right_assoc(self) -> bool {
        self == BinOp::Pow
    }
}

/// `zeros` or `ones`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FillKind {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
}

/// How branches are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BranchKind {
    /// Concatenation on an axis (channels by default).
    Concat,
    /// Elementwise sum.
    Add,
    /// Elementwise product.
    Mul,
}

impl BranchKind {
    /// The keyword as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BranchKind::Concat => "concat",
            BranchKind::Add => "add",
            BranchKind::Mul => "mul",
        }
    }
}
