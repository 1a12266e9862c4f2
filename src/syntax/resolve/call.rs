//! Calls: binding arguments to the parameters of built-in layers, blocks and cells, and
//! counting the tensor inputs of built-in layers.
//!
//! The leading positional arguments of a built-in call that are tensors are its inputs (in
//! a chain the value flowing in comes first). The remaining positional arguments bind to the
//! positional parameters in order, keyword arguments by name. A bare name that is not bound
//! is a symbol when the parameter accepts symbols (it is then checked against the list) or
//! when it is one of the language's symbols; otherwise it is an unknown name. When a
//! positional argument is itself unknown, the checks that depend on positions (input count,
//! too many, missing) are skipped rather than guessed.

use super::error::{Error, StaticCtx};
use super::scope::suggest;
use super::ty::{SType, Ty, Val};
use super::walk::{Flow, Found, Walker};
use super::ItemRef;
use crate::diagnostics::Span;
use crate::syntax::ast::{Arg, ExprKind, Ident, Item, Param, ScalarType, TypeAnn};
use crate::syntax::builtins::{self, ArgTy, Arity, DefaultValue, LayerSig};
use crate::syntax::print;

/// An argument's value, classified.
enum ArgVal<'p> {
    /// An expression with its type.
    Ty(Ty),
    /// A bare name that is not bound: a symbol, if the parameter accepts it.
    Bare(&'p Ident),
}

/// What a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// A built-in layer's parameter.
    Arg(ArgTy),
    /// A block or cell parameter with a declared type.
    Scalar(ScalarType),
    /// A block or cell parameter with a default of this type (checked loosely: a default
    /// `kernel = 3` accepts `[1, 7]`, a default `pad = 0` accepts `same`).
    Default(SType),
    /// Any compile-time value.
    Any,
}

/// One parameter of a callee.
struct PSig<'a> {
    name: &'a str,
    positional: bool,
    required: bool,
    expect: Expect,
    decl: Option<Span>,
}

/// A callee's parameters.
struct Sig<'a> {
    callee: &'a str,
    params: Vec<PSig<'a>>,
    signature: String,
    /// A built-in layer (its tensor inputs come before the parameters).
    layer: bool,
}

impl Sig<'static> {
    fn builtin(sig: &'static LayerSig) -> Sig<'static> {
        Sig {
            callee: sig.name,
            params: sig
                .params
                .iter()
                .map(|p| PSig {
                    name: p.name,
                    positional: p.positional,
                    required: p.default == DefaultValue::Required,
                    expect: Expect::Arg(p.ty),
                    decl: None,
                })
                .collect(),
            signature: sig.signature(),
            layer: true,
        }
    }
}

impl<'a> Sig<'a> {
    fn of_params(callee: &'a str, params: &'a [Param]) -> Sig<'a> {
        let shown: Vec<String> = params
            .iter()
            .map(|p| {
                let mut s = p.name.name.clone();
                if let Some(TypeAnn::Scalar(t, _)) = &p.ty {
                    s.push_str(": ");
                    s.push_str(t.as_str());
                }
                if let Some(d) = &p.default {
                    s.push_str(" = ");
                    s.push_str(&print::expr(d));
                }
                s
            })
            .collect();
        Sig {
            callee,
            params: params
                .iter()
                // A tensor-typed parameter has been reported (E0227) and takes no argument.
                .filter(|p| !matches!(p.ty, Some(TypeAnn::Tensor(_))))
                .map(|p| PSig {
                    name: &p.name.name,
                    positional: true,
                    required: p.default.is_none(),
                    expect: match (&p.ty, &p.default) {
                        (Some(TypeAnn::Scalar(t, _)), _) => Expect::Scalar(*t),
                        (_, Some(d)) => Expect::Default(literal_sty(&d.kind)),
                        _ => Expect::Any,
                    },
                    decl: Some(p.name.span),
                })
                .collect(),
            signature: format!("{callee}({})", shown.join(", ")),
            layer: false,
        }
    }
}

