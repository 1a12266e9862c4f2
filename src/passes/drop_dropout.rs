//! `drop_dropout`: removes every `dropout` node, making its readers read its input.
//!
//! Safe because netc compiles nets for inference, where dropout is the identity (the
//! reference interpreter computes it as a copy of its input): the value each reader sees
//! is unchanged. Rule: `drop_dropout/remove`, one per node. Loop bodies are rewritten too.

use super::pipeline::{for_each_region, Pass, RewriteLog};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, Region};
use crate::ir::op::Op;

/// The pass.
pub struct DropDropout;

impl Pass for DropDropout {
    fn name(&self) -> &'static str {
        "drop_dropout"
    }

    fn doc(&self) -> &'static str {
        "removes dropout, the identity at inference"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        for_each_region(&mut graph.body, &mut |r| drop_in(r, log));
        Ok(())
    }
}

fn drop_in(r: &mut Region, log: &mut RewriteLog) {
    for id in r.topo_order() {
        if !matches!(r.node(id).op, Op::Dropout { .. }) {
            continue;
        }
        let Some(&input) = r.inputs_of(id).first() else {
            continue;
        };
        if !log.rewrite("drop_dropout", "remove") {
            return;
        }
        r.replace_uses(Region::value(id), input);
        r.remove(id);
    }
}
