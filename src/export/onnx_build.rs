//! The small ONNX graph builder the exporter writes through: model-wide unique names, a
//! stack of graphs being built (the model's graph and the bodies of `Scan`/`Loop` nodes),
//! node, attribute and tensor constructors, and the run-time values of symbolic sizes.
//!
//! Names are unique over the whole model, subgraphs included, because ONNX forbids a body
//! from shadowing a name of an enclosing graph. Every value produced inside a body stays in
//! that body; values of enclosing graphs (weights, the symbolic sizes of the model's inputs)
//! are read from the body by name, as ONNX allows.

use super::onnx_proto as pb;
use crate::ir::shape::{DType, Dim, Poly, TensorType};
use std::collections::{BTreeMap, BTreeSet};

/// Names handed out so far, so that each is used once.
#[derive(Debug, Default)]
pub(super) struct Names {
    used: BTreeSet<String>,
}

impl Names {
    /// Claims `name` exactly; `false` if it is already taken.
    pub(super) fn reserve(&mut self, name: &str) -> bool {
        self.used.insert(name.to_string())
    }

    /// `base` itself if free, else `base_1`, `base_2`, … (the first free one).
    pub(super) fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if self.used.insert(base.to_string()) {
            return base.to_string();
        }
        let mut i = 1u64;
        loop {
            let candidate = format!("{base}_{i}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
            i += 1;
        }
    }
}

/// One graph under construction.
#[derive(Debug, Default)]
pub(super) struct Frame {
    /// Its nodes, in a topological order.
    pub nodes: Vec<pb::NodeProto>,
    /// Types of intermediate values, for readers and as a check on ONNX's shape inference.
    pub value_info: Vec<pb::ValueInfoProto>,
    /// Symbol name → an `int64 [1]` value holding its size, computed in this graph.
    symbols: BTreeMap<String, String>,
}

/// Where the run-time value of a symbolic size can be read: an axis of a model input.
#[derive(Clone, Debug)]
pub(super) struct SymbolSource {
    /// The model input.
    pub input: String,
    /// Its axis whose size is the symbol.
    pub axis: usize,
}

/// The builder: names, the stack of graphs, and where symbols come from.
#[derive(Debug, Default)]
pub(super) struct Builder {
    /// Value names (inputs, initializers, node outputs), unique over the model.
    pub values: Names,
    /// Node names, unique over the model.
    pub node_names: Names,
    frames: Vec<Frame>,
    /// For each symbol of the inputs' shapes, one place it can be read from.
    pub symbol_sources: BTreeMap<String, SymbolSource>,
}

/// A symbolic size whose run-time value cannot be computed from the model's inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UnknownSymbol(pub String);

impl Builder {
    /// A builder with one (the model's) graph open.
    pub(super) fn new() -> Builder {
        Builder {
            frames: vec![Frame::default()],
            ..Builder::default()
        }
    }

    /// Opens a subgraph; nodes now go into it until [`Builder::pop_frame`].
    pub(super) fn push_frame(&mut self) {
        self.frames.push(Frame::default());
    }

    /// Closes the innermost graph and returns it.
    pub(super) fn pop_frame(&mut self) -> Frame {
        // The model's frame is only taken by `finish`, so there is always one to pop here.
        self.frames.pop().unwrap_or_default()
    }

