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
            for l in d.text.lines() {
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
            let mut p = Printer::default();
            p.expr(e, 0);
            if !p.out.contains('\n') && p.out.len() <= 40 {
                let _ = write!(self.out, "{{ {} }}", p.out);
                return;
            }
        }
        self.out.push('{');
        self.indent += 1;
        for s in &b.stmts {
            self.line();
            self.stmt(s);
        }
        self.indent -= 1;
        self.line();
        self.out.push('}');
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
                self.expr(cond, 1);
                self.out.push(' ');
                self.body(then);
                if let Some(b) = els {
                    self.out.push_str(" else ");
                    self.body(b);
                }
            }
            ExprKind::Repeat { count, index, body } => {
                self.out.push_str("repeat ");
                self.expr(count, 1);
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
            }
            self.expr(&a.value, 0);
        }
        self.out.push(')');
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
