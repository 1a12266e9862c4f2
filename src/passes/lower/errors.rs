//! Turning shape errors into diagnostics: the one place that phrases them. Each names the
//! layer, both shapes involved and the layers that produced them, adds the block call
//! chain as secondary labels, and says how to fix it where netc can tell.

use super::value::TVal;
use super::{Lowerer, Reported};
use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::graph::ScopeKind;
use crate::ir::op::Op;
use crate::ir::shape::{Dim, TensorType};
use crate::passes::infer_shapes::{ShapeError, Window};

/// Where a layer is applied, for its error messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorSite<'a> {
    /// The layer as the user knows it (`conv`, `add`, `dense`).
    pub layer: &'a str,
    /// Its text.
    pub span: Span,
    /// For merges of `concat { … }` / `add { … }`: the span of each branch, in input order.
    pub branches: &'a [Span],
    /// For those merges: the value flowing into the branches (to spot the shortcut).
    pub flow: Option<TVal>,
}

impl<'a> ErrorSite<'a> {
    /// A site for `layer` at `span`.
    pub fn new(layer: &'a str, span: Span) -> ErrorSite<'a> {
        ErrorSite {
            layer,
            span,
            branches: &[],
            flow: None,
        }
    }
}

fn axis_name(rank: usize, axis: usize) -> String {
    match (rank, axis) {
        (4, 1) | (3, 1) => "channels".into(),
        (4, 2) => "height".into(),
        (4, 3) => "width".into(),
        (_, 0) => "batch".into(),
        _ => format!("axis {axis}"),
    }
}

impl Lowerer<'_> {
    /// What produced `t`, for a secondary label: its span and a phrase with its type.
    pub(super) fn producer(&self, t: TVal) -> (Span, String) {
        let region = self.region_of(t);
        let node = region.node(t.v.node);
        let ty = region.ty(t.v);
        match &node.op {
            Op::Input { name, .. } if t.depth == 0 => {
                let span = self
                    .input_decls
                    .get(&t.v.node)
                    .copied()
                    .unwrap_or(node.span);
                (span, format!("`{name}` is declared {ty}"))
            }
            Op::Input { name, .. } => (node.span, format!("`{name}` is {ty}")),
            _ if node.name.is_empty() => (node.span, format!("this gives {ty}")),
            _ => (node.span, format!("`{}` gives {ty}", node.name)),
        }
    }

    /// Adds the call chain of the current scope as secondary labels.
    pub(super) fn with_call_chain(&self, mut d: Diagnostic) -> Diagnostic {
        for s in self.graph.call_chain(self.scope_id()) {
            let callee = s.callee.clone().unwrap_or_default();
            let msg = match s.kind {
                ScopeKind::Cell => format!("in cell `{callee}`, run here as `{}`", s.name),
                ScopeKind::Block | ScopeKind::Net | ScopeKind::Branch | ScopeKind::Repeat => {
                    format!("in block `{callee}`, instantiated here as `{}`", s.name)
                }
            };
            d = d.with_label(Label::new(s.span, msg));
        }
        d
    }

    /// Reports a shape error of the layer at `site` whose inputs are `inputs`.
    pub(super) fn shape_error(
        &mut self,
        e: &ShapeError,
        inputs: &[TVal],
        site: &ErrorSite<'_>,
    ) -> Reported {
        let d = self.describe(e, inputs, site);
        self.report(d)
    }

    fn input_label(&self, inputs: &[TVal], i: usize) -> Option<Label> {
        inputs.get(i).map(|t| {
            let (span, msg) = self.producer(*t);
            Label::new(span, msg)
        })
    }

    fn ty_of(&self, inputs: &[TVal], i: usize) -> Option<TensorType> {
        inputs.get(i).map(|t| self.ty(*t).clone())
    }

