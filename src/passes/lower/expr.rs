//! Elaborating expressions: chains, names, calls of blocks, cells and layers, branches,
//! conditions, repeats and arithmetic.
//!
//! `flow` is the value flowing into an expression: the previous step of a chain, or the
//! input of the block, branch or repeat body being elaborated. Layer-like forms (a layer or
//! block name, a call, a branch, an `if`, a `repeat`) apply to it; value forms (names of
//! values, literals, arithmetic) ignore it, and are an error in a chain after the first
//! step.

use super::errors::ErrorSite;
use super::value::{static_binary, static_neg, CellInst, LayerRef, StaticError, TVal, Val};
use super::{Env, Lowerer, Reported, Res};
use crate::diagnostics::{Code, Diagnostic, FileId, Label, Span};
use crate::ir::graph::Region;
use crate::ir::op::Op;
use crate::ir::shape::{DType, TensorType};
use crate::syntax::ast::{
    Arg, BinOp, ChainStep, Expr, ExprKind, FillKind, Ident, ScalarType, UnOp,
};
use crate::syntax::builtins;

/// An evaluated call argument.
#[derive(Clone, Debug)]
pub(crate) struct EvArg<'p> {
    /// The keyword, if any.
    pub name: Option<&'p Ident>,
    /// The value.
    pub val: Val<'p>,
    /// The whole argument.
    pub span: Span,
}

