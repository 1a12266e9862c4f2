//! ONNX export: a compiled net ([`Graph`]) with its weights becomes an ONNX model
//! (`ModelProto`, IR version 8, opset 17), one IR op at a time.
//!
//! The mapping (docs/onnx.md has the full table and the reasons):
//!
//! - Net inputs and outputs keep their source names and IR types; a symbolic size (`N`,
//!   `T`, `H`) is a `dim_param` of the same name. Intermediate values are declared in
//!   `value_info` with netc's types, so that ONNX's strict shape inference checks netc's.
//! - Every parameter is one initializer named by its hierarchical IR name (`conv1/weight`,
//!   `bn1/mean`), holding the weights file's values, or the source's for fixed
//!   kernels. Nothing is renamed or re-laid-out in the file: where ONNX wants another layout
//!   (the gates of `LSTM`), nodes of the graph derive it from the initializer.
//! - Node names are the IR's layer names (`inception3a/b2/conv`), made unique; helper nodes
//!   carry the name of the layer they belong to.
//! - Convolutions, pools, batch and response normalisation, dense layers (`Gemm` on 2-D
//!   inputs, `MatMul` + `Add` on `[N, T, F]`), embeddings (`Gather`), reductions, softmax and
//!   the elementwise ops map one to one (`onnx_ops.rs`); dropout, the identity at
//!   inference, is dropped. Two exceptions keep ONNX Runtime running what ONNX defines: a
//!   ceil-mode pool whose last window would start in the padding is written in floor mode
//!   with less trailing padding, and an even-sized `lrn` as elementary ops.
//! - Recurrences ([`Op::Loop`]): the built-in `rnn`, `lstm` and `gru` become ONNX `RNN`,
//!   `LSTM` and `GRU` nodes (their weights re-laid-out in-graph) or, with
//!   [`Recurrent::Scan`], a `Scan` over the step body like user cells; cells unrolled over
//!   an input's `T` axis become `Scan` (symbolic `T` kept), cells run for `steps: K` a
//!   `Loop` of K iterations. See `onnx_loop.rs`.
//! - Losses are exported as the net declares them: cross-entropy against integer labels as
//!   `SoftmaxCrossEntropyLoss`, against probabilities and the mean squared error as
//!   elementary ops.

use super::onnx_build::{self as build, Builder};
use super::onnx_proto as pb;
use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::graph::{Graph, ParamId, ParamKind, Region, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::{DType, Dim};
use crate::runtime::weights::Weights;
use std::collections::BTreeMap;

/// The ONNX opset the exporter targets.
pub const OPSET: i64 = 17;

/// The ONNX IR version of the files written (the one of ONNX 1.12, which introduced opset
/// 17).
pub const IR_VERSION: i64 = 8;

/// How recurrences of the built-in kinds are exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recurrent {
    /// As ONNX's own `RNN`, `LSTM` and `GRU` operators: what other tools recognise.
    #[default]
    Native,
    /// As a `Scan` over the step body, as user cells are.
    Scan,
}

/// How to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// How the built-in recurrences are written.
    pub recurrent: Recurrent,
}

/// Why a net cannot be exported.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportError {
    /// A trainable parameter or buffer has no tensor in the weights given.
    MissingWeight {
        /// Its hierarchical name.
        name: String,
        /// The layer that owns it.
        span: Span,
    },
    /// A tensor of the weights has another shape than the parameter.
    WrongShape {
        /// Its hierarchical name.
        name: String,
        /// The parameter's shape.
        expected: Vec<u64>,
        /// The tensor's shape.
        found: Vec<usize>,
        /// The layer that owns it.
        span: Span,
    },
    /// A symbolic size is needed at run time (a constant's shape, a reshape) but cannot be
    /// computed from the sizes of the net's inputs.
    SymbolicSize {
        /// The size, as the IR prints it.
        size: String,
        /// What needs it.
        what: String,
        /// The layer.
        span: Span,
    },
    /// A construct ONNX (at opset 17) cannot express.
    Unsupported {
        /// What, in words.
        what: String,
        /// Where.
        span: Span,
    },
}