    fn describe(&self, e: &ShapeError, inputs: &[TVal], site: &ErrorSite<'_>) -> Diagnostic {
        let layer = site.layer;
        let here = |msg: String| Label::new(site.span, msg);
        let show = |t: &Option<TensorType>| t.as_ref().map(|t| t.to_string()).unwrap_or_default();
        match e {
            ShapeError::Rank {
                input,
                expected,
                found,
            } => {
                let ty = self.ty_of(inputs, *input);
                let mut d = Diagnostic::error(
                    Code::WrongRank,
                    format!(
                        "`{layer}` needs a {expected} input, but gets {} ({found}-D)",
                        show(&ty)
                    ),
                    here(format!("needs a {expected} input")),
                );
                if let Some(l) = self.input_label(inputs, *input) {
                    d = d.with_label(l);
                }
                let from_input = inputs
                    .get(*input)
                    .is_some_and(|t| t.depth == 0 && self.input_decls.contains_key(&t.v.node));
                let help = if from_input && expected.starts_with("4-D") && *found == 3 {
                    let t = ty.clone().unwrap_or_else(|| {
                        TensorType::new(crate::ir::shape::DType::F32, Vec::new())
                    });
                    let mut dims: Vec<String> =
                        t.shape.dims().iter().map(ToString::to_string).collect();
                    dims.insert(1.min(dims.len()), "1".into());
                    format!(
                        "images are [N, C, H, W]: declare the input with a channel axis, `{}[{}]`",
                        t.dtype.as_str(),
                        dims.join(", ")
                    )
                } else if from_input && expected.starts_with("4-D") {
                    "images are [N, C, H, W]: declare the input with four axes, for example `f32[N, 1, 28, 28]`".to_string()
                } else if expected.starts_with("4-D") {
                    format!("`{layer}` works on images [N, C, H, W]; `reshape(shape: [C, H, W])` the value first, or use `dense` on features")
                } else if expected.contains("[N, T") {
                    "recurrent layers read sequences [N, T, F]; embed token ids first (`embed(vocab, dim)`)".to_string()
                } else {
                    format!("give `{layer}` a {expected} tensor")
                };
                d.with_help(help)
            }
            ShapeError::DenseOnImage { found } => {
                let ty = self.ty_of(inputs, 0);
                let flat = ty.as_ref().and_then(|t| {
                    let rest = crate::ir::shape::product(t.shape.dims().get(1..)?)?;
                    let d = Dim::from_poly(rest)?;
                    Some(TensorType::new(t.dtype, vec![t.shape.dims()[0].clone(), d]))
                });
                let mut d = Diagnostic::error(
                    Code::DenseOnImage,
                    format!("`dense` is fed a {found}-D tensor {}; it acts on the last axis of [N, F] or [N, T, F]", show(&ty)),
                    here("expects [N, F] features".into()),
                );
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                d.with_help(match flat {
                    Some(f) => format!(
                        "insert `-> flatten` before the dense layer: it turns {} into {f}",
                        show(&ty)
                    ),
                    None => "insert `-> flatten` before the dense layer".to_string(),
                })
            }
            ShapeError::Channels {
                channels,
                groups,
                filters,
                kernel_channels,
            } => {
                let c = channels.known().unwrap_or(0);
                let (msg, lab) = if *groups > 1 && c % groups != 0 {
                    (
                        format!("channel mismatch: {c} input channels cannot be split into {groups} groups"),
                        format!("`groups: {groups}` needs input channels divisible by {groups}"),
                    )
                } else if *groups > 1 && filters % groups != 0 {
                    (
                        format!("channel mismatch: {filters} filters cannot be split into {groups} groups"),
                        format!("`groups: {groups}` needs a filter count divisible by {groups}"),
                    )
                } else {
                    (
                        format!(
                            "channel mismatch: the kernel expects {kernel_channels} input channel{} per group, but the input has {c}",
                            if *kernel_channels == 1 { "" } else { "s" }
                        ),
                        format!("expects {} input channels", kernel_channels.saturating_mul(*groups)),
                    )
                };
                let mut d = Diagnostic::error(Code::ChannelMismatch, msg, here(lab));
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                if *groups > 1 {
                    let ok: Vec<String> = (1..=c.min(*filters).min(4096))
                        .filter(|g| c % g == 0 && filters % g == 0)
                        .map(|g| g.to_string())
                        .collect();
                    d = d.with_help(format!(
                        "groups must divide both the input channels ({c}) and the filters ({filters}): {}",
                        ok.join(", ")
                    ));
                } else {
                    d = d.with_help(format!(
                        "give the kernel {c} input channel{} (its shape is [filters, {c}, kh, kw])",
                        if c == 1 { "" } else { "s" }
                    ));
                }
                d
            }
            ShapeError::Broadcast { a, b } => self.broadcast_error(inputs, *a, *b, site),
            ShapeError::SameShape { a, b } => {
                let (ta, tb) = (self.ty_of(inputs, *a), self.ty_of(inputs, *b));
                let mut d = Diagnostic::error(
                    Code::ShapeMismatch,
                    format!(
                        "the inputs of `{layer}` do not match: {} and {}",
                        show(&ta),
                        show(&tb)
                    ),
                    here("needs matching inputs".into()),
                );
                for i in [*a, *b] {
                    if let Some(l) = self.input_label(inputs, i) {
                        d = d.with_label(l);
                    }
                }
                d.with_help(if layer == "softmax_cross_entropy" {
                    "labels are integer ids of the logits' shape without its last axis, or probabilities of the logits' shape".to_string()
                } else {
                    "both inputs must have the same shape".to_string()
                })
            }
            ShapeError::Concat {
                concat_axis,
                first,
                other,
                axis,
            } => {
                let (ta, tb) = (self.ty_of(inputs, *first), self.ty_of(inputs, *other));
                let rank = ta.as_ref().map(|t| t.shape.rank()).unwrap_or(0);
                let what = match axis {
                    Some(ax) => {
                        let da = ta
                            .as_ref()
                            .map(|t| t.shape.dims()[*ax].to_string())
                            .unwrap_or_default();
                        let db = tb
                            .as_ref()
                            .and_then(|t| t.shape.dims().get(*ax).map(ToString::to_string))
                            .unwrap_or_default();
                        format!("in {}: {da} and {db}", axis_name(rank, *ax))
                    }
                    None => "in rank".to_string(),
                };
                let mut d = Diagnostic::error(
                    Code::ConcatMismatch,
                    format!(
                        "concatenated tensors differ {what} ({} and {})",
                        show(&ta),
                        show(&tb)
                    ),
                    here(format!("joins on {}", axis_name(rank, *concat_axis))),
                );
                if site.branches.len() == inputs.len() {
                    for (i, s) in site.branches.iter().enumerate() {
                        let ty = self
                            .ty_of(inputs, i)
                            .map(|t| t.to_string())
                            .unwrap_or_default();
                        d = d.with_label(Label::new(*s, format!("branch {} gives {ty}", i + 1)));
                    }
                } else {
                    for i in 0..inputs.len() {
                        if let Some(l) = self.input_label(inputs, i) {
                            d = d.with_label(l);
                        }
                    }
                }
                d.with_help(if rank == 4 && *concat_axis == 1 {
                    "every branch must keep the same height and width: check their strides and paddings (`pad: same` keeps the size at stride 1)"
                        .to_string()
                } else {
                    format!("all inputs must agree on every axis except {}", axis_name(rank, *concat_axis))
                })
            }
            ShapeError::WindowMisfit(w) => self.window_misfit(w, inputs, site),
            ShapeError::KernelTooLarge(w) => {
                let eff = w
                    .dilation
                    .saturating_mul(w.kernel.saturating_sub(1))
                    .saturating_add(1);
                let padded = match &w.size {
                    Dim::Known(h) => h
                        .saturating_add(w.pad_begin)
                        .saturating_add(w.pad_end)
                        .to_string(),
                    Dim::Sym(p) => format!("{p}+{}", w.pad_begin + w.pad_end),
                };
                let ty = self.ty_of(inputs, 0);
                let mut d = Diagnostic::error(
                    Code::KernelTooLarge,
                    format!(
                        "the {eff}-wide {} window is larger than the input {} of {} (padded: {padded})",
                        layer,
                        w.axis.as_str(),
                        w.size
                    ),
                    here(format!("a {eff}-wide window")),
                );
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                let _ = ty;
                let need = eff.saturating_sub(w.size.known().unwrap_or(0));
                d.with_help(format!(
                    "use a smaller window, pad the input (`pad: {}` makes it fit), or downsample less before this layer",
                    need.div_ceil(2)
                ))
            }
            ShapeError::SymbolicSize { size, what } => {
                let mut d = Diagnostic::error(
                    Code::SymbolicSize,
                    format!("`{layer}` cannot use the symbolic size {size}: {what}"),
                    here("needs a known size".into()),
                );
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                d.with_help("declare that dimension of the input as a number, or use stride 1 with `pad: same` to keep symbolic sizes")
            }
            ShapeError::Overflow => Diagnostic::error(
                Code::SizeOverflow,
                format!("size arithmetic in `{layer}` overflows 64 bits"),
                here("this size is too large".into()),
            )
            .with_help(
                "sizes, parameter counts and costs must fit in 64 bits; check the dimensions",
            ),
            ShapeError::DType {
                input,
                expected,
                found,
            } => {
                let ty = self.ty_of(inputs, *input);
                let mut d = Diagnostic::error(
                    Code::WrongDType,
                    format!(
                        "`{layer}` needs {expected} input, but gets {} ({})",
                        show(&ty),
                        found.as_str()
                    ),
                    here(format!("needs {expected} input")),
                );
                if let Some(l) = self.input_label(inputs, *input) {
                    d = d.with_label(l);
                }
                d.with_help(if *expected == "integer ids" {
                    "token ids are integers: declare the input as `i64[N, T]`".to_string()
                } else if found.is_int() {
                    "integer tensors are token ids: `embed(vocab, dim)` them first".to_string()
                } else {
                    "make both inputs the same element type".to_string()
                })
            }
            ShapeError::Axis { axis, rank } => {
                let ty = self.ty_of(inputs, 0);
                let mut d = Diagnostic::error(
                    Code::AxisOutOfRange,
                    format!(
                        "axis {axis} is out of range for the {rank}-D tensor {}",
                        show(&ty)
                    ),
                    here(format!("axis {axis}")),
                );
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                d.with_help(format!(
                    "axes run from 0 to {} (or from -1 down to -{rank})",
                    rank.saturating_sub(1)
                ))
            }
            ShapeError::Slice { start, end, size } => {
                let mut d = Diagnostic::error(
                    Code::BadSlice,
                    format!("slice {start}..{end} does not lie inside an axis of size {size}"),
                    here(format!("{start}..{end}")),
                );
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                d.with_help("a slice needs start < end <= the axis size")
            }
            ShapeError::Reshape { from, to } => {
                let ty = self.ty_of(inputs, 0);
                let mut d = Diagnostic::error(
                    Code::ReshapeMismatch,
                    format!(
                        "reshape of {} ({from} elements) to {to} elements",
                        show(&ty)
                    ),
                    here(format!("{to} elements")),
                );
                if let Some(l) = self.input_label(inputs, 0) {
                    d = d.with_label(l);
                }
                d.with_help("a reshape keeps the number of elements; one entry of `shape` may be -1 to infer it")
            }
            ShapeError::MatMul { left, right } => {
                let (ta, tb) = (self.ty_of(inputs, 0), self.ty_of(inputs, 1));
                let mut d = Diagnostic::error(
                    Code::MatMulMismatch,
                    format!(
                        "matrix product of {} and {}: inner dimensions {left} and {right} differ",
                        show(&ta),
                        show(&tb)
                    ),
                    here("[…, M, K] x […, K, P]".into()),
                );
                for i in 0..2 {
                    if let Some(l) = self.input_label(inputs, i) {
                        d = d.with_label(l);
                    }
                }
                d.with_help(
                    "the last axis of the left operand must equal the second-to-last of the right",
                )
            }
            ShapeError::State {
                index,
                before,
                after,
            } => Diagnostic::error(
                Code::StateMismatch,
                format!("recurrent state {index} is {before} but becomes {after}"),
                here("in this recurrence".into()),
            )
            .with_help(
                "a state keeps its shape from step to step, and `init:` must give it that shape",
            ),
            ShapeError::ParamShape { .. } | ShapeError::Arity { .. } => Diagnostic::error(
                Code::InternalShapeError,
                format!("internal error: netc built an ill-typed `{layer}` ({e:?})"),
                here("while lowering this".into()),
            )
            .with_note("this is a bug in netc; please report it with this file"),
        }
    }

