//! `fuse`: groups ops into [`Op::Group`] nodes that codegen lowers as one loop nest each,
//! so the values inside a group are never written to memory.
//!
//! **The rules**, applied in this order to the net's body and to every loop body (the
//! step of a recurrence), in topological order:
//!
//! 1. **Epilogue** (`fuse/epilogue`, [`GroupKind::Contraction`]): an elementwise op
//!    (`add`, `sub`, `mul`, `div`, `neg`, `relu`, `sigmoid`, `tanh`, `batchnorm`) whose
//!    output has the shape of a `conv2d`, `dense` or `matmul` output it reads joins that
//!    contraction's group: it is applied to each output element as the element is
//!    produced (bias, activation, residual add, scale). Its other operands are read at the
//!    same index or broadcast (the shortcut of a residual block, a per-channel scale).
//! 2. **Elementwise chains** (`fuse/elementwise`, [`GroupKind::Elementwise`]): elementwise
//!    ops over one iteration space (the same output shape) that feed one another form one
//!    group, one loop; a `slice` whose output has that shape joins as a load (the gate
//!    slices of an LSTM step). So the gate equations of one time step are one loop.
//!    Groups merge through an op that reads both; a group holds at most one contraction.
//! 3. **Pool with the activation before it** (`fuse/pool`, [`GroupKind::Pool`]): a
//!    `relu`, `sigmoid` or `tanh` that no rule above took, read only by a `maxpool` or
//!    `avgpool`, joins the pool. Legal for max pooling always: the activations are
//!    non-decreasing, so `act(max(w)) = max(act(w))` and the activation is applied once
//!    per output; for average pooling only when windows do not overlap (stride ≥ window
//!    on both axes), so each input element is activated once (padding stays zero: the
//!    activation applies to loaded elements, never to the padding).
//!
//! **Safety.** A group's body is the fused ops unchanged, so it computes exactly what the
//! ops computed; the interpreter runs it as a region. A value of a group read outside it
//! is a group output (written once, as before), so fusion never recomputes anything and
//! never adds memory traffic: rules go one way (ops into groups) and never make code
//! worse. Groups are only formed when they cannot create a cycle (no path leaves the
//! group and comes back). A group of one op is not formed: it is the op itself.
//!
//! Softmax and log-softmax need no rule: each is one op, one kernel (the maximum, the sum
//! of exponentials and the normalisation of a row in one loop nest).

use super::pipeline::{for_each_step_region, Pass, RewriteLog};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, Node, NodeId, Output, Region, ValueRef};
use crate::ir::op::{Group, GroupKind, Layout, Op, Pool2d};
use crate::ir::shape::{DType, Dim};
use std::collections::{BTreeMap, BTreeSet};

/// The pass.
pub struct Fuse;

impl Pass for Fuse {
    fn name(&self) -> &'static str {
        "fuse"
    }

    fn doc(&self) -> &'static str {
        "fuses contractions with their epilogues, elementwise chains, and pools with activations"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        for_each_step_region(&mut graph.body, &mut |r| fuse_region(r, log));
        Ok(())
    }
}

/// How an op takes part in fusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Contraction,
    Elementwise,
    /// A slice: joins an elementwise group as a load.
    Load,
    Pool,
    Other,
}

