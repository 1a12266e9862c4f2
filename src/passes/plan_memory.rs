//! Memory planning for the activations of a net's top-level region at a known batch
//! size: a schedule, the liveness of every activation value under it, and the placement
//! of every buffer in one arena.
//!
//! - **Schedule**: the region's deterministic topological order ([`Region::topo_order`]).
//! - **Values**: every output of every node except `Param` and `Fill` (weights and
//!   constants are excluded). A value is live from the step that defines it to its last
//!   reader's step; region outputs stay live to the end.
//! - **In place**: an elementwise op (`relu`, `add`, `batchnorm`, …) or a view
//!   (`flatten`, `reshape`, `dropout`) whose input activation dies at that op and has the
//!   output's size writes its output into the input's buffer. Both values then share one
//!   buffer, live from the first's definition to the last's death.
//! - **Placement**: buffers in decreasing size, each at the lowest arena offset that does
//!   not overlap a placed buffer live at the same time (greedy by size).
//!
//! Reported ([`MemoryPlan`]): `planned_peak_bytes` (the arena's size),
//! `unplanned_bytes` (every value in its own buffer) and `lower_bound_bytes` (the largest
//! total size of the buffers live at one step; no placement can do better under this
//! schedule and these in-place choices). Always `lower_bound <= planned <= unplanned`.
//! A loop counts as one op: its inputs and outputs are planned, the temporaries of its
//! step (inside the body) are not. The plan is a report; the IR is not rewritten.

use crate::ir::graph::{Region, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::{Dim, TensorType};
use std::collections::BTreeMap;

/// The memory figures of a plan, in bytes, weights excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The batch size planned for.
    pub batch: u64,
    /// The arena's size.
    pub planned_peak_bytes: u64,
    /// The sum of all activation values' sizes.
    pub unplanned_bytes: u64,
    /// The largest total size of buffers live at once.
    pub lower_bound_bytes: u64,
    /// The number of activation values.
    pub values: usize,
    /// The number of buffers after in-place sharing.
    pub buffers: usize,
}

/// One arena buffer: its size and the steps it is live in (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Buffer {
    size: u64,
    start: usize,
    end: usize,
}

/// The bytes of `ty` with the batch `N` set to `batch`; `None` when another symbol is
/// left (the size is not known) or on overflow.
pub fn bytes_at(ty: &TensorType, batch: u64) -> Option<u64> {
    let mut n = ty.dtype.size_bytes();
    for d in ty.shape.dims() {
        let k = match d {
            Dim::Known(k) => *k,
            Dim::Sym(p) => {
                let v = p.substitute("N", i64::try_from(batch).ok()?)?.as_const()?;
                u64::try_from(v).ok()?
            }
        };
        n = n.checked_mul(k)?;
    }
    Some(n)
}

/// Plans the activations of `r` at `batch`; `None` when a size is not known (a symbolic
/// size other than `N`) or overflows.
pub fn plan(r: &Region, batch: u64) -> Option<MemoryPlan> {
    let order = r.topo_order();
    let step: BTreeMap<_, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let end_of_schedule = order.len();
    // The last step reading each activation value.
    let mut last_use: BTreeMap<ValueRef, usize> = BTreeMap::new();
    for &id in &order {
        for v in r.inputs_of(id) {
            let e = last_use.entry(v).or_insert(0);
            *e = (*e).max(step[&id]);
        }
    }
    for o in &r.outputs {
        last_use.insert(o.value, end_of_schedule);
    }
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut buffer_of: BTreeMap<ValueRef, usize> = BTreeMap::new();
    let mut unplanned: u64 = 0;
    let mut values = 0;
    for &id in &order {
        let node = r.node(id);
        if !is_activation(&node.op) {
            continue;
        }
        let s = step[&id];
        let inputs = r.inputs_of(id);
        for (port, ty) in node.outputs.iter().enumerate() {
            let v = ValueRef {
                node: id,
                port: u32::try_from(port).ok()?,
            };
            let size = bytes_at(ty, batch)?;
            unplanned = unplanned.checked_add(size)?;
            values += 1;
            let end = last_use.get(&v).copied().unwrap_or(s);
            let reuse = if in_place(&node.op) {
                inputs.iter().find_map(|i| {
                    let b = *buffer_of.get(i)?;
                    let buf = &buffers[b];
                    (buf.end == s && buf.size == size && last_use.get(i) == Some(&s)).then_some(b)
                })
            } else {
                None
            };
            match reuse {
                Some(b) => {
                    buffers[b].end = buffers[b].end.max(end);
                    buffer_of.insert(v, b);
                }
                None => {
                    buffer_of.insert(v, buffers.len());
                    buffers.push(Buffer {
                        size,
                        start: s,
                        end,
                    });
                }
            }
        }
    }
    let lower_bound = lower_bound(&buffers, end_of_schedule)?;
    let planned = place(&buffers)?;
    Some(MemoryPlan {
        batch,
        planned_peak_bytes: planned,
        unplanned_bytes: unplanned,
        lower_bound_bytes: lower_bound,
        values,
        buffers: buffers.len(),
    })
}