    fn frame(&mut self) -> &mut Frame {
        if self.frames.is_empty() {
            self.frames.push(Frame::default());
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    /// Records the type of an intermediate value of the current graph.
    pub(super) fn declare(&mut self, name: &str, ty: &TensorType) {
        let vi = value_info(name, ty);
        self.frame().value_info.push(vi);
    }

    /// Adds a node whose outputs are the given names (already claimed). `name` names the
    /// node (made unique; when empty, the node is named after its first output);
    /// `op_type` is the ONNX operator.
    pub(super) fn node_into(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<pb::AttributeProto>,
    ) {
        let base = match (name, outputs.iter().find(|o| !o.is_empty())) {
            ("", Some(out)) => out.clone(),
            ("", None) => op_type.to_ascii_lowercase(),
            (n, _) => n.to_string(),
        };
        let name = self.node_names.fresh(&base);
        self.frame().nodes.push(pb::NodeProto {
            input: inputs,
            output: outputs,
            name,
            op_type: op_type.to_string(),
            attribute,
            ..pb::NodeProto::default()
        });
    }

    /// Adds a helper node with one output; output and node are named after `hint`. Returns the output's name.
    pub(super) fn node1(
        &mut self,
        op_type: &str,
        hint: &str,
        inputs: Vec<String>,
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        let out = self.values.fresh(hint);
        self.node_into(op_type, "", inputs, vec![out.clone()], attribute);
        out
    }

    /// A `Constant` node holding `tensor`; returns its output.
    pub(super) fn constant(&mut self, hint: &str, tensor: pb::TensorProto) -> String {
        self.node1(
            "Constant",
            hint,
            Vec::new(),
            vec![attr_tensor("value", tensor)],
        )
    }

    /// An `int64` constant: a 1-D tensor of `values`, or a scalar when `scalar`.
    pub(super) fn const_i64(&mut self, layer: &str, values: &[i64], scalar: bool) -> String {
        let dims = if scalar {
            Vec::new()
        } else {
            vec![len_i64(values.len())]
        };
        let hint = format!("{}/const", prefix(layer));
        self.constant(&hint, tensor_i64("", &dims, values))
    }

    /// An `int64 [1]` value holding the size `dim`, computed at run time for a symbolic
    /// size. Sizes of the form `a·S + b` for one symbol `S` of the inputs are supported.
    pub(super) fn dim_value(&mut self, layer: &str, dim: &Dim) -> Result<String, UnknownSymbol> {
        let p = match dim {
            Dim::Known(k) => return Ok(self.const_i64(layer, &[to_i64(*k)], false)),
            Dim::Sym(p) => p,
        };
        let (sym, a, b) = linear(p).ok_or_else(|| UnknownSymbol(p.to_string()))?;
        let mut v = self.symbol(layer, &sym)?;
        if a != 1 {
            let k = self.const_i64(layer, &[a], false);
            v = self.node1(
                "Mul",
                &format!("{}/dim", prefix(layer)),
                vec![v, k],
                Vec::new(),
            );
        }
        if b != 0 {
            let k = self.const_i64(layer, &[b], false);
            v = self.node1(
                "Add",
                &format!("{}/dim", prefix(layer)),
                vec![v, k],
                Vec::new(),
            );
        }
        Ok(v)
    }

    /// A 1-D `int64` shape tensor for `dims` (a constant when every size is known).
    pub(super) fn shape_value(
        &mut self,
        layer: &str,
        dims: &[Dim],
    ) -> Result<String, UnknownSymbol> {
        let known: Option<Vec<i64>> = dims.iter().map(|d| d.known().map(to_i64)).collect();
        if let Some(k) = known {
            return Ok(self.const_i64(layer, &k, false));
        }
        let mut parts = Vec::with_capacity(dims.len());
        for d in dims {
            parts.push(self.dim_value(layer, d)?);
        }
        let hint = format!("{}/shape", prefix(layer));
        Ok(self.node1("Concat", &hint, parts, vec![attr_int("axis", 0)]))
    }

    /// The `int64 [1]` run-time value of symbol `sym`, computed once per graph.
    fn symbol(&mut self, layer: &str, sym: &str) -> Result<String, UnknownSymbol> {
        for f in self.frames.iter().rev() {
            if let Some(v) = f.symbols.get(sym) {
                return Ok(v.clone());
            }
        }
        let src = self
            .symbol_sources
            .get(sym)
            .cloned()
            .ok_or_else(|| UnknownSymbol(sym.to_string()))?;
        let axis = to_i64(src.axis as u64);
        let hint = format!("{}/{sym}", prefix(layer));
        let v = self.node1(
            "Shape",
            &hint,
            vec![src.input],
            vec![attr_int("start", axis), attr_int("end", axis + 1)],
        );
        self.frame().symbols.insert(sym.to_string(), v.clone());
        Ok(v)
    }

    /// Takes the model's graph once every subgraph is closed.
    pub(super) fn finish(mut self) -> Frame {
        self.frames.drain(..).next().unwrap_or_default()
    }
}

/// `layer`, or `fill` for nodes that belong to no layer (the constants of recurrences'
/// initial states): the prefix of helper values.
fn prefix(layer: &str) -> &str {
    if layer.is_empty() {
        "fill"
    } else {
        layer
    }
}

/// `p = a·S + b` for one symbol `S`, if it has that form.
fn linear(p: &Poly) -> Option<(String, i64, i64)> {
    let syms = p.symbols();
    let [s] = syms.as_slice() else {
        return None;
    };
    let b = p.substitute(s, 0)?.as_const()?;
    let a = p.substitute(s, 1)?.as_const()?.checked_sub(b)?;
    let back = Poly::symbol(s)
        .checked_scale(a)?
        .checked_add(&Poly::constant(b))?;
    (back == *p).then(|| (s.clone(), a, b))
}

/// A size as ONNX's `int64`, saturating (sizes that large fail earlier, at compile time).
pub(super) fn to_i64(k: u64) -> i64 {
    i64::try_from(k).unwrap_or(i64::MAX)
}

/// A length as ONNX's `int64`.
pub(super) fn len_i64(k: usize) -> i64 {
    i64::try_from(k).unwrap_or(i64::MAX)
}

/// The ONNX element type of an IR element type.
pub(super) fn elem_type(d: DType) -> i32 {
    match d {
        DType::F16 => pb::data_type::FLOAT16,
        DType::F32 => pb::data_type::FLOAT,
        DType::F64 => pb::data_type::DOUBLE,
        DType::I32 => pb::data_type::INT32,
        DType::I64 => pb::data_type::INT64,
        DType::Bool => pb::data_type::BOOL,
    }
}

/// An ONNX dimension: a number, or a `dim_param` holding the symbolic size as the IR
/// prints it (`N`, `T`, `H-2`).
fn dimension(d: &Dim) -> pb::Dimension {
    let value = match d {
        Dim::Known(k) => pb::DimensionValue::DimValue(to_i64(*k)),
        Dim::Sym(p) => pb::DimensionValue::DimParam(p.to_string()),
    };
    pb::Dimension { value: Some(value) }
}

/// The ONNX tensor type of an IR type.
pub(super) fn type_proto(ty: &TensorType) -> pb::TypeProto {
    pb::TypeProto {
        tensor_type: Some(pb::TypeProtoTensor {
            elem_type: elem_type(ty.dtype),
            shape: Some(pb::TensorShapeProto {
                dim: ty.shape.dims().iter().map(dimension).collect(),
            }),
        }),
    }
}

/// A named, typed value.
pub(super) fn value_info(name: &str, ty: &TensorType) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(type_proto(ty)),
        doc_string: String::new(),
    }
}

