//! Lowering a net: its static parameters (in dependency order), its inputs with their
//! declared types (dimensions static or symbolic), its body and its outputs.

use super::value::{TVal, Val};
use super::{Env, LowerOptions, Lowerer, Reported, Res};
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::ir::graph::{Node, Region, ScopeId, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::{DType, Dim, Poly, TensorType};
use crate::syntax::ast::{self, Expr, ExprKind, NetDecl, Stmt, TypeAnn};
use std::collections::BTreeSet;

impl<'p> Lowerer<'p> {
    pub(super) fn lower_net(&mut self, net: &'p NetDecl, file: FileId, opts: &LowerOptions) {
        let mut env = Env::new(file);
        self.reserve_labels(&net.body.stmts);
        // Static parameters first (in dependency order), then the tensor inputs whose
        // dimensions may use them.
        let statics: Vec<&'p ast::Param> = net
            .params
            .iter()
            .filter(|p| !matches!(p.ty, Some(TypeAnn::Tensor(_))))
            .collect();
        for p in order_params(&statics) {
            let v = match &p.default {
                Some(e) => self.eval(e, None, &mut env),
                None => {
                    self.error(
                        Diagnostic::error(
                            Code::BadParameter,
                            format!("net parameter `{}` has neither a tensor type nor a default", p.name.name),
                            Label::new(p.span, "needs `: f32[…]` or `= value`"),
                        )
                        .with_help("a net's inputs are tensors (`x: f32[N, 3, 224, 224]`); its other parameters need defaults"),
                    );
                    Val::Poison
                }
            };
            env.bind(&p.name.name, v);
        }
        let mut inputs: Vec<(&'p ast::Param, &'p ast::TensorType, Vec<Dim>)> = Vec::new();
        for p in &net.params {
            if let Some(TypeAnn::Tensor(t)) = &p.ty {
                if let Ok(dims) = self.input_dims(t, &mut env) {
                    inputs.push((p, t, dims));
                } else {
                    env.bind(&p.name.name, Val::Poison);
                }
            }
        }
        if let Some(b) = opts.batch {
            substitute_batch(&mut inputs, b);
        }
        for (index, (p, t, dims)) in inputs.into_iter().enumerate() {
            let ty = TensorType::new(dtype(t.dtype), dims);
            let name = p.name.name.clone();
            self.scopes[0].used.insert(name.clone());
            let node = Node {
                op: Op::Input {
                    index,
                    name: name.clone(),
                    ty: ty.clone(),
                },
                outputs: vec![ty],
                name: name.clone(),
                span: p.span,
                scope: ScopeId(0),
            };
            let id = self.region_mut().add(node, &[]);
            self.region_mut().inputs.push(id);
            self.input_decls.insert(id, t.span);
            env.bind(
                &name,
                Val::Tensor(TVal {
                    v: Region::value(id),
                    depth: 0,
                }),
            );
        }
        for stmt in &net.body.stmts {
            match stmt {
                Stmt::Let { name, value, .. } => {
                    let v = self.eval(value, None, &mut env);
                    env.bind(&name.name, v);
                }
                Stmt::Expr(e) => {
                    self.eval(e, None, &mut env);
                }
                Stmt::Emit { span, .. } => self.error(Diagnostic::error(
                    Code::BadEmit,
                    "`emit` outside a cell",
                    Label::new(*span, "only a cell's step emits"),
                )),
            }
        }
        for out in &net.outputs {
            match env.get(&out.name).cloned() {
                Some(Val::Tensor(t)) => self.add_output(&out.name, t.v),
                Some(Val::State(ts)) => {
                    for (i, t) in ts.iter().enumerate() {
                        self.add_output(&format!("{}.{i}", out.name), t.v);
                    }
                }
                Some(Val::Poison) => {}
                Some(other) => self.error(
                    Diagnostic::error(
                        Code::NoInput,
                        format!(
                            "output `{}` is {}, not a tensor",
                            out.name,
                            other.describe()
                        ),
                        Label::new(out.span, "declared as an output here"),
                    )
                    .with_help(
                        "bind the output to a chain that starts from an input: `y = x -> …`",
                    ),
                ),
                None => self.error(
                    Diagnostic::error(
                        Code::UndefinedOutput,
                        format!("output `{}` is never defined", out.name),
                        Label::new(out.span, "declared here"),
                    )
                    .with_help(format!("bind it in the body: `{} = …`", out.name)),
                ),
            }
        }
    }

    pub(super) fn add_output(&mut self, name: &str, v: ValueRef) {
        self.region_mut().outputs.push(crate::ir::graph::Output {
            name: name.to_string(),
            value: v,
        });
    }

    /// The dimensions of a declared input type: static integers, or symbolic names.
    pub(super) fn input_dims(
        &mut self,
        t: &'p ast::TensorType,
        env: &mut Env<'p>,
    ) -> Res<Vec<Dim>> {
        let mut dims = Vec::new();
        let mut failed = false;
        for d in &t.dims {
            match self.dim_expr(d, env) {
                Ok(p) => match Dim::from_poly(p.clone()) {
                    Some(Dim::Known(0)) | None => {
                        self.error(
                            Diagnostic::error(
                                Code::NonPositiveSize,
                                format!("input dimension is {p}; sizes must be at least 1"),
                                Label::new(d.span, "not a valid size"),
                            )
                            .with_help("every dimension of a tensor is a positive size or a symbolic name such as `N`"),
                        );
                        failed = true;
                    }
                    Some(dim) => dims.push(dim),
                },
                Err(Reported) => failed = true,
            }
        }
        if failed {
            Err(Reported)
        } else {
            Ok(dims)
        }
    }

    /// A dimension expression: integers, static parameters, and free names as symbols,
    /// combined with `+`, `-` and `*`.
    pub(super) fn dim_expr(&mut self, e: &'p Expr, env: &mut Env<'p>) -> Res<Poly> {
        match &e.kind {
            ExprKind::Name(id)
                if env.get(&id.name).is_none()
                    && self.lookup_const(env.file, &id.name).is_none() =>
            {
                Ok(Poly::symbol(&id.name))
            }
            ExprKind::Binary { op, lhs, rhs, .. }
                if matches!(op, ast::BinOp::Add | ast::BinOp::Sub | ast::BinOp::Mul)
                    && mentions_free_name(self, e, env) =>
            {
                let a = self.dim_expr(lhs, env)?;
                let b = self.dim_expr(rhs, env)?;
                let r = match op {
                    ast::BinOp::Add => a.checked_add(&b),
                    ast::BinOp::Sub => a.checked_sub(&b),
                    _ => a.checked_mul(&b),
                };
                r.ok_or_else(|| self.overflow(e.span))
            }
            _ => match self.eval(e, None, env) {
                Val::Int(v) => Ok(Poly::constant(v)),
                Val::Poison => Err(Reported),
                other => Err(self.report(Diagnostic::error(
                    Code::NotStatic,
                    format!(
                        "a dimension must be an integer or a symbolic name, not {}",
                        other.describe()
                    ),
                    Label::new(e.span, "not a dimension"),
                ))),
            },
        }
    }
}

fn dtype(d: ast::DType) -> DType {
    match d {
        ast::DType::F16 => DType::F16,
        ast::DType::F32 => DType::F32,
        ast::DType::F64 => DType::F64,
        ast::DType::I32 => DType::I32,
        ast::DType::I64 => DType::I64,
        ast::DType::Bool => DType::Bool,
    }
}

/// Replaces the batch symbol (axis 0 of the first input, when it is a lone symbol) by `b`
/// in every input.
fn substitute_batch(inputs: &mut [(&ast::Param, &ast::TensorType, Vec<Dim>)], b: u64) {
    let Some(sym) = inputs.first().and_then(|(_, _, dims)| match dims.first() {
        Some(Dim::Sym(p)) => match p.symbols().as_slice() {
            [one] if *p == Poly::symbol(one) => Some(one.clone()),
            _ => None,
        },
        _ => None,
    }) else {
        return;
    };
    let Ok(bi) = i64::try_from(b) else { return };
    for (_, _, dims) in inputs.iter_mut() {
        for d in dims.iter_mut() {
            if let Dim::Sym(p) = d {
                if let Some(q) = p.substitute(&sym, bi).and_then(Dim::from_poly) {
                    *d = q;
                }
            }
        }
    }
}

/// Static net parameters in an order where each default comes after the parameters it
/// mentions (source order otherwise; cycles keep source order and fail on evaluation).
fn order_params<'a>(params: &[&'a ast::Param]) -> Vec<&'a ast::Param> {
    let names: BTreeSet<&str> = params.iter().map(|p| p.name.name.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    let mut pending: Vec<&'a ast::Param> = params.to_vec();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for p in pending {
            let mut used = BTreeSet::new();
            if let Some(d) = &p.default {
                collect_names(d, &mut used);
            }
            let ready = used.iter().all(|n| {
                !names.contains(n.as_str()) || done.contains(n.as_str()) || *n == p.name.name
            });
            if ready {
                done.insert(p.name.name.as_str());
                out.push(p);
            } else {
                rest.push(p);
            }
        }
        if rest.len() == before {
            out.extend(rest);
            break;
        }
        pending = rest;
    }
    out
}