/// The type of a default written as a literal (`Any` for anything else).
fn literal_sty(e: &ExprKind) -> SType {
    match e {
        ExprKind::Int(_) => SType::Int,
        ExprKind::Float(_) => SType::Float,
        ExprKind::Bool(_) => SType::Bool,
        ExprKind::Str(_) => SType::Str,
        ExprKind::Name(id) if builtins::is_symbol(&id.name) => SType::Sym,
        ExprKind::Array(_) => SType::Array,
        _ => SType::Any,
    }
}

fn describe(expect: Expect) -> String {
    match expect {
        Expect::Arg(a) => a.describe(),
        Expect::Scalar(ScalarType::Int) => "an integer".into(),
        Expect::Scalar(ScalarType::Float) => "a number".into(),
        Expect::Scalar(ScalarType::Bool) => "`true` or `false`".into(),
        Expect::Scalar(ScalarType::Str) => "a string".into(),
        Expect::Default(s) => s.describe().into(),
        Expect::Any => "a compile-time value".into(),
    }
}

/// The symbols a parameter accepts, if it accepts symbols from a fixed list.
fn symbols(expect: Expect) -> Option<&'static [&'static str]> {
    match expect {
        Expect::Arg(ArgTy::Sym(s) | ArgTy::IntPairOrSym(s)) => Some(s),
        _ => None,
    }
}

/// Whether a compile-time value of type `t` is accepted.
fn accepts(expect: Expect, t: &Ty) -> bool {
    let Some(s) = t.sty() else { return true };
    if s == SType::Any {
        return true;
    }
    let v = t.known();
    let int = matches!(s, SType::Int | SType::Num);
    let number = matches!(s, SType::Int | SType::Float | SType::Num);
    let pair = match v {
        Some(Val::Array(xs)) => xs.len() == 2 && xs.iter().all(|x| matches!(x, Val::Int(_))),
        _ => s == SType::Array,
    };
    let sym_in = |list: &[&str]| match v {
        Some(Val::Sym(name)) => list.contains(&name.as_str()),
        _ => s == SType::Sym,
    };
    match expect {
        Expect::Any => true,
        Expect::Arg(a) => match a {
            ArgTy::Int => int,
            ArgTy::Float => number,
            ArgTy::Bool => s == SType::Bool,
            ArgTy::Sym(list) => sym_in(list),
            ArgTy::IntOrPair => int || pair,
            ArgTy::IntPairOrSym(list) => int || pair || sym_in(list),
            ArgTy::IntPairOrConst => {
                int || match v {
                    Some(v @ Val::Array(_)) => v.is_numeric(),
                    _ => s == SType::Array,
                }
            }
            ArgTy::IntList => match v {
                Some(Val::Array(xs)) => xs.iter().all(|x| matches!(x, Val::Int(_))),
                _ => s == SType::Array,
            },
            ArgTy::State | ArgTy::Cell => false,
        },
        Expect::Scalar(st) => match st {
            ScalarType::Int => int,
            ScalarType::Float => number,
            ScalarType::Bool => s == SType::Bool,
            ScalarType::Str => s == SType::Str,
        },
        Expect::Default(d) => match d {
            SType::Bool => s == SType::Bool,
            SType::Str => s == SType::Str,
            SType::Any => true,
            SType::Int => !matches!(s, SType::Bool | SType::Str | SType::Float),
            _ => !matches!(s, SType::Bool | SType::Str),
        },
    }
}

