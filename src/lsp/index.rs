//! Where every name of a module is written and what it is there: the one AST walk that hover,
//! go-to-definition, completion and document symbols share.
//!
//! [`occurrences`] lists each name with its [`Role`] and the index of the item it lies in;
//! [`resolve`] says what a name refers to at a place: a local (parameter, binding, state,
//! step input, repeat index) of the enclosing item, a net/block/cell/constant visible from the
//! file (its own or imported), or a built-in layer.

use crate::diagnostics::{FileId, Span};
use crate::syntax::ast::{Body, Expr, ExprKind, Item, Module, Param, Stmt, TypeAnn};
use crate::syntax::builtins::{self, LayerSig};
use crate::syntax::loader::Program;

/// What a name is where it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The name of a net, block, cell or constant where it is declared.
    Item,
    /// The path of a `use` (the occurrence's span is the string literal's).
    Use,
    /// A name read as a value, or a layer written without arguments (`relu`).
    Ref,
    /// The callee of a call: `conv` in `conv(64, kernel: 3)`.
    Call,
    /// The keyword of a branch: `add` in `add { … | … }`.
    Branch,
    /// The keyword of an argument: `kernel` in `conv(64, kernel: 3)`.
    Arg {
        /// The layer, block or cell called.
        callee: String,
    },
    /// A parameter where it is declared.
    Param,
    /// A name bound by a statement (`y = …`), a state variable, a step input or a repeat
    /// index, where it is bound.
    Bind {
        /// The bound value's span (none for step inputs and repeat indices).
        value: Option<Span>,
    },
    /// An explicit layer name: `conv1` in `conv1: conv(64, kernel: 7)`.
    Label {
        /// The span of the labelled layer.
        layer: Span,
    },
    /// A property read: `channels` in `in.channels`.
    Field,
}

/// One name in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// The name as written (for a `use`, the path).
    pub name: String,
    /// Where.
    pub span: Span,
    /// What it is.
    pub role: Role,
    /// The index in `Module::items` of the item it lies in.
    pub item: usize,
}

/// What a name refers to.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A parameter or binding of the enclosing item (its declaring occurrence).
    Local(&'a Occurrence),
    /// A net, block, cell or constant, in the file `FileId` (the module's own or an import).
    Item(FileId, &'a Item),
    /// A built-in layer.
    Builtin(&'static LayerSig),
    /// `in`, the value flowing into a block.
    Input,
}

/// Every name of `module`, in source order.
pub fn occurrences(module: &Module) -> Vec<Occurrence> {
    let mut w = Walker {
        out: Vec::new(),
        item: 0,
    };
    for (i, item) in module.items.iter().enumerate() {
        w.item = i;
        w.item_(item);
    }
    w.out.sort_by_key(|o| (o.span.start, o.span.end));
    w.out
}

/// The occurrence under byte `offset` (a cursor just after a name is on it).
pub fn at(occurrences: &[Occurrence], offset: usize) -> Option<&Occurrence> {
    occurrences
        .iter()
        .filter(|o| o.span.start as usize <= offset && offset <= o.span.end as usize)
        .min_by_key(|o| (o.span.len(), std::cmp::Reverse(o.span.start)))
}

/// The index of the item whose span holds `offset`.
pub fn item_at(module: &Module, offset: usize) -> Option<usize> {
    module
        .items
        .iter()
        .position(|i| i.span().start as usize <= offset && offset <= i.span().end as usize)
}

/// The locals (parameters and bindings) of item `item` called `name` that are visible at
/// `offset`: the last one declared before it, else the first.
pub fn local<'a>(
    occurrences: &'a [Occurrence],
    item: usize,
    name: &str,
    offset: usize,
) -> Option<&'a Occurrence> {
    let mut candidates = occurrences.iter().filter(|o| {
        o.item == item && o.name == name && matches!(o.role, Role::Param | Role::Bind { .. })
    });
    let first = candidates.clone().next();
    candidates
        .rfind(|o| (o.span.start as usize) <= offset)
        .or(first)
}

