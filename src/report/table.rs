//! The layer table of `netc compile`: one row per layer of the net's top-level region
//! (its inputs, every layer applied, each recurrence as one row), with output shape,
//! output elements, parameters and multiply-adds per example, then the totals.
//!
//! Counting conventions (`docs/counting.md`): parameters are the elements of trainable and
//! fixed parameters, each counted once however often it is used; buffers (batch norm's
//! running statistics) are listed apart and not counted. MACs are the multiply-adds of
//! convolutions, dense layers, matrix products and recurrent steps (times the number of
//! steps). Activation elements count the input once and every conv, pool, dense, concat,
//! embedding, matrix product and recurrence output once (the lecture's VGG table); ops
//! that can run in place (activations, batch norm, LRN, dropout, elementwise arithmetic)
//! and reshapes are not counted again. Everything is per example: the batch axis (axis 0)
//! is left out. A count that depends on a symbolic size (`T`) is a polynomial, printed
//! `394240*T`; JSON gives such counts as strings and the others as numbers.

use crate::ir::graph::{Graph, NodeId, ParamId, ParamKind, Region};
use crate::ir::op::{Emit, Op};
use crate::ir::shape::{Dim, Poly, TensorType};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The layer's hierarchical name.
    pub name: String,
    /// The layer (`conv`, `maxpool`, `lstm`, `input`, …).
    pub op: String,
    /// The type of its output (a recurrence's emitted sequence, or its first state).
    pub output: TensorType,
    /// Elements of one example of that output.
    pub output_elements: Poly,
    /// Parameters it reads (trainable and fixed; buffers excluded).
    pub params: u64,
    /// Multiply-adds per example.
    pub macs: Poly,
}

/// The totals of the table, per example.
#[derive(Clone, Debug, PartialEq)]
pub struct Totals {
    /// Trainable plus fixed parameters.
    pub params: u64,
    /// Trainable parameters.
    pub trainable_params: u64,
    /// Fixed (constant-kernel) parameters.
    pub fixed_params: u64,
    /// Buffer elements (not parameters).
    pub buffers: u64,
    /// Multiply-adds.
    pub macs: Poly,
    /// Activation elements.
    pub activation_elements: Poly,
    /// Activation bytes (each element at its type's size: 4 for f32).
    pub activation_bytes: Poly,
    /// The activation arena's figures after the passes, when planned
    /// ([`crate::passes::compile_with`]) and every size is known.
    pub memory: Option<Memory>,
    /// The kernels the IR launches ([`crate::passes::fuse::kernels`]): of the lowered net
    /// from [`crate::passes::compile`], of the optimised one from
    /// [`crate::passes::compile_with`].
    pub kernels: usize,
}

/// Activation memory at one batch size, in bytes, weights excluded (see
/// [`crate::passes::plan_memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// The batch size.
    pub batch: u64,
    /// The planned arena's size.
    pub planned_peak_bytes: u64,
    /// Every activation value in its own buffer.
    pub unplanned_bytes: u64,
    /// The largest total size of values live at once.
    pub lower_bound_bytes: u64,
}

/// A net's layer table.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The net's name.
    pub net: String,
    /// Its doc comment.
    pub doc: Option<String>,
    /// The rows, in topological order.
    pub rows: Vec<Row>,
    /// The totals.
    pub totals: Totals,
}

/// A count overflowed 64 bits while building the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// Builds the table of `g`.
pub fn build(g: &Graph) -> Result<Report, Overflow> {
    let r = &g.body;
    let mut rows = Vec::new();
    let mut macs = Poly::zero();
    let mut act = Poly::zero();
    let mut act_bytes = Poly::zero();
    for id in r.topo_order() {
        let node = r.node(id);
        if matches!(node.op, Op::Param(_) | Op::Fill { .. }) {
            continue;
        }
        let m = r.node_macs(id).ok_or(Overflow)?;
        macs = macs.checked_add(&m).ok_or(Overflow)?;
        if node.op.counts_as_activation() {
            for ty in counted_outputs(&node.op, &node.outputs) {
                act = act
                    .checked_add(&ty.shape.elements_per_example().ok_or(Overflow)?)
                    .ok_or(Overflow)?;
                act_bytes = act_bytes
                    .checked_add(&ty.bytes_per_example().ok_or(Overflow)?)
                    .ok_or(Overflow)?;
            }
        }
        let output = main_output(&node.op, &node.outputs)
            .cloned()
            .unwrap_or_else(|| TensorType::new(crate::ir::shape::DType::F32, Vec::new()));
        let mut used = BTreeSet::new();
        params_read(r, id, &mut used);
        let mut params: u64 = 0;
        for p in used {
            if g.param(p).kind != ParamKind::Buffer {
                params = params
                    .checked_add(g.param_elements(p).ok_or(Overflow)?)
                    .ok_or(Overflow)?;
            }
        }
        rows.push(Row {
            name: node.name.clone(),
            op: node.op.layer_name().to_string(),
            output_elements: output.shape.elements_per_example().ok_or(Overflow)?,
            output,
            params,
            macs: m,
        });
    }
    let mut totals = Totals {
        params: 0,
        trainable_params: 0,
        fixed_params: 0,
        buffers: 0,
        macs,
        activation_elements: act,
        activation_bytes: act_bytes,
        memory: None,
        kernels: crate::passes::fuse::kernels(&g.body),
    };
    for i in 0..g.params.len() {
        let id = ParamId(u32::try_from(i).map_err(|_| Overflow)?);
        let n = g.param_elements(id).ok_or(Overflow)?;
        let slot = match g.param(id).kind {
            ParamKind::Trainable => &mut totals.trainable_params,
            ParamKind::Fixed => &mut totals.fixed_params,
            ParamKind::Buffer => &mut totals.buffers,
            // Computed from the others: not a parameter of its own.
            ParamKind::Derived => continue,
        };
        *slot = slot.checked_add(n).ok_or(Overflow)?;
    }
    totals.params = totals
        .trainable_params
        .checked_add(totals.fixed_params)
        .ok_or(Overflow)?;
    Ok(Report {
        net: g.name.clone(),
        doc: g.doc.clone(),
        rows,
        totals,
    })
}

