//! `layout`: chooses the storage layout of every 4-D activation and inserts the fewest
//! conversions (`relayout` nodes) between layouts (rules `layout/nhwc`, one per region
//! given channel-last values, and `layout/convert`, one per conversion).
//!
//! **The choice: NHWC (channels innermost) for the convolutional part of a net, NCHW
//! elsewhere.** The kernels codegen emits for this machine (128-bit vectors, 4 floats)
//! want channels contiguous: a convolution is then, for each output pixel, a sum of
//! unit-stride dot products over input channels and a unit-stride store over output
//! channels (a 1x1 convolution is exactly a matrix product `[N·H·W, C] x [C, O]`);
//! pools, LRN and batch norm run over contiguous channel vectors; the per-channel
//! epilogue (bias, scale) is a vector load. NCHW would make every one of those strided
//! by `H·W`, and a channel-blocked layout (`NCHW4c`) would buy the same vectors at the
//! price of padding channel counts that are not multiples of 4 (3-channel images, the
//! 1-channel filters). So:
//!
//! - convolutions, pools, LRN, batch norm, global pools and groups anchored on them
//!   read and write NHWC;
//! - elementwise ops and groups follow their first same-shape input, and so do concats
//!   (NHWC when any input is), so a whole inception module or residual stage stays
//!   NHWC with no conversion;
//! - everything else (`flatten`, `reshape`, dense layers, loops, …), the net's inputs and
//!   the net's outputs are NCHW: the declared order, that of `.npy` files and of ONNX.
//!
//! A conversion is inserted once per value and layout, on the edges that need it: at the
//! image input, and before net outputs and other NCHW readers. A `flatten` read only by a
//! dense layer needs none (rule `layout/flatten`): it becomes `flatten_channels_last`, a
//! view of the NHWC map, and the dense weight a derived parameter with its columns
//! permuted to `(h, w, c)` order — one conversion per CNN. Values with one channel or a 1x1 map have the
//! same bytes in both layouts, so they need none and keep NCHW. The inputs of an
//! in-place concat take the concat's layout (they are slices of its buffer).
//!
//! **Safety.** A layout is a storage order only: every op keeps its logical `[N, C, H,
//! W]` semantics and `relayout` is the identity on values, so no result changes; the
//! memory plan and the arena executor place each value in its layout.

use super::pipeline::{
    for_each_step_region, param_node, push_param, unique_param_name, Pass, RewriteLog,
};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Derivation, Graph, Node, NodeId, Param, ParamKind, Region, ValueRef};
use crate::ir::op::{GroupKind, Layout, Op};
use crate::ir::shape::Dim;
use std::collections::BTreeMap;

/// The pass.
pub struct ChooseLayout;

impl Pass for ChooseLayout {
    fn name(&self) -> &'static str {
        "layout"
    }

    fn doc(&self) -> &'static str {
        "stores convolutional activations channels-last (NHWC), converting at the edges"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        let Graph { body, params, .. } = graph;
        for_each_step_region(body, &mut |r| layout_region(r, params, log));
        Ok(())
    }
}

/// How a node decides layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Reads and writes NHWC.
    Spatial,
    /// Writes the layout of its first same-shape 4-D input; reads its inputs in it.
    Follow,
    /// Writes NHWC when any input is NHWC; reads its inputs in its layout.
    Concat,
    /// Reads and writes NCHW.
    Nchw,
}

