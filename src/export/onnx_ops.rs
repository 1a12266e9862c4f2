//! One IR op at a time: the ONNX nodes for every [`Op`] but the recurrences (in
//! `onnx_loop.rs`), one match arm per op, with the attribute conversions they need.

use super::onnx::{axis_i64, ExportError, Exporter, RegionNames};
use super::onnx_build::{self as build, attr_float, attr_int, attr_ints, attr_string};
use super::onnx_proto as pb;
use crate::ir::graph::{NodeId, Region, ValueRef};
use crate::ir::op::{Op, Pool2d};
use crate::ir::shape::{DType, Dim, TensorType};

impl Exporter<'_> {
    /// Emits node `id` and records the names of its outputs.
    pub(super) fn emit_node(
        &mut self,
        region: &Region,
        id: NodeId,
        rn: &mut RegionNames,
    ) -> Result<(), ExportError> {
        let node = region.node(id);
        let ins: Vec<String> = region
            .inputs_of(id)
            .into_iter()
            .map(|v| self.name_of(region, rn, v))
            .collect::<Result<_, _>>()?;
        let in_types: Vec<TensorType> = region
            .inputs_of(id)
            .into_iter()
            .map(|v| region.ty(v).clone())
            .collect();
        let layer = node.name.as_str();
        let span = node.span;
        let v0 = Region::value(id);
        let ty0 = node.outputs.first().cloned();
        // One node with one output, named as the IR value.
        let mut one =
            |ex: &mut Self, op: &str, inputs: Vec<String>, attrs: Vec<pb::AttributeProto>| {
                let y = ex.out(region, rn, v0);
                ex.b.node_into(op, layer, inputs, vec![y.clone()], attrs);
                rn.vals.insert(v0, y);
            };
        let unsupported = |what: &str| ExportError::Unsupported {
            what: what.to_string(),
            span,
        };
        let rank = |i: usize| in_types.get(i).map_or(0, |t| t.shape.rank());
        match &node.op {
            Op::Input { .. } => {
                if !rn.vals.contains_key(&v0) {
                    return Err(unsupported("an input without a value (an internal error)"));
                }
            }
            Op::Param(pid) => {
                let name = self.param(*pid)?;
                rn.vals.insert(v0, name);
            }
            Op::Fill { value, ty } => {
                let t = fill_tensor(ty.dtype, *value, ty.shape.rank() > 0)
                    .ok_or_else(|| unsupported("a constant of this element type"))?;
                if ty.shape.rank() == 0 {
                    one(
                        self,
                        "Constant",
                        Vec::new(),
                        vec![build::attr_tensor("value", t)],
                    );
                } else {
                    let shape = self.b.shape_value(layer, ty.shape.dims()).map_err(|e| {
                        ExportError::SymbolicSize {
                            size: e.0,
                            what: "a constant tensor".into(),
                            span,
                        }
                    })?;
                    one(
                        self,
                        "ConstantOfShape",
                        vec![shape],
                        vec![build::attr_tensor("value", t)],
                    );
                }
            }
            Op::Conv2d(c) => {
                let k: Vec<i64> = c.kernel.iter().map(|x| build::to_i64(*x)).collect();
                let attrs = vec![
                    attr_ints("kernel_shape", &k),
                    attr_ints("strides", &i64s(&c.stride)),
                    attr_ints("pads", &i64s(&c.pad)),
                    attr_ints("dilations", &i64s(&c.dilation)),
                    attr_int("group", build::to_i64(c.groups)),
                ];
                one(self, "Conv", ins, attrs);
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let is_max = matches!(node.op, Op::MaxPool2d(_));
                let out_ty = ty0
                    .as_ref()
                    .ok_or_else(|| unsupported("a pool without output"))?;
                let in_ty = in_types
                    .first()
                    .ok_or_else(|| unsupported("a pool without input"))?;
                let attrs = pool_attrs(p, is_max, in_ty, out_ty)
                    .ok_or_else(|| unsupported("a ceil-mode average pool counting padding whose last window starts in the padding"))?;
                one(
                    self,
                    if is_max { "MaxPool" } else { "AveragePool" },
                    ins,
                    attrs,
                );
            }
            Op::GlobalAvgPool => one(self, "GlobalAveragePool", ins, Vec::new()),
            Op::GlobalMaxPool => one(self, "GlobalMaxPool", ins, Vec::new()),
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } if size % 2 == 1 => {
                let attrs = vec![
                    attr_int("size", build::to_i64(*size)),
                    attr_float("alpha", *alpha),
                    attr_float("beta", *beta),
                    attr_float("bias", *k),
                ];
                one(self, "LRN", ins, attrs);
            }
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } => {
                // ONNX defines `LRN` for even sizes too, but ONNX Runtime accepts only odd
                // ones: the same formula in elementary ops, the window sum of squares as
                // a `size x 1` convolution of ones over the channel axis.
                let x = ins
                    .first()
                    .cloned()
                    .ok_or_else(|| unsupported("an lrn without input"))?;
                let c = in_types
                    .first()
                    .and_then(|t| t.shape.dims().get(1))
                    .and_then(Dim::known)
                    .ok_or_else(|| unsupported("an lrn over a symbolic number of channels"))?;
                let before = (size - 1) / 2;
                let after = size - 1 - before;
                let sq = self.b.node1(
                    "Mul",
                    &format!("{layer}/square"),
                    vec![x.clone(), x.clone()],
                    Vec::new(),
                );
                let shape4 = self
                    .b
                    .const_i64(layer, &[0, 1, build::to_i64(c), -1], false);
                let sq4 = self.b.node1(
                    "Reshape",
                    &format!("{layer}/square_nc1r"),
                    vec![sq, shape4],
                    Vec::new(),
                );
                let n = usize::try_from(*size).unwrap_or(usize::MAX);
                let ones = self.b.constant(
                    &format!("{layer}/window"),
                    build::tensor_f32("", &[1, 1, build::to_i64(*size), 1], &vec![1.0; n]),
                );
                let pads = [build::to_i64(before), 0, build::to_i64(after), 0];
                let sums = self.b.node1(
                    "Conv",
                    &format!("{layer}/window_sum"),
                    vec![sq4, ones],
                    vec![
                        attr_ints("kernel_shape", &[build::to_i64(*size), 1]),
                        attr_ints("pads", &pads),
                    ],
                );
                let xshape = self.b.node1(
                    "Shape",
                    &format!("{layer}/shape"),
                    vec![x.clone()],
                    Vec::new(),
                );
                let sums = self.b.node1(
                    "Reshape",
                    &format!("{layer}/window_sums"),
                    vec![sums, xshape],
                    Vec::new(),
                );
                let scale = self.b.constant(
                    &format!("{layer}/alpha_over_size"),
                    build::tensor_f32("", &[], &[(*alpha / *size as f64) as f32]),
                );
                let kk = self.b.constant(
                    &format!("{layer}/k"),
                    build::tensor_f32("", &[], &[*k as f32]),
                );
                let bb = self.b.constant(
                    &format!("{layer}/beta"),
                    build::tensor_f32("", &[], &[*beta as f32]),
                );
                let scaled = self.b.node1(
                    "Mul",
                    &format!("{layer}/scaled"),
                    vec![sums, scale],
                    Vec::new(),
                );
                let base = self.b.node1(
                    "Add",
                    &format!("{layer}/base"),
                    vec![scaled, kk],
                    Vec::new(),
                );
                let denom = self.b.node1(
                    "Pow",
                    &format!("{layer}/denominator"),
                    vec![base, bb],
                    Vec::new(),
                );
                one(self, "Div", vec![x, denom], Vec::new());
            }
            Op::BatchNorm { eps } => {
                one(
                    self,
                    "BatchNormalization",
                    ins,
                    vec![attr_float("epsilon", *eps)],
                );
            }
            Op::Dense => {
                if rank(0) == 2 {
                    one(self, "Gemm", ins, vec![attr_int("transB", 1)]);
                } else {
                    let mut it = ins.into_iter();
                    let (x, w, bias) = (it.next(), it.next(), it.next());
                    let (Some(x), Some(w)) = (x, w) else {
                        return Err(unsupported("a dense layer without weight"));
                    };
                    let wt = self
                        .b
                        .node1("Transpose", &format!("{w}^T"), vec![w], Vec::new());
                    match bias {
                        None => one(self, "MatMul", vec![x, wt], Vec::new()),
                        Some(bias) => {
                            let m = self.b.node1(
                                "MatMul",
                                &format!("{layer}/matmul"),
                                vec![x, wt],
                                Vec::new(),
                            );
                            one(self, "Add", vec![m, bias], Vec::new());
                        }
                    }
                }
            }
            Op::MatMul => one(self, "MatMul", ins, Vec::new()),
            Op::Embed => {
                let mut it = ins.into_iter();
                let (Some(ids), Some(table)) = (it.next(), it.next()) else {
                    return Err(unsupported("an embedding without table"));
                };
                one(self, "Gather", vec![table, ids], vec![attr_int("axis", 0)]);
            }
            Op::Flatten => one(self, "Flatten", ins, vec![attr_int("axis", 1)]),
            Op::Reshape { shape } => {
                let in_dims = in_types
                    .first()
                    .map(|t| t.shape.dims().to_vec())
                    .unwrap_or_default();
                let target = self.reshape_target(layer, shape, &in_dims).map_err(|e| {
                    ExportError::SymbolicSize {
                        size: e.0,
                        what: "a reshape".into(),
                        span,
                    }
                })?;
                let mut all = ins;
                all.push(target);
                one(self, "Reshape", all, Vec::new());
            }
            Op::Concat { axis, .. } => {
                one(self, "Concat", ins, vec![attr_int("axis", axis_i64(*axis))])
            }
            Op::Slice { axis, start, end } => {
                let s = self.b.const_i64(layer, &[build::to_i64(*start)], false);
                let e = self.b.const_i64(layer, &[build::to_i64(*end)], false);
                let a = self.b.const_i64(layer, &[axis_i64(*axis)], false);
                let mut all = ins;
                all.extend([s, e, a]);
                one(self, "Slice", all, Vec::new());
            }
            Op::Add => {
                let op = if ins.len() > 2 { "Sum" } else { "Add" };
                one(self, op, ins, Vec::new());
            }
            Op::Mul => {
                let mut it = ins.into_iter();
                let mut acc = it
                    .next()
                    .ok_or_else(|| unsupported("a product of nothing"))?;
                let mut rest: Vec<String> = it.collect();
                let last = rest
                    .pop()
                    .ok_or_else(|| unsupported("a product of one value"))?;
                for r in rest {
                    acc = self
                        .b
                        .node1("Mul", &format!("{layer}/mul"), vec![acc, r], Vec::new());
                }
                one(self, "Mul", vec![acc, last], Vec::new());
            }
            Op::Sub => one(self, "Sub", ins, Vec::new()),
            Op::Div => one(self, "Div", ins, Vec::new()),
            Op::Neg => one(self, "Neg", ins, Vec::new()),
            Op::Relu => one(self, "Relu", ins, Vec::new()),
            Op::Sigmoid => one(self, "Sigmoid", ins, Vec::new()),
            Op::Tanh => one(self, "Tanh", ins, Vec::new()),
            Op::Softmax { axis } => one(
                self,
                "Softmax",
                ins,
                vec![attr_int("axis", axis_i64(*axis))],
            ),
            Op::LogSoftmax { axis } => {
                one(
                    self,
                    "LogSoftmax",
                    ins,
                    vec![attr_int("axis", axis_i64(*axis))],
                );
            }
            Op::Dropout { .. } => {
                // The identity at inference: the output is the input's value.
                let x = ins
                    .into_iter()
                    .next()
                    .ok_or_else(|| unsupported("a dropout without input"))?;
                rn.vals.insert(v0, x);
            }
            Op::Mean { axis } => {
                let attrs = vec![
                    attr_ints("axes", &[axis_i64(*axis)]),
                    attr_int("keepdims", 0),
                ];
                one(self, "ReduceMean", ins, attrs);
            }
            Op::Sum { axis } => {
                let a = self.b.const_i64(layer, &[axis_i64(*axis)], false);
                let mut all = ins;
                all.push(a);
                one(self, "ReduceSum", all, vec![attr_int("keepdims", 0)]);
            }
            Op::SoftmaxCrossEntropy => {
                let mut it = ins.into_iter();
                let (Some(logits), Some(target)) = (it.next(), it.next()) else {
                    return Err(unsupported("a loss without two inputs"));
                };
                let r = rank(0);
                let int_labels = in_types.get(1).is_some_and(|t| t.dtype.is_int());
                if int_labels {
                    // ONNX wants the classes on axis 1: [N, C, d1, …].
                    let scores = if r > 2 {
                        let mut perm = vec![0, axis_i64(r - 1)];
                        perm.extend((1..r - 1).map(axis_i64));
                        self.b.node1(
                            "Transpose",
                            &format!("{layer}/scores"),
                            vec![logits],
                            vec![attr_ints("perm", &perm)],
                        )
                    } else {
                        logits
                    };
                    one(
                        self,
                        "SoftmaxCrossEntropyLoss",
                        vec![scores, target],
                        vec![attr_string("reduction", "mean")],
                    );
                } else {
                    // −mean over positions of Σ_c p_c · log softmax(logits)_c.
                    let ls = self.b.node1(
                        "LogSoftmax",
                        &format!("{layer}/log_softmax"),
                        vec![logits],
                        vec![attr_int("axis", -1)],
                    );
                    let m =
                        self.b
                            .node1("Mul", &format!("{layer}/mul"), vec![target, ls], Vec::new());
                    let a = self.b.const_i64(layer, &[-1], false);
                    let s = self.b.node1(
                        "ReduceSum",
                        &format!("{layer}/sum"),
                        vec![m, a],
                        vec![attr_int("keepdims", 0)],
                    );
                    let mean = self.b.node1(
                        "ReduceMean",
                        &format!("{layer}/mean"),
                        vec![s],
                        vec![attr_int("keepdims", 0)],
                    );
                    one(self, "Neg", vec![mean], Vec::new());
                }
            }
            Op::Mse => {
                let d = self
                    .b
                    .node1("Sub", &format!("{layer}/diff"), ins, Vec::new());
                let sq = self.b.node1(
                    "Mul",
                    &format!("{layer}/square"),
                    vec![d.clone(), d],
                    Vec::new(),
                );
                one(self, "ReduceMean", vec![sq], vec![attr_int("keepdims", 0)]);
            }
            Op::Loop(lp) => {
                self.emit_loop(region, id, lp, &ins, rn)?;
            }
            Op::Group(_) | Op::Relayout { .. } | Op::FlattenChannelsLast => {
                return Err(unsupported(
                    "an op of the optimised IR (export the net before optimisation)",
                ));
            }
        }
        // Declare the types of what the node computed (not of aliases and weights).
        if !matches!(
            node.op,
            Op::Input { .. } | Op::Param(_) | Op::Dropout { .. }
        ) {
            for (port, ty) in node.outputs.iter().enumerate() {
                let v = ValueRef {
                    node: id,
                    port: u32::try_from(port).unwrap_or(u32::MAX),
                };
                if let Some(n) = rn.vals.get(&v) {
                    let n = n.clone();
                    self.b.declare(&n, ty);
                }
            }
        }
        Ok(())
    }

    /// The shape input of a `Reshape` to `target` from a tensor of shape `input`: known
    /// sizes as numbers, a symbolic size equal to the input's on the same axis as 0 (copy),
    /// and one other symbolic size as −1; anything else computed at run time.
    fn reshape_target(
        &mut self,
        layer: &str,
        target: &[Dim],
        input: &[Dim],
    ) -> Result<String, build::UnknownSymbol> {
        let mut spec = Vec::with_capacity(target.len());
        let mut inferred = 0;
        for (i, d) in target.iter().enumerate() {
            match d {
                Dim::Known(k) => spec.push(build::to_i64(*k)),
                Dim::Sym(_) if input.get(i) == Some(d) => spec.push(0),
                Dim::Sym(_) => {
                    inferred += 1;
                    spec.push(-1);
                }
            }
        }
        if inferred <= 1 {
            Ok(self.b.const_i64(layer, &spec, false))
        } else {
            self.b.shape_value(layer, target)
        }
    }
}

