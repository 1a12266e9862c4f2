//! `cse`: common-subexpression elimination. Two nodes with the same op, the same
//! attributes and the same inputs (the same values in the same order) compute the same
//! values; the later one (in topological order) is removed and its readers read the
//! earlier one's outputs.
//!
//! Safe because such ops are pure functions of their inputs and attributes. Never merged:
//! `Input` nodes (distinct inputs of the signature), `Param` nodes (already one per
//! parameter per region, a verifier invariant) and `dropout` (random at training time;
//! treated as having a side effect). Merging keeps types: equal ops on equal inputs have
//! equal output types. Rule: `cse/merge`, one per removed node. Loop bodies are handled
//! too, innermost first.

use super::pipeline::{for_each_region, Pass, RewriteLog};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, NodeId, Region, ValueRef};
use crate::ir::op::Op;
use std::collections::BTreeMap;

/// The pass.
pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn doc(&self) -> &'static str {
        "merges nodes with the same op, attributes and inputs"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        for_each_region(&mut graph.body, &mut |r| cse_in(r, log));
        Ok(())
    }
}

/// Whether nodes with `op` may be merged with an identical one.
fn mergeable(op: &Op) -> bool {
    match op {
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

fn cse_in(r: &mut Region, log: &mut RewriteLog) {
    // The key is the op with its attributes (its `Debug` form: exact, including a loop's
    // body) and the input values. Inputs are looked up after earlier merges, so chains of
    // duplicates collapse in one sweep.
    let mut seen: BTreeMap<(String, Vec<ValueRef>), NodeId> = BTreeMap::new();
    for id in r.topo_order() {
        let node = r.node(id);
        if !mergeable(&node.op) {
            continue;
        }
        let key = (format!("{:?}", node.op), r.inputs_of(id));
        let Some(&first) = seen.get(&key) else {
            seen.insert(key, id);
            continue;
        };
        if r.node(first).outputs != node.outputs {
            continue;
        }
        if !log.rewrite("cse", "merge") {
            return;
        }
        for port in 0..node.outputs.len() {
            let port = u32::try_from(port).expect("fewer than 2^32 outputs");
            r.replace_uses(ValueRef { node: id, port }, ValueRef { node: first, port });
        }
        r.remove(id);
    }
}
