//! The arguments of built-in layer calls: binding them to the catalogue's parameters
//! (positional, keyword, defaults), typed access with size checks, and padding (`same`,
//! `valid`, explicit).

use super::errors::ErrorSite;
use super::expr::{non_positive, EvArg};
use super::layers::{Bound, PadSpec};
use super::value::{TVal, Val};
use super::{Lowerer, Reported, Res};
use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::shape::Dim;
use crate::passes::infer_shapes::ShapeError;
use crate::syntax::builtins::{DefaultValue, LayerSig};
use std::collections::{BTreeMap, BTreeSet};

impl<'p> Lowerer<'p> {
    pub(super) fn bind_layer(
        &mut self,
        sig: &'static LayerSig,
        args: Vec<EvArg<'p>>,
        span: Span,
    ) -> Res<Bound<'p>> {
        let mut vals: BTreeMap<&'static str, (Val<'p>, Span)> = BTreeMap::new();
        let mut pos = 0usize;
        let positional: Vec<&'static str> = sig
            .params
            .iter()
            .filter(|p| p.positional)
            .map(|p| p.name)
            .collect();
        let mut failed = false;
        for a in args {
            let pname = match a.name {
                None => {
                    let Some(n) = positional.get(pos) else {
                        self.error(
                            Diagnostic::error(
                                Code::TooManyArguments,
                                format!(
                                    "`{}` takes {} positional argument{}",
                                    sig.name,
                                    positional.len(),
                                    if positional.len() == 1 { "" } else { "s" }
                                ),
                                Label::new(a.span, "one too many"),
                            )
                            .with_help(format!("the signature is `{}`", sig.signature())),
                        );
                        failed = true;
                        continue;
                    };
                    pos += 1;
                    *n
                }
                Some(id) => match sig.param(&id.name) {
                    Some(p) => p.name,
                    None => {
                        let names: Vec<String> =
                            sig.params.iter().map(|p| p.name.to_string()).collect();
                        let mut d = Diagnostic::error(
                            Code::UnknownArgument,
                            format!("`{}` has no parameter `{}`", sig.name, id.name),
                            Label::new(a.span, "unknown argument"),
                        );
                        d = match super::expr::closest(&id.name, &names) {
                            Some(best) => d.with_help(format!("did you mean `{best}`?")),
                            None => d.with_help(format!("the signature is `{}`", sig.signature())),
                        };
                        self.error(d);
                        failed = true;
                        continue;
                    }
                },
            };
            if vals.contains_key(pname) {
                self.error(Diagnostic::error(
                    Code::DuplicateArgument,
                    format!("argument `{pname}` is given twice"),
                    Label::new(a.span, "given again here"),
                ));
                failed = true;
                continue;
            }
            vals.insert(pname, (a.val, a.span));
        }
        let given: BTreeSet<&'static str> = vals.keys().copied().collect();
        for p in sig.params {
            if vals.contains_key(p.name) {
                continue;
            }
            let v = match p.default {
                DefaultValue::Required => {
                    self.error(
                        Diagnostic::error(
                            Code::MissingArgument,
                            format!("`{}` needs an argument `{}`", sig.name, p.name),
                            Label::new(span, format!("`{}` is missing", p.name)),
                        )
                        .with_help(format!("the signature is `{}`", sig.signature())),
                    );
                    failed = true;
                    continue;
                }
                DefaultValue::Absent => continue,
                DefaultValue::Int(v) => Val::Int(v),
                DefaultValue::Float(v) => Val::Float(v),
                DefaultValue::Bool(v) => Val::Bool(v),
                DefaultValue::Sym(s) => Val::Sym(s.to_string()),
                DefaultValue::SameAs(o) => match vals.get(o) {
                    Some((v, _)) => v.clone(),
                    None => continue,
                },
            };
            vals.insert(p.name, (v, span));
        }
        if failed {
            return Err(Reported);
        }
        Ok(Bound { vals, given, span })
    }

    pub(super) fn wrong_type(&mut self, b: &Bound<'p>, name: &str, expected: &str) -> Reported {
        let (v, span) = match b.get(name) {
            Some((v, s)) => (v.describe(), *s),
            None => ("nothing".to_string(), b.span),
        };
        self.report(Diagnostic::error(
            Code::WrongArgumentType,
            format!("`{name}` must be {expected}, not {v}"),
            Label::new(span, format!("expected {expected}")),
        ))
    }

    pub(super) fn int(&mut self, b: &Bound<'p>, name: &str) -> Res<Option<i64>> {
        match b.get(name) {
            None => Ok(None),
            Some((Val::Int(v), _)) => Ok(Some(*v)),
            Some(_) => Err(self.wrong_type(b, name, "an integer")),
        }
    }

    /// A required positive integer.
    pub(super) fn size(&mut self, b: &Bound<'p>, name: &str, layer: &str) -> Res<u64> {
        match b.get(name) {
            Some((Val::Int(v), _)) if *v >= 1 => Ok(v.unsigned_abs()),
            Some((v, span)) => {
                let d = non_positive(&format!("`{name}` of `{layer}`"), v, *span);
                Err(self.report(d))
            }
            None => Err(self.wrong_type(b, name, "an integer")),
        }
    }

    pub(super) fn float(&mut self, b: &Bound<'p>, name: &str) -> Res<f64> {
        match b.get(name).map(|(v, _)| v.as_f64()) {
            Some(Some(x)) => Ok(x),
            _ => Err(self.wrong_type(b, name, "a number")),
        }
    }

    pub(super) fn boolean(&mut self, b: &Bound<'p>, name: &str) -> Res<bool> {
        match b.get(name) {
            Some((Val::Bool(v), _)) => Ok(*v),
            _ => Err(self.wrong_type(b, name, "`true` or `false`")),
        }
    }

    /// An integer or an `[h, w]` pair, each at least `min`.
    pub(super) fn pair(
        &mut self,
        b: &Bound<'p>,
        name: &str,
        layer: &str,
        min: i64,
    ) -> Res<[u64; 2]> {
        let (v, span) = match b.get(name) {
            Some((v, s)) => (v.clone(), *s),
            None => return Err(self.wrong_type(b, name, "an integer or an `[h, w]` pair")),
        };
        let xs = match &v {
            Val::Int(k) => [*k, *k],
            Val::List(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Val::Int(a), Val::Int(c)) => [*a, *c],
                _ => return Err(self.wrong_type(b, name, "an integer or an `[h, w]` pair")),
            },
            _ => return Err(self.wrong_type(b, name, "an integer or an `[h, w]` pair")),
        };
        if xs.iter().any(|x| *x < min) {
            let bad = if xs[0] < min { xs[0] } else { xs[1] };
            return Err(self.report(
                Diagnostic::error(
                    Code::NonPositiveSize,
                    format!("`{name}` of `{layer}` must be at least {min}, but is {bad}"),
                    Label::new(span, "not a valid size"),
                )
                .with_help(format!(
                    "{} sizes are at least {min}",
                    if min == 0 {
                        "paddings"
                    } else {
                        "kernel, stride and dilation"
                    }
                )),
            ));
        }
        Ok([xs[0].unsigned_abs(), xs[1].unsigned_abs()])
    }

    pub(super) fn pad_spec(&mut self, b: &Bound<'p>, layer: &str) -> Res<PadSpec> {
        match b.get("pad") {
            Some((Val::Sym(s), _)) if s == "same" => Ok(PadSpec::Same),
            Some((Val::Sym(s), _)) if s == "valid" => Ok(PadSpec::Explicit([0, 0])),
            Some((Val::Sym(_), _)) => {
                Err(self.wrong_type(b, "pad", "a padding, `same` or `valid`"))
            }
            _ => self.pair(b, "pad", layer, 0).map(PadSpec::Explicit),
        }
    }

    /// The `[top, left, bottom, right]` padding of a window over `x`.
    pub(super) fn pads(
        &mut self,
        spec: &PadSpec,
        x: TVal,
        kernel: [u64; 2],
        stride: [u64; 2],
        dilation: [u64; 2],
        site: &ErrorSite<'_>,
    ) -> Res<[u64; 4]> {
        match spec {
            PadSpec::Explicit([h, w]) => Ok([*h, *w, *h, *w]),
            PadSpec::Same => {
                let t = self.ty(x).clone();
                let mut out = [0u64; 4];
                for i in 0..2 {
                    let eff = dilation[i]
                        .checked_mul(kernel[i] - 1)
                        .and_then(|e| e.checked_add(1))
                        .ok_or_else(|| self.overflow(site.span))?;
                    let total = match &t.shape.dims()[2 + i] {
                        Dim::Known(h) => {
                            let o = h.div_ceil(stride[i]).max(1);
                            ((o - 1) * stride[i])
                                .checked_add(eff)
                                .ok_or_else(|| self.overflow(site.span))?
                                .saturating_sub(*h)
                        }
                        Dim::Sym(p) if stride[i] == 1 => {
                            let _ = p;
                            eff - 1
                        }
                        Dim::Sym(p) => {
                            return Err(self.shape_error(
                                &ShapeError::SymbolicSize {
                                    size: p.clone(),
                                    what: "`pad: same` with a stride other than 1 needs a known input size",
                                },
                                &[x],
                                site,
                            ))
                        }
                    };
                    out[i] = total / 2;
                    out[2 + i] = total - total / 2;
                }
                Ok(out)
            }
        }
    }
}
