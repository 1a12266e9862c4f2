//! The built-in layers: binding their arguments against the catalogue
//! ([`crate::syntax::builtins`]), checking sizes, creating parameters and the IR node.

use super::errors::ErrorSite;
use super::expr::{no_input, non_positive, EvArg};
use super::value::{numeric_array, TVal, Val};
use super::{Lowerer, Reported, Res};
use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::graph::ParamKind;
use crate::ir::op::{Conv2d, Op, Pool2d};
use crate::ir::shape::{Dim, Poly, TensorType};
use crate::passes::infer_shapes::{conv_channels, resolve_axis, ShapeError};
use crate::syntax::ast::Ident;
use crate::syntax::builtins::{Arity, LayerSig};
use std::collections::{BTreeMap, BTreeSet};

/// The arguments of a built-in layer call, bound to its parameters, defaults filled in.
pub(crate) struct Bound<'p> {
    pub(super) vals: BTreeMap<&'static str, (Val<'p>, Span)>,
    pub(super) given: BTreeSet<&'static str>,
    pub(super) span: Span,
}

impl<'p> Bound<'p> {
    pub(super) fn get(&self, name: &str) -> Option<&(Val<'p>, Span)> {
        self.vals.get(name)
    }

    /// The value bound to `name`, if any.
    pub(crate) fn value(&self, name: &str) -> Option<&Val<'p>> {
        self.vals.get(name).map(|(v, _)| v)
    }

    pub(super) fn given(&self, name: &str) -> bool {
        self.given.contains(name)
    }

    pub(super) fn span_of(&self, name: &str) -> Span {
        self.vals.get(name).map(|(_, s)| *s).unwrap_or(self.span)
    }
}

/// Most values a fixed (constant-kernel) parameter may hold once expanded per channel.
const MAX_FIXED_VALUES: usize = 1 << 24;

/// Explicit or computed padding.
pub(super) enum PadSpec {
    /// `[h, w]` on each side.
    Explicit([u64; 2]),
    /// `same`.
    Same,
}

/// A constant kernel.
enum Fixed {
    /// `[kh, kw]`: the same filter on each channel (depthwise).
    Depthwise(Vec<f64>),
    /// `[O, I, kh, kw]`.
    Full(u64, u64, Vec<f64>),
}

