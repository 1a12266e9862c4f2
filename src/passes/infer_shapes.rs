//! Shape rules: for every op, the output types from the input types, or a structured
//! [`ShapeError`] saying what does not fit. One match arm per op; the lowering calls
//! [`infer`] as it builds each node, and the verifier calls it again to check that every
//! stored type is what the rule gives.
//!
//! Conventions (see `docs/ir.md`):
//! - images are `[N, C, H, W]`, sequences `[N, T, F]`; axis 0 is the batch;
//! - a window of `k` taps at dilation `d` covers `d(k-1)+1` positions; the output size is
//!   `floor((H + pad_begin + pad_end - d(k-1) - 1) / s) + 1`, rounded up instead with
//!   `ceil`, where (PyTorch's rule) a last window that would start in the end padding is
//!   dropped;
//! - a window "does not fit" when the windows leave no gaps (`d(k-1)+1 >= s`) and yet stop
//!   before the end of the real input: the floor would silently drop input rows;
//! - elementwise ops broadcast as NumPy does: shapes are aligned on the right, and each
//!   pair of dimensions must be equal or one of them 1;
//! - over a symbolic size only stride-1 windows are computed (`H-2` for a valid 3x3);
//!   anything needing a division of a symbolic size is an error.

use crate::ir::graph::Param;
use crate::ir::op::{Emit, Op};
use crate::ir::shape::{normalize_axis, product, DType, Dim, Poly, Shape, TensorType};

/// Which spatial axis a window error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpatialAxis {
    /// Axis 2.
    Height,
    /// Axis 3.
    Width,
}

impl SpatialAxis {
    /// `height` or `width`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpatialAxis::Height => "height",
            SpatialAxis::Width => "width",
        }
    }
}

/// One spatial axis of a windowed op, with everything its output-size formula needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Which axis.
    pub axis: SpatialAxis,
    /// Input size along it.
    pub size: Dim,
    /// Kernel taps.
    pub kernel: u64,
    /// Stride.
    pub stride: u64,
    /// Dilation.
    pub dilation: u64,
    /// Padding before.
    pub pad_begin: u64,
    /// Padding after.
    pub pad_end: u64,
    /// Round up.
    pub ceil: bool,
}

