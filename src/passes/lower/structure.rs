//! Blocks and the constructs that give a net its structure: block calls (argument binding,
//! inlining under a scope), bodies, `if`, `repeat` and the branches of `concat { … }`,
//! `add { … }` and `mul { … }`.

use super::errors::ErrorSite;
use super::expr::{closest, no_input, non_positive, scalar_fits, EvArg};
use super::value::Val;
use super::{Env, Lowerer, Reported, Res, MAX_CALL_DEPTH};
use crate::diagnostics::{Code, Diagnostic, FileId, Label, Span};
use crate::ir::graph::ScopeKind;
use crate::ir::op::Op;
use crate::passes::infer_shapes::resolve_axis;
use crate::syntax::ast::{Arg, Body, BranchKind, Expr, Ident, Param, Stmt, TypeAnn};

impl<'p> Lowerer<'p> {
    /// Binds call arguments to `params` (positional first, then keywords; defaults
    /// evaluated in order in the callee's file) into a fresh environment.
    pub(super) fn bind_params(
        &mut self,
        what: &str,
        callee: &str,
        params: &'p [Param],
        args: Vec<(Option<String>, Val<'p>, Span)>,
        file: FileId,
        span: Span,
    ) -> Res<Env<'p>> {
        let mut given: Vec<Option<(Val<'p>, Span)>> = vec![None; params.len()];
        let mut pos = 0usize;
        let mut failed = false;
        for (name, val, aspan) in args {
            let slot = match &name {
                None => {
                    let s = pos;
                    pos += 1;
                    if s >= params.len() {
                        self.error(Diagnostic::error(
                            Code::TooManyArguments,
                            format!(
                                "{what} `{callee}` takes {} argument{}",
                                params.len(),
                                if params.len() == 1 { "" } else { "s" }
                            ),
                            Label::new(aspan, "one too many"),
                        ));
                        failed = true;
                        continue;
                    }
                    s
                }
                Some(n) => match params.iter().position(|p| p.name.name == *n) {
                    Some(s) => s,
                    None => {
                        let names: Vec<String> =
                            params.iter().map(|p| p.name.name.clone()).collect();
                        let mut d = Diagnostic::error(
                            Code::UnknownArgument,
                            format!("{what} `{callee}` has no parameter `{n}`"),
                            Label::new(aspan, "unknown argument"),
                        );
                        if let Some(best) = closest(n, &names) {
                            d = d.with_help(format!("did you mean `{best}`?"));
                        }
                        self.error(d);
                        failed = true;
                        continue;
                    }
                },
            };
            if given[slot].is_some() {
                self.error(Diagnostic::error(
                    Code::DuplicateArgument,
                    format!("argument `{}` is given twice", params[slot].name.name),
                    Label::new(aspan, "given again here"),
                ));
                failed = true;
                continue;
            }
            given[slot] = Some((val, aspan));
        }
        let mut env = Env::new(file);
        for (p, g) in params.iter().zip(given) {
            let v = match g {
                Some((v, aspan)) => {
                    if let Some(TypeAnn::Scalar(t, _)) = &p.ty {
                        if !scalar_fits(*t, &v) {
                            self.error(Diagnostic::error(
                                Code::WrongArgumentType,
                                format!(
                                    "`{}` of {what} `{callee}` is {}, but {} is given",
                                    p.name.name,
                                    t.as_str(),
                                    v.describe()
                                ),
                                Label::new(aspan, format!("expected {}", t.as_str())),
                            ));
                            failed = true;
                        }
                    }
                    v
                }
                None => match &p.default {
                    Some(d) => self.eval(d, None, &mut env),
                    None => {
                        self.error(Diagnostic::error(
                            Code::MissingArgument,
                            format!("{what} `{callee}` needs an argument `{}`", p.name.name),
                            Label::new(span, format!("`{}` is missing", p.name.name)),
                        ));
                        failed = true;
                        Val::Poison
                    }
                },
            };
            env.bind(&p.name.name, v);
        }
        if failed {
            Err(Reported)
        } else {
            Ok(env)
        }
    }

    /// Inlines block `decl` applied to `flow` (or to a leading tensor argument).
    pub(super) fn call_block(
        &mut self,
        decl: &'p crate::syntax::ast::BlockDecl,
        file: FileId,
        mut args: Vec<EvArg<'p>>,
        flow: Option<&Val<'p>>,
        label: Option<&'p Ident>,
        span: Span,
    ) -> Val<'p> {
        if args.iter().any(|a| matches!(a.val, Val::Poison)) {
            return Val::Poison;
        }
        let name = decl.name.name.as_str();
        let mut input = match self.flow_tensor(flow, name, span) {
            Ok(t) => t,
            Err(Reported) => return Val::Poison,
        };
        if input.is_none() {
            if let Some(Val::Tensor(t)) = args.first().filter(|a| a.name.is_none()).map(|a| &a.val)
            {
                input = Some(*t);
                args.remove(0);
            }
        }
        let Some(input) = input else {
            self.error(no_input(span, &format!("block `{name}`")));
            return Val::Poison;
        };
        if self.step(span).is_err() {
            return Val::Poison;
        }
        if self.depth >= MAX_CALL_DEPTH {
            self.error(
                Diagnostic::error(
                    Code::RecursiveBlock,
                    format!("blocks nest more than {MAX_CALL_DEPTH} calls deep"),
                    Label::new(span, "this call is too deep"),
                )
                .with_help("a block that calls itself never ends"),
            );
            return Val::Poison;
        }
        let raw: Vec<(Option<String>, Val<'p>, Span)> = args
            .into_iter()
            .map(|a| (a.name.map(|n| n.name.clone()), a.val, a.span))
            .collect();
        let Ok(mut env) = self.bind_params("block", name, &decl.params, raw, file, span) else {
            return Val::Poison;
        };
        env.bind("in", Val::Tensor(input));
        let path = self.fresh_name(label, name);
        self.push_scope(path, ScopeKind::Block, span, Some(name.to_string()));
        self.reserve_labels(&decl.body.stmts);
        self.depth += 1;
        let result = self.eval_body(&decl.body, Some(&Val::Tensor(input)), &mut env);
        self.depth -= 1;
        self.pop_scope();
        result
    }

    /// Elaborates a block, branch, `if` or repeat body with `flow` flowing into each
    /// statement; its last expression is the result.
    pub(super) fn eval_body(
        &mut self,
        body: &'p Body,
        flow: Option<&Val<'p>>,
        env: &mut Env<'p>,
    ) -> Val<'p> {
        if body.stmts.is_empty() {
            return flow.cloned().unwrap_or(Val::Poison);
        }
        env.push();
        let mut result = None;
        for stmt in &body.stmts {
            match stmt {
                Stmt::Let { name, value, .. } => {
                    let v = self.eval(value, flow, env);
                    env.bind(&name.name, v);
                    result = None;
                }
                Stmt::Expr(e) => result = Some(self.eval(e, flow, env)),
                Stmt::Emit { span, .. } => self.error(Diagnostic::error(
                    Code::BadEmit,
                    "`emit` outside a cell's step",
                    Label::new(*span, "only a cell's step emits"),
                )),
            }
        }
        env.pop();
        match result {
            Some(v) => v,
            None => {
                self.error(
                    Diagnostic::error(
                        Code::MissingResult,
                        "this body ends without a value",
                        Label::new(body.span, "its last statement binds a name"),
                    )
                    .with_help("end the body with the expression whose value it returns"),
                );
                Val::Poison
            }
        }
    }