impl ExportError {
    /// The diagnostic reporting this error.
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            ExportError::MissingWeight { name, span } => Diagnostic::error(
                Code::WeightsMismatch,
                format!("no value for the weight `{name}`"),
                Label::new(*span, "this layer's weight is missing"),
            )
            .with_help("pass a weights file made by `netc init` or training for this net"),
            ExportError::WrongShape {
                name,
                expected,
                found,
                span,
            } => Diagnostic::error(
                Code::WeightsMismatch,
                format!("the weight `{name}` has shape {found:?}, the net expects {expected:?}"),
                Label::new(*span, "this layer's weight"),
            ),
            ExportError::SymbolicSize { size, what, span } => Diagnostic::error(
                Code::SymbolicSize,
                format!("cannot export {what}: its size `{size}` is not computable from the net's input sizes"),
                Label::new(*span, "needs this size at run time"),
            )
            .with_help("ONNX computes such sizes from the inputs' shapes; sizes of the form `a*S + b` for one symbol `S` of an input are supported"),
            // Until export has a code of its own: the model cannot be written.
            ExportError::Unsupported { what, span } => Diagnostic::error(
                Code::BadOutput,
                format!("cannot export to ONNX: {what}"),
                Label::new(*span, "not expressible in ONNX opset 17"),
            ),
        }
    }
}

/// Exports `graph` with `weights` (every trainable parameter and buffer, by name; fixed
/// kernels come from the source) as an ONNX model.
pub fn export(
    graph: &Graph,
    weights: &Weights,
    opts: &ExportOptions,
) -> Result<pb::ModelProto, ExportError> {
    let mut ex = Exporter {
        graph,
        weights,
        opts,
        b: Builder::new(),
        initializers: BTreeMap::new(),
    };
    for p in &graph.params {
        ex.b.values.reserve(&p.name);
    }
    let region = &graph.body;
    let mut inputs = Vec::new();
    let mut input_infos = Vec::new();
    for &id in &region.inputs {
        let node = region.node(id);
        let Op::Input { name, ty, .. } = &node.op else {
            continue;
        };
        let onnx_name = if ex.b.values.reserve(name) {
            name.clone()
        } else {
            ex.b.values.fresh(name)
        };
        for (axis, d) in ty.shape.dims().iter().enumerate() {
            if let Dim::Sym(p) = d {
                let syms = p.symbols();
                if let [s] = syms.as_slice() {
                    if *p == crate::ir::shape::Poly::symbol(s) {
                        ex.b.symbol_sources
                            .entry(s.clone())
                            .or_insert(build::SymbolSource {
                                input: onnx_name.clone(),
                                axis,
                            });
                    }
                }
            }
        }
        input_infos.push(build::value_info(&onnx_name, ty));
        inputs.push(onnx_name);
    }
    let mut out_names = Vec::new();
    for o in &region.outputs {
        let n = if ex.b.values.reserve(&o.name) {
            o.name.clone()
        } else {
            ex.b.values.fresh(&o.name)
        };
        out_names.push(Some(n));
    }
    let outs = ex.emit_region(region, "", &inputs, &out_names)?;
    let output_infos: Vec<pb::ValueInfoProto> = outs
        .iter()
        .zip(&region.outputs)
        .map(|(n, o)| build::value_info(n, region.ty(o.value)))
        .collect();
    let initializer: Vec<pb::TensorProto> =
        std::mem::take(&mut ex.initializers).into_values().collect();
    let frame = ex.b.finish();
    let mut g = pb::GraphProto {
        node: frame.nodes,
        name: graph.name.clone(),
        initializer,
        doc_string: graph.doc.clone().unwrap_or_default(),
        input: input_infos,
        value_info: without(frame.value_info, &outs),
        output: output_infos,
    };
    prune(&mut g);
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        producer_name: "netc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: graph.doc.clone().unwrap_or_default(),
        graph: Some(g),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![pb::StringStringEntryProto {
            key: "netc.net".into(),
            value: graph.name.clone(),
        }],
    })
}