/// Why a node's input types do not fit its op. Holds numbers and input indices, never
/// formatted text: `passes::lower` turns it into a diagnostic that points at the layer and
/// at the layers that produced its inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeError {
    /// Input `input` has rank `found`; the op needs `expected` (a description such as
    /// "4-D [N, C, H, W]").
    Rank {
        /// The input.
        input: usize,
        /// What is needed.
        expected: &'static str,
        /// The rank found.
        found: usize,
    },
    /// A dense layer was fed a tensor of rank 4 or more (an image without `flatten`).
    DenseOnImage {
        /// The rank found.
        found: usize,
    },
    /// The input channels of a convolution do not fit its groups or its kernel.
    Channels {
        /// Input channels.
        channels: Dim,
        /// Groups.
        groups: u64,
        /// Output channels.
        filters: u64,
        /// Input channels per group the kernel expects.
        kernel_channels: u64,
    },
    /// Elementwise inputs `a` and `b` cannot be broadcast (axis `axis` of the result,
    /// counted from the left of the longer shape).
    Broadcast {
        /// First input.
        a: usize,
        /// Second input.
        b: usize,
    },
    /// Concatenation inputs `first` and `other` differ on `axis` (which is not the
    /// concatenation axis), or in rank.
    Concat {
        /// The concatenation axis.
        concat_axis: usize,
        /// First input.
        first: usize,
        /// The input that differs.
        other: usize,
        /// The axis where they differ; `None` for a rank difference.
        axis: Option<usize>,
    },
    /// The windows do not fit the input along one axis.
    WindowMisfit(Window),
    /// The (dilated) kernel is larger than the padded input.
    KernelTooLarge(Window),
    /// A size that would have to be divided or rounded is symbolic.
    SymbolicSize {
        /// The symbolic size.
        size: Poly,
        /// What needed it ("a strided window", "the channel count", …).
        what: &'static str,
    },
    /// Size arithmetic overflowed 64 bits.
    Overflow,
    /// Input `input` has element type `found`; the op needs `expected`.
    DType {
        /// The input.
        input: usize,
        /// What is needed ("floating-point", "integer ids").
        expected: &'static str,
        /// What was found.
        found: DType,
    },
    /// An axis is out of range for the input's rank.
    Axis {
        /// The axis as given.
        axis: i64,
        /// The rank.
        rank: usize,
    },
    /// A slice range does not lie inside the axis.
    Slice {
        /// Start.
        start: u64,
        /// End.
        end: u64,
        /// Size of the axis.
        size: Dim,
    },
    /// A reshape changes the number of elements.
    Reshape {
        /// Elements of the input.
        from: Poly,
        /// Elements of the requested shape.
        to: Poly,
    },
    /// The inner dimensions of a matrix product differ.
    MatMul {
        /// `K` of the left operand.
        left: Dim,
        /// `K` of the right operand.
        right: Dim,
    },
    /// Two inputs that must have one shape do not (losses).
    SameShape {
        /// First input.
        a: usize,
        /// Second input.
        b: usize,
    },
    /// A recurrent state changes type in one step, or its initial value has the wrong
    /// type.
    State {
        /// Which state.
        index: usize,
        /// The type going in.
        before: TensorType,
        /// The type coming out (or given as initial value).
        after: TensorType,
    },
    /// A parameter's type does not fit the op (only from hand-built or rewritten IR).
    ParamShape {
        /// The input.
        input: usize,
    },
    /// The node has the wrong number of inputs for its op (a compiler bug).
    Arity {
        /// Inputs needed (at least).
        expected: usize,
        /// Inputs found.
        found: usize,
    },
}