fn i64s(xs: &[u64]) -> Vec<i64> {
    xs.iter().map(|x| build::to_i64(*x)).collect()
}

/// The one-element value tensor of a `Constant` (a scalar) or `ConstantOfShape` (`[1]`).
fn fill_tensor(dtype: DType, value: f64, one_d: bool) -> Option<pb::TensorProto> {
    let dims: &[i64] = if one_d { &[1] } else { &[] };
    match dtype {
        DType::F32 => Some(build::tensor_f32("", dims, &[value as f32])),
        DType::I64 => Some(build::tensor_i64("", dims, &[value as i64])),
        DType::F16 | DType::F64 | DType::I32 | DType::Bool => None,
    }
}

/// The attributes of a pool. Ceil mode maps to ONNX's `ceil_mode`, which ONNX Runtime
/// computes as netc does (a last window starting in the trailing padding is dropped). Where
/// ONNX's own shape rule at opset 17 would keep that window, the pool is written in floor
/// mode instead, with the trailing padding cut to where the kept windows reach: the same
/// values for max pools and for average pools that do not count padding. `None` for an
/// average pool counting padding in that case.
fn pool_attrs(
    p: &Pool2d,
    is_max: bool,
    input: &TensorType,
    output: &TensorType,
) -> Option<Vec<pb::AttributeProto>> {
    let mut pads = i64s(&p.pad);
    let mut ceil = p.ceil;
    let known = |t: &TensorType, axis: usize| t.shape.dims().get(2 + axis).and_then(Dim::known);
    let sizes: Option<Vec<(u64, u64)>> = (0..2)
        .map(|a| Some((known(input, a)?, known(output, a)?)))
        .collect();
    if let (true, Some(sizes)) = (p.ceil, sizes) {
        let mut differs = false;
        for (a, (h, out)) in sizes.iter().enumerate() {
            let span = (h + p.pad[a] + p.pad[a + 2]).checked_sub(p.window[a])?;
            differs |= span.div_ceil(p.stride[a]) + 1 != *out;
        }
        if differs {
            if !is_max && p.count_pad {
                return None;
            }
            ceil = false;
            for (a, (h, out)) in sizes.iter().enumerate() {
                let reach = (out - 1) * p.stride[a] + p.window[a];
                pads[a + 2] = build::to_i64(reach.checked_sub(h + p.pad[a])?);
            }
        }
    }
    let mut attrs = vec![
        attr_ints("kernel_shape", &i64s(&p.window)),
        attr_ints("strides", &i64s(&p.stride)),
        attr_ints("pads", &pads),
    ];
    if ceil {
        attrs.push(attr_int("ceil_mode", 1));
    }
    if !is_max {
        attrs.push(attr_int("count_include_pad", i64::from(p.count_pad)));
    }
    Some(attrs)
}
