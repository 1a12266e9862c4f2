//! `concat_in_place`: concat elimination. A `concat` whose inputs can all be computed
//! straight into their slices of its output is marked `in_place`: its producers write
//! their results there, and the concat copies nothing (rule `concat_in_place/alias`).
//! The memory plan ([`super::plan_memory`]) then places each input as a view of the
//! concat's buffer, so an inception module's branches fill one buffer.
//!
//! **When.** Every input must be
//! - computed by a node of the region that writes a fresh buffer: not a region input, a
//!   parameter or a constant, and not a view of another value (`flatten`, `reshape`,
//!   `slice`, `dropout`), whose storage is its source's;
//! - read by the concat once, and by no other in-place concat (a value has one place);
//! - not a region output (outputs own their buffers).
//!
//! **Why it is safe.** The value of each input is unchanged, only its address differs;
//! the other readers of an input read it from the slice, which lives as long as the
//! concat's buffer, and that buffer lives from its first input's definition to the last
//! reader of the concat or any input. Concats of concats nest: the inner one is itself
//! placed in its slice of the outer one.

use super::pipeline::{for_each_step_region, Pass, RewriteLog};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, Region, ValueRef};
use crate::ir::op::Op;
use std::collections::BTreeSet;

/// The pass.
pub struct ConcatInPlace;

impl Pass for ConcatInPlace {
    fn name(&self) -> &'static str {
        "concat_in_place"
    }

    fn doc(&self) -> &'static str {
        "makes concat inputs write straight into their slices of the output"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        for_each_step_region(&mut graph.body, &mut |r| in_place_region(r, log));
        Ok(())
    }
}

fn in_place_region(r: &mut Region, log: &mut RewriteLog) {
    // Values already placed in some concat's slice.
    let mut placed: BTreeSet<ValueRef> = BTreeSet::new();
    for id in r.topo_order() {
        if matches!(r.node(id).op, Op::Concat { in_place: true, .. }) {
            placed.extend(r.inputs_of(id));
        }
    }
    for id in r.topo_order() {
        if !matches!(
            r.node(id).op,
            Op::Concat {
                in_place: false,
                ..
            }
        ) {
            continue;
        }
        let inputs = r.inputs_of(id);
        let distinct: BTreeSet<ValueRef> = inputs.iter().copied().collect();
        let ok = distinct.len() == inputs.len()
            && inputs
                .iter()
                .all(|v| !placed.contains(v) && writes_fresh(&r.node(v.node).op))
            && !inputs
                .iter()
                .any(|v| r.outputs.iter().any(|o| o.value == *v));
        if !ok || !log.rewrite("concat_in_place", "alias") {
            continue;
        }
        if let Op::Concat { in_place, .. } = &mut r.node_mut(id).op {
            *in_place = true;
        }
        placed.extend(inputs);
    }
}

/// Whether an op's results are new buffers it can write anywhere (so also into a slice).
fn writes_fresh(op: &Op) -> bool {
    match op {
        Op::Input { .. }
        | Op::Param(_)
        | Op::Fill { .. }
        | Op::Flatten
        | Op::FlattenChannelsLast
        | Op::Reshape { .. }
        | Op::Slice { .. }
        | Op::Dropout { .. } => false,
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
        | Op::Concat { .. }
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