/// The output types of `op` applied to `inputs`. `params` is the graph's table (for
/// [`Op::Param`]).
pub fn infer(
    op: &Op,
    inputs: &[&TensorType],
    params: &[Param],
) -> Result<Vec<TensorType>, ShapeError> {
    let one = |t: TensorType| Ok(vec![t]);
    match op {
        Op::Input { ty, .. } => {
            arity(inputs, 0)?;
            one(ty.clone())
        }
        Op::Param(id) => {
            arity(inputs, 0)?;
            let p = params
                .get(id.0 as usize)
                .ok_or(ShapeError::ParamShape { input: 0 })?;
            one(p.ty.clone())
        }
        Op::Fill { ty, .. } => {
            arity(inputs, 0)?;
            one(ty.clone())
        }
        Op::Conv2d(c) => {
            at_least(inputs, 2)?;
            let x = image(inputs, 0)?;
            let w = inputs[1];
            if w.shape.rank() != 4 {
                return Err(ShapeError::ParamShape { input: 1 });
            }
            let filters = known(&w.shape.0[0]).ok_or(ShapeError::ParamShape { input: 1 })?;
            let kc = known(&w.shape.0[1]).ok_or(ShapeError::ParamShape { input: 1 })?;
            conv_channels(&x.shape.0[1], c.groups, filters, kc)?;
            if let Some(b) = inputs.get(2) {
                if b.shape.0 != [Dim::Known(filters)] {
                    return Err(ShapeError::ParamShape { input: 2 });
                }
            }
            let (h, wd) = spatial(x, c.kernel, c.stride, c.dilation, c.pad, false)?;
            one(TensorType::new(
                x.dtype,
                vec![x.shape.0[0].clone(), Dim::Known(filters), h, wd],
            ))
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
            arity(inputs, 1)?;
            let x = image(inputs, 0)?;
            let (h, w) = spatial(x, p.window, p.stride, [1, 1], p.pad, p.ceil)?;
            one(TensorType::new(
                x.dtype,
                vec![x.shape.0[0].clone(), x.shape.0[1].clone(), h, w],
            ))
        }
        Op::GlobalAvgPool | Op::GlobalMaxPool => {
            arity(inputs, 1)?;
            let x = image(inputs, 0)?;
            one(TensorType::new(
                x.dtype,
                vec![
                    x.shape.0[0].clone(),
                    x.shape.0[1].clone(),
                    Dim::Known(1),
                    Dim::Known(1),
                ],
            ))
        }
        Op::Lrn { .. } => {
            arity(inputs, 1)?;
            let x = float(inputs, 0)?;
            min_rank(x, 0, 3, "at least 3-D [N, C, …]")?;
            one(x.clone())
        }
        Op::BatchNorm { .. } => {
            arity(inputs, 5)?;
            let x = float(inputs, 0)?;
            min_rank(x, 0, 2, "at least 2-D [N, C, …]")?;
            for (i, p) in inputs.iter().enumerate().skip(1) {
                if p.shape.0 != [x.shape.0[1].clone()] {
                    return Err(ShapeError::ParamShape { input: i });
                }
            }
            one(x.clone())
        }
        Op::Dense => {
            at_least(inputs, 2)?;
            let x = float(inputs, 0)?;
            match x.shape.rank() {
                0 | 1 => {
                    return Err(ShapeError::Rank {
                        input: 0,
                        expected: "2-D [N, F] or 3-D [N, T, F]",
                        found: x.shape.rank(),
                    })
                }
                2 | 3 => {}
                r => return Err(ShapeError::DenseOnImage { found: r }),
            }
            let w = inputs[1];
            let f = x.shape.0.last().ok_or(ShapeError::Overflow)?;
            if w.shape.rank() != 2 || &w.shape.0[1] != f {
                return Err(ShapeError::ParamShape { input: 1 });
            }
            let units = w.shape.0[0].clone();
            if let Some(b) = inputs.get(2) {
                if b.shape.0 != [units.clone()] {
                    return Err(ShapeError::ParamShape { input: 2 });
                }
            }
            let mut dims = x.shape.0.clone();
            let last = dims.len() - 1;
            dims[last] = units;
            one(TensorType::new(x.dtype, dims))
        }
        Op::MatMul => {
            arity(inputs, 2)?;
            let a = float(inputs, 0)?;
            let b = float(inputs, 1)?;
            min_rank(a, 0, 2, "at least 2-D […, M, K]")?;
            min_rank(b, 1, 2, "at least 2-D […, K, P]")?;
            let (ra, rb) = (a.shape.rank(), b.shape.rank());
            let ka = &a.shape.0[ra - 1];
            let kb = &b.shape.0[rb - 2];
            if ka != kb {
                return Err(ShapeError::MatMul {
                    left: ka.clone(),
                    right: kb.clone(),
                });
            }
            let batch = broadcast(&[&a.shape.0[..ra - 2], &b.shape.0[..rb - 2]])
                .ok_or(ShapeError::Broadcast { a: 0, b: 1 })?;
            let mut dims = batch;
            dims.push(a.shape.0[ra - 2].clone());
            dims.push(b.shape.0[rb - 1].clone());
            same_dtype(inputs)?;
            one(TensorType::new(a.dtype, dims))
        }
        Op::Embed => {
            arity(inputs, 2)?;
            let ids = inputs[0];
            if !ids.dtype.is_int() {
                return Err(ShapeError::DType {
                    input: 0,
                    expected: "integer ids",
                    found: ids.dtype,
                });
            }
            min_rank(ids, 0, 1, "at least 1-D [N, …] ids")?;
            let t = inputs[1];
            if t.shape.rank() != 2 {
                return Err(ShapeError::ParamShape { input: 1 });
            }
            let mut dims = ids.shape.0.clone();
            dims.push(t.shape.0[1].clone());
            one(TensorType::new(t.dtype, dims))
        }
        Op::Flatten => {
            arity(inputs, 1)?;
            let x = inputs[0];
            min_rank(x, 0, 2, "at least 2-D [N, …]")?;
            let rest = product(&x.shape.0[1..]).ok_or(ShapeError::Overflow)?;
            let d = Dim::from_poly(rest).ok_or(ShapeError::Overflow)?;
            one(TensorType::new(x.dtype, vec![x.shape.0[0].clone(), d]))
        }
        Op::FlattenChannelsLast => {
            arity(inputs, 1)?;
            let x = inputs[0];
            if x.shape.rank() != 4 {
                return Err(ShapeError::ParamShape { input: 0 });
            }
            let rest = product(&x.shape.0[1..]).ok_or(ShapeError::Overflow)?;
            let d = Dim::from_poly(rest).ok_or(ShapeError::Overflow)?;
            one(TensorType::new(x.dtype, vec![x.shape.0[0].clone(), d]))
        }
        Op::Reshape { shape } => {
            arity(inputs, 1)?;
            let x = inputs[0];
            let from = x.shape.elements().ok_or(ShapeError::Overflow)?;
            let to = product(shape).ok_or(ShapeError::Overflow)?;
            if from != to {
                return Err(ShapeError::Reshape { from, to });
            }
            one(TensorType::new(x.dtype, shape.clone()))
        }
        Op::Concat { axis, .. } => {
            at_least(inputs, 1)?;
            let first = inputs[0];
            let rank = first.shape.rank();
            if *axis >= rank {
                return Err(ShapeError::Axis {
                    axis: i64::try_from(*axis).unwrap_or(i64::MAX),
                    rank,
                });
            }
            let mut total = Poly::zero();
            for (i, t) in inputs.iter().enumerate() {
                if t.shape.rank() != rank {
                    return Err(ShapeError::Concat {
                        concat_axis: *axis,
                        first: 0,
                        other: i,
                        axis: None,
                    });
                }
                for a in 0..rank {
                    if a != *axis && t.shape.0[a] != first.shape.0[a] {
                        return Err(ShapeError::Concat {
                            concat_axis: *axis,
                            first: 0,
                            other: i,
                            axis: Some(a),
                        });
                    }
                }
                let d = t.shape.0[*axis].to_poly().ok_or(ShapeError::Overflow)?;
                total = total.checked_add(&d).ok_or(ShapeError::Overflow)?;
            }
            same_dtype(inputs)?;
            let mut dims = first.shape.0.clone();
            dims[*axis] = Dim::from_poly(total).ok_or(ShapeError::Overflow)?;
            one(TensorType::new(first.dtype, dims))
        }
        Op::Slice { axis, start, end } => {
            arity(inputs, 1)?;
            let x = inputs[0];
            let size = x.shape.0.get(*axis).ok_or(ShapeError::Axis {
                axis: i64::try_from(*axis).unwrap_or(i64::MAX),
                rank: x.shape.rank(),
            })?;
            let fits = match size {
                Dim::Known(k) => start < end && end <= k,
                Dim::Sym(_) => start < end,
            };
            if !fits {
                return Err(ShapeError::Slice {
                    start: *start,
                    end: *end,
                    size: size.clone(),
                });
            }
            let mut dims = x.shape.0.clone();
            dims[*axis] = Dim::Known(end - start);
            one(TensorType::new(x.dtype, dims))
        }
        Op::Add | Op::Mul => {
            at_least(inputs, 2)?;
            elementwise(inputs)
        }
        Op::Sub | Op::Div => {
            arity(inputs, 2)?;
            elementwise(inputs)
        }
        Op::Neg | Op::Relu | Op::Sigmoid | Op::Tanh | Op::Dropout { .. } => {
            arity(inputs, 1)?;
            one(float(inputs, 0)?.clone())
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            arity(inputs, 1)?;
            let x = float(inputs, 0)?;
            check_axis(*axis, x.shape.rank())?;
            one(x.clone())
        }
        Op::Mean { axis } | Op::Sum { axis } => {
            arity(inputs, 1)?;
            let x = inputs[0];
            check_axis(*axis, x.shape.rank())?;
            let mut dims = x.shape.0.clone();
            dims.remove(*axis);
            let dtype = if matches!(op, Op::Mean { .. }) && !x.dtype.is_float() {
                DType::F32
            } else {
                x.dtype
            };
            one(TensorType::new(dtype, dims))
        }
        Op::SoftmaxCrossEntropy => {
            arity(inputs, 2)?;
            let logits = float(inputs, 0)?;
            min_rank(logits, 0, 2, "at least 2-D [N, …, C] logits")?;
            let labels = inputs[1];
            let ok = if labels.dtype.is_int() {
                labels.shape.0[..] == logits.shape.0[..logits.shape.rank() - 1]
            } else {
                labels.shape == logits.shape
            };
            if !ok {
                return Err(ShapeError::SameShape { a: 0, b: 1 });
            }
            one(TensorType::new(logits.dtype, Vec::new()))
        }
        Op::Mse => {
            arity(inputs, 2)?;
            let a = float(inputs, 0)?;
            let b = float(inputs, 1)?;
            if a.shape != b.shape {
                return Err(ShapeError::SameShape { a: 0, b: 1 });
            }
            one(TensorType::new(a.dtype, Vec::new()))
        }
        Op::Relayout { .. } => {
            arity(inputs, 1)?;
            min_rank(inputs[0], 0, 4, "4-D [N, C, H, W]")?;
            if inputs[0].shape.rank() != 4 {
                return Err(ShapeError::ParamShape { input: 0 });
            }
            one(inputs[0].clone())
        }
        Op::Group(g) => {
            arity(inputs, g.body.inputs.len())?;
            for (i, id) in g.body.inputs.iter().enumerate() {
                let want = g.body.node(*id).outputs.first();
                if want != Some(inputs[i]) {
                    return Err(ShapeError::ParamShape { input: i });
                }
            }
            Ok(g.body
                .outputs
                .iter()
                .map(|o| g.body.ty(o.value).clone())
                .collect())
        }
        Op::Loop(l) => {
            arity(inputs, l.states + 1)?;
            let body_in: Vec<&TensorType> = l
                .body
                .inputs
                .iter()
                .map(|id| &l.body.node(*id).outputs[0])
                .collect();
            let body_out: Vec<&TensorType> =
                l.body.outputs.iter().map(|o| l.body.ty(o.value)).collect();
            let emits = usize::from(l.emit != Emit::State);
            if body_in.len() != l.states + 1 || body_out.len() != l.states + emits {
                return Err(ShapeError::Arity {
                    expected: l.states + 1,
                    found: body_in.len(),
                });
            }
            for i in 0..l.states {
                if inputs[i] != body_in[i] {
                    return Err(ShapeError::State {
                        index: i,
                        before: body_in[i].clone(),
                        after: inputs[i].clone(),
                    });
                }
                if body_out[i] != body_in[i] {
                    return Err(ShapeError::State {
                        index: i,
                        before: body_in[i].clone(),
                        after: body_out[i].clone(),
                    });
                }
            }
            let seq = inputs[l.states];
            let step_in = if l.scan {
                min_rank(seq, l.states, 3, "at least 3-D [N, T, …]")?;
                if seq.shape.0[1] != l.steps {
                    return Err(ShapeError::ParamShape { input: l.states });
                }
                let mut dims = seq.shape.0.clone();
                dims.remove(1);
                TensorType::new(seq.dtype, dims)
            } else {
                seq.clone()
            };
            if &step_in != body_in[l.states] {
                return Err(ShapeError::ParamShape { input: l.states });
            }
            let mut outs: Vec<TensorType> =
                body_out[..l.states].iter().map(|t| (*t).clone()).collect();
            match l.emit {
                Emit::All => {
                    let e = body_out[l.states];
                    min_rank(e, l.states, 1, "at least 1-D [N, …]")?;
                    let mut dims = e.shape.0.clone();
                    dims.insert(1, l.steps.clone());
                    outs.push(TensorType::new(e.dtype, dims));
                }
                Emit::Last => outs.push(body_out[l.states].clone()),
                Emit::State => {}
            }
            Ok(outs)
        }
    }
}