fn collect_names(e: &Expr, out: &mut BTreeSet<String>) {
    walk(e, &mut |e| {
        if let ExprKind::Name(id) = &e.kind {
            out.insert(id.name.clone());
        }
    });
}

/// Whether `e` mentions a name that is neither bound nor a constant (a symbolic dim).
fn mentions_free_name<'p>(l: &mut Lowerer<'p>, e: &Expr, env: &Env<'p>) -> bool {
    let mut names = BTreeSet::new();
    collect_names(e, &mut names);
    names
        .iter()
        .any(|n| env.get(n).is_none() && l.lookup_const(env.file, n).is_none())
}

/// Calls `f` on `e` and every expression inside it.
fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    let body = |b: &ast::Body, f: &mut dyn FnMut(&Expr)| {
        for s in &b.stmts {
            match s {
                Stmt::Let { value, .. } | Stmt::Emit { value, .. } => walk(value, f),
                Stmt::Expr(e) => walk(e, f),
            }
        }
    };
    match &e.kind {
        ExprKind::Call { args, .. } | ExprKind::Branch { args, .. } => {
            for a in args {
                walk(&a.value, f);
            }
            if let ExprKind::Branch { branches, .. } = &e.kind {
                for b in branches {
                    body(b, f);
                }
            }
        }
        ExprKind::Field { base, .. } => walk(base, f),
        ExprKind::Unary { operand, .. } => walk(operand, f),
        ExprKind::Binary { lhs, rhs, .. } => {
            walk(lhs, f);
            walk(rhs, f);
        }
        ExprKind::Array(items) | ExprKind::Fill { dims: items, .. } => {
            for i in items {
                walk(i, f);
            }
        }
        ExprKind::Chain(steps) => {
            for s in steps {
                walk(&s.expr, f);
            }
        }
        ExprKind::If { cond, then, els } => {
            walk(cond, f);
            body(then, f);
            if let Some(b) = els {
                body(b, f);
            }
        }
        ExprKind::Repeat { count, body: b, .. } => {
            walk(count, f);
            body(b, f);
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Name(_) => {}
    }
}
