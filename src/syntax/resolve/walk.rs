//! Walking the items: parameters, the bodies of nets, blocks, cells and constants, scopes,
//! statements and chains (expressions are in `expr.rs`).
//!
//! Three positions decide what a layer written in an expression means ([`Flow`]):
//! - after `->` a value flows in, and the step must be a layer, block, branch, `if` or
//!   `repeat` (a tensor there is E0218);
//! - the first step of a chain in a block, a branch or a `repeat` body applies to the implicit
//!   input (the block's `in`, the branch's incoming value);
//! - anywhere else (a net's or a cell's statements, arguments, operands) a layer stays a layer:
//!   as a statement it has no input (E0219), as an operand it is E0225, as an argument E0218.
//!
//! A call in call form with tensor arguments (`concat(a, b)`, `dense(z, hidden)`) has its
//! inputs and is a tensor wherever it is written.

use super::error::{BodyWhat, ConstProblem, Error, ParamProblem, StaticCtx};
use super::expr::head_span;
use super::scope::{BindKind, Frame};
use super::ty::{SType, Ty, Val};
use super::{Cx, ItemRef};
use crate::diagnostics::{FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::builtins;

/// What is being checked.
#[derive(Clone, Copy, Debug)]
pub(super) enum Owner<'p> {
    /// A net.
    Net(&'p NetDecl),
    /// A block.
    Block(&'p BlockDecl),
    /// A cell.
    Cell(&'p CellDecl),
    /// A constant.
    Const,
}

/// Whether a value flows into the expression being classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// No value flows in: a layer stays a layer.
    Value,
    /// The first step of a chain with an implicit input: a layer applies to it.
    Implicit,
    /// A chain step after `->`; the span is the step before it.
    Incoming(Span),
}

/// What a name resolves to.
pub(super) enum Found<'p> {
    /// A local binding, with its type.
    Local(Ty),
    /// A `let` further down the body.
    Later(Span),
    /// A visible item.
    Item(ItemRef<'p>),
    /// A built-in layer.
    Builtin(&'static builtins::LayerSig),
    /// Nothing.
    None,
}

/// Walks one item.
pub(super) struct Walker<'c, 'p> {
    /// The shared state.
    pub cx: &'c mut Cx<'p>,
    /// The file the item is in.
    pub file: FileId,
    /// The item.
    pub owner: Owner<'p>,
    /// Scopes, outermost first.
    pub frames: Vec<Frame<'p>>,
    /// Whether the first step of a chain applies to an implicit input here.
    pub implicit: bool,
    /// Whether unbound names are symbolic dimensions (inside tensor types).
    pub symbolic: bool,
    /// References to blocks and cells of the same file (item index, where).
    pub refs: Vec<(usize, Span)>,
    /// The `emit`s of a cell's step.
    pub emits: Vec<Span>,
}

impl<'c, 'p> Walker<'c, 'p> {
    /// A walker for an item of `file`.
    pub(super) fn new(cx: &'c mut Cx<'p>, file: FileId, owner: Owner<'p>) -> Walker<'c, 'p> {
        Walker {
            cx,
            file,
            owner,
            frames: Vec::new(),
            implicit: false,
            symbolic: false,
            refs: Vec::new(),
            emits: Vec::new(),
        }
    }

    /// Records a problem.
    pub(super) fn report(&mut self, e: Error) {
        self.cx.report(e);
    }

    /// The source text of `span`, for messages.
    pub(super) fn text(&self, span: Span) -> String {
        self.cx.text(span)
    }

    fn frame(&mut self) -> &mut Frame<'p> {
        if self.frames.is_empty() {
            self.frames.push(Frame::new(true));
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    // -----------------------------------------------------------------------------------------
    // Items

    /// Checks a net.
    pub(super) fn net(mut self, n: &'p NetDecl) {
        self.frames.push(Frame::new(true));
        self.params(&n.params);
        self.symbolic = true;
        for p in &n.params {
            if let Some(TypeAnn::Tensor(t)) = &p.ty {
                for d in &t.dims {
                    self.static_expr(d, StaticCtx::Dim);
                }
            }
        }
        self.symbolic = false;
        for (i, o) in n.outputs.iter().enumerate() {
            if let Some(first) = n.outputs[..i].iter().find(|x| x.name == o.name) {
                self.report(Error::DuplicateParameter {
                    name: o.name.clone(),
                    span: o.span,
                    first: first.span,
                });
            }
        }
        self.stmts(&n.body);
        for o in &n.outputs {
            let frame = self.frame();
            let mut bound = false;
            for b in frame.bindings.iter_mut() {
                if b.name == o.name && matches!(b.kind, BindKind::Let | BindKind::Input) {
                    // An output is used by whoever runs the net.
                    b.used = true;
                    bound = true;
                }
            }
            if !bound {
                let lets: Vec<&str> = frame
                    .bindings
                    .iter()
                    .filter(|b| b.kind == BindKind::Let)
                    .map(|b| b.name)
                    .collect();
                let similar = super::scope::suggest(&o.name, lets);
                if let Some(s) = &similar {
                    self.mark_used(s);
                }
                self.report(Error::UndefinedOutput {
                    name: o.name.clone(),
                    span: o.span,
                    net: n.name.name.clone(),
                    similar,
                });
            }
        }
        self.pop_frame();
    }

    /// Checks a block; returns its references to blocks and cells of the same file.
    pub(super) fn block(mut self, b: &'p BlockDecl) -> Vec<(usize, Span)> {
        self.frames.push(Frame::new(true));
        self.params(&b.params);
        self.frame().bindings.push(super::scope::Binding {
            name: "in",
            span: b.name.span,
            kind: BindKind::In,
            ty: Ty::Tensor,
            used: true,
            updated: None,
        });
        self.implicit = true;
        if self.stmts(&b.body).is_none() {
            self.missing_result(&b.body, BodyWhat::Block);
        }
        self.pop_frame();
        self.refs
    }

    /// Checks a cell; returns its references to blocks and cells of the same file.
    pub(super) fn cell(mut self, c: &'p CellDecl) -> Vec<(usize, Span)> {
        self.frames.push(Frame::new(true));
        self.params(&c.params);
        for s in &c.states {
            self.static_expr(&s.init, StaticCtx::StateInit);
        }
        for s in &c.states {
            if let Some(i) = self.frame().find(&s.name.name) {
                let first = self.frame().bindings[i].span;
                self.report(Error::DuplicateBinding {
                    name: s.name.name.clone(),
                    span: s.name.span,
                    first,
                });
                continue;
            }
            self.frame().bind(&s.name, BindKind::State, Ty::Tensor);
        }
        for x in &c.step.inputs {
            if let Some(i) = self.frame().find(&x.name) {
                let b = &self.frame().bindings[i];
                let (kind, first) = (b.kind, b.span);
                self.report(if kind == BindKind::StepInput {
                    Error::DuplicateParameter {
                        name: x.name.clone(),
                        span: x.span,
                        first,
                    }
                } else {
                    Error::DuplicateBinding {
                        name: x.name.clone(),
                        span: x.span,
                        first,
                    }
                });
                continue;
            }
            self.frame().bind(x, BindKind::StepInput, Ty::Tensor);
        }
        self.stmts(&c.step.body);
        if self.emits.is_empty() {
            let start = c.step.span.start as usize;
            self.report(Error::MissingEmit {
                cell: c.name.name.clone(),
                span: Span::new(self.file, start, start + "step".len()),
                state: c.states.first().map(|s| s.name.name.clone()),
            });
        }
        self.pop_frame();
        self.refs
    }

    /// Checks a constant and returns its type.
    pub(super) fn constant(mut self, c: &'p ConstDecl) -> Ty {
        self.frames.push(Frame::new(true));
        let t = self.static_expr(&c.value, StaticCtx::Const);
        let ok = match &t {
            Ty::Known(v) => v.is_numeric() || matches!(v, Val::Array(_)),
            Ty::Static(s) => matches!(s, SType::Int | SType::Float | SType::Num | SType::Array),
            _ => true,
        };
        if !ok {
            self.report(Error::BadConstant {
                span: c.value.span,
                problem: ConstProblem::NotNumeric,
                found: t.describe(),
                first: None,
            });
        }
        t
    }

    /// Binds the parameters of the item being checked, checking them.
    fn params(&mut self, params: &'p [Param]) {
        let net = matches!(self.owner, Owner::Net(_));
        for (i, p) in params.iter().enumerate() {
            if let Some(first) = params[..i].iter().find(|q| q.name.name == p.name.name) {
                self.report(Error::DuplicateParameter {
                    name: p.name.name.clone(),
                    span: p.name.span,
                    first: first.name.span,
                });
                continue;
            }
            let bad = |problem| Error::BadParameter {
                name: p.name.name.clone(),
                span: p.name.span,
                problem,
            };
            if matches!(self.owner, Owner::Block(_)) && p.name.name == "in" {
                self.report(bad(ParamProblem::ReservedIn));
                continue;
            }
            let default = p.default.as_ref().map(|d| {
                let t = self.static_expr(d, StaticCtx::Default);
                (d, t)
            });
            let (kind, ty) = match (&p.ty, default) {
                (Some(TypeAnn::Tensor(_)), d) => {
                    if !net {
                        self.report(bad(ParamProblem::TensorInBlock));
                        // Not bound: calls skip it, and it is not reported as unused.
                        continue;
                    } else {
                        if d.is_some() {
                            self.report(bad(ParamProblem::TensorDefault));
                        }
                        (BindKind::Input, Ty::Tensor)
                    }
                }
                (Some(TypeAnn::Scalar(st, _)), d) => {
                    let declared = scalar_sty(*st);
                    let ty = match d {
                        Some((d, t)) => {
                            if !default_fits(*st, &t) {
                                self.report(Error::DefaultType {
                                    name: p.name.name.clone(),
                                    span: d.span,
                                    declared: st.as_str(),
                                    found: t.describe(),
                                });
                            }
                            if net {
                                t
                            } else {
                                Ty::Static(declared)
                            }
                        }
                        None => {
                            if net {
                                self.report(bad(ParamProblem::NetNoDefault));
                            }
                            Ty::Static(declared)
                        }
                    };
                    (
                        if net {
                            BindKind::Static
                        } else {
                            BindKind::Param
                        },
                        ty,
                    )
                }
                (None, Some((_, t))) => {
                    if net {
                        (BindKind::Static, t)
                    } else {
                        (BindKind::Param, Ty::Static(SType::Any))
                    }
                }
                (None, None) => {
                    if net {
                        self.report(bad(ParamProblem::NetUntyped));
                        (BindKind::Static, Ty::Unknown)
                    } else {
                        (BindKind::Param, Ty::Static(SType::Any))
                    }
                }
            };
            self.frame().bind(&p.name, kind, ty);
        }
    }

    /// Pops a frame, warning about what it bound and never used.
    fn pop_frame(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        let owner = match self.owner {
            Owner::Block(b) => b.name.name.as_str(),
            Owner::Cell(c) => c.name.name.as_str(),
            _ => "",
        };
        for b in frame.bindings {
            // A value whose definition failed (unknown type) is not worth a second word.
            if b.used || b.name.starts_with('_') || b.ty == Ty::Unknown {
                continue;
            }
            match b.kind {
                BindKind::Let | BindKind::Index => self.report(Error::UnusedValue {
                    name: b.name.to_string(),
                    span: b.span,
                }),
                BindKind::Param | BindKind::StepInput => self.report(Error::UnusedParameter {
                    name: b.name.to_string(),
                    span: b.span,
                    owner: owner.to_string(),
                }),
                BindKind::Input | BindKind::Static | BindKind::In | BindKind::State => {}
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Bodies and statements

    /// Checks the statements of `body` in the current frame; the type of the last statement
    /// when it is an expression.
    fn stmts(&mut self, body: &'p Body) -> Option<Ty> {
        let pending: Vec<&'p Ident> = body
            .stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Let { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        self.frame().pending = pending;
        let mut result = None;
        for s in &body.stmts {
            result = None;
            match s {
                Stmt::Let { name, value, .. } => {
                    let t = self.stmt_expr(value);
                    self.frame().reached(name);
                    self.bind_let(name, t);
                }
                Stmt::Emit { value, span } => {
                    self.emit(*span);
                    self.stmt_expr(value);
                }
                Stmt::Expr(e) => result = Some(self.stmt_expr(e)),
            }
        }
        result
    }

    /// Checks a nested body (branch, `if`, `repeat`) in a new frame.
    pub(super) fn nested(
        &mut self,
        body: &'p Body,
        what: BodyWhat,
        implicit: bool,
        index: Option<&'p Ident>,
    ) -> Ty {
        let saved = std::mem::replace(&mut self.implicit, implicit);
        self.frames.push(Frame::new(false));
        if let Some(i) = index {
            self.frame().bind(i, BindKind::Index, Ty::INT);
        }
        let r = self.stmts(body);
        if r.is_none() {
            self.missing_result(body, what);
        }
        self.pop_frame();
        self.implicit = saved;
        r.unwrap_or(Ty::Unknown)
    }

    fn missing_result(&mut self, body: &Body, what: BodyWhat) {
        let (span, last) = match body.stmts.last() {
            Some(Stmt::Let { name, .. }) => {
                // The binding was probably meant as the result: no second warning about it.
                self.mark_used(&name.name);
                (name.span, Some(name.name.clone()))
            }
            Some(s) => (s.span(), None),
            None => (body.span, None),
        };
        self.report(Error::MissingResult { what, span, last });
    }

    /// Binds `name = …` (or updates a cell's state).
    fn bind_let(&mut self, name: &'p Ident, ty: Ty) {
        let cell = matches!(self.owner, Owner::Cell(_));
        let frame = self.frame();
        if let Some(i) = frame.find(&name.name) {
            let top = frame.top;
            let b = &mut frame.bindings[i];
            let e = match b.kind {
                BindKind::State if cell && top => match b.updated {
                    Some(first) => Error::StateUpdatedTwice {
                        name: name.name.clone(),
                        span: name.span,
                        first,
                    },
                    None => {
                        b.updated = Some(name.span);
                        return;
                    }
                },
                BindKind::StepInput | BindKind::Param if cell => Error::NotAState {
                    name: name.name.clone(),
                    span: name.span,
                    what: if b.kind == BindKind::Param {
                        "parameter"
                    } else {
                        "step input"
                    },
                    decl: b.span,
                },
                _ => Error::DuplicateBinding {
                    name: name.name.clone(),
                    span: name.span,
                    first: b.span,
                },
            };
            self.report(e);
            return;
        }
        if cell && !self.frame().top {
            let state = self.frames.iter().find_map(|f| {
                f.bindings
                    .iter()
                    .find(|b| b.name == name.name && b.kind == BindKind::State)
                    .map(|b| b.span)
            });
            if let Some(decl) = state {
                self.report(Error::NotAState {
                    name: name.name.clone(),
                    span: name.span,
                    what: "state",
                    decl,
                });
                return;
            }
        }
        self.frame().bind(name, BindKind::Let, ty);
    }

    fn emit(&mut self, span: Span) {
        let in_step = matches!(self.owner, Owner::Cell(_));
        if !in_step || self.frames.len() > 1 {
            self.report(Error::EmitOutsideStep {
                span: Span::new(self.file, span.start as usize, span.start as usize + 4),
                nested: in_step,
            });
            return;
        }
        let kw = Span::new(self.file, span.start as usize, span.start as usize + 4);
        if let Some(&first) = self.emits.first() {
            self.report(Error::DoubleEmit { span: kw, first });
        }
        self.emits.push(kw);
    }

    /// A statement's expression: a chain, or a single first step.
    fn stmt_expr(&mut self, e: &'p Expr) -> Ty {
        match &e.kind {
            ExprKind::Chain(steps) => self.chain(steps),
            _ => self.first_step(e),
        }
    }

    pub(super) fn chain(&mut self, steps: &'p [ChainStep]) -> Ty {
        let mut ty = Ty::Unknown;
        for (i, step) in steps.iter().enumerate() {
            if let Some(l) = &step.label {
                self.label(l);
            }
            if i == 0 {
                ty = self.first_step(&step.expr);
                if steps.len() > 1 && ty.is_static() {
                    let span = step.expr.span;
                    self.report(Error::StaticChainStart {
                        span,
                        text: self.text(span),
                        found: ty.describe(),
                    });
                    ty = Ty::Unknown;
                }
            } else {
                ty = self.expr(&step.expr, Flow::Incoming(steps[i - 1].expr.span));
            }
        }
        ty
    }

    fn label(&mut self, l: &'p Ident) {
        let frame = self.frame();
        if let Some(first) = frame.labels.iter().find(|x| x.name == l.name) {
            let first = first.span;
            self.report(Error::DuplicateLabel {
                name: l.name.clone(),
                span: l.span,
                first,
            });
        } else {
            frame.labels.push(l);
        }
    }

    /// The first step of a chain (or a whole statement): a layer applies to the implicit
    /// input if there is one, and otherwise has no input.
    fn first_step(&mut self, e: &'p Expr) -> Ty {
        let flow = if self.implicit {
            Flow::Implicit
        } else {
            Flow::Value
        };
        match self.expr(e, flow) {
            Ty::Layer { .. } => {
                let span = head_span(e);
                let example = self.example_input();
                self.report(Error::NoInput {
                    span,
                    text: self.text(e.span),
                    example,
                });
                Ty::Unknown
            }
            Ty::Cell => {
                self.report(Error::CellAsLayer {
                    span: head_span(e),
                    text: self.text(e.span),
                });
                Ty::Unknown
            }
            t => t,
        }
    }

    /// A value to start a chain from, for help lines.
    fn example_input(&self) -> Option<String> {
        match self.owner {
            Owner::Net(n) => n
                .params
                .iter()
                .find(|p| matches!(p.ty, Some(TypeAnn::Tensor(_))))
                .map(|p| p.name.name.clone()),
            Owner::Cell(c) => c.step.inputs.first().map(|i| i.name.clone()),
            Owner::Block(_) => Some("in".into()),
            Owner::Const => None,
        }
    }
}

fn scalar_sty(st: ScalarType) -> SType {
    match st {
        ScalarType::Int => SType::Int,
        ScalarType::Float => SType::Float,
        ScalarType::Bool => SType::Bool,
        ScalarType::Str => SType::Str,
    }
}

/// Whether a default of type `t` fits a parameter declared `st`.
fn default_fits(st: ScalarType, t: &Ty) -> bool {
    match t.sty() {
        None | Some(SType::Any) => true,
        Some(s) => match st {
            ScalarType::Int => matches!(s, SType::Int | SType::Num),
            ScalarType::Float => matches!(s, SType::Int | SType::Float | SType::Num),
            ScalarType::Bool => s == SType::Bool,
            ScalarType::Str => s == SType::Str,
        },
    }
}