/// Checks the input channels of a convolution against its groups and kernel: `channels`
/// must be known, divisible by `groups`, and give `kernel_channels` per group; `filters`
/// must be divisible by `groups`.
pub fn conv_channels(
    channels: &Dim,
    groups: u64,
    filters: u64,
    kernel_channels: u64,
) -> Result<(), ShapeError> {
    let c = match channels {
        Dim::Known(c) => *c,
        Dim::Sym(p) => {
            return Err(ShapeError::SymbolicSize {
                size: p.clone(),
                what: "a convolution needs a known number of input channels",
            })
        }
    };
    let err = ShapeError::Channels {
        channels: channels.clone(),
        groups,
        filters,
        kernel_channels,
    };
    if groups == 0
        || !c.is_multiple_of(groups)
        || !filters.is_multiple_of(groups)
        || c / groups != kernel_channels
    {
        return Err(err);
    }
    Ok(())
}

/// The output size of one windowed axis (see the module docs for the formula and the fit
/// rule).
pub fn window_out(w: &Window) -> Result<Dim, ShapeError> {
    let eff = w
        .dilation
        .checked_mul(w.kernel.saturating_sub(1))
        .and_then(|x| x.checked_add(1))
        .ok_or(ShapeError::Overflow)?;
    let pads = w
        .pad_begin
        .checked_add(w.pad_end)
        .ok_or(ShapeError::Overflow)?;
    match &w.size {
        Dim::Known(h) => {
            let padded = h.checked_add(pads).ok_or(ShapeError::Overflow)?;
            if padded < eff || *h == 0 {
                return Err(ShapeError::KernelTooLarge(w.clone()));
            }
            let span = padded - eff;
            let s = w.stride.max(1);
            if w.ceil {
                let steps = span.div_ceil(s);
                // The last window must start inside the input or the left padding.
                let last_start = steps.checked_mul(s).ok_or(ShapeError::Overflow)?;
                let limit = h.checked_add(w.pad_begin).ok_or(ShapeError::Overflow)?;
                let out = if last_start >= limit {
                    steps
                } else {
                    steps.checked_add(1).ok_or(ShapeError::Overflow)?
                };
                Ok(Dim::Known(out))
            } else {
                let rem = span % s;
                if rem > w.pad_end && eff >= s {
                    return Err(ShapeError::WindowMisfit(w.clone()));
                }
                Ok(Dim::Known(
                    (span / s).checked_add(1).ok_or(ShapeError::Overflow)?,
                ))
            }
        }
        Dim::Sym(p) => {
            if w.stride != 1 {
                return Err(ShapeError::SymbolicSize {
                    size: p.clone(),
                    what: "a window with a stride other than 1 needs a known input size",
                });
            }
            let out = i64::try_from(pads)
                .ok()
                .and_then(|pads| i64::try_from(eff).ok().map(|e| (pads, e)))
                .and_then(|(pads, e)| p.checked_add(&Poly::constant(pads - e + 1)))
                .ok_or(ShapeError::Overflow)?;
            Dim::from_poly(out).ok_or(ShapeError::KernelTooLarge(w.clone()))
        }
    }
}

