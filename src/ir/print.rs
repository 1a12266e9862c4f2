//! The text dump of the IR (`netc compile --emit ir`), with stable names: values are
//! numbered `%0, %1, …` in topological order (continuing into loop bodies, printed where
//! the loop is), a node with several outputs is `%k:n` and its outputs `%k#i`, and
//! parameters are `@their/hierarchical/name`. Each line ends with the layer name and the
//! source position it came from. A value computed into its slice of an in-place concat
//! says so after its type: `into inception3a/concat[axis=1, 64..192]`; a value stored
//! channels-last has `nhwc` after its type.
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
        let slices = concat_slices(r);
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
            let tys: Vec<String> = node
                .outputs
                .iter()
                .enumerate()
                .map(|(port, t)| {
                    let v = ValueRef {
                        node: id,
                        port: u32::try_from(port).unwrap_or(u32::MAX),
                    };
                    match r.layouts.get(&v) {
                        Some(l) => format!("{t} {}", l.as_str()),
                        None => t.to_string(),
                    }
                })
                .collect();
            let _ = write!(line, " : {}", tys.join(", "));
            for port in 0..node.outputs.len() {
                let v = ValueRef {
                    node: id,
                    port: u32::try_from(port).unwrap_or(u32::MAX),
                };
                if let Some((concat, axis, a, b)) = slices.get(&v) {
                    let which = if node.outputs.len() == 1 {
                        String::new()
                    } else {
                        format!(" #{port}")
                    };
                    let _ = write!(
                        line,
                        "{which} into {}[axis={axis}, {a}..{b}]",
                        r.node(*concat).name
                    );
                }
            }
            line.push_str(&self.location(node.span, Some(&node.name)));
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

/// The values of `r` that are computed into a slice of an in-place concat: the concat,
/// its axis, and the slice's range on it (when the sizes are known).
fn concat_slices(r: &Region) -> BTreeMap<ValueRef, (NodeId, usize, String, String)> {
    let mut out = BTreeMap::new();
    for id in r.node_ids() {
        let Op::Concat {
            axis,
            in_place: true,
        } = r.node(id).op
        else {
            continue;
        };
        let mut start = Some(super::shape::Poly::zero());
        for v in r.inputs_of(id) {
            let len = r.ty(v).shape.dims().get(axis).and_then(|d| d.to_poly());
            let end = match (&start, &len) {
                (Some(s), Some(l)) => s.checked_add(l),
                _ => None,
            };
            let show = |p: &Option<super::shape::Poly>| {
                p.as_ref()
                    .and_then(|p| super::shape::Dim::from_poly(p.clone()))
                    .map_or_else(|| "?".to_string(), |d| d.to_string())
            };
            out.insert(v, (id, axis, show(&start), show(&end)));
            start = end;
        }
    }
    out
}
