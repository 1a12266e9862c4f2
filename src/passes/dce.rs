//! `dce`: dead-code elimination. Removes every node none of whose values reaches an
//! output of its region (directly or through other nodes), except the region's `Input`
//! nodes, which define its signature.
//!
//! Safe because IR ops have no side effects: a value no output depends on cannot change
//! any output. Nodes are removed readers first (reverse topological order), so stopping
//! after any number of rewrites leaves a valid graph. Rule: `dce/remove`, one per node.
//! Loop bodies are cleaned too (their outputs are the step's results, always kept); a
//! loop none of whose outputs is read is removed as a whole.

use super::pipeline::{for_each_region, Pass, RewriteLog};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, NodeId, Region};
use std::collections::BTreeSet;

/// The pass.
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn doc(&self) -> &'static str {
        "removes nodes whose values reach no output"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        for_each_region(&mut graph.body, &mut |r| dce_in(r, log));
        Ok(())
    }
}

/// The nodes of `r` some output depends on, plus its inputs.
pub fn live_nodes(r: &Region) -> BTreeSet<NodeId> {
    let mut live: BTreeSet<NodeId> = r.inputs.iter().copied().collect();
    let mut stack: Vec<NodeId> = r.outputs.iter().map(|o| o.value.node).collect();
    while let Some(id) = stack.pop() {
        if live.insert(id) {
            stack.extend(r.inputs_of(id).iter().map(|v| v.node));
        }
    }
    live
}

fn dce_in(r: &mut Region, log: &mut RewriteLog) {
    let live = live_nodes(r);
    let mut order = r.topo_order();
    order.reverse();
    for id in order {
        if live.contains(&id) {
            continue;
        }
        if !log.rewrite("dce", "remove") {
            return;
        }
        r.remove(id);
    }
}