/// NumPy broadcasting of several shapes, or `None` when two dimensions differ and
/// neither is 1.
pub fn broadcast(shapes: &[&[Dim]]) -> Option<Vec<Dim>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let mut d = Dim::Known(1);
        for s in shapes {
            let Some(j) = (i + s.len()).checked_sub(rank) else {
                continue;
            };
            let e = &s[j];
            if *e == Dim::Known(1) || *e == d {
                continue;
            }
            if d == Dim::Known(1) {
                d = e.clone();
            } else {
                return None;
            }
        }
        out.push(d);
    }
    Some(out)
}

fn elementwise(inputs: &[&TensorType]) -> Result<Vec<TensorType>, ShapeError> {
    let mut dims: Vec<Dim> = inputs[0].shape.0.clone();
    for (i, t) in inputs.iter().enumerate().skip(1) {
        dims = broadcast(&[&dims, &t.shape.0]).ok_or(ShapeError::Broadcast {
            a: if i == 1 { 0 } else { i - 1 },
            b: i,
        })?;
    }
    same_dtype(inputs)?;
    Ok(vec![TensorType::new(inputs[0].dtype, dims)])
}

fn same_dtype(inputs: &[&TensorType]) -> Result<(), ShapeError> {
    for (i, t) in inputs.iter().enumerate().skip(1) {
        if t.dtype != inputs[0].dtype {
            return Err(ShapeError::DType {
                input: i,
                expected: inputs[0].dtype.as_str(),
                found: t.dtype,
            });
        }
    }
    Ok(())
}

