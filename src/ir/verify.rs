//! The IR verifier. It checks, for a [`Graph`] and recursively for every loop body and
//! fused group:
//!
//! 1. every edge names an existing output of its source (`from_port` in range) and carries
//!    exactly that output's type;
//! 2. each node's input ports are `0..n` with no gaps or duplicates;
//! 3. the shape rule of each op ([`crate::passes::infer_shapes::infer`]) applied to the
//!    node's input types gives exactly its stored output types;
//! 4. the region is acyclic;
//! 5. the region's `inputs` are exactly its `Input` nodes, the `i`-th having `index == i`;
//!    its outputs name existing values;
//! 6. `Param` nodes name parameters of the table, at most one per parameter per region;
//! 7. parameters have unique, non-empty names and known shapes; fixed parameters carry
//!    exactly as many values as elements, the others none; derived parameters (and only
//!    they) have a derivation, whose sources are stored parameters;
//! 8. scopes' parents exist and come before them, and every node's scope exists;
//! 9. every node except parameters and constants has a layer name;
//! 10. a fused group has outputs and holds no loop or group (it is one loop nest);
//!     its body is checked like any region, and rule 3 makes its inputs and outputs
//!     match the body's;
//! 11. layouts are recorded only for 4-D values; a `relayout` changes its input's layout
//!     to its `to`; an in-place concat and its inputs share one layout.
//!
//! A failure is a bug in netc (a pass broke an invariant), reported as plain messages for
//! the internal-error panic of [`crate::passes::verify_after`].

use super::graph::{Graph, Region};
use super::op::Op;
use super::shape::Dim;
use std::collections::{BTreeMap, BTreeSet};