/// A scalar value of element type `elem` (the `bool` and `int64` scalars of `Loop`).
pub(super) fn scalar_info(name: &str, elem: i32) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            tensor_type: Some(pb::TypeProtoTensor {
                elem_type: elem,
                shape: Some(pb::TensorShapeProto { dim: Vec::new() }),
            }),
        }),
        doc_string: String::new(),
    }
}

/// A `float` tensor stored as little-endian raw bytes.
pub(super) fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    let mut raw = Vec::with_capacity(data.len() * 4);
    for x in data {
        raw.extend_from_slice(&x.to_le_bytes());
    }
    pb::TensorProto {
        dims: dims.to_vec(),
        data_type: pb::data_type::FLOAT,
        name: name.to_string(),
        raw_data: raw,
        ..pb::TensorProto::default()
    }
}

/// An `int64` tensor.
pub(super) fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        dims: dims.to_vec(),
        data_type: pb::data_type::INT64,
        name: name.to_string(),
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..pb::TensorProto::default()
    }
}

/// An integer attribute.
pub(super) fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        i,
        r#type: pb::attribute_type::INT,
        ..pb::AttributeProto::default()
    }
}

/// An integer-list attribute.
pub(super) fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        ints: ints.to_vec(),
        r#type: pb::attribute_type::INTS,
        ..pb::AttributeProto::default()
    }
}

/// A float attribute (ONNX attributes are single precision).
pub(super) fn attr_float(name: &str, f: f64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        f: f as f32,
        r#type: pb::attribute_type::FLOAT,
        ..pb::AttributeProto::default()
    }
}

/// A string attribute.
pub(super) fn attr_string(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        s: s.as_bytes().to_vec(),
        r#type: pb::attribute_type::STRING,
        ..pb::AttributeProto::default()
    }
}

/// A tensor attribute.
pub(super) fn attr_tensor(name: &str, t: pb::TensorProto) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        t: Some(t),
        r#type: pb::attribute_type::TENSOR,
        ..pb::AttributeProto::default()
    }
}

/// A graph attribute (the body of `Scan` or `Loop`).
pub(super) fn attr_graph(name: &str, g: pb::GraphProto) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        g: Some(g),
        r#type: pb::attribute_type::GRAPH,
        ..pb::AttributeProto::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_are_unique() {
        let mut n = Names::default();
        assert!(n.reserve("x"));
        assert_eq!(n.fresh("x"), "x_1");
        assert_eq!(n.fresh("x"), "x_2");
        assert_eq!(n.fresh("conv"), "conv");
        assert!(!n.reserve("conv"));
    }

    #[test]
    fn linear_sizes_are_recognised() {
        let t = Poly::symbol("T");
        let p = t
            .checked_scale(3)
            .and_then(|p| p.checked_add(&Poly::constant(-2)));
        assert_eq!(p.as_ref().and_then(linear), Some(("T".to_string(), 3, -2)));
        let nt = Poly::symbol("N").checked_mul(&Poly::symbol("T"));
        assert_eq!(nt.as_ref().and_then(linear), None);
        let tt = t.checked_mul(&t);
        assert_eq!(tt.as_ref().and_then(linear), None);
    }
}