fn class(node: &Node) -> Class {
    let float = node.outputs.len() == 1 && node.outputs[0].dtype == DType::F32;
    if !float {
        return Class::Other;
    }
    match node.op {
        Op::Conv2d(_) | Op::Dense | Op::MatMul => Class::Contraction,
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Neg
        | Op::Relu
        | Op::Sigmoid
        | Op::Tanh
        | Op::BatchNorm { .. } => Class::Elementwise,
        Op::Slice { .. } => Class::Load,
        Op::MaxPool2d(_) | Op::AvgPool2d(_) => Class::Pool,
        Op::Input { .. }
        | Op::Param(_)
        | Op::Fill { .. }
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::Lrn { .. }
        | Op::Embed
        | Op::Flatten
        | Op::FlattenChannelsLast
        | Op::Reshape { .. }
        | Op::Concat { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Dropout { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SoftmaxCrossEntropy
        | Op::Mse
        | Op::Loop(_)
        | Op::Group(_)
        | Op::Relayout { .. } => Class::Other,
    }
}

/// A cluster being formed: its members and its iteration space.
#[derive(Clone, Debug)]
struct Cluster {
    members: BTreeSet<NodeId>,
    space: Vec<Dim>,
    contraction: bool,
    pool: bool,
}

/// The clusters of one region, as a map from node to cluster id.
struct Clusters<'r> {
    r: &'r Region,
    pos: BTreeMap<NodeId, usize>,
    of: BTreeMap<NodeId, usize>,
    all: Vec<Option<Cluster>>,
}

impl Clusters<'_> {
    fn cluster_of(&self, id: NodeId) -> Option<&Cluster> {
        self.of.get(&id).and_then(|c| self.all[*c].as_ref())
    }

    /// A new cluster holding `id` alone.
    fn singleton(&mut self, id: NodeId, contraction: bool, pool: bool) -> usize {
        let space = self.r.node(id).outputs[0].shape.dims().to_vec();
        let k = self.all.len();
        self.all.push(Some(Cluster {
            members: BTreeSet::from([id]),
            space,
            contraction,
            pool,
        }));
        self.of.insert(id, k);
        k
    }

    /// Whether the union of `members` would be on a cycle once every cluster is one node:
    /// some path leaves the set and comes back into it, where a path may also step from a
    /// node to any other member of that node's cluster (they will be one group).
    fn would_cycle(&self, members: &BTreeSet<NodeId>) -> bool {
        let mut stack: Vec<NodeId> = Vec::new();
        let mut seen: BTreeSet<NodeId> = BTreeSet::new();
        for m in members {
            for u in self.r.users_of(*m) {
                if !members.contains(&u) && seen.insert(u) {
                    stack.push(u);
                }
            }
        }
        while let Some(n) = stack.pop() {
            let mut next = self.r.users_of(n);
            if let Some(c) = self.cluster_of(n) {
                next.extend(c.members.iter().copied());
            }
            for u in next {
                if members.contains(&u) {
                    return true;
                }
                if seen.insert(u) {
                    stack.push(u);
                }
            }
        }
        false
    }

    /// Merges the clusters `ids` (distinct) into the first; false (and nothing changed)
    /// when that would make a cycle, hold two contractions, or compute a contraction's
    /// input inside its own group (a prologue: the contraction reads windows and rows of
    /// its input, so that would recompute it).
    fn merge(&mut self, ids: &[usize]) -> bool {
        let parts: Vec<&Cluster> = ids.iter().filter_map(|i| self.all[*i].as_ref()).collect();
        if parts.iter().filter(|c| c.contraction).count() > 1 {
            return false;
        }
        let members: BTreeSet<NodeId> = parts
            .iter()
            .flat_map(|c| c.members.iter().copied())
            .collect();
        let prologue = members.iter().any(|m| {
            class(self.r.node(*m)) == Class::Contraction
                && self
                    .r
                    .inputs_of(*m)
                    .iter()
                    .any(|v| members.contains(&v.node))
        });
        if prologue || self.would_cycle(&members) {
            return false;
        }
        let contraction = parts.iter().any(|c| c.contraction);
        let pool = parts.iter().any(|c| c.pool);
        let Some(&first) = ids.first() else {
            return false;
        };
        for &i in &ids[1..] {
            self.all[i] = None;
        }
        for m in &members {
            self.of.insert(*m, first);
        }
        if let Some(c) = self.all[first].as_mut() {
            c.members = members;
            c.contraction = contraction;
            c.pool = pool;
        }
        true
    }
}

fn fuse_region(r: &mut Region, log: &mut RewriteLog) {
    let order = r.topo_order();
    let groups = {
        let mut cs = Clusters {
            r,
            pos: order.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
            of: BTreeMap::new(),
            all: Vec::new(),
        };
        for &id in &order {
            match class(r.node(id)) {
                Class::Contraction => {
                    cs.singleton(id, true, false);
                }
                Class::Elementwise => epilogue_or_chain(&mut cs, id),
                Class::Load | Class::Pool | Class::Other => {}
            }
        }
        for &id in &order {
            if class(r.node(id)) == Class::Pool {
                pool_with_activation(&mut cs, id);
            }
        }
        let mut groups: Vec<(Vec<NodeId>, GroupKind)> = cs
            .all
            .into_iter()
            .flatten()
            .filter(|c| c.members.len() > 1)
            .map(|c| {
                let kind = if c.contraction {
                    GroupKind::Contraction
                } else if c.pool {
                    GroupKind::Pool
                } else {
                    GroupKind::Elementwise
                };
                let mut members: Vec<NodeId> = c.members.into_iter().collect();
                members.sort_by_key(|m| cs.pos.get(m).copied().unwrap_or(usize::MAX));
                (members, kind)
            })
            .collect();
        groups.sort_by_key(|(m, _)| m.first().and_then(|f| cs.pos.get(f).copied()));
        groups
    };
    for (members, kind) in groups {
        let rule = match kind {
            GroupKind::Contraction => "epilogue",
            GroupKind::Elementwise => "elementwise",
            GroupKind::Pool => "pool",
        };
        if !log.rewrite("fuse", rule) {
            return;
        }
        outline(r, &members, kind);
    }
}