fn spatial(
    x: &TensorType,
    kernel: [u64; 2],
    stride: [u64; 2],
    dilation: [u64; 2],
    pad: [u64; 4],
    ceil: bool,
) -> Result<(Dim, Dim), ShapeError> {
    let mk = |i: usize, axis| Window {
        axis,
        size: x.shape.0[2 + i].clone(),
        kernel: kernel[i],
        stride: stride[i],
        dilation: dilation[i],
        pad_begin: pad[i],
        pad_end: pad[2 + i],
        ceil,
    };
    let h = window_out(&mk(0, SpatialAxis::Height))?;
    let w = window_out(&mk(1, SpatialAxis::Width))?;
    Ok((h, w))
}

fn known(d: &Dim) -> Option<u64> {
    d.known()
}

fn arity(inputs: &[&TensorType], n: usize) -> Result<(), ShapeError> {
    if inputs.len() == n {
        Ok(())
    } else {
        Err(ShapeError::Arity {
            expected: n,
            found: inputs.len(),
        })
    }
}

fn at_least(inputs: &[&TensorType], n: usize) -> Result<(), ShapeError> {
    if inputs.len() >= n {
        Ok(())
    } else {
        Err(ShapeError::Arity {
            expected: n,
            found: inputs.len(),
        })
    }
}