impl<'p> Lowerer<'p> {
    /// Evaluates `e` with `flow` flowing in.
    pub(super) fn eval(
        &mut self,
        e: &'p Expr,
        flow: Option<&Val<'p>>,
        env: &mut Env<'p>,
    ) -> Val<'p> {
        match &e.kind {
            ExprKind::Int(v) => Val::Int(*v),
            ExprKind::Float(v) => Val::Float(*v),
            ExprKind::Bool(v) => Val::Bool(*v),
            ExprKind::Str(s) => Val::Str(s.clone()),
            ExprKind::Name(id) => self.eval_name(id, flow, None, false, env),
            ExprKind::Call { callee, args, .. } => {
                self.eval_call(callee, args, flow, None, env, e.span)
            }
            ExprKind::Field { base, field } => {
                let b = self.eval(base, None, env);
                self.eval_field(b, field, e.span)
            }
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand, None, env);
                self.eval_unary(*op, v, e.span)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let a = self.eval(lhs, None, env);
                let b = self.eval(rhs, None, env);
                self.eval_binary(*op, a, b, *op_span, e.span)
            }
            ExprKind::Array(items) => {
                let vals: Vec<Val<'p>> = items.iter().map(|i| self.eval(i, None, env)).collect();
                if vals.iter().any(|v| matches!(v, Val::Poison)) {
                    return Val::Poison;
                }
                if let Some(bad) = vals.iter().position(|v| !v.is_static()) {
                    self.error(Diagnostic::error(
                        Code::BadConstant,
                        format!("an array holds numbers, not {}", vals[bad].describe()),
                        Label::new(items[bad].span, "not a number"),
                    ));
                    return Val::Poison;
                }
                Val::List(vals)
            }
            ExprKind::Fill { kind, dims } => {
                let mut ds = Vec::new();
                for d in dims {
                    match self.eval(d, None, env) {
                        Val::Int(v) if v >= 1 => ds.push(v.unsigned_abs()),
                        Val::Poison => return Val::Poison,
                        other => {
                            self.error(non_positive("a fill dimension", &other, d.span));
                            return Val::Poison;
                        }
                    }
                }
                Val::Fill {
                    value: match kind {
                        FillKind::Zeros => 0.0,
                        FillKind::Ones => 1.0,
                    },
                    dims: ds,
                }
            }
            ExprKind::Chain(steps) => self.eval_chain(steps, flow, env),
            ExprKind::Branch {
                kind,
                kind_span,
                args,
                branches,
            } => self.eval_branch(*kind, *kind_span, args, branches, flow, None, env, e.span),
            ExprKind::If { cond, then, els } => self.eval_if(cond, then, els.as_ref(), flow, env),
            ExprKind::Repeat { count, index, body } => {
                self.eval_repeat(count, index.as_ref(), body, flow, None, env, e.span)
            }
        }
    }

    fn eval_chain(
        &mut self,
        steps: &'p [ChainStep],
        flow: Option<&Val<'p>>,
        env: &mut Env<'p>,
    ) -> Val<'p> {
        let mut cur: Option<Val<'p>> = flow.cloned();
        for (i, step) in steps.iter().enumerate() {
            let consume = i > 0;
            let e = &step.expr;
            let label = step.label.as_ref();
            let v = match &e.kind {
                ExprKind::Name(id) => self.eval_name(id, cur.as_ref(), label, consume, env),
                ExprKind::Call { callee, args, .. } => {
                    self.eval_call(callee, args, cur.as_ref(), label, env, e.span)
                }
                ExprKind::Branch {
                    kind,
                    kind_span,
                    args,
                    branches,
                } => self.eval_branch(
                    *kind,
                    *kind_span,
                    args,
                    branches,
                    cur.as_ref(),
                    label,
                    env,
                    e.span,
                ),
                ExprKind::Repeat { count, index, body } => self.eval_repeat(
                    count,
                    index.as_ref(),
                    body,
                    cur.as_ref(),
                    label,
                    env,
                    e.span,
                ),
                ExprKind::If { .. } | ExprKind::Chain(_) => self.eval(e, cur.as_ref(), env),
                ExprKind::Int(_)
                | ExprKind::Float(_)
                | ExprKind::Bool(_)
                | ExprKind::Str(_)
                | ExprKind::Field { .. }
                | ExprKind::Unary { .. }
                | ExprKind::Binary { .. }
                | ExprKind::Array(_)
                | ExprKind::Fill { .. } => {
                    if consume {
                        if !matches!(cur, Some(Val::Poison)) {
                            self.error(not_a_layer(e.span, "this expression"));
                        }
                        Val::Poison
                    } else {
                        self.eval(e, None, env)
                    }
                }
            };
            cur = Some(v);
        }
        cur.unwrap_or(Val::Poison)
    }

    /// A name: a bound value, a constant, a symbol, or a layer, block or cell (applied to
    /// `flow` when there is one).
    fn eval_name(
        &mut self,
        id: &'p Ident,
        flow: Option<&Val<'p>>,
        label: Option<&'p Ident>,
        consume: bool,
        env: &mut Env<'p>,
    ) -> Val<'p> {
        let name = id.name.as_str();
        let value = match env.get(name) {
            Some(v) => Some(v.clone()),
            None => self
                .lookup_const(env.file, name)
                .map(|(c, f)| self.const_value(c, f)),
        }
        .or_else(|| builtins::is_symbol(name).then(|| Val::Sym(name.to_string())));
        if let Some(v) = value {
            // A layer passed around as a value (`act = relu`, a block parameter) applies
            // like the layer itself.
            if let (Val::Layer(l), Some(fl)) = (&v, flow) {
                return match *l {
                    LayerRef::Builtin(sig) => {
                        self.apply_builtin(sig, Vec::new(), Some(fl), label, id.span)
                    }
                    LayerRef::Block(b, f) => {
                        self.call_block(b, f, Vec::new(), Some(fl), label, id.span)
                    }
                };
            }
            if consume {
                if !matches!(flow, Some(Val::Poison)) {
                    self.error(not_a_layer(id.span, &format!("`{name}`")));
                }
                return Val::Poison;
            }
            return v;
        }
        if let Some((b, f)) = self.lookup_block(env.file, name) {
            return match flow {
                Some(fl) => self.call_block(b, f, Vec::new(), Some(fl), label, id.span),
                None => Val::Layer(LayerRef::Block(b, f)),
            };
        }
        if let Some((c, f)) = self.lookup_cell(env.file, name) {
            return self.cell_value(c, f, Vec::new(), flow, id.span);
        }
        if let Some(sig) = builtins::lookup(name) {
            return match flow {
                Some(fl) => self.apply_builtin(sig, Vec::new(), Some(fl), label, id.span),
                None => Val::Layer(LayerRef::Builtin(sig)),
            };
        }
        let mut candidates = env.names();
        candidates.extend(builtins::LAYERS.iter().map(|l| l.name.to_string()));
        let mut d = Diagnostic::error(
            Code::UnknownName,
            format!("unknown name `{name}`"),
            Label::new(id.span, "not defined"),
        );
        if let Some(best) = closest(name, &candidates) {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        self.error(d);
        Val::Poison
    }

    fn eval_call(
        &mut self,
        callee: &'p Ident,
        args: &'p [Arg],
        flow: Option<&Val<'p>>,
        label: Option<&'p Ident>,
        env: &mut Env<'p>,
        span: Span,
    ) -> Val<'p> {
        let name = callee.name.as_str();
        let block = self.lookup_block(env.file, name);
        let cell = self.lookup_cell(env.file, name);
        let sig = builtins::lookup(name);
        if block.is_none() && cell.is_none() && sig.is_none() {
            let candidates: Vec<String> = builtins::LAYERS
                .iter()
                .map(|l| l.name.to_string())
                .collect();
            let mut d = Diagnostic::error(
                Code::UnknownLayer,
                format!("unknown layer or block `{name}`"),
                Label::new(callee.span, "not defined"),
            );
            if let Some(best) = closest(name, &candidates) {
                d = d.with_help(format!("did you mean `{best}`?"));
            }
            self.error(d);
            return Val::Poison;
        }
        let evargs = self.eval_args(args, env);
        if let Some((b, f)) = block {
            return self.call_block(b, f, evargs, flow, label, span);
        }
        if let Some((c, f)) = cell {
            return self.cell_value(c, f, evargs, flow, span);
        }
        match sig {
            Some(sig) => self.apply_builtin(sig, evargs, flow, label, span),
            None => Val::Poison,
        }
    }

    pub(super) fn eval_args(&mut self, args: &'p [Arg], env: &mut Env<'p>) -> Vec<EvArg<'p>> {
        args.iter()
            .map(|a| {
                let val = match (&a.name, &a.value.kind) {
                    // `shape: [N, 64, -1]`: free names in a shape list are symbolic sizes.
                    (Some(n), ExprKind::Array(items)) if n.name == "shape" => {
                        let mut vals = Vec::new();
                        for it in items {
                            match self.dim_expr(it, env) {
                                Ok(p) => vals.push(match p.as_const() {
                                    Some(c) => Val::Int(c),
                                    None => Val::Dim(p),
                                }),
                                Err(Reported) => vals.push(Val::Poison),
                            }
                        }
                        if vals.iter().any(|v| matches!(v, Val::Poison)) {
                            Val::Poison
                        } else {
                            Val::List(vals)
                        }
                    }
                    _ => self.eval(&a.value, None, env),
                };
                EvArg {
                    name: a.name.as_ref(),
                    val,
                    span: a.span,
                }
            })
            .collect()
    }

    fn cell_value(
        &mut self,
        decl: &'p crate::syntax::ast::CellDecl,
        file: FileId,
        args: Vec<EvArg<'p>>,
        flow: Option<&Val<'p>>,
        span: Span,
    ) -> Val<'p> {
        if let Some(f) = flow {
            if !matches!(f, Val::Poison) {
                self.error(
                    Diagnostic::error(
                        Code::NotALayer,
                        format!("cell `{}` is applied directly", decl.name.name),
                        Label::new(span, "a cell describes one time step"),
                    )
                    .with_help(format!(
                        "run it over the sequence with `unroll({}(…))`",
                        decl.name.name
                    )),
                );
            }
            return Val::Poison;
        }
        Val::Cell(CellInst {
            decl,
            file,
            args: args
                .into_iter()
                .map(|a| (a.name.map(|n| n.name.clone()), a.val, a.span))
                .collect(),
            span,
        })
    }

    /// The flow as a tensor: `Ok(None)` when there is none, `Err` (reported, or silent for
    /// poison) when it is not a tensor.
    pub(super) fn flow_tensor(
        &mut self,
        flow: Option<&Val<'p>>,
        layer: &str,
        span: Span,
    ) -> Res<Option<TVal>> {
        match flow {
            None => Ok(None),
            Some(Val::Tensor(t)) => Ok(Some(*t)),
            Some(Val::Poison) => Err(Reported),
            Some(other) => Err(self.report(
                Diagnostic::error(
                    Code::BadOperand,
                    format!("`{layer}` is applied to {}, not a tensor", other.describe()),
                    Label::new(span, "needs a tensor input"),
                )
                .with_help(if matches!(other, Val::State(_)) {
                    "a recurrent state (`emit: state`) feeds another recurrence as `init:`"
                        .to_string()
                } else {
                    "start the chain from a tensor value".to_string()
                }),
            )),
        }
    }

    fn eval_field(&mut self, base: Val<'p>, field: &Ident, span: Span) -> Val<'p> {
        let t = match base {
            Val::Tensor(t) => t,
            Val::Poison => return Val::Poison,
            other => {
                self.error(Diagnostic::error(
                    Code::BadOperand,
                    format!(
                        "`.{}` reads a property of a tensor, not of {}",
                        field.name,
                        other.describe()
                    ),
                    Label::new(span, "not a tensor"),
                ));
                return Val::Poison;
            }
        };
        let ty = self.ty(t).clone();
        let rank = ty.shape.rank();
        let axis = match field.name.as_str() {
            "rank" => return Val::Int(i64::try_from(rank).unwrap_or(i64::MAX)),
            "channels" => 1,
            "height" => 2,
            "width" => 3,
            "features" => rank.saturating_sub(1),
            other => {
                let names: Vec<String> = builtins::FIELDS
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect();
                self.error(
                    Diagnostic::error(
                        Code::UnknownName,
                        format!("tensors have no property `{other}`"),
                        Label::new(field.span, "unknown property"),
                    )
                    .with_help(format!("properties: {}", names.join(", "))),
                );
                return Val::Poison;
            }
        };
        match ty.shape.dims().get(axis) {
            Some(d) => match d.known().and_then(|k| i64::try_from(k).ok()) {
                Some(k) => Val::Int(k),
                None => {
                    self.error(Diagnostic::error(
                        Code::NotStatic,
                        format!("`.{}` of {ty} is the symbolic size {d}", field.name),
                        Label::new(span, "not known at compile time"),
                    ));
                    Val::Poison
                }
            },
            None => {
                self.error(Diagnostic::error(
                    Code::WrongRank,
                    format!(
                        "`.{}` needs axis {axis}, but {ty} has {rank} axes",
                        field.name
                    ),
                    Label::new(span, "no such axis"),
                ));
                Val::Poison
            }
        }
    }

    fn eval_unary(&mut self, op: UnOp, v: Val<'p>, span: Span) -> Val<'p> {
        match (op, &v) {
            (_, Val::Poison) => Val::Poison,
            (UnOp::Neg, Val::Tensor(t)) => {
                let t = *t;
                let name = self.fresh_name(None, "neg");
                match self.node(Op::Neg, &[t], &name, &ErrorSite::new("neg", span)) {
                    Ok(id) => Val::Tensor(self.out(id, 0)),
                    Err(Reported) => Val::Poison,
                }
            }
            (UnOp::Neg, _) => match static_neg(&v) {
                Ok(r) => r,
                Err(e) => {
                    self.error(static_error(e, span));
                    Val::Poison
                }
            },
            (UnOp::Not, Val::Bool(b)) => Val::Bool(!b),
            (UnOp::Not, _) => {
                self.error(Diagnostic::error(
                    Code::BadOperand,
                    format!("`!` needs `true` or `false`, not {}", v.describe()),
                    Label::new(span, "not a boolean"),
                ));
                Val::Poison
            }
        }
    }

    fn eval_binary(
        &mut self,
        op: BinOp,
        a: Val<'p>,
        b: Val<'p>,
        op_span: Span,
        span: Span,
    ) -> Val<'p> {
        if matches!(a, Val::Poison) || matches!(b, Val::Poison) {
            return Val::Poison;
        }
        let tensor = matches!(a, Val::Tensor(_)) || matches!(b, Val::Tensor(_));
        if !tensor {
            if a.is_static() && b.is_static() {
                return match static_binary(op, &a, &b) {
                    Ok(v) => v,
                    Err(e) => {
                        self.error(
                            static_error(e, span)
                                .with_label(Label::new(op_span, format!("`{}`", op.as_str()))),
                        );
                        Val::Poison
                    }
                };
            }
            self.error(Diagnostic::error(
                Code::BadOperand,
                format!(
                    "`{}` cannot combine {} and {}",
                    op.as_str(),
                    a.describe(),
                    b.describe()
                ),
                Label::new(op_span, "invalid operands"),
            ));
            return Val::Poison;
        }
        let (opk, kind) = match op {
            BinOp::Add => (Op::Add, "add"),
            BinOp::Sub => (Op::Sub, "sub"),
            BinOp::Mul => (Op::Mul, "mul"),
            BinOp::Div => (Op::Div, "div"),
            BinOp::Or
            | BinOp::And
            | BinOp::Eq
            | BinOp::Ne
            | BinOp::Lt
            | BinOp::Le
            | BinOp::Gt
            | BinOp::Ge
            | BinOp::Rem
            | BinOp::Pow => {
                self.error(Diagnostic::error(
                    Code::BadOperand,
                    format!("`{}` does not apply to tensors", op.as_str()),
                    Label::new(op_span, "tensors support + - * /"),
                ));
                return Val::Poison;
            }
        };
        let dtype = match (&a, &b) {
            (Val::Tensor(t), _) | (_, Val::Tensor(t)) => self.ty(*t).dtype,
            _ => DType::F32,
        };
        let operand = |l: &mut Self, v: &Val<'p>| -> Option<TVal> {
            match v {
                Val::Tensor(t) => Some(*t),
                _ => match v.as_f64() {
                    Some(x) => Some(l.fill(x, TensorType::new(dtype, Vec::new()), span)),
                    None => {
                        l.error(Diagnostic::error(
                            Code::BadOperand,
                            format!(
                                "`{}` cannot combine a tensor with {}",
                                op.as_str(),
                                v.describe()
                            ),
                            Label::new(span, "invalid operand"),
                        ));
                        None
                    }
                },
            }
        };
        let (Some(x), Some(y)) = (operand(self, &a), operand(self, &b)) else {
            return Val::Poison;
        };
        let name = self.fresh_name(None, kind);
        match self.node(opk, &[x, y], &name, &ErrorSite::new(kind, span)) {
            Ok(id) => Val::Tensor(self.out(id, 0)),
            Err(Reported) => Val::Poison,
        }
    }

    /// The value of a new single-output node, or poison.
    pub(super) fn single(
        &mut self,
        op: Op,
        inputs: &[TVal],
        name: &str,
        site: &ErrorSite<'_>,
    ) -> Val<'p> {
        match self.node(op, inputs, name, site) {
            Ok(id) => Val::Tensor(TVal {
                v: Region::value(id),
                depth: self.depth(),
            }),
            Err(Reported) => Val::Poison,
        }
    }
}