/// Rules 1 and 2 for the elementwise node `id`: join the clusters of the inputs that run
/// over its iteration space.
fn epilogue_or_chain(cs: &mut Clusters<'_>, id: NodeId) {
    let r = cs.r;
    let space = r.node(id).outputs[0].shape.dims().to_vec();
    let mine = cs.singleton(id, false, false);
    let mut targets: Vec<usize> = vec![mine];
    for v in r.inputs_of(id) {
        if r.ty(v).shape.dims() != space.as_slice() {
            continue;
        }
        let producer = r.node(v.node);
        match class(producer) {
            Class::Contraction | Class::Elementwise => {}
            Class::Load => {
                // A slice read over this space joins as a load, unless it is already a
                // load of another group.
                if !cs.of.contains_key(&v.node) {
                    let k = cs.singleton(v.node, false, false);
                    if cs.merge(&[mine, k]) {
                        continue;
                    }
                    cs.all[k] = None;
                    cs.of.remove(&v.node);
                }
                continue;
            }
            Class::Pool | Class::Other => continue,
        }
        let Some(&c) = cs.of.get(&v.node) else {
            continue;
        };
        let fits = cs
            .all
            .get(c)
            .and_then(Option::as_ref)
            .is_some_and(|cl| cl.space == space && !cl.pool);
        if fits && !targets.contains(&c) {
            targets.push(c);
        }
    }
    // Join each input cluster in turn, contractions first (the first one wins: the op
    // becomes its epilogue; a second one stays an input).
    let mut rest: Vec<usize> = targets[1..].to_vec();
    rest.sort_by_key(|c| !cs.all[*c].as_ref().is_some_and(|cl| cl.contraction));
    targets.truncate(1);
    targets.extend(rest);
    let mut current = mine;
    for &t in &targets[1..] {
        let ids = [t, current];
        if cs.merge(&ids) {
            current = t;
        }
    }
}

/// Rule 3 for the pool node `id`.
fn pool_with_activation(cs: &mut Clusters<'_>, id: NodeId) {
    let r = cs.r;
    let Some(&v) = r.inputs_of(id).first() else {
        return;
    };
    let act = r.node(v.node);
    if !matches!(act.op, Op::Relu | Op::Sigmoid | Op::Tanh) {
        return;
    }
    // Only an activation no other rule took, read by this pool alone.
    if cs.cluster_of(v.node).is_some_and(|c| c.members.len() > 1)
        || r.users_of(v.node) != [id]
        || r.outputs.iter().any(|o| o.value == v)
    {
        return;
    }
    let legal = match &r.node(id).op {
        Op::MaxPool2d(_) => true,
        Op::AvgPool2d(Pool2d { window, stride, .. }) => {
            stride[0] >= window[0] && stride[1] >= window[1]
        }
        _ => false,
    };
    if !legal {
        return;
    }
    let a = match cs.of.get(&v.node) {
        Some(&a) => a,
        None => cs.singleton(v.node, false, false),
    };
    let p = cs.singleton(id, false, true);
    cs.merge(&[p, a]);
}