fn float<'a>(inputs: &[&'a TensorType], i: usize) -> Result<&'a TensorType, ShapeError> {
    let t = inputs[i];
    if t.dtype.is_float() {
        Ok(t)
    } else {
        Err(ShapeError::DType {
            input: i,
            expected: "floating-point",
            found: t.dtype,
        })
    }
}

fn image<'a>(inputs: &[&'a TensorType], i: usize) -> Result<&'a TensorType, ShapeError> {
    let t = float(inputs, i)?;
    if t.shape.rank() != 4 {
        return Err(ShapeError::Rank {
            input: i,
            expected: "4-D [N, C, H, W]",
            found: t.shape.rank(),
        });
    }
    Ok(t)
}

fn min_rank(
    t: &TensorType,
    input: usize,
    r: usize,
    expected: &'static str,
) -> Result<(), ShapeError> {
    if t.shape.rank() < r {
        return Err(ShapeError::Rank {
            input,
            expected,
            found: t.shape.rank(),
        });
    }
    Ok(())
}

fn check_axis(axis: usize, rank: usize) -> Result<(), ShapeError> {
    if axis < rank {
        Ok(())
    } else {
        Err(ShapeError::Axis {
            axis: i64::try_from(axis).unwrap_or(i64::MAX),
            rank,
        })
    }
}