    pub(super) fn eval_if(
        &mut self,
        cond: &'p Expr,
        then: &'p Body,
        els: Option<&'p Body>,
        flow: Option<&Val<'p>>,
        env: &mut Env<'p>,
    ) -> Val<'p> {
        let c = match self.eval(cond, None, env) {
            Val::Bool(b) => b,
            Val::Poison => return Val::Poison,
            other => {
                self.error(Diagnostic::error(
                    Code::NotStatic,
                    format!(
                        "an `if` condition must be `true` or `false` at compile time, not {}",
                        other.describe()
                    ),
                    Label::new(cond.span, "not a compile-time boolean"),
                ));
                return Val::Poison;
            }
        };
        match (c, els) {
            (true, _) => self.eval_body(then, flow, env),
            (false, Some(b)) => self.eval_body(b, flow, env),
            (false, None) => flow.cloned().unwrap_or(Val::Poison),
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one AST node plus the flow and the environment"
    )]
    pub(super) fn eval_repeat(
        &mut self,
        count: &'p Expr,
        index: Option<&'p Ident>,
        body: &'p Body,
        flow: Option<&Val<'p>>,
        label: Option<&'p Ident>,
        env: &mut Env<'p>,
        span: Span,
    ) -> Val<'p> {
        let n = match self.eval(count, None, env) {
            Val::Int(n) if n >= 0 => n.unsigned_abs(),
            Val::Poison => return Val::Poison,
            other => {
                self.error(
                    non_positive("a repeat count", &other, count.span)
                        .with_help("a repeat count is an integer of at least 0"),
                );
                return Val::Poison;
            }
        };
        let Ok(Some(input)) = self.flow_tensor(flow, "repeat", span) else {
            if flow.is_none() {
                self.error(no_input(span, "`repeat`"));
            }
            return Val::Poison;
        };
        // Copy `i` adds no level: every name made directly in it gets the suffix `.i`
        // (`conv.0`, `basic.1`), with counters restarting in each copy. A labelled repeat
        // opens a scope named by its label for its copies (`layer/basic.0`).
        let labelled = label.is_some();
        if labelled {
            let path = self.fresh_name(label, "repeat");
            self.push_scope(path, ScopeKind::Repeat, span, None);
        }
        let mut cur = Val::Tensor(input);
        for i in 0..n {
            if self.step(span).is_err() {
                cur = Val::Poison;
                break;
            }
            self.push_copy(i, span);
            self.reserve_labels(&body.stmts);
            env.push();
            if let Some(ix) = index {
                env.bind(&ix.name, Val::Int(i64::try_from(i).unwrap_or(i64::MAX)));
            }
            cur = self.eval_body(body, Some(&cur), env);
            env.pop();
            self.pop_scope();
            if matches!(cur, Val::Poison) {
                break;
            }
        }
        if labelled {
            self.pop_scope();
        }
        cur
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one AST node plus the flow and the environment"
    )]
    pub(super) fn eval_branch(
        &mut self,
        kind: BranchKind,
        kind_span: Span,
        args: &'p [Arg],
        branches: &'p [Body],
        flow: Option<&Val<'p>>,
        label: Option<&'p Ident>,
        env: &mut Env<'p>,
        span: Span,
    ) -> Val<'p> {
        let layer = kind.as_str();
        let input = match self.flow_tensor(flow, layer, span) {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.error(no_input(kind_span, &format!("`{layer} {{ … }}`")));
                return Val::Poison;
            }
            Err(Reported) => return Val::Poison,
        };
        let evargs = self.eval_args(args, env);
        let mut axis: i64 = 1;
        for a in evargs {
            match (a.name.map(|n| n.name.as_str()), &a.val, kind) {
                (Some("axis"), Val::Int(v), BranchKind::Concat) => axis = *v,
                (_, Val::Poison, _) => return Val::Poison,
                _ => {
                    self.error(Diagnostic::error(
                        Code::UnknownArgument,
                        format!(
                            "`{layer} {{ … }}` takes {}",
                            if kind == BranchKind::Concat {
                                "only `axis: n`"
                            } else {
                                "no arguments"
                            }
                        ),
                        Label::new(a.span, "not accepted here"),
                    ));
                    return Val::Poison;
                }
            }
        }
        let name = self.fresh_name(label, layer);
        let mut values = Vec::new();
        let mut spans = Vec::new();
        let mut failed = false;
        for (i, b) in branches.iter().enumerate() {
            let path = match label {
                Some(_) => format!("{name}/b{}", i + 1),
                None => self.branch_name(),
            };
            self.push_scope(path, ScopeKind::Branch, b.span, None);
            self.reserve_labels(&b.stmts);
            let v = self.eval_body(b, Some(&Val::Tensor(input)), env);
            self.pop_scope();
            // The branch's own text: from its first statement to its last.
            let bspan = match (b.stmts.first(), b.stmts.last()) {
                (Some(f), Some(l)) => f.span().to(l.span()),
                _ => b.span,
            };
            match v {
                Val::Tensor(t) => {
                    values.push(t);
                    spans.push(bspan);
                }
                Val::Poison => failed = true,
                other => {
                    self.error(Diagnostic::error(
                        Code::BadOperand,
                        format!(
                            "a branch of `{layer}` gives {}, not a tensor",
                            other.describe()
                        ),
                        Label::new(b.span, "this branch"),
                    ));
                    failed = true;
                }
            }
        }
        if failed {
            return Val::Poison;
        }
        let op = match kind {
            BranchKind::Concat => {
                let rank = self.ty(values[0]).shape.rank();
                match resolve_axis(axis, rank) {
                    Ok(a) => Op::Concat {
                        axis: a,
                        in_place: false,
                    },
                    Err(e) => {
                        self.shape_error(&e, &values, &ErrorSite::new(layer, span));
                        return Val::Poison;
                    }
                }
            }
            BranchKind::Add => Op::Add,
            BranchKind::Mul => Op::Mul,
        };
        if values.len() == 1 && !matches!(op, Op::Concat { .. }) {
            return Val::Tensor(values[0]);
        }
        let site = ErrorSite {
            layer,
            span: kind_span,
            branches: &spans,
            flow: Some(input),
        };
        match self.node(op, &values, &name, &site) {
            Ok(id) => Val::Tensor(self.out(id, 0)),
            Err(Reported) => Val::Poison,
        }
    }
}
