//! The canonical pretty-print of an AST: valid `.net` source in one fixed layout.
//!
//! Contract: `parse(print(m))` equals `m` up to spans (a property test checks it), so the
//! printer doubles as a formatter and as the readable form of the AST in snapshot tests.
//! Parentheses are inserted exactly where precedence requires them.

use super::ast::*;
use std::fmt::Write;

/// Prints a module.
pub fn module(m: &Module) -> String {
    let mut p = Printer::default();
    for (i, item) in m.items.iter().enumerate() {
        if i > 0 {
            p.out.push('\n');
        }
        p.item(item);
    }
    p.out
}

/// Prints one expression on one line (bodies inside it still span lines).
pub fn expr(e: &Expr) -> String {
    let mut p = Printer::default();
    p.expr(e, 0);
    p.out
}

/// Chains longer than this are printed one step per line.
const CHAIN_LINE: usize = 3;

#[derive(Default)]
struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    fn line(&mut self) {
        self.out.push('\n');
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
    }

    fn doc(&mut self, doc: &Option<Doc>) {
        if let Some(d) = doc {
            for l in d.text.split('\n') {
                if l.is_empty() {
                    self.out.push_str("///");
                } else {
                    let _ = write!(self.out, "/// {l}");
                }
                self.line();
            }
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Use(u) => {
                let _ = write!(self.out, "use {}", quote(&u.path));
            }
            Item::Const(c) => {
                self.doc(&c.doc);
                let _ = write!(self.out, "const {} = ", c.name.name);
                self.expr(&c.value, 0);
            }
            Item::Block(b) => {
                self.doc(&b.doc);
                let _ = write!(self.out, "block {}", b.name.name);
                self.params(&b.params);
                self.out.push(' ');
                self.body(&b.body);
            }
            Item::Cell(c) => {
                self.doc(&c.doc);
                let _ = write!(self.out, "cell {}", c.name.name);
                self.params(&c.params);
                self.out.push_str(" {");
                self.indent += 1;
                for s in &c.states {
                    self.line();
                    let _ = write!(self.out, "state {} = ", s.name.name);
                    self.expr(&s.init, 0);
                }
                self.line();
                self.out.push_str("step ");
                let names: Vec<&str> = c.step.inputs.iter().map(|i| i.name.as_str()).collect();
                self.out.push_str(&names.join(", "));
                self.out.push(' ');
                self.body(&c.step.body);
                self.indent -= 1;
                self.line();
                self.out.push('}');
            }
            Item::Net(n) => {
                self.doc(&n.doc);
                let _ = write!(self.out, "net {}", n.name.name);
                self.params(&n.params);
                self.out.push_str(" -> ");
                let names: Vec<&str> = n.outputs.iter().map(|i| i.name.as_str()).collect();
                if names.len() == 1 {
                    self.out.push_str(names[0]);
                } else {
                    let _ = write!(self.out, "({})", names.join(", "));
                }
                self.out.push(' ');
                self.body(&n.body);
            }
        }
        self.out.push('\n');
    }

    fn params(&mut self, params: &[Param]) {
        self.out.push('(');
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(&p.name.name);
            match &p.ty {
                Some(TypeAnn::Tensor(t)) => {
                    let _ = write!(self.out, ": {}[", t.dtype.as_str());
                    self.list(&t.dims);
                    self.out.push(']');
                }
                Some(TypeAnn::Scalar(s, _)) => {
                    let _ = write!(self.out, ": {}", s.as_str());
                }
                None => {}
            }
            if let Some(d) = &p.default {
                self.out.push_str(" = ");
                self.expr(d, 0);
            }
        }
        self.out.push(')');
    }

    fn list(&mut self, items: &[Expr]) {
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(e, 0);
        }
    }

    fn body(&mut self, b: &Body) {
        if let [Stmt::Expr(e)] = b.stmts.as_slice() {
            if is_small(e, &mut 12) {
                let mut p = Printer::default();
                p.expr(e, 0);
                if !p.out.contains('\n') && p.out.len() <= 40 {
                    let _ = write!(self.out, "{{ {} }}", p.out);
                    return;
                }
            }
        }
        self.out.push('{');
        self.indent += 1;
        for (i, s) in b.stmts.iter().enumerate() {
            if i > 0 {
                self.separate(s);
            }
            self.line();
            self.stmt(s);
        }
        self.indent -= 1;
        self.line();
        self.out.push('}');
    }

    /// Ends the previous statement with `;` when `next` would otherwise continue it: line
    /// breaks mean nothing, so `a` then `(b)` reads as the call `a(b)`, `a` then `-1` as
    /// `a - 1`, and `zeros` then `[1]` as `zeros[1]`.
    fn separate(&mut self, next: &Stmt) {
        let mut p = Printer::default();
        match next {
            Stmt::Expr(e) => p.expr_head(e),
            Stmt::Let { .. } | Stmt::Emit { .. } => return,
        }
        if p.out.starts_with(['(', '-', '[']) {
            self.out.push(';');
        }
    }

    /// Prints just enough of `e` to know its first character.
    fn expr_head(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Binary { op, lhs, .. } => {
                let p = op.precedence();
                let lp = if op.is_right_assoc() { p + 1 } else { p };
                if expr_prec(lhs) < lp {
                    self.out.push('(');
                } else {
                    self.expr_head(lhs);
                }
            }
            ExprKind::Chain(steps) => match steps.first() {
                Some(s) if s.label.is_some() => self.out.push('x'),
                Some(s) if expr_prec(&s.expr) < 1 => self.out.push('('),
                Some(s) => self.expr_head(&s.expr),
                None => {}
            },
            ExprKind::Field { base, .. } => {
                if expr_prec(base) < 8 {
                    self.out.push('(');
                } else {
                    self.expr_head(base);
                }
            }
            ExprKind::Int(v) if *v < 0 => self.out.push('-'),
            ExprKind::Float(v) if v.is_sign_negative() => self.out.push('-'),
            ExprKind::Unary { op: UnOp::Neg, .. } => self.out.push('-'),
            ExprKind::Array(_) => self.out.push('['),
            _ => self.out.push('x'),
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Let { name, value, .. } => {
                let _ = write!(self.out, "{} = ", name.name);
                self.stmt_expr(value);
            }
            Stmt::Emit { value, .. } => {
                self.out.push_str("emit ");
                self.expr(value, 0);
            }
            Stmt::Expr(e) => self.stmt_expr(e),
        }
    }

    /// A statement's expression: a chain of more than [`CHAIN_LINE`] steps is printed one
    /// step per line, as people write them.
    fn stmt_expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Chain(steps) if steps.len() > CHAIN_LINE => {
                self.indent += 1;
                for (i, s) in steps.iter().enumerate() {
                    if i > 0 {
                        self.line();
                        self.out.push_str("-> ");
                    }
                    if let Some(l) = &s.label {
                        let _ = write!(self.out, "{}: ", l.name);
                    }
                    self.expr(&s.expr, 1);
                }
                self.indent -= 1;
            }
            _ => self.expr(e, 0),
        }
    }

    /// Prints `e`; `min_prec` is the precedence its context requires (0: any; 7: an operand
    /// of a prefix operator or a field access).
    fn expr(&mut self, e: &Expr, min_prec: u8) {
        let prec = expr_prec(e);
        let parens = prec < min_prec;
        if parens {
            self.out.push('(');
        }
        match &e.kind {
            ExprKind::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            ExprKind::Float(v) => self.out.push_str(&float(*v)),
            ExprKind::Bool(b) => {
                let _ = write!(self.out, "{b}");
            }
            ExprKind::Str(s) => self.out.push_str(&quote(s)),
            ExprKind::Name(i) => self.out.push_str(&i.name),
            ExprKind::Call { callee, args, .. } => {
                self.out.push_str(&callee.name);
                self.args(args);
            }
            ExprKind::Field { base, field } => {
                self.expr(base, 8);
                let _ = write!(self.out, ".{}", field.name);
            }
            ExprKind::Unary { op, operand } => {
                self.out.push(match op {
                    UnOp::Neg => '-',
                    UnOp::Not => '!',
                });
                self.expr(operand, 7);
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let p = op.precedence();
                let (lp, rp) = if op.is_right_assoc() {
                    (p + 1, p)
                } else {
                    (p, p + 1)
                };
                self.expr(lhs, lp);
                let _ = write!(self.out, " {} ", op.as_str());
                self.expr(rhs, rp);
            }
            ExprKind::Array(items) => {
                self.out.push('[');
                self.list(items);
                self.out.push(']');
            }
            ExprKind::Fill { kind, dims } => {
                self.out.push_str(match kind {
                    FillKind::Zeros => "zeros[",
                    FillKind::Ones => "ones[",
                });
                self.list(dims);
                self.out.push(']');
            }
            ExprKind::Chain(steps) => {
                for (i, s) in steps.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(" -> ");
                    }
                    if let Some(l) = &s.label {
                        let _ = write!(self.out, "{}: ", l.name);
                    }
                    self.expr(&s.expr, 1);
                }
            }
            ExprKind::Branch {
                kind,
                args,
                branches,
                ..
            } => {
                self.out.push_str(kind.as_str());
                if !args.is_empty() {
                    self.args(args);
                }
                self.out.push_str(" {");
                self.indent += 1;
                for (i, b) in branches.iter().enumerate() {
                    self.line();
                    if i > 0 {
                        self.out.push_str("| ");
                    }
                    for (j, s) in b.stmts.iter().enumerate() {
                        if j > 0 {
                            self.separate(s);
                            self.line();
                            self.out.push_str("  ");
                        }
                        self.stmt(s);
                    }
                }
                self.indent -= 1;
                self.line();
                self.out.push('}');
            }
            ExprKind::If { cond, then, els } => {
                self.out.push_str("if ");
                self.head(cond);
                self.out.push(' ');
                self.body(then);
                let mut els = els;
                while let Some(b) = els {
                    // An else body holding just an `if` is an `else if` (how it parsed).
                    if let [Stmt::Expr(Expr {
                        kind:
                            ExprKind::If {
                                cond,
                                then,
                                els: next,
                            },
                        ..
                    })] = b.stmts.as_slice()
                    {
                        self.out.push_str(" else if ");
                        self.head(cond);
                        self.out.push(' ');
                        self.body(then);
                        els = next;
                    } else {
                        self.out.push_str(" else ");
                        self.body(b);
                        els = &None;
                    }
                }
            }
            ExprKind::Repeat { count, index, body } => {
                self.out.push_str("repeat ");
                self.head(count);
                if let Some(i) = index {
                    let _ = write!(self.out, " as {}", i.name);
                }
                self.out.push(' ');
                self.body(body);
            }
        }
        if parens {
            self.out.push(')');
        }
    }

    fn args(&mut self, args: &[Arg]) {
        self.out.push('(');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            if let Some(n) = &a.name {
                let _ = write!(self.out, "{}: ", n.name);
                self.expr(&a.value, 0);
            } else if starts_with_label(&a.value) {
                // `f((l: x))`: without the parentheses, `l:` would read as a keyword.
                self.expr(&a.value, 1);
            } else {
                self.expr(&a.value, 0);
            }
        }
        self.out.push(')');
    }
}