impl<'p> Walker<'_, 'p> {
    /// A call `callee(args)`.
    pub(super) fn call(&mut self, callee: &'p Ident, args: &'p [Arg], flow: Flow) -> Ty {
        let item = self.cx.item(self.file, &callee.name);
        let builtin = builtins::lookup(&callee.name);
        match (item, builtin) {
            (Some(r), Some(sig)) if matches!(r.item, Item::Net(_)) => {
                return self.builtin_call(sig, callee, Some(args), flow)
            }
            (Some(r), _) => return self.item_use(r, callee, Some(args)),
            (None, Some(sig)) => return self.builtin_call(sig, callee, Some(args), flow),
            (None, None) => {}
        }
        match self.lookup(&callee.name) {
            Found::Local(_) => self.report(Error::ValueCalled {
                name: callee.name.clone(),
                span: callee.span,
            }),
            Found::Later(def) => self.report(Error::UseBeforeDefinition {
                name: callee.name.clone(),
                span: callee.span,
                def,
            }),
            _ => {
                let layers = self.layer_names();
                self.report(Error::UnknownLayer {
                    name: callee.name.clone(),
                    span: callee.span,
                    suggestion: suggest(&callee.name, layers.iter().copied()),
                });
            }
        }
        self.loose_args(args);
        Ty::Unknown
    }

    /// A visible item used by name (`args` is `None`) or called.
    pub(super) fn item_use(
        &mut self,
        r: ItemRef<'p>,
        id: &'p Ident,
        args: Option<&'p [Arg]>,
    ) -> Ty {
        match r.item {
            Item::Const(c) => match args {
                None => self.cx.const_ty(r, c, id.span),
                Some(args) => {
                    self.report(Error::ValueCalled {
                        name: id.name.clone(),
                        span: id.span,
                    });
                    self.loose_args(args);
                    Ty::Unknown
                }
            },
            Item::Block(b) => {
                self.reference(r, id.span);
                self.static_call(Sig::of_params(&b.name.name, &b.params), id, args);
                Ty::Layer { state: false }
            }
            Item::Cell(c) => {
                self.reference(r, id.span);
                self.static_call(Sig::of_params(&c.name.name, &c.params), id, args);
                Ty::Cell
            }
            Item::Net(n) => {
                self.report(Error::NetAsLayer {
                    name: id.name.clone(),
                    span: id.span,
                    def: n.name.span,
                });
                if let Some(args) = args {
                    self.loose_args(args);
                }
                Ty::Unknown
            }
            Item::Use(_) => Ty::Unknown,
        }
    }

    /// Records a reference to a block or cell of this file, for recursion checks.
    fn reference(&mut self, r: ItemRef<'p>, span: Span) {
        if r.file == self.file {
            self.refs.push((r.index, span));
        }
    }

    /// A block or cell call: every argument is a compile-time value.
    fn static_call(&mut self, sig: Sig<'_>, id: &Ident, args: Option<&'p [Arg]>) {
        let args = args.unwrap_or(&[]);
        let vals: Vec<(&'p Arg, ArgVal<'p>)> = args.iter().map(|a| (a, self.arg_val(a))).collect();
        let uncertain = vals
            .iter()
            .any(|(a, v)| a.name.is_none() && matches!(v, ArgVal::Ty(Ty::Unknown)));
        self.bind(&sig, id.span, vals, uncertain);
    }

    /// A built-in layer used by name (`args` is `None`) or called.
    pub(super) fn builtin_call(
        &mut self,
        sig: &'static LayerSig,
        id: &Ident,
        args: Option<&'p [Arg]>,
        flow: Flow,
    ) -> Ty {
        let parens = args.is_some();
        let args = args.unwrap_or(&[]);
        let takes_cell = sig.params.iter().any(|p| p.ty == ArgTy::Cell);
        let mut vals: Vec<ArgVal<'p>> = Vec::with_capacity(args.len());
        for a in args {
            let mut v = self.arg_val(a);
            if a.name.is_none() && matches!(v, ArgVal::Ty(Ty::Layer { .. })) && !takes_cell {
                self.report(Error::LayerAsValue {
                    span: a.value.span,
                    text: self.text(a.value.span),
                    place: "an argument",
                });
                v = ArgVal::Ty(Ty::Unknown);
            }
            vals.push(v);
        }
        let positional: Vec<usize> = (0..args.len())
            .filter(|&i| args[i].name.is_none())
            .collect();
        let n = positional
            .iter()
            .take_while(|&&i| matches!(&vals[i], ArgVal::Ty(t) if t.is_tensor()))
            .count();
        let uncertain = positional
            .iter()
            .any(|&i| matches!(vals[i], ArgVal::Ty(Ty::Unknown)));
        let explicit_none = parens && args.is_empty() && matches!(sig.inputs, Arity::AtLeast(_));
        let incoming = matches!(flow, Flow::Incoming(_));
        let (given, counted) = match flow {
            Flow::Incoming(_) => (n + 1, true),
            Flow::Implicit if n == 0 && !explicit_none => (1, true),
            _ => (n, n > 0 || explicit_none),
        };
        if counted && !uncertain && !sig.inputs.accepts(given) {
            self.report(Error::WrongInputCount {
                callee: sig.name.to_string(),
                span: id.span,
                expected: sig.inputs,
                given,
                incoming,
                branches: false,
            });
        }
        let inputs = &positional[..n];
        let rest: Vec<(&'p Arg, ArgVal<'p>)> = args
            .iter()
            .zip(vals)
            .enumerate()
            .filter(|(i, _)| !inputs.contains(i))
            .map(|(_, x)| x)
            .collect();
        self.bind(&Sig::builtin(sig), id.span, rest, uncertain);
        let state = sig.param("emit").is_some()
            && args.iter().any(|a| {
                a.name.as_ref().is_some_and(|k| k.name == "emit")
                    && matches!(&a.value.kind, ExprKind::Name(s) if s.name == "state")
            });
        if uncertain && !incoming {
            // An argument is unknown: whether it was an input cannot be told.
            Ty::Unknown
        } else if incoming || (n == 0 && !explicit_none) {
            Ty::Layer { state }
        } else if state {
            Ty::State
        } else {
            Ty::Tensor
        }
    }

    /// The arguments of `concat(axis: …) { … }` and the like.
    pub(super) fn branch_args(&mut self, sig: &'static LayerSig, at: Span, args: &'p [Arg]) {
        let vals: Vec<(&'p Arg, ArgVal<'p>)> = args.iter().map(|a| (a, self.arg_val(a))).collect();
        self.bind(&Sig::builtin(sig), at, vals, false);
    }

    /// Classifies an argument's value; no implicit input applies inside arguments.
    fn arg_val(&mut self, a: &'p Arg) -> ArgVal<'p> {
        if let ExprKind::Name(id) = &a.value.kind {
            if !self.resolves(&id.name) {
                if a.name.is_some() {
                    return ArgVal::Bare(id);
                }
                if builtins::is_symbol(&id.name) {
                    return ArgVal::Ty(Ty::Known(Val::Sym(id.name.clone())));
                }
            }
        }
        ArgVal::Ty(self.operand(&a.value))
    }

    /// Checks the arguments of a call whose callee is unknown, for problems of their own.
    fn loose_args(&mut self, args: &'p [Arg]) {
        for a in args {
            if let ExprKind::Name(id) = &a.value.kind {
                if !self.resolves(&id.name) && (a.name.is_some() || builtins::is_symbol(&id.name)) {
                    continue;
                }
            }
            self.operand(&a.value);
        }
    }

    /// Binds arguments (inputs excluded) to the parameters of `sig`.
    fn bind(
        &mut self,
        sig: &Sig<'_>,
        callee_span: Span,
        args: Vec<(&'p Arg, ArgVal<'p>)>,
        uncertain: bool,
    ) {
        let mut given: Vec<Option<Span>> = vec![None; sig.params.len()];
        let n_positional = sig.params.iter().filter(|p| p.positional).count();
        let positional_args = args.iter().filter(|(a, _)| a.name.is_none()).count();
        let mut next = 0;
        let mut last_keyword: Option<Span> = None;
        let mut confused = uncertain;
        for (arg, val) in args {
            let pi = match &arg.name {
                None => {
                    if let Some(k) = last_keyword {
                        self.report(Error::PositionalAfterKeyword {
                            span: arg.span,
                            keyword: k,
                        });
                        confused = true;
                        continue;
                    }
                    if uncertain {
                        continue;
                    }
                    if next >= n_positional {
                        if !confused {
                            self.report(Error::TooManyArguments {
                                callee: sig.callee.to_string(),
                                span: arg.span,
                                max: n_positional,
                                given: positional_args,
                                layer: sig.layer,
                                signature: sig.signature.clone(),
                            });
                        }
                        confused = true;
                        continue;
                    }
                    next += 1;
                    next - 1
                }
                Some(k) => {
                    last_keyword = Some(arg.span);
                    let Some(pi) = sig.params.iter().position(|p| p.name == k.name) else {
                        let names: Vec<&str> = sig.params.iter().map(|p| p.name).collect();
                        self.report(Error::UnknownArgument {
                            callee: sig.callee.to_string(),
                            name: k.name.clone(),
                            span: k.span,
                            suggestion: suggest(&k.name, names.iter().copied()),
                            valid: names.iter().map(|n| n.to_string()).collect(),
                        });
                        confused = true;
                        continue;
                    };
                    if let Some(first) = given[pi] {
                        self.report(Error::DuplicateArgument {
                            name: k.name.clone(),
                            span: k.span,
                            first,
                        });
                        continue;
                    }
                    pi
                }
            };
            given[pi] = Some(arg.span);
            self.check_arg(sig, &sig.params[pi], arg, val);
        }
        if confused {
            return;
        }
        let missing: Vec<String> = sig
            .params
            .iter()
            .zip(&given)
            .filter(|(p, g)| p.required && g.is_none())
            .map(|(p, _)| p.name.to_string())
            .collect();
        if !missing.is_empty() {
            self.report(Error::MissingArgument {
                callee: sig.callee.to_string(),
                span: callee_span,
                missing,
                signature: sig.signature.clone(),
            });
        }
    }

    fn check_arg(&mut self, sig: &Sig<'_>, p: &PSig<'_>, arg: &'p Arg, val: ArgVal<'p>) {
        let t = match val {
            ArgVal::Ty(t) => t,
            ArgVal::Bare(id) => {
                if let Some(list) = symbols(p.expect) {
                    if !list.contains(&id.name.as_str()) {
                        self.report(Error::WrongArgumentType {
                            callee: sig.callee.to_string(),
                            param: p.name.to_string(),
                            expected: describe(p.expect),
                            found: format!("`{}`", id.name),
                            span: id.span,
                            suggestion: suggest(&id.name, list.iter().copied()),
                            decl: p.decl,
                        });
                    }
                    return;
                }
                if !builtins::is_symbol(&id.name) {
                    self.unknown_name(id, Flow::Value);
                    return;
                }
                Ty::Known(Val::Sym(id.name.clone()))
            }
        };
        let span = arg.value.span;
        let wrong = |found: String| Error::WrongArgumentType {
            callee: sig.callee.to_string(),
            param: p.name.to_string(),
            expected: describe(p.expect),
            found,
            span,
            suggestion: None,
            decl: p.decl,
        };
        match &t {
            Ty::Unknown => {}
            t if t.is_tensor() => {
                if p.expect != Expect::Arg(ArgTy::State) {
                    self.report(Error::NotStatic {
                        span,
                        text: self.text(span),
                        found: t.describe(),
                        ctx: StaticCtx::Argument,
                        param: Some((p.name.to_string(), sig.callee.to_string(), !sig.layer)),
                    });
                }
            }
            Ty::Layer { .. } => {
                if p.expect == Expect::Arg(ArgTy::Cell) {
                    self.report(wrong(format!("the layer `{}`", self.text(span))));
                } else {
                    self.report(Error::LayerAsValue {
                        span,
                        text: self.text(span),
                        place: "an argument",
                    });
                }
            }
            Ty::Cell => {
                if p.expect != Expect::Arg(ArgTy::Cell) {
                    self.report(wrong(t.describe()));
                }
            }
            t => {
                if !accepts(p.expect, t) {
                    let mut e = wrong(t.describe());
                    if let (
                        Some(list),
                        Some(Val::Sym(name)),
                        Error::WrongArgumentType { suggestion, .. },
                    ) = (symbols(p.expect), t.known(), &mut e)
                    {
                        *suggestion = suggest(name, list.iter().copied());
                    }
                    self.report(e);
                }
            }
        }
    }
}