/// Removes the nodes whose results nothing reads (the zero initial states of recurrences
/// written as ONNX `LSTM`, which has its own), in `g` and in its subgraphs, with their
/// value infos.
fn prune(g: &mut pb::GraphProto) {
    fn uses(g: &pb::GraphProto, used: &mut std::collections::BTreeSet<String>) {
        used.extend(g.output.iter().map(|o| o.name.clone()));
        for n in &g.node {
            used.extend(n.input.iter().cloned());
            for a in &n.attribute {
                if let Some(sub) = &a.g {
                    uses(sub, used);
                }
            }
        }
    }
    fn drop_unused(g: &mut pb::GraphProto, used: &std::collections::BTreeSet<String>) -> bool {
        let before = g.node.len();
        g.node
            .retain(|n| n.output.iter().any(|o| !o.is_empty() && used.contains(o)));
        g.value_info.retain(|v| used.contains(&v.name));
        let mut changed = g.node.len() != before;
        for n in &mut g.node {
            for a in &mut n.attribute {
                if let Some(sub) = &mut a.g {
                    changed |= drop_unused(sub, used);
                }
            }
        }
        changed
    }
    loop {
        let mut used = std::collections::BTreeSet::new();
        uses(g, &mut used);
        if !drop_unused(g, &used) {
            break;
        }
    }
}

/// The model as protobuf bytes, as written to a `.onnx` file.
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(model)
}

/// Value infos except those of `names` (graph inputs and outputs, declared there).
pub(super) fn without(infos: Vec<pb::ValueInfoProto>, names: &[String]) -> Vec<pb::ValueInfoProto> {
    infos
        .into_iter()
        .filter(|vi| !names.contains(&vi.name))
        .collect()
}

/// The ONNX names of one region's values.
#[derive(Debug, Default)]
pub(super) struct RegionNames {
    /// The ONNX name of each IR value emitted so far.
    pub vals: BTreeMap<ValueRef, String>,
    /// Names the value must get (net outputs).
    pub preferred: BTreeMap<ValueRef, String>,
}

/// The exporter's state while it walks the graph.
pub(super) struct Exporter<'g> {
    /// The net.
    pub graph: &'g Graph,
    weights: &'g Weights,
    /// The options.
    pub opts: &'g ExportOptions,
    /// The ONNX graph under construction.
    pub b: Builder,
    initializers: BTreeMap<ParamId, pb::TensorProto>,
}