impl Printer {
    /// The head of an `if` or `repeat`: parenthesised when it ends with a word that a `{`
    /// would turn into a branch (`if (add) { … }` must not read as `if add { … }`).
    fn head(&mut self, e: &Expr) {
        let mut p = Printer {
            out: String::new(),
            indent: self.indent,
        };
        p.expr(e, 1);
        let ends_with_kw = ["concat", "add", "mul"].iter().any(|kw| {
            p.out
                .strip_suffix(kw)
                .is_some_and(|rest| !rest.ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        });
        if ends_with_kw {
            self.out.push('(');
            self.expr(e, 0);
            self.out.push(')');
        } else {
            self.out.push_str(&p.out);
        }
    }
}

/// Whether `e` is a chain whose first step carries a label.
fn starts_with_label(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Chain(steps) if steps.first().is_some_and(|s| s.label.is_some()))
}

/// Whether `e` is small enough to consider printing on one line; `budget` counts nodes, so
/// the test is linear however deep `e` is.
fn is_small(e: &Expr, budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Name(_) => true,
        ExprKind::Call { args, .. } => args.iter().all(|a| is_small(&a.value, budget)),
        ExprKind::Field { base, .. } => is_small(base, budget),
        ExprKind::Unary { operand, .. } => is_small(operand, budget),
        ExprKind::Binary { lhs, rhs, .. } => is_small(lhs, budget) && is_small(rhs, budget),
        ExprKind::Array(items) | ExprKind::Fill { dims: items, .. } => {
            items.iter().all(|x| is_small(x, budget))
        }
        ExprKind::Chain(steps) => {
            steps.len() <= CHAIN_LINE && steps.iter().all(|s| is_small(&s.expr, budget))
        }
        ExprKind::Branch { .. } | ExprKind::If { .. } | ExprKind::Repeat { .. } => false,
    }
}

/// Precedence of an expression as an operand: 0 for chains, the operator's for binaries,
/// 7 for prefix operators (and negative literals), 8 for everything that binds tightest.
fn expr_prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Chain(_) => 0,
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::Unary { .. } => 7,
        ExprKind::Int(v) if *v < 0 => 7,
        ExprKind::Float(v) if v.is_sign_negative() => 7,
        _ => 8,
    }
}

/// A float literal that reads back as the same value and as a float (never as an integer).
fn float(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