/// What the name of occurrence `occ` refers to, looked up from the module's file.
pub fn resolve<'a>(
    program: &'a Program,
    file: FileId,
    occurrences: &'a [Occurrence],
    occ: &Occurrence,
) -> Option<Target<'a>> {
    resolve_name(
        program,
        file,
        occurrences,
        occ.item,
        &occ.name,
        occ.span.start as usize,
    )
}

/// What `name`, written at `offset` inside item `item`, refers to.
pub fn resolve_name<'a>(
    program: &'a Program,
    file: FileId,
    occurrences: &'a [Occurrence],
    item: usize,
    name: &str,
    offset: usize,
) -> Option<Target<'a>> {
    if let Some(l) = local(occurrences, item, name, offset) {
        return Some(Target::Local(l));
    }
    if name == "in" {
        return Some(Target::Input);
    }
    if let Some((f, i)) = program.lookup(file, name) {
        return Some(Target::Item(f, i));
    }
    builtins::lookup(name).map(Target::Builtin)
}

/// The parameter called `name` of a block, cell or net.
pub fn item_param<'a>(item: &'a Item, name: &str) -> Option<&'a Param> {
    item_params(item).iter().find(|p| p.name.name == name)
}

/// The parameters of an item (none for constants and `use`s).
pub fn item_params(item: &Item) -> &[Param] {
    match item {
        Item::Block(b) => &b.params,
        Item::Cell(c) => &c.params,
        Item::Net(n) => &n.params,
        Item::Const(_) | Item::Use(_) => &[],
    }
}

struct Walker {
    out: Vec<Occurrence>,
    item: usize,
}

impl Walker {
    fn push(&mut self, name: &str, span: Span, role: Role) {
        self.out.push(Occurrence {
            name: name.to_string(),
            span,
            role,
            item: self.item,
        });
    }

    fn item_(&mut self, item: &Item) {
        match item {
            Item::Use(u) => self.push(&u.path, u.path_span, Role::Use),
            Item::Const(c) => {
                self.push(&c.name.name, c.name.span, Role::Item);
                self.expr(&c.value);
            }
            Item::Block(b) => {
                self.push(&b.name.name, b.name.span, Role::Item);
                self.params(&b.params);
                self.body(&b.body);
            }
            Item::Cell(c) => {
                self.push(&c.name.name, c.name.span, Role::Item);
                self.params(&c.params);
                for s in &c.states {
                    let value = Some(s.init.span);
                    self.push(&s.name.name, s.name.span, Role::Bind { value });
                    self.expr(&s.init);
                }
                for i in &c.step.inputs {
                    self.push(&i.name, i.span, Role::Bind { value: None });
                }
                self.body(&c.step.body);
            }
            Item::Net(n) => {
                self.push(&n.name.name, n.name.span, Role::Item);
                self.params(&n.params);
                for o in &n.outputs {
                    self.push(&o.name, o.span, Role::Ref);
                }
                self.body(&n.body);
            }
        }
    }

    fn params(&mut self, params: &[Param]) {
        for p in params {
            self.push(&p.name.name, p.name.span, Role::Param);
            if let Some(TypeAnn::Tensor(t)) = &p.ty {
                for d in &t.dims {
                    self.expr(d);
                }
            }
            if let Some(d) = &p.default {
                self.expr(d);
            }
        }
    }

    fn body(&mut self, body: &Body) {
        for stmt in &body.stmts {
            match stmt {
                Stmt::Let { name, value, .. } => {
                    let v = Some(value.span);
                    self.push(&name.name, name.span, Role::Bind { value: v });
                    self.expr(value);
                }
                Stmt::Emit { value, .. } | Stmt::Expr(value) => self.expr(value),
            }
        }
    }