impl Exporter<'_> {
    /// Emits `region` into the current graph: `inputs[i]` is the ONNX name of its input
    /// `i`, and output `j` is named `out_names[j]` where given (else it gets a fresh name
    /// under `scope`, the layer of a loop body). Returns the ONNX names of the outputs, in
    /// order.
    pub(super) fn emit_region(
        &mut self,
        region: &Region,
        scope: &str,
        inputs: &[String],
        out_names: &[Option<String>],
    ) -> Result<Vec<String>, ExportError> {
        let mut rn = RegionNames::default();
        for &id in &region.inputs {
            if let Op::Input { index, .. } = &region.node(id).op {
                if let Some(n) = inputs.get(*index) {
                    rn.vals.insert(Region::value(id), n.clone());
                }
            }
        }
        // An output whose value a node of the region computes is that node's output; an
        // input, a weight, a dropped dropout or a repeated value goes through `Identity`.
        let mut direct = vec![false; region.outputs.len()];
        let mut seen = std::collections::BTreeSet::new();
        for (i, o) in region.outputs.iter().enumerate() {
            if computes(region, o.value) && seen.insert(o.value) {
                direct[i] = true;
                if let Some(Some(n)) = out_names.get(i) {
                    rn.preferred.insert(o.value, n.clone());
                }
            }
        }
        for id in region.topo_order() {
            self.emit_node(region, id, &mut rn)?;
        }
        let mut result = Vec::with_capacity(region.outputs.len());
        for (i, o) in region.outputs.iter().enumerate() {
            let v = self.name_of(region, &rn, o.value)?;
            if direct[i] {
                result.push(v);
                continue;
            }
            let name = match out_names.get(i) {
                Some(Some(n)) => n.clone(),
                _ => self.b.values.fresh(&format!("{scope}/{}", o.name)),
            };
            self.b
                .node_into("Identity", "", vec![v], vec![name.clone()], Vec::new());
            result.push(name);
        }
        Ok(result)
    }

    /// The ONNX name of an already emitted value.
    pub(super) fn name_of(
        &self,
        region: &Region,
        rn: &RegionNames,
        v: ValueRef,
    ) -> Result<String, ExportError> {
        rn.vals
            .get(&v)
            .cloned()
            .ok_or_else(|| ExportError::Unsupported {
                what: "a value used before it is computed (an internal error)".into(),
                span: region.node(v.node).span,
            })
    }

    /// The name the node output `v` gets: the net output's name, or a fresh one after its
    /// layer.
    pub(super) fn out(&mut self, region: &Region, rn: &RegionNames, v: ValueRef) -> String {
        if let Some(n) = rn.preferred.get(&v) {
            return n.clone();
        }
        let node = region.node(v.node);
        let base = if node.name.is_empty() {
            node.op.name().to_string()
        } else {
            node.name.clone()
        };
        // A recurrence's final states are `layer/h`, `layer/c`; its emitted value is
        // `layer`.
        if let Op::Loop(lp) = &node.op {
            let port = v.port as usize;
            if port < lp.states {
                if let Some(o) = lp.body.outputs.get(port) {
                    return self.b.values.fresh(&format!("{base}/{}", o.name));
                }
            }
            return self.b.values.fresh(&base);
        }
        if v.port == 0 {
            self.b.values.fresh(&base)
        } else {
            self.b.values.fresh(&format!("{base}:{}", v.port))
        }
    }

    /// The initializer of parameter `id` (added on first use); returns its name.
    pub(super) fn param(&mut self, id: ParamId) -> Result<String, ExportError> {
        let p = self.graph.param(id);
        if self.initializers.contains_key(&id) {
            return Ok(p.name.clone());
        }
        let dims: Option<Vec<u64>> = p.ty.shape.dims().iter().map(Dim::known).collect();
        let Some(dims) = dims else {
            return Err(ExportError::Unsupported {
                what: format!("the weight `{}` has a symbolic shape", p.name),
                span: p.span,
            });
        };
        if p.ty.dtype != DType::F32 {
            return Err(ExportError::Unsupported {
                what: format!(
                    "the weight `{}` is {}, not f32",
                    p.name,
                    p.ty.dtype.as_str()
                ),
                span: p.span,
            });
        }
        let onnx_dims: Vec<i64> = dims.iter().map(|d| build::to_i64(*d)).collect();
        let fixed: Vec<f32>;
        let data: &[f32] = match (p.kind, &p.init) {
            (ParamKind::Fixed, Some(values)) => {
                fixed = values.iter().map(|v| *v as f32).collect();
                &fixed
            }
            (ParamKind::Derived, _) => {
                return Err(ExportError::Unsupported {
                    what: format!(
                        "the derived weight `{}` (export the net before optimisation)",
                        p.name
                    ),
                    span: p.span,
                })
            }
            (ParamKind::Fixed, None) | (ParamKind::Trainable | ParamKind::Buffer, _) => {
                let Some((shape, data)) = self.weights.tensors.get(&p.name) else {
                    return Err(ExportError::MissingWeight {
                        name: p.name.clone(),
                        span: p.span,
                    });
                };
                let same = shape.len() == dims.len()
                    && shape.iter().zip(&dims).all(|(a, b)| *a as u64 == *b);
                let count: u64 = dims.iter().product();
                if !same || data.len() as u64 != count {
                    return Err(ExportError::WrongShape {
                        name: p.name.clone(),
                        expected: dims,
                        found: shape.clone(),
                        span: p.span,
                    });
                }
                data
            }
        };
        let mut t = build::tensor_f32(&p.name, &onnx_dims, data);
        t.doc_string = format!(
            "{} parameter of netc net `{}`",
            p.kind.as_str(),
            self.graph.name
        );
        self.initializers.insert(id, t);
        Ok(p.name.clone())
    }
}

/// Whether `v` is computed by a node of `region` (not an input, a weight or an alias).
fn computes(region: &Region, v: ValueRef) -> bool {
    match &region.node(v.node).op {
        Op::Input { .. } | Op::Param(_) | Op::Dropout { .. } => false,
        Op::Fill { .. }
        | Op::Conv2d(_)
        | Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::Lrn { .. }
        | Op::BatchNorm { .. }
        | Op::Dense
        | Op::MatMul
        | Op::Embed
        | Op::Flatten
        | Op::FlattenChannelsLast
        | Op::Reshape { .. }
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Neg
        | Op::Relu
        | Op::Sigmoid
        | Op::Tanh
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SoftmaxCrossEntropy
        | Op::Mse
        | Op::Loop(_)
        | Op::Group(_)
        | Op::Relayout { .. } => true,
    }
}

/// An axis as ONNX's `int64`.
pub(super) fn axis_i64(a: usize) -> i64 {
    build::len_i64(a)
}
