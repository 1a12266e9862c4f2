//! What the compiler knows about each layer — output shape, parameter count, MACs — for
//! hover and inlay hints, and the shape diagnostics that come with it.
//!
//! This is the one place where the server meets shape inference. Everything else (hover,
//! inlay hints, diagnostics publishing) reads [`Facts`] and does not care how they were found.
//! [`compute`] compiles each net of the document with [`crate::passes::compile`] once the
//! program has passed the checks, and turns each row of the layer table into a
//! [`LayerFact`] placed at the span of the IR node the row describes.

use crate::diagnostics::{Diagnostics, FileId, Span};
use crate::passes::{self, CompileOptions};
use crate::syntax::ast::Item;
use crate::syntax::loader::Program;
use std::collections::BTreeMap;

/// One layer of the compiled network, as hover and inlay hints show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFact {
    /// The source of the layer (a call, a bare layer name, a branch keyword).
    pub span: Span,
    /// Its hierarchical name, such as `inception3a/b2/conv`.
    pub name: String,
    /// The op it lowered to.
    pub op: String,
    /// Its output shape as netc prints it, such as `f32[N, 64, 56, 56]`.
    pub output_shape: String,
    /// Trainable and fixed parameters.
    pub params: u64,
    /// Multiply-accumulates per example, as the layer table prints them (symbolic in `T`
    /// for recurrences over a sequence of unknown length).
    pub macs: String,
}

/// Every layer fact of one analysis, sorted by span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    layers: Vec<LayerFact>,
}

impl Facts {
    /// Facts from rows in any order.
    pub fn new(mut layers: Vec<LayerFact>) -> Facts {
        layers.sort_by_key(|l| (l.span.file, l.span.start, l.span.end));
        Facts { layers }
    }

    /// Whether nothing is known (no shape inference, or it failed).
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The facts of layers written in `file`, in source order.
    pub fn in_file(&self, file: FileId) -> impl Iterator<Item = &LayerFact> {
        self.layers.iter().filter(move |l| l.span.file == file)
    }

    /// The facts of the layers written exactly at `span` (several when a block is instantiated
    /// more than once).
    pub fn at(&self, span: Span) -> Vec<&LayerFact> {
        self.layers.iter().filter(|l| l.span == span).collect()
    }

    /// The facts of the last layer inside `span`: the one whose output is the value of the
    /// expression written there (a chain's result is its last step's output).
    pub fn result_of(&self, span: Span) -> Vec<&LayerFact> {
        let inside = self.layers.iter().filter(|l| {
            l.span.file == span.file && l.span.start >= span.start && l.span.end <= span.end
        });
        let Some(last) = inside.max_by_key(|l| (l.span.end, l.span.start)) else {
            return Vec::new();
        };
        self.at(last.span)
    }
}

/// Runs shape inference on every net of the root file of `program` when it has passed the
/// checks (`checked` holds the diagnostics found so far), returning the layer facts and the
/// shape diagnostics. A layer's fact takes its span from the IR node of the same name.
pub fn compute(program: &Program, checked: &Diagnostics) -> (Facts, Diagnostics) {
    let mut layers = Vec::new();
    let mut diags = Diagnostics::new();
    let Some(module) = program.root_module().filter(|_| !checked.has_errors()) else {
        return (Facts::default(), diags);
    };
    let nets: Vec<&str> = module
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Net(n) => Some(n.name.name.as_str()),
            _ => None,
        })
        .collect();
    // The nets compile independently: spread them over the cores.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = nets.len().div_ceil(threads.max(1)).max(1);
    let results: Vec<(Vec<LayerFact>, Diagnostics)> = std::thread::scope(|s| {
        let handles: Vec<_> = nets
            .chunks(chunk)
            .map(|names| {
                s.spawn(move || {
                    names
                        .iter()
                        .map(|n| net_facts(program, n))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    for (l, d) in results {
        layers.extend(l);
        diags.extend(d);
    }
    (Facts::new(layers), diags)
}

/// The facts, or the shape diagnostics, of the net called `name`.
fn net_facts(program: &Program, name: &str) -> (Vec<LayerFact>, Diagnostics) {
    let opts = CompileOptions {
        net: Some(name.to_string()),
        ..Default::default()
    };
    let c = match passes::compile(program, &opts) {
        Ok(c) => c,
        Err(d) => return (Vec::new(), d),
    };
    let body = &c.graph.body;
    let spans: BTreeMap<&str, Span> = body
        .topo_order()
        .into_iter()
        .map(|id| {
            let n = body.node(id);
            (n.name.as_str(), n.span)
        })
        .collect();
    let facts = c
        .report
        .rows
        .iter()
        .filter_map(|row| {
            Some(LayerFact {
                span: *spans.get(row.name.as_str())?,
                name: row.name.clone(),
                op: row.op.clone(),
                output_shape: row.output.to_string(),
                params: row.params,
                macs: row.macs.to_string(),
            })
        })
        .collect();
    (facts, Diagnostics::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(start: usize, end: usize, shape: &str) -> LayerFact {
        LayerFact {
            span: Span::new(FileId(0), start, end),
            name: format!("l{start}"),
            op: "conv2d".into(),
            output_shape: shape.into(),
            params: 1,
            macs: "2".into(),
        }
    }

    #[test]
    fn result_of_a_span_is_its_last_layer() {
        let facts = Facts::new(vec![
            fact(20, 30, "b"),
            fact(5, 15, "a"),
            fact(20, 30, "b2"),
        ]);
        let r = facts.result_of(Span::new(FileId(0), 0, 40));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].output_shape, "b");
        assert_eq!(facts.at(Span::new(FileId(0), 5, 15))[0].output_shape, "a");
        assert!(facts.result_of(Span::new(FileId(1), 0, 40)).is_empty());
        assert_eq!(facts.in_file(FileId(0)).count(), 3);
    }
}