/// The largest total size of buffers live at one step.
fn lower_bound(buffers: &[Buffer], steps: usize) -> Option<u64> {
    // A sweep: add each buffer's size at its start, take it away after its end.
    let mut delta: Vec<i128> = vec![0; steps + 2];
    for b in buffers {
        delta[b.start] += i128::from(b.size);
        delta[b.end + 1] -= i128::from(b.size);
    }
    let mut cur: i128 = 0;
    let mut best: i128 = 0;
    for d in delta {
        cur += d;
        best = best.max(cur);
    }
    u64::try_from(best).ok()
}

/// Places the buffers greedily by decreasing size; returns the arena's size.
fn place(buffers: &[Buffer]) -> Option<u64> {
    let mut by_size: Vec<usize> = (0..buffers.len()).collect();
    by_size.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].size), buffers[i].start, i));
    let mut placed: Vec<(u64, Buffer)> = Vec::new();
    let mut peak: u64 = 0;
    for i in by_size {
        let b = buffers[i];
        let mut clashes: Vec<(u64, u64)> = placed
            .iter()
            .filter(|(_, p)| p.start <= b.end && b.start <= p.end)
            .map(|(off, p)| (*off, off + p.size))
            .collect();
        clashes.sort_unstable();
        let mut offset: u64 = 0;
        for (lo, hi) in clashes {
            if offset.checked_add(b.size)? <= lo {
                break;
            }
            offset = offset.max(hi);
        }
        peak = peak.max(offset.checked_add(b.size)?);
        placed.push((offset, b));
    }
    debug_assert!(
        disjoint(&placed),
        "the arena plan overlaps two live buffers"
    );
    Some(peak)
}

/// Whether no two buffers live at the same step share arena bytes.
fn disjoint(placed: &[(u64, Buffer)]) -> bool {
    placed.iter().enumerate().all(|(i, (oa, a))| {
        placed[i + 1..].iter().all(|(ob, b)| {
            let time = a.start <= b.end && b.start <= a.end;
            let space = *oa < ob + b.size && *ob < oa + a.size;
            !(time && space) || a.size == 0 || b.size == 0
        })
    })
}

/// Whether a node's outputs are activation buffers (weights and constants are not).
fn is_activation(op: &Op) -> bool {
    match op {
        Op::Param(_) | Op::Fill { .. } => false,
        Op::Input { .. }
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
        | Op::Dropout { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SoftmaxCrossEntropy
        | Op::Mse
        | Op::Loop(_)
        | Op::Group(_) => true,
    }
}

/// Whether an op may write its output over an input of the same size that dies there:
/// elementwise ops (each output element reads only the same element of its inputs) and
/// views.
fn in_place(op: &Op) -> bool {
    match op {
        Op::BatchNorm { .. }
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Neg
        | Op::Relu
        | Op::Sigmoid
        | Op::Tanh
        | Op::Dropout { .. }
        | Op::Flatten
        | Op::Reshape { .. } => true,
        Op::Input { .. }
        | Op::Param(_)
        | Op::Fill { .. }
        | Op::Conv2d(_)
        | Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::Lrn { .. }
        | Op::Dense
        | Op::MatMul
        | Op::Embed
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SoftmaxCrossEntropy
        | Op::Mse
        | Op::Loop(_)
        | Op::Group(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(size: u64, start: usize, end: usize) -> Buffer {
        Buffer { size, start, end }
    }

    #[test]
    fn a_chain_needs_two_buffers_at_a_time() {
        let bufs = [buf(10, 0, 1), buf(10, 1, 2), buf(10, 2, 3), buf(4, 3, 4)];
        assert_eq!(lower_bound(&bufs, 5), Some(20));
        assert_eq!(place(&bufs), Some(20));
    }

    #[test]
    fn placements_never_overlap_live_buffers() {
        // Sizes and lifetimes that make the greedy order leave gaps.
        let bufs = [
            buf(8, 0, 2),
            buf(3, 1, 3),
            buf(5, 2, 5),
            buf(6, 4, 6),
            buf(2, 0, 6),
        ];
        let peak = place(&bufs).expect("fits");
        let lb = lower_bound(&bufs, 7).expect("fits");
        assert!(
            lb <= peak && peak <= bufs.iter().map(|b| b.size).sum(),
            "{lb} {peak}"
        );
    }
}