/// The output a row shows: a recurrence's emitted value (or first state), else output 0.
fn main_output<'a>(op: &Op, outputs: &'a [TensorType]) -> Option<&'a TensorType> {
    match op {
        Op::Loop(l) if l.emit != Emit::State => outputs.last(),
        _ => outputs.first(),
    }
}

/// The outputs that count as activations: a recurrence's emitted value, or its final
/// states when it emits only those; every output otherwise.
fn counted_outputs<'a>(op: &Op, outputs: &'a [TensorType]) -> &'a [TensorType] {
    match op {
        Op::Loop(l) if l.emit != Emit::State => &outputs[outputs.len().saturating_sub(1)..],
        _ => outputs,
    }
}

/// The parameters node `id` reads: its `Param` inputs, and for a loop every parameter its
/// body reads.
fn params_read(r: &Region, id: NodeId, out: &mut BTreeSet<ParamId>) {
    for v in r.inputs_of(id) {
        if let Op::Param(p) = r.node(v.node).op {
            out.insert(p);
        }
    }
    if let Op::Loop(l) = &r.node(id).op {
        for n in l.body.node_ids() {
            if let Op::Param(p) = l.body.node(n).op {
                out.insert(p);
            }
        }
    }
}

/// `1,234,567`.
pub fn thousands(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count for the text table: `1,234`, `394,240*T`, or `-` for zero.
fn count(p: &Poly) -> String {
    match p.as_const() {
        Some(0) => "-".into(),
        Some(c) if c > 0 => thousands(c.unsigned_abs()),
        _ => {
            // Insert separators into every number of the polynomial's text.
            let s = p.to_string();
            let mut out = String::new();
            let mut digits = String::new();
            let flush = |digits: &mut String, out: &mut String| {
                if !digits.is_empty() {
                    out.push_str(
                        &digits
                            .parse::<u64>()
                            .map(thousands)
                            .unwrap_or_else(|_| digits.clone()),
                    );
                    digits.clear();
                }
            };
            for c in s.chars() {
                if c.is_ascii_digit() {
                    digits.push(c);
                } else {
                    flush(&mut digits, &mut out);
                    out.push(c);
                }
            }
            flush(&mut digits, &mut out);
            out
        }
    }
}

fn shape_text(t: &TensorType) -> String {
    let dims: Vec<String> = t.shape.dims().iter().map(ToString::to_string).collect();
    let prefix = if t.dtype == crate::ir::shape::DType::F32 {
        ""
    } else {
        t.dtype.as_str()
    };
    format!("{prefix}[{}]", dims.join(", "))
}

/// The table as text: the net's doc comment, the rows, the totals.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    if let Some(doc) = &r.doc {
        for line in doc.lines() {
            let _ = writeln!(out, "{}", line.strip_prefix(' ').unwrap_or(line));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "net {}\n", r.net);
    let header = [
        "name",
        "op",
        "output shape",
        "output elements",
        "params",
        "MACs",
    ];
    let cells: Vec<[String; 6]> = r
        .rows
        .iter()
        .map(|row| {
            [
                row.name.clone(),
                row.op.clone(),
                shape_text(&row.output),
                count(&row.output_elements),
                if row.params == 0 {
                    "-".into()
                } else {
                    thousands(row.params)
                },
                count(&row.macs),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |cols: [&str; 6]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(width).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            if i < 3 {
                s.push_str(c);
                if i < 5 {
                    s.push_str(&" ".repeat(pad + 2));
                }
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
                if i < 5 {
                    s.push_str("  ");
                }
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header));
    for c in &cells {
        let _ = writeln!(out, "{}", line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]]));
    }
    let t = &r.totals;
    let rule: usize = width.iter().sum::<usize>() + 10;
    let _ = writeln!(out, "{}", "-".repeat(rule));
    let _ = writeln!(
        out,
        "params        {}  (trainable {}, fixed {})",
        thousands(t.params),
        thousands(t.trainable_params),
        thousands(t.fixed_params)
    );
    if t.buffers > 0 {
        let _ = writeln!(
            out,
            "buffers       {}  (batch norm running statistics, not counted as params)",
            thousands(t.buffers)
        );
    }
    let zero = |p: &Poly| {
        if p.is_zero() {
            "0".to_string()
        } else {
            count(p)
        }
    };
    let _ = writeln!(out, "MACs          {}  per example", zero(&t.macs));
    let _ = writeln!(
        out,
        "activations   {} elements, {} bytes per example",
        zero(&t.activation_elements),
        zero(&t.activation_bytes)
    );
    let _ = writeln!(
        out,
        "kernels       {}  (a fused group is one; a loop counts its step's once)",
        t.kernels
    );
    if let Some(m) = &t.memory {
        let _ = writeln!(
            out,
            "memory        {} bytes planned peak, {} unplanned, {} lower bound  (batch {}, weights excluded)",
            thousands(m.planned_peak_bytes),
            thousands(m.unplanned_bytes),
            thousands(m.lower_bound_bytes),
            m.batch
        );
    }
    out
}