/// Checks every invariant above; returns the violations found.
pub fn verify(g: &Graph) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in g.params.iter().enumerate() {
        if p.name.is_empty() || !names.insert(p.name.as_str()) {
            errs.push(format!("param {i}: empty or duplicate name `{}`", p.name));
        }
        if p.ty.shape.dims().iter().any(|d| matches!(d, Dim::Sym(_))) {
            errs.push(format!("param `{}`: symbolic shape {}", p.name, p.ty));
        }
        let expected =
            g.param_elements(super::graph::ParamId(u32::try_from(i).unwrap_or(u32::MAX)));
        match (p.kind, &p.init) {
            (super::graph::ParamKind::Fixed, Some(v)) if Some(v.len() as u64) == expected => {}
            (super::graph::ParamKind::Fixed, _) => errs.push(format!(
                "fixed param `{}`: values do not match its shape",
                p.name
            )),
            (_, Some(_)) => errs.push(format!("param `{}`: learned but has values", p.name)),
            (_, None) => {}
        }
        match (p.kind, &p.derived) {
            (super::graph::ParamKind::Derived, Some(d)) => {
                for s in d.sources() {
                    let ok = g
                        .params
                        .get(s.0 as usize)
                        .is_some_and(|sp| sp.kind != super::graph::ParamKind::Derived);
                    if !ok {
                        errs.push(format!(
                            "derived param `{}`: source {} is missing or derived",
                            p.name, s.0
                        ));
                    }
                }
            }
            (super::graph::ParamKind::Derived, None) | (_, Some(_)) => errs.push(format!(
                "param `{}`: derived exactly when it has a derivation",
                p.name
            )),
            (_, None) => {}
        }
    }
    for (i, s) in g.scopes.iter().enumerate() {
        if let Some(parent) = s.parent {
            if parent.0 as usize >= i {
                errs.push(format!(
                    "scope `{}`: parent {} does not come before it",
                    s.name, parent.0
                ));
            }
        } else if i != 0 {
            errs.push(format!(
                "scope `{}`: only the net scope has no parent",
                s.name
            ));
        }
    }
    region(g, &g.body, "net", &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn region(g: &Graph, r: &Region, path: &str, errs: &mut Vec<String>) {
    let order = r.topo_order();
    if order.len() != r.len() {
        errs.push(format!("{path}: the region has a cycle"));
    }
    let mut inputs = Vec::new();
    let mut params: BTreeMap<u32, usize> = BTreeMap::new();
    for id in r.node_ids() {
        let node = r.node(id);
        let at = format!(
            "{path}: node {} (`{}` {})",
            id.index(),
            node.name,
            node.op.name()
        );
        if node.scope.0 as usize >= g.scopes.len() {
            errs.push(format!("{at}: unknown scope {}", node.scope.0));
        }
        let edges = r.in_edges(id);
        for (k, (v, e)) in edges.iter().enumerate() {
            if e.to_port as usize != k {
                errs.push(format!("{at}: input ports are not 0..n"));
            }
            if !r.has_value(*v) {
                errs.push(format!("{at}: input {k} reads a missing output"));
            } else if r.ty(*v) != &e.ty {
                errs.push(format!(
                    "{at}: edge {k} carries {} but its source gives {}",
                    e.ty,
                    r.ty(*v)
                ));
            }
        }
        let types: Vec<&super::shape::TensorType> = edges.iter().map(|(_, e)| &e.ty).collect();
        match crate::passes::infer_shapes::infer(&node.op, &types, &g.params) {
            Ok(outs) if outs == node.outputs => {}
            Ok(outs) => {
                let a: Vec<String> = outs.iter().map(ToString::to_string).collect();
                let b: Vec<String> = node.outputs.iter().map(ToString::to_string).collect();
                errs.push(format!(
                    "{at}: stored types [{}] but the rule gives [{}]",
                    b.join(", "),
                    a.join(", ")
                ));
            }
            Err(e) => errs.push(format!("{at}: shape rule fails: {e:?}")),
        }
        match &node.op {
            Op::Input { index, .. } => inputs.push((*index, id)),
            Op::Param(p) => {
                if p.0 as usize >= g.params.len() {
                    errs.push(format!("{at}: unknown param {}", p.0));
                }
                *params.entry(p.0).or_insert(0) += 1;
            }
            Op::Loop(l) => region(g, &l.body, &format!("{path}/{}", node.name), errs),
            Op::Group(gr) => {
                let inner = format!("{path}/{}", node.name);
                region(g, &gr.body, &inner, errs);
                if gr.body.outputs.is_empty() {
                    errs.push(format!("{inner}: a group without outputs"));
                }
                if gr
                    .body
                    .node_ids()
                    .iter()
                    .any(|n| matches!(gr.body.node(*n).op, Op::Loop(_) | Op::Group(_)))
                {
                    errs.push(format!("{inner}: a group holds a loop or a group"));
                }
            }
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
            | Op::Dropout { .. }
            | Op::Mean { .. }
            | Op::Sum { .. }
            | Op::SoftmaxCrossEntropy
            | Op::Mse => {}
            Op::Relayout { to } => {
                let from = r.inputs_of(id).first().map(|v| r.layout(*v));
                if from == Some(*to) || r.layout(Region::value(id)) != *to {
                    errs.push(format!(
                        "{at}: a relayout must change the layout to its `to`"
                    ));
                }
            }
        }
        let unnamed_ok = matches!(node.op, Op::Param(_) | Op::Fill { .. });
        if node.name.is_empty() && !unnamed_ok {
            errs.push(format!("{at}: node has no layer name"));
        }
    }
    for (p, n) in params {
        if n > 1 {
            errs.push(format!("{path}: param {p} is read by {n} Param nodes"));
        }
    }
    inputs.sort();
    let listed: Vec<_> = r.inputs.to_vec();
    let found: Vec<_> = inputs.iter().map(|(_, id)| *id).collect();
    if listed != found || inputs.iter().enumerate().any(|(i, (k, _))| i != *k) {
        errs.push(format!(
            "{path}: region inputs do not match its Input nodes"
        ));
    }
    for o in &r.outputs {
        if !r.has_value(o.value) {
            errs.push(format!("{path}: output `{}` names a missing value", o.name));
        }
    }
    for v in r.layouts.keys() {
        if !r.has_value(*v) || r.ty(*v).shape.rank() != 4 {
            errs.push(format!("{path}: a layout for a value that is not 4-D"));
        }
    }
    for id in r.node_ids() {
        if matches!(r.node(id).op, Op::Concat { in_place: true, .. }) {
            let l = r.layout(Region::value(id));
            if r.inputs_of(id).iter().any(|v| r.layout(*v) != l) {
                errs.push(format!(
                    "{path}: node {}: an in-place concat's inputs must have its layout",
                    id.index()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{FileId, Span};
    use crate::ir::graph::{Node, ScopeId};
    use crate::ir::shape::{DType, Dim, TensorType};

    fn input(g: &mut Graph, ty: TensorType) -> crate::ir::graph::NodeId {
        let id = g.body.add(
            Node {
                op: Op::Input {
                    index: 0,
                    name: "x".into(),
                    ty: ty.clone(),
                },
                outputs: vec![ty],
                name: "x".into(),
                span: Span::new(FileId(0), 0, 0),
                scope: ScopeId(0),
            },
            &[],
        );
        g.body.inputs.push(id);
        id
    }

    #[test]
    fn accepts_a_well_typed_graph() {
        let mut g = Graph::new("t", None, Span::default());
        let ty = TensorType::new(DType::F32, vec![Dim::sym("N"), Dim::Known(4)]);
        let x = input(&mut g, ty.clone());
        g.body.add(
            Node {
                op: Op::Relu,
                outputs: vec![ty],
                name: "relu".into(),
                span: Span::default(),
                scope: ScopeId(0),
            },
            &[Region::value(x)],
        );
        assert_eq!(verify(&g), Ok(()));
    }

    #[test]
    fn rejects_a_wrong_stored_type_and_a_missing_name() {
        let mut g = Graph::new("t", None, Span::default());
        let ty = TensorType::new(DType::F32, vec![Dim::sym("N"), Dim::Known(4)]);
        let x = input(&mut g, ty);
        g.body.add(
            Node {
                op: Op::Flatten,
                outputs: vec![TensorType::new(DType::F32, vec![Dim::Known(3)])],
                name: String::new(),
                span: Span::default(),
                scope: ScopeId(7),
            },
            &[Region::value(x)],
        );
        let errs = verify(&g).expect_err("invalid graph");
        assert!(errs.iter().any(|e| e.contains("stored types")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("no layer name")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("unknown scope")), "{errs:?}");
    }
}