/// `axis` (negative counts from the end) as an index into a shape of `rank` axes.
pub fn resolve_axis(axis: i64, rank: usize) -> Result<usize, ShapeError> {
    normalize_axis(axis, rank).ok_or(ShapeError::Axis { axis, rank })
}

/// Whether `shape` equals `dims` (a small helper for rules and tests).
pub fn shape_is(shape: &Shape, dims: &[Dim]) -> bool {
    shape.0 == dims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(size: u64, kernel: u64, stride: u64, pad: u64, ceil: bool) -> Window {
        Window {
            axis: SpatialAxis::Width,
            size: Dim::Known(size),
            kernel,
            stride,
            dilation: 1,
            pad_begin: pad,
            pad_end: pad,
            ceil,
        }
    }

    #[test]
    fn lecture_examples() {
        // 7x7 input, 3x3 filter: stride 1 gives 5, stride 2 gives 3, stride 3 does not fit.
        assert_eq!(window_out(&win(7, 3, 1, 0, false)), Ok(Dim::Known(5)));
        assert_eq!(window_out(&win(7, 3, 2, 0, false)), Ok(Dim::Known(3)));
        assert!(matches!(
            window_out(&win(7, 3, 3, 0, false)),
            Err(ShapeError::WindowMisfit(_))
        ));
        // Pad 1 makes stride 3 fit: (7 + 2 - 3)/3 + 1 = 3.
        assert_eq!(window_out(&win(7, 3, 3, 1, false)), Ok(Dim::Known(3)));
    }

    #[test]
    fn resnet_floors_only_padding() {
        assert_eq!(window_out(&win(224, 7, 2, 3, false)), Ok(Dim::Known(112)));
        assert_eq!(window_out(&win(112, 3, 2, 1, false)), Ok(Dim::Known(56)));
        // A strided 1x1 samples every other row by design.
        assert_eq!(window_out(&win(56, 1, 2, 0, false)), Ok(Dim::Known(28)));
    }

    #[test]
    fn ceil_mode_follows_pytorch() {
        // GoogLeNet: 112 -> 56 with a 3x3/2 ceil pool, 14 -> 7.
        assert_eq!(window_out(&win(112, 3, 2, 0, true)), Ok(Dim::Known(56)));
        assert_eq!(window_out(&win(14, 3, 2, 0, true)), Ok(Dim::Known(7)));
        // The last window may not start in the right padding: 5 + pad 1, k 2, s 2.
        assert_eq!(window_out(&win(5, 2, 2, 1, true)), Ok(Dim::Known(3)));
    }

    #[test]
    fn kernel_larger_than_input() {
        assert!(matches!(
            window_out(&win(3, 5, 1, 0, false)),
            Err(ShapeError::KernelTooLarge(_))
        ));
    }

    #[test]
    fn symbolic_stride_one() {
        let w = Window {
            size: Dim::sym("H"),
            ..win(0, 3, 1, 0, false)
        };
        assert_eq!(window_out(&w).map(|d| d.to_string()), Ok("H-2".to_string()));
        let w2 = Window {
            size: Dim::sym("H"),
            ..win(0, 3, 2, 0, false)
        };
        assert!(matches!(
            window_out(&w2),
            Err(ShapeError::SymbolicSize { .. })
        ));
    }

    #[test]
    fn broadcasting() {
        let a = [Dim::sym("N"), Dim::Known(3), Dim::Known(1)];
        let b = [Dim::Known(4)];
        assert_eq!(
            broadcast(&[&a, &b]),
            Some(vec![Dim::sym("N"), Dim::Known(3), Dim::Known(4)])
        );
        let c = [Dim::Known(4), Dim::Known(2)];
        assert!(broadcast(&[&a, &c]).is_none());
    }
}
