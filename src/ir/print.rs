//! The text dump of the IR (`netc compile --emit ir`), with stable names: values are
//! numbered `%0, %1, …` in topological order (continuing into loop bodies, printed where
//! the loop is), a node with several outputs is `%k:n` and its outputs `%k#i`, and
//! parameters are `@their/hierarchical/name`. Each line ends with the layer name and the
//! source position it came from.
//!
//! ```text
//! %1 = conv2d %0, @c1/weight, @c1/bias {kernel=[5,5], stride=[1,1], pad=[0,0,0,0]} : f32[N,6,28,28]  // c1 @ nets/lenet5.net:9:16
//! ```

use super::graph::{Graph, NodeId, Region, ValueRef};
use super::op::Op;
use crate::diagnostics::{SourceMap, Span};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Dumps `g`. With `sources`, each line names the file, line and column of its node.
pub fn graph(g: &Graph, sources: Option<&SourceMap>) -> String {
    let mut p = Printer {
        g,
        sources,
        next: 0,
        out: String::new(),
    };
    let inputs: Vec<String> = g
        .body
        .inputs
        .iter()
        .map(|id| {
            let n = g.body.node(*id);
            let ty = n
                .outputs
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("{}: {ty}", n.name)
        })
        .collect();
    let outputs: Vec<&str> = g.body.outputs.iter().map(|o| o.name.as_str()).collect();
    let _ = writeln!(
        p.out,
        "net {}({}) -> ({})",
        g.name,
        inputs.join(", "),
        outputs.join(", ")
    );
    for param in &g.params {
        let _ = writeln!(
            p.out,
            "param @{} : {} {}{}",
            param.name,
            param.ty,
            param.kind.as_str(),
            p.location(param.span, None)
        );
    }
    p.out.push('\n');
    p.region(&g.body, 0);
    p.out
}

struct Printer<'a> {
    g: &'a Graph,
    sources: Option<&'a SourceMap>,
    next: usize,
    out: String,
}

impl Printer<'_> {
    fn location(&self, span: Span, name: Option<&str>) -> String {
        let at = self.sources.map(|s| {
            let f = s.get(span.file);
            let lc = f.line_col(span.start as usize);
            format!("{}:{}:{}", f.name, lc.line, lc.column)
        });
        match (name.filter(|n| !n.is_empty()), at) {
            (Some(n), Some(at)) => format!("  // {n} @ {at}"),
            (Some(n), None) => format!("  // {n}"),
            (None, Some(at)) => format!("  // {at}"),
            (None, None) => String::new(),
        }
    }

    fn region(&mut self, r: &Region, indent: usize) {
        let pad = "  ".repeat(indent);
        let mut names: BTreeMap<NodeId, usize> = BTreeMap::new();
        for id in r.topo_order() {
            let node = r.node(id);
            if matches!(node.op, Op::Param(_)) {
                continue;
            }
            let k = self.next;
            self.next += 1;
            names.insert(id, k);
            let lhs = if node.outputs.len() == 1 {
                format!("%{k}")
            } else {
                format!("%{k}:{}", node.outputs.len())
            };
            let args: Vec<String> = r
                .inputs_of(id)
                .iter()
                .map(|v| self.value(r, &names, *v))
                .collect();
            let attrs = node.op.attributes();
            let mut line = format!("{pad}{lhs} = {}", node.op.name());
            if !args.is_empty() {
                let _ = write!(line, " {}", args.join(", "));
            }
            if !attrs.is_empty() {
                let _ = write!(line, " {{{attrs}}}");
            }
            let tys: Vec<String> = node.outputs.iter().map(ToString::to_string).collect();
            let _ = write!(
                line,
                " : {}{}",
                tys.join(", "),
                self.location(node.span, Some(&node.name))
            );
            self.out.push_str(&line);
            self.out.push('\n');
            let body = match &node.op {
                Op::Loop(l) => Some(&l.body),
                Op::Group(g) => Some(&g.body),
                _ => None,
            };
            if let Some(body) = body {
                let _ = writeln!(self.out, "{pad}{{");
                self.region(body, indent + 1);
                let _ = writeln!(self.out, "{pad}}}");
            }
        }
        let rets: Vec<String> = r
            .outputs
            .iter()
            .map(|o| format!("{}={}", o.name, self.value(r, &names, o.value)))
            .collect();
        let _ = writeln!(self.out, "{pad}return {}", rets.join(", "));
    }

    fn value(&self, r: &Region, names: &BTreeMap<NodeId, usize>, v: ValueRef) -> String {
        let node = r.node(v.node);
        if let Op::Param(pid) = node.op {
            return format!("@{}", self.g.param(pid).name);
        }
        match names.get(&v.node) {
            Some(k) if node.outputs.len() == 1 => format!("%{k}"),
            Some(k) => format!("%{k}#{}", v.port),
            None => format!("%?{}", v.node.index()),
        }
    }
}
