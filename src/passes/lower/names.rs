//! Naming scopes and layer names: labels, per-scope counters, branch scopes `b1, b2, …`,
//! repeat copies (`.i` suffixes) and the labels reserved in each body (the rules of
//! `docs/language.md`, R14).

use super::{Lowerer, ScopeState};
use crate::diagnostics::Span;
use crate::ir::graph::{Scope, ScopeKind};
use crate::syntax::ast::{Expr, ExprKind, Ident, Stmt};
use std::collections::{BTreeMap, BTreeSet};

impl Lowerer<'_> {
    /// A fresh layer name in the current scope: the label, or `kind` with a counter.
    /// Returns the full path.
    pub(super) fn fresh_name(&mut self, label: Option<&Ident>, kind: &str) -> String {
        let s = self.scopes.len() - 1;
        let scope = &mut self.scopes[s];
        let local = match label {
            Some(l) => l.name.clone(),
            None => loop {
                let n = scope.counters.entry(kind.to_string()).or_insert(0);
                let candidate = if *n == 0 {
                    kind.to_string()
                } else {
                    format!("{kind}_{n}")
                };
                *n += 1;
                if !scope.used.contains(&candidate) && !scope.reserved.contains(&candidate) {
                    break candidate;
                }
            },
        };
        scope.used.insert(local.clone());
        join(&scope.path, &format!("{local}{}", scope.suffix))
    }

    /// The name of the next branch scope of an unlabelled merge: `b1`, `b2`, … numbered
    /// through the scope, skipping its labels. Returns the full path.
    pub(super) fn branch_name(&mut self) -> String {
        let s = self.scopes.len() - 1;
        let scope = &mut self.scopes[s];
        let local = loop {
            scope.branches += 1;
            let candidate = format!("b{}", scope.branches);
            if !scope.used.contains(&candidate) && !scope.reserved.contains(&candidate) {
                break candidate;
            }
        };
        scope.used.insert(local.clone());
        join(&scope.path, &format!("{local}{}", scope.suffix))
    }

    /// Opens copy `i` of a repeat: a scope with the same path whose names get the suffix
    /// `.i` (after the suffix of the enclosing copy, if any), with fresh counters.
    pub(super) fn push_copy(&mut self, i: u64, span: Span) {
        let parent = self.scope_id();
        let top = &self.scopes[self.scopes.len() - 1];
        let path = top.path.clone();
        let suffix = format!("{}.{i}", top.suffix);
        let id = self.graph.add_scope(Scope {
            name: path.clone(),
            kind: ScopeKind::Repeat,
            parent: Some(parent),
            span,
            callee: None,
        });
        self.scopes.push(ScopeState {
            id,
            path,
            used: BTreeSet::new(),
            reserved: BTreeSet::new(),
            counters: BTreeMap::new(),
            branches: 0,
            suffix,
        });
    }

    /// Opens scope `path` (a full path) of `kind`.
    pub(super) fn push_scope(
        &mut self,
        path: String,
        kind: ScopeKind,
        span: Span,
        callee: Option<String>,
    ) {
        let parent = self.scope_id();
        let id = self.graph.add_scope(Scope {
            name: path.clone(),
            kind,
            parent: Some(parent),
            span,
            callee,
        });
        self.scopes.push(ScopeState {
            id,
            path,
            used: BTreeSet::new(),
            reserved: BTreeSet::new(),
            counters: BTreeMap::new(),
            branches: 0,
            suffix: String::new(),
        });
    }

    pub(super) fn pop_scope(&mut self) {
        if self.scopes.len() > 1 {
            self.scopes.pop();
        }
    }

    /// Reserves the labels written directly in `stmts` (not inside branches or repeats,
    /// which are scopes of their own) so that generated names avoid them.
    pub(super) fn reserve_labels(&mut self, stmts: &[Stmt]) {
        let mut out = BTreeSet::new();
        for s in stmts {
            match s {
                Stmt::Let { value, .. } | Stmt::Emit { value, .. } => {
                    collect_labels(value, &mut out)
                }
                Stmt::Expr(e) => collect_labels(e, &mut out),
            }
        }
        let i = self.scopes.len() - 1;
        self.scopes[i].reserved.extend(out);
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

fn collect_labels(e: &Expr, out: &mut BTreeSet<String>) {
    match &e.kind {
        ExprKind::Chain(steps) => {
            for s in steps {
                if let Some(l) = &s.label {
                    out.insert(l.name.clone());
                }
                collect_labels(&s.expr, out);
            }
        }
        ExprKind::Call { args, .. } => {
            for a in args {
                collect_labels(&a.value, out);
            }
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            collect_labels(lhs, out);
            collect_labels(rhs, out);
        }
        ExprKind::Unary { operand, .. } => collect_labels(operand, out),
        ExprKind::If { then, els, .. } => {
            for s in then
                .stmts
                .iter()
                .chain(els.iter().flat_map(|b| b.stmts.iter()))
            {
                match s {
                    Stmt::Let { value, .. } | Stmt::Emit { value, .. } => {
                        collect_labels(value, out)
                    }
                    Stmt::Expr(e) => collect_labels(e, out),
                }
            }
        }
        ExprKind::Field { base, .. } => collect_labels(base, out),
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Name(_)
        | ExprKind::Array(_)
        | ExprKind::Fill { .. }
        | ExprKind::Branch { .. }
        | ExprKind::Repeat { .. } => {}
    }
}