    fn broadcast_error(
        &self,
        inputs: &[TVal],
        a: usize,
        b: usize,
        site: &ErrorSite<'_>,
    ) -> Diagnostic {
        let (ta, tb) = (self.ty_of(inputs, a), self.ty_of(inputs, b));
        let show = |t: &Option<TensorType>| t.as_ref().map(|t| t.to_string()).unwrap_or_default();
        let is_residual = site.branches.len() == inputs.len() && site.layer == "add";
        let what = if is_residual {
            "residual add of mismatched shapes".to_string()
        } else {
            format!("`{}` of mismatched shapes", site.layer)
        };
        let mut d = Diagnostic::error(
            Code::ShapeMismatch,
            format!("{what}: {} and {}", show(&ta), show(&tb)),
            Label::new(site.span, "these shapes do not broadcast"),
        );
        if site.branches.len() == inputs.len() {
            for i in [a, b] {
                let ty = self
                    .ty_of(inputs, i)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                d = d.with_label(Label::new(
                    site.branches[i],
                    format!("branch {} gives {ty}", i + 1),
                ));
            }
        } else {
            for i in [a, b] {
                if let Some(l) = self.input_label(inputs, i) {
                    d = d.with_label(l);
                }
            }
        }
        d = d.with_note("shapes broadcast when, aligned on the right, each pair of dimensions is equal or one of them is 1");
        if let (true, Some(ta), Some(tb)) = (is_residual, ta, tb) {
            // The shortcut is the branch that passes the block's input through; project it
            // to the other branch's shape.
            let is_flow = |i: usize| site.flow.is_some_and(|f| inputs.get(i) == Some(&f));
            let (short, main) = if is_flow(a) {
                (ta.clone(), tb.clone())
            } else {
                (tb.clone(), ta.clone())
            };
            if short.shape.rank() == 4 && main.shape.rank() == 4 {
                let c = &main.shape.dims()[1];
                let stride = match (short.shape.dims()[2].known(), main.shape.dims()[2].known()) {
                    (Some(h), Some(m)) if m > 0 && h % m == 0 => Some(h / m),
                    (Some(h), Some(m)) if m > 0 => Some(h.div_ceil(m)),
                    _ => None,
                };
                let s = match stride {
                    Some(1) | None => String::new(),
                    Some(s) => format!(", stride: {s}"),
                };
                return d.with_help(format!(
                    "project the shortcut to the other branch's shape: `conv({c}, kernel: 1{s}, bias: false) -> batchnorm` turns {short} into {main}"
                ));
            }
        }
        d.with_help("make both operands the same shape, or shapes that broadcast")
    }

