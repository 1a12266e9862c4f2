//! Graphviz output (`netc compile --emit dot`): one box per node of the top-level region
//! (parameters and constants left out), edges labelled with the shape of the value they
//! carry, and every block call drawn as a cluster (`subgraph cluster_…`), nested as the
//! calls are. A recurrence is one box; its step is not drawn.

use super::graph::{Graph, NodeId, ScopeId, ScopeKind};
use super::op::Op;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The DOT text of `g`.
pub fn graph(g: &Graph) -> String {
    let r = &g.body;
    let order = r.topo_order();
    let mut number: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut shown = Vec::new();
    for id in &order {
        if matches!(r.node(*id).op, Op::Param(_) | Op::Fill { .. }) {
            continue;
        }
        number.insert(*id, number.len());
        shown.push(*id);
    }
    // Nodes grouped by their innermost block scope; clusters nested by the scope tree.
    let mut members: BTreeMap<Option<ScopeId>, Vec<NodeId>> = BTreeMap::new();
    let mut children: BTreeMap<Option<ScopeId>, Vec<ScopeId>> = BTreeMap::new();
    for id in &shown {
        let block = enclosing_block(g, Some(r.node(*id).scope));
        members.entry(block).or_default().push(*id);
        let mut cur = block;
        while let Some(s) = cur {
            let parent = enclosing_block(g, g.scope(s).parent);
            let list = children.entry(parent).or_default();
            if list.contains(&s) {
                break;
            }
            list.push(s);
            cur = parent;
        }
    }
    for list in children.values_mut() {
        list.sort();
    }
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&g.name));
    out.push_str("  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    let mut e = Emitter {
        g,
        number: &number,
        members: &members,
        children: &children,
        out,
    };
    e.cluster(None, 1);
    for id in &shown {
        for v in r.inputs_of(*id) {
            if let (Some(a), Some(b)) = (number.get(&v.node), number.get(id)) {
                let _ = writeln!(
                    e.out,
                    "  n{a} -> n{b} [label={}];",
                    quote(&r.ty(v).shape.to_string())
                );
            }
        }
    }
    e.out.push_str("}\n");
    e.out
}

struct Emitter<'a> {
    g: &'a Graph,
    number: &'a BTreeMap<NodeId, usize>,
    members: &'a BTreeMap<Option<ScopeId>, Vec<NodeId>>,
    children: &'a BTreeMap<Option<ScopeId>, Vec<ScopeId>>,
    out: String,
}

impl Emitter<'_> {
    fn cluster(&mut self, scope: Option<ScopeId>, depth: usize) {
        let pad = "  ".repeat(depth);
        let prefix = scope
            .map(|s| self.g.scope(s).name.clone())
            .unwrap_or_default();
        for id in self.members.get(&scope).cloned().unwrap_or_default() {
            let node = self.g.body.node(id);
            let local = node
                .name
                .strip_prefix(&prefix)
                .map(|s| s.trim_start_matches('/'))
                .filter(|s| !s.is_empty())
                .unwrap_or(&node.name);
            let what = if let Op::Conv2d(c) = &node.op {
                format!("conv2d {}x{}/{}", c.kernel[0], c.kernel[1], c.stride[0])
            } else if let Op::MaxPool2d(p) | Op::AvgPool2d(p) = &node.op {
                format!(
                    "{} {}x{}/{}",
                    node.op.name(),
                    p.window[0],
                    p.window[1],
                    p.stride[0]
                )
            } else if let Op::Loop(l) = &node.op {
                format!("{} over {} steps", l.kind.layer_name(), l.steps)
            } else if let Op::Group(g) = &node.op {
                // The fused ops in order: `conv2d+batchnorm+add+relu`.
                let ops: Vec<&str> = g
                    .body
                    .topo_order()
                    .into_iter()
                    .map(|n| &g.body.node(n).op)
                    .filter(|op| !matches!(op, Op::Input { .. } | Op::Param(_) | Op::Fill { .. }))
                    .map(Op::name)
                    .collect();
                ops.join("+")
            } else {
                node.op.name().to_string()
            };
            let n = self.number.get(&id).copied().unwrap_or(0);
            let _ = writeln!(
                self.out,
                "{pad}n{n} [label={}];",
                quote(&format!("{local}\n{what}"))
            );
        }
        for s in self.children.get(&scope).cloned().unwrap_or_default() {
            let sc = self.g.scope(s);
            let local = sc
                .name
                .strip_prefix(&prefix)
                .map(|x| x.trim_start_matches('/'))
                .unwrap_or(&sc.name);
            let title = match &sc.callee {
                Some(c) if c != local => format!("{local}: {c}"),
                _ => local.to_string(),
            };
            let _ = writeln!(self.out, "{pad}subgraph cluster_{} {{", s.0);
            let _ = writeln!(self.out, "{pad}  label={};", quote(&title));
            self.cluster(Some(s), depth + 1);
            let _ = writeln!(self.out, "{pad}}}");
        }
    }
}

/// The innermost block scope at or above `scope`.
fn enclosing_block(g: &Graph, mut scope: Option<ScopeId>) -> Option<ScopeId> {
    while let Some(s) = scope {
        let sc = g.scope(s);
        if sc.kind == ScopeKind::Block {
            return Some(s);
        }
        scope = sc.parent;
    }
    None
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