fn role(node: &Node) -> Role {
    match &node.op {
        Op::Conv2d(_)
        | Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::Lrn { .. }
        | Op::BatchNorm { .. }
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::FlattenChannelsLast => Role::Spatial,
        Op::Group(g) => match g.kind {
            GroupKind::Pool => Role::Spatial,
            GroupKind::Contraction => {
                let conv = g
                    .body
                    .node_ids()
                    .iter()
                    .any(|n| matches!(g.body.node(*n).op, Op::Conv2d(_)));
                if conv {
                    Role::Spatial
                } else {
                    Role::Nchw
                }
            }
            GroupKind::Elementwise => Role::Follow,
        },
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Neg
        | Op::Relu
        | Op::Sigmoid
        | Op::Tanh
        | Op::Dropout { .. } => Role::Follow,
        Op::Concat { .. } => Role::Concat,
        Op::Input { .. }
        | Op::Param(_)
        | Op::Fill { .. }
        | Op::Dense
        | Op::MatMul
        | Op::Embed
        | Op::Flatten
        | Op::Reshape { .. }
        | Op::Slice { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SoftmaxCrossEntropy
        | Op::Mse
        | Op::Loop(_)
        | Op::Relayout { .. } => Role::Nchw,
    }
}

/// Whether a value's layout matters: 4-D with more than one channel and more than one
/// position (otherwise both layouts are the same bytes).
fn matters(r: &Region, v: ValueRef) -> bool {
    let dims = r.ty(v).shape.dims();
    let one = |d: &Dim| d.known() == Some(1);
    dims.len() == 4 && !one(&dims[1]) && !(one(&dims[2]) && one(&dims[3]))
}

/// Whether a value is an activation (not a weight or a constant).
fn activation(r: &Region, v: ValueRef) -> bool {
    !matches!(r.node(v.node).op, Op::Param(_) | Op::Fill { .. })
}

fn layout_region(r: &mut Region, params: &mut Vec<Param>, log: &mut RewriteLog) {
    let order = r.topo_order();
    // 1. The layout of every value that matters.
    let mut chosen: BTreeMap<ValueRef, Layout> = BTreeMap::new();
    let of = |chosen: &BTreeMap<ValueRef, Layout>, v: &ValueRef| {
        chosen.get(v).copied().unwrap_or_default()
    };
    for &id in &order {
        let node = r.node(id);
        let inputs: Vec<ValueRef> = r
            .inputs_of(id)
            .into_iter()
            .filter(|v| activation(r, *v) && matters(r, *v))
            .collect();
        let out = match role(node) {
            Role::Spatial => Layout::Nhwc,
            Role::Nchw => Layout::Nchw,
            Role::Follow => {
                let shape = node.outputs.first().map(|t| t.shape.dims().to_vec());
                inputs
                    .iter()
                    .find(|v| Some(r.ty(**v).shape.dims().to_vec()) == shape)
                    .map_or(Layout::Nchw, |v| of(&chosen, v))
            }
            Role::Concat => {
                if inputs.iter().any(|v| of(&chosen, v) == Layout::Nhwc) {
                    Layout::Nhwc
                } else {
                    Layout::Nchw
                }
            }
        };
        for port in 0..node.outputs.len() {
            let v = ValueRef {
                node: id,
                port: u32::try_from(port).unwrap_or(u32::MAX),
            };
            if out == Layout::Nhwc && matters(r, v) {
                chosen.insert(v, out);
            }
        }
    }
    // The inputs of an in-place concat are slices of its buffer, so they take its layout;
    // outer concats first, so that a nested one passes its final layout on.
    for &id in order.iter().rev() {
        if matches!(r.node(id).op, Op::Concat { in_place: true, .. }) {
            let l = of(&chosen, &Region::value(id));
            for v in r.inputs_of(id) {
                if l == Layout::Nhwc {
                    chosen.insert(v, l);
                } else {
                    chosen.remove(&v);
                }
            }
        }
    }
    if chosen.is_empty() || !log.rewrite("layout", "nhwc") {
        return;
    }
    r.layouts = chosen.clone();
    // A flatten of an NHWC map read only by a dense layer reads the map in its own order
    // (a view), and the dense layer's weight columns are permuted to match, instead of a
    // conversion back to NCHW.
    for &id in &order {
        if r.contains(id) && matches!(r.node(id).op, Op::Flatten) {
            flatten_channels_last(r, params, id, log);
        }
    }
    // 2. What each reader wants: (reader, port, value, layout).
    let mut wants: Vec<(NodeId, u32, ValueRef, Layout)> = Vec::new();
    for &id in &order {
        if !r.contains(id) {
            continue;
        }
        let node = r.node(id);
        if matches!(node.op, Op::Concat { in_place: true, .. }) {
            continue;
        }
        let out = node
            .outputs
            .iter()
            .enumerate()
            .map(|(p, _)| ValueRef {
                node: id,
                port: u32::try_from(p).unwrap_or(u32::MAX),
            })
            .find(|v| matters(r, *v))
            .map_or(Layout::Nchw, |v| of(&chosen, &v));
        let want = match role(node) {
            Role::Spatial => Layout::Nhwc,
            Role::Nchw => Layout::Nchw,
            Role::Follow | Role::Concat => out,
        };
        for (port, v) in r.inputs_of(id).into_iter().enumerate() {
            if activation(r, v) && matters(r, v) && of(&chosen, &v) != want {
                wants.push((id, u32::try_from(port).unwrap_or(u32::MAX), v, want));
            }
        }
    }
    // 3. One conversion per value and layout.
    let mut converted: BTreeMap<(ValueRef, Layout), ValueRef> = BTreeMap::new();
    let mut convert = |r: &mut Region, v: ValueRef, to: Layout, log: &mut RewriteLog| {
        if let Some(c) = converted.get(&(v, to)) {
            return Some(*c);
        }
        if !log.rewrite("layout", "convert") {
            return None;
        }
        let src = r.node(v.node);
        let node = Node {
            op: Op::Relayout { to },
            outputs: vec![r.ty(v).clone()],
            name: format!("{}/{}", name_of(src), to.as_str()),
            span: src.span,
            scope: src.scope,
        };
        let c = Region::value(r.add(node, &[v]));
        if to == Layout::Nhwc {
            r.layouts.insert(c, to);
        }
        converted.insert((v, to), c);
        Some(c)
    };
    for (reader, port, v, to) in wants {
        if let Some(c) = convert(r, v, to, log) {
            r.replace_input(reader, port, c);
        }
    }
    for k in 0..r.outputs.len() {
        let v = r.outputs[k].value;
        if matters(r, v) && r.layout(v) != Layout::Nchw {
            if let Some(c) = convert(r, v, Layout::Nchw, log) {
                r.outputs[k].value = c;
            }
        }
    }
}

fn name_of(n: &Node) -> &str {
    if n.name.is_empty() {
        n.op.name()
    } else {
        &n.name
    }
}

/// Rewrites `flatten(v) -> dense(…, w)` (`v` NHWC, the flatten read by that dense layer
/// alone, directly or as the input of its fused group) into
/// `flatten_channels_last(v) -> dense(…, w')` with `w'` the derived
/// [`Derivation::ChannelsLastColumns`] of `w` (rule `layout/flatten`).
fn flatten_channels_last(
    r: &mut Region,
    params: &mut Vec<Param>,
    id: NodeId,
    log: &mut RewriteLog,
) {
    let Some(&v) = r.inputs_of(id).first() else {
        return;
    };
    let dims = r.ty(v).shape.dims().to_vec();
    let known: Option<Vec<u64>> = dims
        .get(1..)
        .and_then(|d| d.iter().map(Dim::known).collect());
    let (Some([c, h, w]), Layout::Nhwc) = (
        known.and_then(|k| <[u64; 3]>::try_from(k).ok()),
        r.layout(v),
    ) else {
        return;
    };
    let out = Region::value(id);
    let users = r.users_of(id);
    let [user] = users.as_slice() else {
        return;
    };
    if r.outputs.iter().any(|o| o.value == out)
        || r.inputs_of(*user).iter().filter(|x| **x == out).count() != 1
    {
        return;
    }
    // The weight's Param node: in the region (a plain dense) or in the group's body.
    let user = *user;
    let weight_of =
        |region: &Region, dense: NodeId| -> Option<(NodeId, crate::ir::graph::ParamId)> {
            let ins = region.inputs_of(dense);
            let wv = ins.get(1)?;
            match region.node(wv.node).op {
                Op::Param(p) if region.users_of(wv.node) == [dense] => Some((wv.node, p)),
                _ => None,
            }
        };
    let target = match &r.node(user).op {
        Op::Dense if r.inputs_of(user).first() == Some(&out) => {
            weight_of(r, user).map(|(n, p)| (None, n, p))
        }
        Op::Group(g) => {
            let port = r.inputs_of(user).iter().position(|x| *x == out);
            let input = port.and_then(|k| g.body.inputs.get(k).copied());
            input.and_then(|inp| {
                let readers = g.body.users_of(inp);
                let [dense] = readers.as_slice() else {
                    return None;
                };
                let is_dense = matches!(g.body.node(*dense).op, Op::Dense)
                    && g.body.inputs_of(*dense).first() == Some(&Region::value(inp));
                if !is_dense {
                    return None;
                }
                weight_of(&g.body, *dense).map(|(n, p)| (Some(user), n, p))
            })
        }
        _ => None,
    };
    let Some((group, weight_node, source)) = target else {
        return;
    };
    let Some(sp) = params.get(source.0 as usize) else {
        return;
    };
    if !matches!(sp.kind, ParamKind::Trainable | ParamKind::Buffer)
        || !log.rewrite("layout", "flatten")
    {
        return;
    }
    let derived = Param {
        name: unique_param_name(params, &format!("{}.channels_last", sp.name)),
        ty: sp.ty.clone(),
        kind: ParamKind::Derived,
        init: None,
        derived: Some(Derivation::ChannelsLastColumns {
            source,
            map: [c, h, w],
        }),
        span: sp.span,
    };
    let Some(pid) = push_param(params, derived) else {
        return;
    };
    match group {
        // One Param node per parameter per region: the body's node now reads the new one.
        Some(g) => {
            if let Op::Group(gr) = &mut r.node_mut(g).op {
                gr.body.node_mut(weight_node).op = Op::Param(pid);
            }
        }
        None => {
            let scope = r.node(weight_node).scope;
            if let Some(n) = param_node(r, params, pid, scope) {
                r.replace_input(user, 1, Region::value(n));
                if r.users_of(weight_node).is_empty() {
                    r.remove(weight_node);
                }
            }
        }
    }
    r.node_mut(id).op = Op::FlattenChannelsLast;
}