impl<'p> Lowerer<'p> {
    /// Applies built-in layer `sig` to `flow` and the leading tensor arguments.
    pub(super) fn apply_builtin(
        &mut self,
        sig: &'static LayerSig,
        args: Vec<EvArg<'p>>,
        flow: Option<&Val<'p>>,
        label: Option<&'p Ident>,
        span: Span,
    ) -> Val<'p> {
        if args.iter().any(|a| matches!(a.val, Val::Poison)) {
            return Val::Poison;
        }
        let Ok(flow_t) = self.flow_tensor(flow, sig.name, span) else {
            return Val::Poison;
        };
        let mut inputs: Vec<TVal> = flow_t.into_iter().collect();
        let mut rest = Vec::new();
        for a in args {
            match (&a.val, a.name.is_none() && rest.is_empty()) {
                (Val::Tensor(t), true) => inputs.push(*t),
                (Val::State(_), true) => {
                    self.error(
                        Diagnostic::error(
                            Code::BadOperand,
                            format!("`{}` is given a recurrent state, not a tensor", sig.name),
                            Label::new(a.span, "a state"),
                        )
                        .with_help("a state (`emit: state`) is passed to a recurrence as `init:`"),
                    );
                    return Val::Poison;
                }
                _ => rest.push(a),
            }
        }
        if inputs.is_empty() {
            self.error(no_input(span, &format!("`{}`", sig.name)));
            return Val::Poison;
        }
        if !sig.inputs.accepts(inputs.len()) {
            let want = match sig.inputs {
                Arity::Exactly(k) => format!("{k}"),
                Arity::AtLeast(k) => format!("at least {k}"),
            };
            self.error(Diagnostic::error(
                Code::WrongInputCount,
                format!(
                    "`{}` takes {want} tensor input{}, but gets {}",
                    sig.name,
                    if want == "1" { "" } else { "s" },
                    inputs.len()
                ),
                Label::new(span, "wrong number of inputs"),
            ));
            return Val::Poison;
        }
        let Ok(b) = self.bind_layer(sig, rest, span) else {
            return Val::Poison;
        };
        if sig.name == "identity" {
            return Val::Tensor(inputs[0]);
        }
        if self.step(span).is_err() {
            return Val::Poison;
        }
        let name = match sig.name {
            "unroll" => String::new(),
            _ => self.fresh_name(label, sig.name),
        };
        match self.lower_layer(sig, &inputs, &b, &name, label, span) {
            Ok(v) => v,
            Err(Reported) => Val::Poison,
        }
    }

    fn lower_layer(
        &mut self,
        sig: &'static LayerSig,
        inputs: &[TVal],
        b: &Bound<'p>,
        name: &str,
        label: Option<&'p Ident>,
        span: Span,
    ) -> Res<Val<'p>> {
        let site = ErrorSite::new(sig.name, span);
        let x = inputs[0];
        let simple =
            |l: &mut Self, op: Op| -> Res<Val<'p>> { Ok(l.single(op, inputs, name, &site)) };
        match sig.name {
            "conv" => self.lower_conv(x, b, name, &site),
            "maxpool" | "avgpool" => self.lower_pool(x, b, name, &site),
            "dense" => self.lower_dense(x, b, name, &site),
            "embed" => {
                let vocab = self.size(b, "vocab", sig.name)?;
                let dim = self.size(b, "dim", sig.name)?;
                let t = self.ty(x).clone();
                if !t.dtype.is_int() {
                    return Err(self.shape_error(
                        &ShapeError::DType {
                            input: 0,
                            expected: "integer ids",
                            found: t.dtype,
                        },
                        inputs,
                        &site,
                    ));
                }
                let table = self.param(
                    name,
                    "table",
                    &[vocab, dim],
                    ParamKind::Trainable,
                    None,
                    span,
                )?;
                Ok(self.single(Op::Embed, &[x, table], name, &site))
            }
            "batchnorm" => {
                let eps = self.float(b, "eps")?;
                let t = self.ty(x).clone();
                let c = self.channels(x, &t, 2, "at least 2-D [N, C, …]", &site)?;
                let scale = self.param(name, "scale", &[c], ParamKind::Trainable, None, span)?;
                let shift = self.param(name, "shift", &[c], ParamKind::Trainable, None, span)?;
                let mean = self.param(name, "mean", &[c], ParamKind::Buffer, None, span)?;
                let var = self.param(name, "var", &[c], ParamKind::Buffer, None, span)?;
                Ok(self.single(
                    Op::BatchNorm { eps },
                    &[x, scale, shift, mean, var],
                    name,
                    &site,
                ))
            }
            "lrn" => {
                let size = self.size(b, "size", sig.name)?;
                let alpha = self.float(b, "alpha")?;
                let beta = self.float(b, "beta")?;
                let k = self.float(b, "k")?;
                simple(
                    self,
                    Op::Lrn {
                        size,
                        alpha,
                        beta,
                        k,
                    },
                )
            }
            "dropout" => {
                let rate = self.float(b, "rate")?;
                if !(0.0..1.0).contains(&rate) {
                    return Err(self.report(Diagnostic::error(
                        Code::WrongArgumentType,
                        format!("a dropout rate is a probability below 1, not {rate}"),
                        Label::new(b.span_of("rate"), "not in [0, 1)"),
                    )));
                }
                simple(self, Op::Dropout { rate })
            }
            "flatten" => simple(self, Op::Flatten),
            "relu" => simple(self, Op::Relu),
            "sigmoid" => simple(self, Op::Sigmoid),
            "tanh" => simple(self, Op::Tanh),
            "global_avgpool" => simple(self, Op::GlobalAvgPool),
            "global_maxpool" => simple(self, Op::GlobalMaxPool),
            "softmax" | "log_softmax" | "mean" | "sum" => {
                let axis = self.int(b, "axis")?.unwrap_or(-1);
                let rank = self.ty(x).shape.rank();
                let a =
                    resolve_axis(axis, rank).map_err(|e| self.shape_error(&e, inputs, &site))?;
                let op = match sig.name {
                    "softmax" => Op::Softmax { axis: a },
                    "log_softmax" => Op::LogSoftmax { axis: a },
                    "mean" => Op::Mean { axis: a },
                    _ => Op::Sum { axis: a },
                };
                simple(self, op)
            }
            "concat" => {
                let axis = self.int(b, "axis")?.unwrap_or(1);
                let rank = self.ty(x).shape.rank();
                let a =
                    resolve_axis(axis, rank).map_err(|e| self.shape_error(&e, inputs, &site))?;
                simple(
                    self,
                    Op::Concat {
                        axis: a,
                        in_place: false,
                    },
                )
            }
            "add" => simple(self, Op::Add),
            "mul" => simple(self, Op::Mul),
            "sub" => simple(self, Op::Sub),
            "matmul" => simple(self, Op::MatMul),
            "mse" => simple(self, Op::Mse),
            "softmax_cross_entropy" => simple(self, Op::SoftmaxCrossEntropy),
            "reshape" => self.lower_reshape(x, b, name, &site),
            "slice" => self.lower_slice(x, b, name, &site),
            "rnn" | "lstm" | "gru" | "unroll" => {
                self.lower_recurrent(sig.name, x, b, name, label, span)
            }
            other => Err(self.report(Diagnostic::error(
                Code::InternalShapeError,
                format!("internal error: the built-in layer `{other}` has no lowering"),
                Label::new(span, "here"),
            ))),
        }
    }

    // ---------------------------------------------------------------------------------
    // Argument binding and access

    /// Checks that the layer's input `x` (of type `t`) holds floating-point values.
    pub(super) fn require_float(
        &mut self,
        x: TVal,
        t: &TensorType,
        site: &ErrorSite<'_>,
    ) -> Res<()> {
        if t.dtype.is_float() {
            return Ok(());
        }
        Err(self.shape_error(
            &ShapeError::DType {
                input: 0,
                expected: "floating-point",
                found: t.dtype,
            },
            &[x],
            site,
        ))
    }

    /// Axis 1 of `x`, known, after checking its rank is at least `min_rank`.
    fn channels(
        &mut self,
        x: TVal,
        t: &TensorType,
        min_rank: usize,
        expected: &'static str,
        site: &ErrorSite<'_>,
    ) -> Res<u64> {
        if t.shape.rank() < min_rank {
            return Err(self.shape_error(
                &ShapeError::Rank {
                    input: 0,
                    expected,
                    found: t.shape.rank(),
                },
                &[x],
                site,
            ));
        }
        match &t.shape.dims()[1] {
            Dim::Known(c) => Ok(*c),
            Dim::Sym(p) => Err(self.shape_error(
                &ShapeError::SymbolicSize {
                    size: p.clone(),
                    what: "the channel count must be known",
                },
                &[x],
                site,
            )),
        }
    }

    /// Checks that `x` is a floating-point image `[N, C, H, W]` and returns `C`.
    fn image_channels(&mut self, x: TVal, site: &ErrorSite<'_>) -> Res<u64> {
        let t = self.ty(x).clone();
        if t.shape.rank() != 4 {
            return Err(self.shape_error(
                &ShapeError::Rank {
                    input: 0,
                    expected: "4-D [N, C, H, W]",
                    found: t.shape.rank(),
                },
                &[x],
                site,
            ));
        }
        self.require_float(x, &t, site)?;
        self.channels(x, &t, 4, "4-D [N, C, H, W]", site)
    }

    // ---------------------------------------------------------------------------------
    // Layers with parameters or windows

    fn lower_conv(
        &mut self,
        x: TVal,
        b: &Bound<'p>,
        name: &str,
        site: &ErrorSite<'_>,
    ) -> Res<Val<'p>> {
        let c = self.image_channels(x, site)?;
        let (kernel, fixed) = match b.get("kernel") {
            Some((Val::List(items), _)) if items.iter().any(|i| matches!(i, Val::List(_))) => {
                let Some((shape, data)) = b.get("kernel").and_then(|(v, _)| numeric_array(v))
                else {
                    return Err(self.wrong_type(
                        b,
                        "kernel",
                        "a kernel size or a rectangular array of numbers",
                    ));
                };
                match shape.as_slice() {
                    [kh, kw] if *kh >= 1 && *kw >= 1 => ([*kh, *kw], Some(Fixed::Depthwise(data))),
                    [o, i, kh, kw] if [*o, *i, *kh, *kw].iter().all(|d| *d >= 1) => {
                        ([*kh, *kw], Some(Fixed::Full(*o, *i, data)))
                    }
                    _ => {
                        return Err(self.wrong_type(
                            b,
                            "kernel",
                            "a 2-D [kh, kw] or 4-D [filters, channels, kh, kw] constant",
                        ))
                    }
                }
            }
            _ => (self.pair(b, "kernel", "conv", 1)?, None),
        };
        let stride = self.pair(b, "stride", "conv", 1)?;
        let dilation = self.pair(b, "dilation", "conv", 1)?;
        let spec = self.pad_spec(b, "conv")?;
        let groups_arg = self.int(b, "groups")?.unwrap_or(1);
        if groups_arg < 1 {
            let v = Val::Int(groups_arg);
            return Err(self.report(non_positive("`groups` of `conv`", &v, b.span_of("groups"))));
        }
        let filters_arg = match b.get("filters") {
            None => None,
            Some((Val::Int(v), _)) if *v >= 1 => Some(v.unsigned_abs()),
            Some((v, span)) => {
                let d = non_positive("`filters` of `conv`", v, *span);
                return Err(self.report(d));
            }
        };
        let (filters, groups, kc, kind, init) = match fixed {
            Some(Fixed::Depthwise(data)) => {
                if filters_arg.is_some() {
                    return Err(self.report(
                        Diagnostic::error(
                            Code::WrongArgumentType,
                            "a 2-D constant kernel fixes the filter count: one filter per input channel",
                            Label::new(b.span_of("filters"), "remove this"),
                        )
                        .with_help("write `conv(kernel: k, …)`, or give a 4-D [filters, channels, kh, kw] constant"),
                    ));
                }
                // The filter is stored once per channel; refuse absurd channel counts
                // before allocating.
                let total = usize::try_from(c)
                    .ok()
                    .and_then(|c| c.checked_mul(data.len()))
                    .filter(|n| *n <= MAX_FIXED_VALUES);
                let Some(total) = total else {
                    return Err(self.report(
                        Diagnostic::error(
                            Code::NetTooLarge,
                            format!(
                                "a constant kernel on {c} channels has too many values to store"
                            ),
                            Label::new(site.span, "this fixed filter"),
                        )
                        .with_help(format!(
                            "fixed kernels may hold at most {MAX_FIXED_VALUES} values in all"
                        )),
                    ));
                };
                let mut all = Vec::with_capacity(total);
                for _ in 0..c {
                    all.extend_from_slice(&data);
                }
                (c, c, 1, ParamKind::Fixed, Some(all))
            }
            Some(Fixed::Full(o, i, data)) => {
                if filters_arg.is_some_and(|f| f != o) {
                    return Err(self.report(Diagnostic::error(
                        Code::WrongArgumentType,
                        format!(
                            "the constant kernel has {o} filters, but `filters` says otherwise"
                        ),
                        Label::new(b.span_of("filters"), "does not match the kernel"),
                    )));
                }
                (
                    o,
                    groups_arg.unsigned_abs(),
                    i,
                    ParamKind::Fixed,
                    Some(data),
                )
            }
            None => {
                let Some(f) = filters_arg else {
                    return Err(self.report(
                        Diagnostic::error(
                            Code::MissingArgument,
                            "`conv` needs a filter count",
                            Label::new(site.span, "how many output channels?"),
                        )
                        .with_help("write `conv(64, kernel: 3)`; only a constant kernel makes the count implicit"),
                    ));
                };
                let g = groups_arg.unsigned_abs();
                (
                    f,
                    g,
                    if c % g == 0 { c / g } else { 0 },
                    ParamKind::Trainable,
                    None,
                )
            }
        };
        let cdim = Dim::Known(c);
        conv_channels(&cdim, groups, filters, kc).map_err(|e| self.shape_error(&e, &[x], site))?;
        let pad = self.pads(&spec, x, kernel, stride, dilation, site)?;
        let span = site.span;
        let weight = self.param(
            name,
            "weight",
            &[filters, kc, kernel[0], kernel[1]],
            kind,
            init,
            span,
        )?;
        let bias = if kind == ParamKind::Fixed && !b.given("bias") {
            false
        } else {
            self.boolean(b, "bias")?
        };
        let mut inputs = vec![x, weight];
        if bias {
            inputs.push(self.param(name, "bias", &[filters], ParamKind::Trainable, None, span)?);
        }
        let op = Op::Conv2d(Conv2d {
            kernel,
            stride,
            pad,
            dilation,
            groups,
        });
        Ok(self.single(op, &inputs, name, site))
    }

    fn lower_pool(
        &mut self,
        x: TVal,
        b: &Bound<'p>,
        name: &str,
        site: &ErrorSite<'_>,
    ) -> Res<Val<'p>> {
        self.image_channels(x, site)?;
        let layer = site.layer;
        let window = self.pair(b, "window", layer, 1)?;
        let stride = self.pair(b, "stride", layer, 1)?;
        let spec = self.pad_spec(b, layer)?;
        let ceil = self.boolean(b, "ceil")?;
        let count_pad = if b.get("count_pad").is_some() {
            self.boolean(b, "count_pad")?
        } else {
            true
        };
        let pad = self.pads(&spec, x, window, stride, [1, 1], site)?;
        let p = Pool2d {
            window,
            stride,
            pad,
            ceil,
            count_pad,
        };
        let op = if layer == "maxpool" {
            Op::MaxPool2d(p)
        } else {
            Op::AvgPool2d(p)
        };
        Ok(self.single(op, &[x], name, site))
    }

    fn lower_dense(
        &mut self,
        x: TVal,
        b: &Bound<'p>,
        name: &str,
        site: &ErrorSite<'_>,
    ) -> Res<Val<'p>> {
        let t = self.ty(x).clone();
        let rank = t.shape.rank();
        if rank >= 4 {
            return Err(self.shape_error(&ShapeError::DenseOnImage { found: rank }, &[x], site));
        }
        if rank < 2 {
            return Err(self.shape_error(
                &ShapeError::Rank {
                    input: 0,
                    expected: "2-D [N, F] or 3-D [N, T, F]",
                    found: rank,
                },
                &[x],
                site,
            ));
        }
        self.require_float(x, &t, site)?;
        let f = match &t.shape.dims()[rank - 1] {
            Dim::Known(f) => *f,
            Dim::Sym(p) => {
                return Err(self.shape_error(
                    &ShapeError::SymbolicSize {
                        size: p.clone(),
                        what: "a dense layer needs a known number of input features",
                    },
                    &[x],
                    site,
                ))
            }
        };
        let units = self.size(b, "units", "dense")?;
        let bias = self.boolean(b, "bias")?;
        let span = site.span;
        let w = self.param(
            name,
            "weight",
            &[units, f],
            ParamKind::Trainable,
            None,
            span,
        )?;
        let mut inputs = vec![x, w];
        if bias {
            inputs.push(self.param(name, "bias", &[units], ParamKind::Trainable, None, span)?);
        }
        Ok(self.single(Op::Dense, &inputs, name, site))
    }

    fn lower_reshape(
        &mut self,
        x: TVal,
        b: &Bound<'p>,
        name: &str,
        site: &ErrorSite<'_>,
    ) -> Res<Val<'p>> {
        let t = self.ty(x).clone();
        let Some((Val::List(items), span)) = b.get("shape").cloned() else {
            return Err(self.wrong_type(b, "shape", "a list of sizes"));
        };
        let batch = t.shape.dims().first().cloned();
        let mut dims: Vec<Option<Dim>> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let d = match it {
                Val::Int(-1) => None,
                Val::Int(v) if *v >= 1 => Some(Dim::Known(v.unsigned_abs())),
                Val::Dim(p) => match Dim::from_poly(p.clone()) {
                    Some(d) => Some(d),
                    None => {
                        return Err(self.report(non_positive(
                            "a reshape size",
                            &Val::Dim(p.clone()),
                            span,
                        )))
                    }
                },
                other => {
                    return Err(self.report(
                        non_positive("a reshape size", other, span)
                            .with_help("sizes are at least 1; one may be -1"),
                    ))
                }
            };
            // A leading batch symbol is the batch axis, which reshape keeps anyway.
            if i == 0 && d.is_some() && d == batch && matches!(batch, Some(Dim::Sym(_))) {
                continue;
            }
            dims.push(d);
        }
        if dims.iter().filter(|d| d.is_none()).count() > 1 {
            return Err(self.report(Diagnostic::error(
                Code::ReshapeMismatch,
                "a reshape may infer only one size (-1)",
                Label::new(span, "two -1 entries"),
            )));
        }
        let per_example = t
            .shape
            .elements_per_example()
            .ok_or_else(|| self.overflow(site.span))?;
        let known: Vec<Dim> = dims.iter().flatten().cloned().collect();
        let given = crate::ir::shape::product(&known).ok_or_else(|| self.overflow(site.span))?;
        let mut out: Vec<Dim> = batch.into_iter().collect();
        for d in dims {
            match d {
                Some(d) => out.push(d),
                None => {
                    let (Some(a), Some(g)) = (per_example.as_const(), given.as_const()) else {
                        return Err(self.shape_error(
                            &ShapeError::SymbolicSize {
                                size: per_example.clone(),
                                what: "inferring a -1 entry needs known sizes",
                            },
                            &[x],
                            site,
                        ));
                    };
                    if g == 0 || a % g != 0 {
                        return Err(self.shape_error(
                            &ShapeError::Reshape {
                                from: per_example.clone(),
                                to: given.clone(),
                            },
                            &[x],
                            site,
                        ));
                    }
                    out.push(Dim::Known((a / g).unsigned_abs()));
                }
            }
        }
        Ok(self.single(Op::Reshape { shape: out }, &[x], name, site))
    }

    fn lower_slice(
        &mut self,
        x: TVal,
        b: &Bound<'p>,
        name: &str,
        site: &ErrorSite<'_>,
    ) -> Res<Val<'p>> {
        let t = self.ty(x).clone();
        let axis = self.int(b, "axis")?.unwrap_or(0);
        let a = resolve_axis(axis, t.shape.rank()).map_err(|e| self.shape_error(&e, &[x], site))?;
        let size = t.shape.dims()[a].clone();
        let norm = |v: i64| -> Option<u64> {
            if v >= 0 {
                Some(v.unsigned_abs())
            } else {
                size.known().and_then(|k| k.checked_sub(v.unsigned_abs()))
            }
        };
        let start = self.int(b, "start")?.unwrap_or(0);
        let end = self.int(b, "end")?;
        let (Some(s), Some(e)) = (
            norm(start),
            match end {
                Some(e) => norm(e),
                None => size.known(),
            },
        ) else {
            return Err(self.shape_error(
                &ShapeError::SymbolicSize {
                    size: size.to_poly().unwrap_or_else(Poly::zero),
                    what: "this slice needs a known axis size",
                },
                &[x],
                site,
            ));
        };
        Ok(self.single(
            Op::Slice {
                axis: a,
                start: s,
                end: e,
            },
            &[x],
            name,
            site,
        ))
    }
}