/// Replaces `members` (in topological order) by one group node of `kind`.
fn outline(r: &mut Region, members: &[NodeId], kind: GroupKind) {
    let set: BTreeSet<NodeId> = members.iter().copied().collect();
    let anchor = members
        .iter()
        .copied()
        .find(|m| matches!(class(r.node(*m)), Class::Contraction | Class::Pool))
        .or_else(|| members.last().copied());
    let Some(anchor) = anchor else {
        return;
    };
    let mut body = Region::new();
    let mut map: BTreeMap<ValueRef, ValueRef> = BTreeMap::new();
    let mut external: Vec<ValueRef> = Vec::new();
    let mut copied_consts: Vec<NodeId> = Vec::new();
    for &m in members {
        let mut args = Vec::new();
        for v in r.inputs_of(m) {
            if let Some(inner) = map.get(&v) {
                args.push(*inner);
                continue;
            }
            let producer = r.node(v.node).clone();
            let inner = if matches!(producer.op, Op::Param(_) | Op::Fill { .. }) {
                copied_consts.push(v.node);
                Region::value(body.add(producer, &[]))
            } else {
                let index = external.len();
                let ty = r.ty(v).clone();
                let name = if producer.name.is_empty() {
                    format!("in{index}")
                } else {
                    producer.name.clone()
                };
                let id = body.add(
                    Node {
                        op: Op::Input {
                            index,
                            name: name.clone(),
                            ty: ty.clone(),
                        },
                        outputs: vec![ty],
                        name,
                        span: producer.span,
                        scope: producer.scope,
                    },
                    &[],
                );
                body.inputs.push(id);
                external.push(v);
                Region::value(id)
            };
            map.insert(v, inner);
            args.push(inner);
        }
        let node = r.node(m).clone();
        let ports = node.outputs.len();
        let id = body.add(node, &args);
        for port in 0..ports {
            let port = u32::try_from(port).unwrap_or(u32::MAX);
            map.insert(ValueRef { node: m, port }, ValueRef { node: id, port });
        }
    }
    // Every value read outside the group, or returned by the region, is an output.
    let mut outputs: Vec<ValueRef> = Vec::new();
    for &m in members {
        let read_outside: BTreeSet<u32> = r
            .users_of(m)
            .into_iter()
            .filter(|u| !set.contains(u))
            .flat_map(|u| {
                r.inputs_of(u)
                    .into_iter()
                    .filter(|v| v.node == m)
                    .map(|v| v.port)
                    .collect::<Vec<_>>()
            })
            .chain(
                r.outputs
                    .iter()
                    .filter(|o| o.value.node == m)
                    .map(|o| o.value.port),
            )
            .collect();
        for port in read_outside {
            outputs.push(ValueRef { node: m, port });
        }
    }
    let mut types = Vec::new();
    for v in &outputs {
        let inner = map[v];
        let name = r.node(v.node).name.clone();
        body.outputs.push(Output { name, value: inner });
        types.push(r.ty(*v).clone());
    }
    let a = r.node(anchor);
    let group = Node {
        op: Op::Group(Box::new(Group { kind, body })),
        outputs: types,
        name: a.name.clone(),
        span: a.span,
        scope: a.scope,
    };
    let gid = r.add(group, &external);
    for (k, v) in outputs.iter().enumerate() {
        let port = u32::try_from(k).unwrap_or(u32::MAX);
        r.replace_uses(*v, ValueRef { node: gid, port });
    }
    for &m in members {
        r.remove(m);
    }
    for c in copied_consts {
        if r.contains(c) && r.users_of(c).is_empty() && !r.outputs.iter().any(|o| o.value.node == c)
        {
            r.remove(c);
        }
    }
}

/// The number of kernels a region launches: every node that computes, counting a group
/// as one and a loop as the kernels of its step (run once per step). Inputs, parameters,
/// constants, views (`flatten`, `reshape`, `dropout` at inference) and in-place concats
/// launch none.
pub fn kernels(r: &Region) -> usize {
    r.node_ids()
        .into_iter()
        .map(|id| match &r.node(id).op {
            Op::Input { .. }
            | Op::Param(_)
            | Op::Fill { .. }
            | Op::Flatten
            | Op::Reshape { .. }
            | Op::Dropout { .. }
            | Op::Concat { in_place: true, .. } => 0,
            Op::Loop(l) => kernels(&l.body),
            // A view of an NHWC value; a copy of any other.
            Op::FlattenChannelsLast => {
                usize::from(r.inputs_of(id).first().map(|v| r.layout(*v)) != Some(Layout::Nhwc))
            }
            Op::Conv2d(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Lrn { .. }
            | Op::BatchNorm { .. }
            | Op::Dense
            | Op::MatMul
            | Op::Embed
            | Op::Concat {
                in_place: false, ..
            }
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
            | Op::Group(_)
            | Op::Relayout { .. } => 1,
        })
        .sum()
}