    fn window_misfit(&self, w: &Window, inputs: &[TVal], site: &ErrorSite<'_>) -> Diagnostic {
        let h = w.size.known().unwrap_or(0);
        let eff = w
            .dilation
            .saturating_mul(w.kernel.saturating_sub(1))
            .saturating_add(1);
        let padded = h.saturating_add(w.pad_begin).saturating_add(w.pad_end);
        let span = padded.saturating_sub(eff);
        let s = w.stride.max(1);
        let value = span as f64 / s as f64 + 1.0;
        let pads = if w.pad_begin == w.pad_end {
            if w.pad_begin == 0 {
                String::new()
            } else {
                format!(" + 2*{}", w.pad_begin)
            }
        } else {
            format!(" + {} + {}", w.pad_begin, w.pad_end)
        };
        let kernel = if w.dilation == 1 {
            w.kernel.to_string()
        } else {
            format!("{eff}")
        };
        let formula = format!("({h}{pads} - {kernel})/{s} + 1 = {value:.2}");
        let dropped = span % s - w.pad_end.min(span % s);
        let unit = match w.axis {
            crate::passes::infer_shapes::SpatialAxis::Height => "row",
            crate::passes::infer_shapes::SpatialAxis::Width => "column",
        };
        let plural = if dropped == 1 { "" } else { "s" };
        let mut d = Diagnostic::error(
            Code::WindowMisfit,
            format!("the {} window does not fit the input {}: {formula}", site.layer, w.axis.as_str()),
            Label::new(
                site.span,
                format!("stride {s} leaves the last {dropped} {unit}{plural} of the {h}-{} input unused", if w.axis == crate::passes::infer_shapes::SpatialAxis::Height { "high" } else { "wide" }),
            ),
        );
        if let Some(l) = self.input_label(inputs, 0) {
            d = d.with_label(l);
        }
        d = d.with_note(format!(
            "the output {} is ({}{} - kernel)/stride + 1, which must be a whole number",
            w.axis.as_str(),
            if w.axis == crate::passes::infer_shapes::SpatialAxis::Height {
                "H"
            } else {
                "W"
            },
            if w.pad_begin == w.pad_end {
                " + 2*pad"
            } else {
                " + pads"
            }
        ));
        if w.dilation != 1 {
            d = d.with_note(format!(
                "with dilation {}, the {}-tap kernel spans {eff}",
                w.dilation, w.kernel
            ));
        }
        let fits = |s: u64, p: u64| {
            let padded = h.saturating_add(2 * p);
            padded >= eff && ((padded - eff) % s <= p || eff < s)
        };
        let out = |s: u64, p: u64| (h.saturating_add(2 * p) - eff) / s + 1;
        let mut strides: Vec<u64> = (1..=eff.min(1024))
            .filter(|&t| t != s && fits(t, w.pad_begin))
            .collect();
        strides.sort_by_key(|&t| (t.abs_diff(s), t));
        strides.truncate(2);
        strides.sort_unstable();
        let mut pads: Vec<u64> = (0..=eff.min(1024))
            .filter(|&p| p != w.pad_begin && fits(s, p))
            .collect();
        pads.sort_by_key(|&p| (p.abs_diff(w.pad_begin), p));
        pads.truncate(1);
        let mut options: Vec<String> = strides
            .iter()
            .map(|&t| format!("`stride: {t}` (output {})", out(t, w.pad_begin)))
            .collect();
        options.extend(
            pads.iter()
                .map(|&p| format!("`pad: {p}` (output {})", out(s, p))),
        );
        if matches!(site.layer, "maxpool" | "avgpool") {
            options.push(format!(
                "`ceil: true` (output {})",
                span.div_ceil(s).saturating_add(1)
            ));
        }
        if !options.is_empty() {
            d = d.with_help(format!("nearest settings that fit: {}", join_or(&options)));
        }
        d
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