pub(super) fn scalar_fits(t: ScalarType, v: &Val<'_>) -> bool {
    match t {
        ScalarType::Int => matches!(v, Val::Int(_) | Val::Poison),
        ScalarType::Float => matches!(v, Val::Int(_) | Val::Float(_) | Val::Poison),
        ScalarType::Bool => matches!(v, Val::Bool(_) | Val::Poison),
        ScalarType::Str => matches!(v, Val::Str(_) | Val::Poison),
    }
}

/// The closest of `candidates` to `name`, if close enough to suggest.
pub(super) fn closest(name: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d > 0)
        .min()
        .map(|(_, c)| c.clone())
}

pub(super) fn not_a_layer(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::NotALayer,
        format!("{what} is a value, not a layer, so nothing can flow into it"),
        Label::new(span, "used as a layer here"),
    )
    .with_help("only layers, blocks, branches and repeats can follow `->`")
}

pub(super) fn no_input(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::NoInput,
        format!("{what} has no input"),
        Label::new(span, "nothing flows into this"),
    )
    .with_help("start the chain from a tensor: `y = x -> …`")
}

pub(super) fn non_positive(what: &str, v: &Val<'_>, span: Span) -> Diagnostic {
    match v {
        Val::Int(_) => Diagnostic::error(
            Code::NonPositiveSize,
            format!("{what} must be at least 1, but is {}", describe_number(v)),
            Label::new(span, "not a valid size"),
        )
        .with_help(
            "counts and sizes (filters, units, kernels, strides, dimensions) are positive integers",
        ),
        other => Diagnostic::error(
            Code::WrongArgumentType,
            format!("{what} must be an integer, not {}", other.describe()),
            Label::new(span, "expected an integer"),
        )
        .with_help("sizes are compile-time integers"),
    }
}

fn describe_number(v: &Val<'_>) -> String {
    match v {
        Val::Int(x) => x.to_string(),
        Val::Float(x) => x.to_string(),
        other => other.describe(),
    }
}

pub(super) fn static_error(e: StaticError, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::StaticArithmetic,
        format!("invalid compile-time arithmetic: {}", e.describe()),
        Label::new(span, "here"),
    )
}