/// A count as JSON: a number when known, else its polynomial as a string.
fn json_count(p: &Poly) -> serde_json::Value {
    match p.as_const() {
        Some(c) => serde_json::Value::from(c),
        None => serde_json::Value::from(p.to_string()),
    }
}

#[derive(Serialize)]
struct JsonReport {
    net: String,
    layers: Vec<JsonLayer>,
    totals: JsonTotals,
}

#[derive(Serialize)]
struct JsonLayer {
    name: String,
    op: String,
    output_shape: Vec<serde_json::Value>,
    output_elements: serde_json::Value,
    params: u64,
    macs: serde_json::Value,
}

#[derive(Serialize)]
struct JsonTotals {
    params: u64,
    trainable_params: u64,
    macs: serde_json::Value,
    activation_elements: serde_json::Value,
    activation_bytes: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_batch: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_peak_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unplanned_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lower_bound_bytes: Option<u64>,
    kernels: usize,
}

/// The table as JSON: `{"net", "layers": [{"name", "op", "output_shape",
/// "output_elements", "params", "macs"}, …], "totals": {"params", "trainable_params",
/// "macs", "activation_elements", "activation_bytes"}}`, plus, when memory was planned,
/// "memory_batch", "planned_peak_bytes", "unplanned_bytes" and "lower_bound_bytes", and
/// always "kernels";
/// symbolic dimensions and counts are strings.
pub fn json(r: &Report) -> serde_json::Value {
    serde_json::to_value(json_report(r)).unwrap_or(serde_json::Value::Null)
}

/// [`json`] as one line of text, keys in the order above.
pub fn json_string(r: &Report) -> String {
    serde_json::to_string(&json_report(r)).unwrap_or_default()
}

fn json_report(r: &Report) -> JsonReport {
    JsonReport {
        net: r.net.clone(),
        layers: r
            .rows
            .iter()
            .map(|row| JsonLayer {
                name: row.name.clone(),
                op: row.op.clone(),
                output_shape: row
                    .output
                    .shape
                    .dims()
                    .iter()
                    .map(|d| match d {
                        Dim::Known(k) => serde_json::Value::from(*k),
                        Dim::Sym(p) => serde_json::Value::from(p.to_string()),
                    })
                    .collect(),
                output_elements: json_count(&row.output_elements),
                params: row.params,
                macs: json_count(&row.macs),
            })
            .collect(),
        totals: JsonTotals {
            params: r.totals.params,
            trainable_params: r.totals.trainable_params,
            macs: json_count(&r.totals.macs),
            activation_elements: json_count(&r.totals.activation_elements),
            activation_bytes: json_count(&r.totals.activation_bytes),
            memory_batch: r.totals.memory.map(|m| m.batch),
            planned_peak_bytes: r.totals.memory.map(|m| m.planned_peak_bytes),
            unplanned_bytes: r.totals.memory.map(|m| m.unplanned_bytes),
            lower_bound_bytes: r.totals.memory.map(|m| m.lower_bound_bytes),
            kernels: r.totals.kernels,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(61_706), "61,706");
        assert_eq!(thousands(138_357_544), "138,357,544");
    }

    #[test]
    fn symbolic_counts() {
        let p = Poly::symbol("T").checked_scale(394_240).unwrap_or_default();
        assert_eq!(count(&p), "394,240*T");
        assert_eq!(json_count(&p), serde_json::Value::from("394240*T"));
    }
}