    fn args(&mut self, callee: &str, args: &[crate::syntax::ast::Arg]) {
        for a in args {
            if let Some(n) = &a.name {
                let role = Role::Arg {
                    callee: callee.to_string(),
                };
                self.push(&n.name, n.span, role);
            }
            self.expr(&a.value);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Str(_) => {}
            ExprKind::Name(id) => self.push(&id.name, id.span, Role::Ref),
            ExprKind::Call { callee, args, .. } => {
                self.push(&callee.name, callee.span, Role::Call);
                self.args(&callee.name, args);
            }
            ExprKind::Field { base, field } => {
                self.expr(base);
                self.push(&field.name, field.span, Role::Field);
            }
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Array(items) | ExprKind::Fill { dims: items, .. } => {
                for x in items {
                    self.expr(x);
                }
            }
            ExprKind::Chain(steps) => {
                for s in steps {
                    if let Some(l) = &s.label {
                        let layer = s.expr.span;
                        self.push(&l.name, l.span, Role::Label { layer });
                    }
                    self.expr(&s.expr);
                }
            }
            ExprKind::Branch {
                kind,
                kind_span,
                args,
                branches,
            } => {
                self.push(kind.as_str(), *kind_span, Role::Branch);
                self.args(kind.as_str(), args);
                for b in branches {
                    self.body(b);
                }
            }
            ExprKind::If { cond, then, els } => {
                self.expr(cond);
                self.body(then);
                if let Some(b) = els {
                    self.body(b);
                }
            }
            ExprKind::Repeat { count, index, body } => {
                self.expr(count);
                if let Some(i) = index {
                    self.push(&i.name, i.span, Role::Bind { value: None });
                }
                self.body(body);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::loader::{load_with, MemoryReader};
    use std::path::Path;

    const SRC: &str = "\
/// Doc.
block b(c, stride = 1) { conv(c, kernel: 3, stride: stride) -> relu }
net n(x: f32[N, 3, 8, 8]) -> y {
    h = x -> stem: b(4)
    y = h -> add { identity | b(4, stride: 1) }
}";

    fn program() -> Program {
        let mut r = MemoryReader::default();
        r.files.insert("m.net".into(), SRC.as_bytes().to_vec());
        let (p, d) = load_with(Path::new("m.net"), &r);
        assert!(d.is_empty(), "{d:?}");
        p
    }

    fn offset_of(needle: &str, nth: usize) -> usize {
        SRC.match_indices(needle)
            .nth(nth)
            .map(|(i, _)| i)
            .expect("present")
    }

    #[test]
    fn names_resolve_to_locals_items_and_builtins() {
        let p = program();
        let m = p.root_module().expect("parsed");
        let occ = occurrences(m);
        let find =
            |needle: &str, nth: usize| at(&occ, offset_of(needle, nth) + 1).expect("an occurrence");
        let conv = find("conv", 0);
        assert_eq!(conv.role, Role::Call);
        assert!(
            matches!(resolve(&p, p.root, &occ, conv), Some(Target::Builtin(l)) if l.name == "conv")
        );
        let stride_use = find("stride", 2);
        assert!(
            matches!(resolve(&p, p.root, &occ, stride_use), Some(Target::Local(l)) if l.role == Role::Param)
        );
        let kernel = find("kernel", 0);
        assert_eq!(
            kernel.role,
            Role::Arg {
                callee: "conv".into()
            }
        );
        let call = find("b(4)", 0);
        assert!(matches!(
            resolve(&p, p.root, &occ, call),
            Some(Target::Item(_, Item::Block(_)))
        ));
        let h = find("h ->", 0);
        assert!(
            matches!(resolve(&p, p.root, &occ, h), Some(Target::Local(l)) if matches!(l.role, Role::Bind { .. }))
        );
        assert!(matches!(find("stem", 0).role, Role::Label { .. }));
        assert_eq!(find("add", 0).role, Role::Branch);
        assert_eq!(find("y {", 0).role, Role::Ref);
        assert_eq!(item_at(m, offset_of("h =", 0)), Some(1));
    }
}
