//! Classifying expressions: literals, names, operators, fields, arrays, branches, `if` and
//! `repeat`, and what a layer means where it is written (see [`Flow`]).

use super::error::{BodyWhat, ConstProblem, Error, StaticCtx};
use super::scope::best_match;
use super::ty::{self, OpError, SType, Ty, Val};
use super::walk::{Flow, Found, Owner, Walker};
use crate::diagnostics::Span;
use crate::syntax::ast::*;
use crate::syntax::builtins::{self, FIELDS};

impl<'p> Walker<'_, 'p> {
    /// Classifies `e` written where `flow` says.
    pub(super) fn expr(&mut self, e: &'p Expr, flow: Flow) -> Ty {
        let raw = match &e.kind {
            ExprKind::Int(v) => Ty::Known(Val::Int(*v)),
            ExprKind::Float(v) => Ty::Known(Val::Float(*v)),
            ExprKind::Bool(v) => Ty::Known(Val::Bool(*v)),
            ExprKind::Str(s) => Ty::Known(Val::Str(s.clone())),
            ExprKind::Name(id) => self.name(id, flow),
            ExprKind::Call { callee, args, .. } => self.call(callee, args, flow),
            ExprKind::Field { base, field } => self.field(base, field),
            ExprKind::Unary { op, operand } => {
                let t = self.operand(operand);
                match ty::unary(*op, &t) {
                    Ok(t) => t,
                    Err(err) => {
                        let sym = if *op == UnOp::Neg { "-" } else { "!" };
                        self.op_error(sym, err, e.span, operand, operand, &t, &t);
                        Ty::Unknown
                    }
                }
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let l = self.operand(lhs);
                let r = self.operand(rhs);
                match ty::binary(*op, &l, &r) {
                    Ok(t) => t,
                    Err(err) => {
                        self.op_error(op.as_str(), err, *op_span, lhs, rhs, &l, &r);
                        Ty::Unknown
                    }
                }
            }
            ExprKind::Array(elems) => self.array(elems),
            ExprKind::Fill { dims, .. } => {
                for d in dims {
                    self.static_expr(d, StaticCtx::Dim);
                }
                Ty::Static(SType::Array)
            }
            ExprKind::Chain(steps) => self.chain(steps),
            ExprKind::Branch {
                kind,
                kind_span,
                args,
                branches,
            } => self.branch(*kind, *kind_span, args, branches),
            ExprKind::If { cond, then, els } => self.if_expr(e, cond, then, els.as_ref(), flow),
            ExprKind::Repeat { count, index, body } => {
                let c = self.static_expr(count, StaticCtx::RepeatCount);
                if let Some(s) = c.sty() {
                    if !matches!(s, SType::Int | SType::Any | SType::Num) {
                        self.report(Error::RepeatCountType {
                            found: c.describe(),
                            span: count.span,
                        });
                    }
                }
                self.nested(body, BodyWhat::Repeat, true, index.as_ref());
                Ty::Layer { state: false }
            }
        };
        self.finish(raw, flow, e)
    }

    /// Applies a layer to the value flowing in, or rejects a value where a layer must be.
    fn finish(&mut self, raw: Ty, flow: Flow, e: &'p Expr) -> Ty {
        match (raw, flow) {
            (Ty::Unknown, _) => Ty::Unknown,
            (Ty::Layer { state }, Flow::Value) => Ty::Layer { state },
            (Ty::Layer { state }, _) => {
                if state {
                    Ty::State
                } else {
                    Ty::Tensor
                }
            }
            (Ty::Cell, Flow::Incoming(_)) => {
                self.report(Error::CellAsLayer {
                    span: head_span(e),
                    text: self.text(e.span),
                });
                Ty::Unknown
            }
            (t, Flow::Incoming(prev)) => {
                let found = match t.sty() {
                    Some(s) => s.describe().to_string(),
                    None => t.describe(),
                };
                let combine_with = t.is_tensor().then(|| self.text(prev));
                self.report(Error::NotALayer {
                    span: e.span,
                    text: self.text(e.span),
                    found,
                    combine_with,
                });
                Ty::Unknown
            }
            (t, _) => t,
        }
    }

    /// An operand, an argument or an array element: no implicit input.
    pub(super) fn operand(&mut self, e: &'p Expr) -> Ty {
        let saved = std::mem::replace(&mut self.implicit, false);
        let t = self.expr(e, Flow::Value);
        self.implicit = saved;
        t
    }

    /// A compile-time value: tensors, layers and cells are rejected.
    pub(super) fn static_expr(&mut self, e: &'p Expr, ctx: StaticCtx) -> Ty {
        let t = self.operand(e);
        if t.is_tensor() || matches!(t, Ty::Layer { .. } | Ty::Cell) {
            self.report(Error::NotStatic {
                span: e.span,
                text: self.text(e.span),
                found: t.describe(),
                ctx,
                param: None,
            });
            return Ty::Unknown;
        }
        t
    }

    #[allow(clippy::too_many_arguments, reason = "both operands with their types")]
    fn op_error(
        &mut self,
        op: &str,
        err: OpError,
        op_span: Span,
        lhs: &Expr,
        rhs: &Expr,
        l: &Ty,
        r: &Ty,
    ) {
        match err {
            OpError::Operand { right, need } => {
                let (e, t) = if right { (rhs, r) } else { (lhs, l) };
                self.report(Error::BadOperand {
                    op: op.to_string(),
                    span: e.span,
                    text: self.text(e.span),
                    found: t.describe(),
                    need,
                });
            }
            OpError::Arith(error) => {
                let operand = match error {
                    ty::ArithError::Overflow => None,
                    _ => Some(rhs.span),
                };
                self.report(Error::Arithmetic {
                    span: op_span,
                    op: op.to_string(),
                    error,
                    operand,
                });
            }
        }
    }

    fn field(&mut self, base: &'p Expr, field: &'p Ident) -> Ty {
        let b = self.operand(base);
        if !(b.is_tensor() || b == Ty::Unknown) {
            self.report(Error::FieldOfNonTensor {
                field: field.name.clone(),
                span: base.span,
                text: self.text(base.span),
                found: b.describe(),
            });
            return Ty::Unknown;
        }
        if !FIELDS.iter().any(|(f, _)| *f == field.name) {
            let suggestion = super::scope::suggest(&field.name, FIELDS.iter().map(|(f, _)| *f));
            self.report(Error::UnknownField {
                name: field.name.clone(),
                span: field.span,
                suggestion,
            });
            return Ty::Unknown;
        }
        Ty::INT
    }

    fn array(&mut self, elems: &'p [Expr]) -> Ty {
        let in_const = matches!(self.owner, Owner::Const);
        let mut vals = Vec::new();
        let mut known = true;
        let mut first_shape: Option<(Vec<usize>, Span)> = None;
        let mut ragged = false;
        for el in elems {
            let t = self.static_expr(el, StaticCtx::ArrayElement);
            match t {
                Ty::Known(v) => {
                    if in_const && !v.is_numeric() && !matches!(v, Val::Array(_)) {
                        self.report(Error::BadConstant {
                            span: el.span,
                            problem: ConstProblem::NotNumber,
                            found: Ty::Known(v.clone()).describe(),
                            first: None,
                        });
                        known = false;
                    }
                    if let Some(shape) = v.shape() {
                        match &first_shape {
                            None => first_shape = Some((shape, el.span)),
                            Some((s, first)) if *s != shape && !ragged => {
                                ragged = true;
                                known = false;
                                self.report(Error::BadConstant {
                                    span: el.span,
                                    problem: ConstProblem::Ragged,
                                    found: String::new(),
                                    first: Some(*first),
                                });
                            }
                            Some(_) => {}
                        }
                    }
                    vals.push(v);
                }
                Ty::Static(s) => {
                    known = false;
                    if in_const
                        && !matches!(
                            s,
                            SType::Int | SType::Float | SType::Num | SType::Array | SType::Any
                        )
                    {
                        self.report(Error::BadConstant {
                            span: el.span,
                            problem: ConstProblem::NotNumber,
                            found: s.describe().to_string(),
                            first: None,
                        });
                    }
                }
                _ => known = false,
            }
        }
        if known {
            Ty::Known(Val::Array(vals))
        } else {
            Ty::Static(SType::Array)
        }
    }

    fn branch(
        &mut self,
        kind: BranchKind,
        kind_span: Span,
        args: &'p [Arg],
        branches: &'p [Body],
    ) -> Ty {
        if let Some(sig) = builtins::lookup(kind.as_str()) {
            self.branch_args(sig, kind_span, args);
            if !sig.inputs.accepts(branches.len()) {
                self.report(Error::WrongInputCount {
                    callee: sig.name.to_string(),
                    span: kind_span,
                    expected: sig.inputs,
                    given: branches.len(),
                    incoming: false,
                    branches: true,
                });
            }
        }
        for b in branches {
            let t = self.nested(b, BodyWhat::Branch, true, None);
            if t.is_static() || t == Ty::Cell {
                if let Some(Stmt::Expr(last)) = b.stmts.last() {
                    self.report(Error::NotALayer {
                        span: last.span,
                        text: self.text(last.span),
                        found: t.describe(),
                        combine_with: None,
                    });
                }
            }
        }
        Ty::Layer { state: false }
    }

    fn if_expr(
        &mut self,
        e: &'p Expr,
        cond: &'p Expr,
        then: &'p Body,
        els: Option<&'p Body>,
        flow: Flow,
    ) -> Ty {
        let c = self.static_expr(cond, StaticCtx::IfCond);
        let body_implicit = matches!(flow, Flow::Incoming(_)) || self.implicit;
        let t = self.nested(then, BodyWhat::If, body_implicit, None);
        let f = els.map(|b| self.nested(b, BodyWhat::If, body_implicit, None));
        let joined = match (c.known(), f) {
            (Some(Val::Bool(true)), _) => t,
            (Some(Val::Bool(false)), Some(f)) => f,
            (_, Some(f)) => t.join(f),
            (_, None) => t,
        };
        if els.is_none() && flow == Flow::Value && !body_implicit && joined != Ty::Unknown {
            let start = e.span.start as usize;
            self.report(Error::IfWithoutElse {
                span: Span::new(self.file, start, start + 2),
            });
            return Ty::Unknown;
        }
        match flow {
            Flow::Incoming(_) if joined.is_tensor() => Ty::Layer {
                state: joined == Ty::State,
            },
            _ => joined,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Names

    /// What `name` refers to from here, marking a local binding used.
    pub(super) fn lookup(&mut self, name: &str) -> Found<'p> {
        for f in self.frames.iter_mut().rev() {
            if let Some(i) = f.find(name) {
                let b = &mut f.bindings[i];
                b.used = true;
                return Found::Local(b.ty.clone());
            }
            if let Some(def) = f.pending(name) {
                f.used_early.push(def);
                return Found::Later(def);
            }
        }
        let item = self.cx.item(self.file, name);
        match (item, builtins::lookup(name)) {
            // Nets cannot be referenced, so a net named like a built-in layer hides nothing.
            (Some(r), Some(sig)) if matches!(r.item, Item::Net(_)) => Found::Builtin(sig),
            (Some(r), _) => Found::Item(r),
            (None, Some(sig)) => Found::Builtin(sig),
            (None, None) => Found::None,
        }
    }

    /// Marks the innermost binding of `name` used (after a problem that concerns it, so
    /// that no unused warning follows).
    pub(super) fn mark_used(&mut self, name: &str) {
        for f in self.frames.iter_mut().rev() {
            if let Some(i) = f.find(name) {
                f.bindings[i].used = true;
                return;
            }
        }
    }

    /// Whether `name` refers to anything from here (without marking it used).
    pub(super) fn resolves(&mut self, name: &str) -> bool {
        self.frames
            .iter()
            .any(|f| f.find(name).is_some() || f.pending(name).is_some())
            || self.cx.item(self.file, name).is_some()
            || builtins::lookup(name).is_some()
    }

    fn name(&mut self, id: &'p Ident, flow: Flow) -> Ty {
        match self.lookup(&id.name) {
            Found::Local(t) => t,
            Found::Later(def) => {
                self.report(Error::UseBeforeDefinition {
                    name: id.name.clone(),
                    span: id.span,
                    def,
                });
                Ty::Unknown
            }
            Found::Item(r) => self.item_use(r, id, None),
            Found::Builtin(sig) => self.builtin_call(sig, id, None, flow),
            Found::None if self.symbolic => Ty::INT,
            Found::None => {
                self.unknown_name(id, flow);
                Ty::Unknown
            }
        }
    }

    /// Reports an unknown name, as a layer (E0201) where a layer is expected or a layer is
    /// the closest match, and as a value (E0200) otherwise.
    pub(super) fn unknown_name(&mut self, id: &Ident, flow: Flow) {
        let name = id.name.as_str();
        let layers = self.layer_names();
        let best_layer = best_match(name, layers.iter().copied());
        if matches!(flow, Flow::Incoming(_)) {
            self.report(Error::UnknownLayer {
                name: name.to_string(),
                span: id.span,
                suggestion: best_layer.map(|(_, s)| s),
            });
            return;
        }
        let mut values: Vec<&str> = self
            .frames
            .iter()
            .flat_map(|f| f.bindings.iter().map(|b| b.name))
            .collect();
        values.extend(
            self.cx
                .item_names(self.file, |i| matches!(i, Item::Const(_))),
        );
        let best_value = best_match(name, values.iter().copied());
        let layer_wins = match (&best_layer, &best_value) {
            (Some((dl, _)), Some((dv, _))) => dl < dv,
            (Some(_), None) => true,
            _ => false,
        };
        if layer_wins {
            self.report(Error::UnknownLayer {
                name: name.to_string(),
                span: id.span,
                suggestion: best_layer.map(|(_, s)| s),
            });
            return;
        }
        let hint = match (name, self.owner) {
            ("in", Owner::Net(_)) => Some(
                "`in` is the input of a block; in a net, start from one of its inputs".to_string(),
            ),
            ("in", Owner::Cell(_)) => Some("a cell names its inputs in `step x { … }`".to_string()),
            _ => None,
        };
        let suggestion = best_value.map(|(_, s)| s);
        if let Some(s) = &suggestion {
            // The misspelt use was meant for it: do not also call it unused.
            self.mark_used(s);
        }
        self.report(Error::UnknownName {
            name: name.to_string(),
            span: id.span,
            suggestion,
            hint,
        });
    }

    /// Built-in layers and visible blocks and cells, for suggestions.
    pub(super) fn layer_names(&mut self) -> Vec<&'p str> {
        let mut names: Vec<&'p str> = builtins::LAYERS.iter().map(|l| l.name).collect();
        names.extend(
            self.cx
                .item_names(self.file, |i| matches!(i, Item::Block(_) | Item::Cell(_))),
        );
        names
    }
}

/// The span that names what an expression is: the callee of a call, the keyword of a branch,
/// `if` or `repeat`.
pub(super) fn head_span(e: &Expr) -> Span {
    let kw = |n: usize| Span {
        file: e.span.file,
        start: e.span.start,
        end: e.span.start.saturating_add(n as u32).min(e.span.end),
    };
    match &e.kind {
        ExprKind::Name(id) => id.span,
        ExprKind::Call { callee, .. } => callee.span,
        ExprKind::Branch { kind_span, .. } => *kind_span,
        ExprKind::If { .. } => kw(2),
        ExprKind::Repeat { .. } => kw(6),
        ExprKind::Chain(steps) => steps.first().map(|s| head_span(&s.expr)).unwrap_or(e.span),
        _ => e.span,
    }
}
