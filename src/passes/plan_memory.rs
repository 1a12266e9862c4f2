//! Memory planning for the activations of a region (a net's body) at known sizes: a
//! schedule, the liveness of every activation value under it, and the placement of every
//! buffer in one arena. The plan is what the arena executor
//! ([`crate::runtime::arena`]) runs in, and what codegen will allocate.
//!
//! - **Schedule**: the region's deterministic topological order ([`Region::topo_order`]).
//! - **Values**: every output of every node except `Param` and `Fill` (weights and
//!   constants are excluded). A value is live from the step that defines it to its last
//!   reader's step; region outputs stay live to the end.
//! - **Concat slices**: the inputs of an in-place concat ([`super::concat_in_place`]) are
//!   views of its buffer (nested concats compose); the buffer lives from the first
//!   definition to the last use of any value in it.
//! - **In place**: an op that may overwrite an input ([`in_place_ports`]: elementwise ops,
//!   views, and the ports of a fused group read only at the output's own index) writes
//!   its output into that input's buffer when the input dies there, has the output's
//!   size, and is a whole buffer of its own (not a slice, not holding slices).
//! - **Placement**: buffers in decreasing size, each at the lowest offset (a multiple of
//!   [`ALIGN`] bytes) that does not overlap a placed buffer live at the same time.
//!
//! Reported ([`MemoryPlan`]): `planned_peak_bytes` (the arena's size),
//! `unplanned_bytes` (every value in its own buffer) and `lower_bound_bytes` (the largest
//! total size of the buffers that must be alive at once whatever the schedule: no order
//! and no placement of these buffers can do better; see `must_live_bound`). Always
//! `lower_bound <= planned <= unplanned` up to alignment. A loop or a fused group counts as one op: its inputs and outputs are
//! planned, the temporaries inside its body are not.

use crate::ir::graph::{Region, ValueRef};
use crate::ir::op::{GroupKind, Op};
use crate::ir::shape::{DType, Dim, TensorType};
use std::collections::BTreeMap;

/// Buffer offsets are multiples of this many bytes (a cache line; also every element
/// type's alignment).
pub const ALIGN: u64 = 64;

/// The memory figures of a plan, in bytes, weights excluded, and where each value lives.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The number of buffers after sharing (in place and concat slices).
    pub buffers: usize,
    /// Where every activation value of the region lives.
    pub locations: BTreeMap<ValueRef, Location>,
}

/// Where a value lives in the arena: the buffer of logical `shape` stored in `layout` at
/// byte `offset`, narrowed by `slices` (`(axis, start, end)` on logical axes, applied in
/// order) when the value is a slice of an in-place concat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The buffer's byte offset in the arena.
    pub offset: u64,
    /// The shape the buffer is read as (before slicing).
    pub shape: Vec<usize>,
    /// The slices taken, outermost concat first.
    pub slices: Vec<(usize, usize, usize)>,
    /// The steps of the schedule the value is live in: its definition and its last use
    /// (the number of steps for a region output).
    pub live: [usize; 2],
    /// The value's own size in bytes.
    pub bytes: u64,
    /// The buffer's storage order (for 4-D values; NCHW is plain row-major).
    pub layout: crate::ir::op::Layout,
}

impl Location {
    /// The buffer's strides in elements, by logical axis.
    pub fn strides(&self) -> Vec<usize> {
        let order: Vec<usize> = if self.shape.len() == 4 {
            self.layout.memory_order().to_vec()
        } else {
            (0..self.shape.len()).collect()
        };
        let mut strides = vec![0; self.shape.len()];
        let mut acc = 1;
        for &axis in order.iter().rev() {
            strides[axis] = acc;
            acc *= self.shape[axis];
        }
        strides
    }
}

/// One arena buffer: its size and the steps it is live in (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Buffer {
    size: u64,
    start: usize,
    end: usize,
}

/// The shape of `ty` with the batch `N` set to `batch`; `None` when another symbol is
/// left (the size is not known) or on overflow.
pub fn shape_at(ty: &TensorType, batch: u64) -> Option<Vec<usize>> {
    ty.shape
        .dims()
        .iter()
        .map(|d| {
            let k = match d {
                Dim::Known(k) => *k,
                Dim::Sym(p) => {
                    let v = p.substitute("N", i64::try_from(batch).ok()?)?.as_const()?;
                    u64::try_from(v).ok()?
                }
            };
            usize::try_from(k).ok()
        })
        .collect()
}

/// The bytes of a tensor of `elem`-byte elements and `shape`, or `None` on overflow.
fn bytes_of(elem: u64, shape: &[usize]) -> Option<u64> {
    shape
        .iter()
        .try_fold(elem, |n, k| n.checked_mul(u64::try_from(*k).ok()?))
}

/// Plans the activations of `r` at `batch`; `None` when a size is not known (a symbolic
/// size other than `N`) or overflows.
pub fn plan(r: &Region, batch: u64) -> Option<MemoryPlan> {
    let mut p = plan_with(r, &|ty| shape_at(ty, batch), &DType::size_bytes)?;
    p.batch = batch;
    Some(p)
}

/// Plans the activations of `r` with the concrete shape of each type given by `shape`
/// (the batch and sequence lengths of a run) and `elem` bytes per element of each
/// element type (an executor may store `f16` as `f32`); `None` when a shape is unknown or
/// a size overflows. The `batch` of the result is 0 (not known here).
pub fn plan_with(
    r: &Region,
    shape: &dyn Fn(&TensorType) -> Option<Vec<usize>>,
    elem: &dyn Fn(DType) -> u64,
) -> Option<MemoryPlan> {
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
    // Concat slices: each input of an in-place concat is a view of the concat's value.
    let mut parent: BTreeMap<ValueRef, (ValueRef, usize, usize, usize)> = BTreeMap::new();
    for &id in &order {
        if let Op::Concat {
            axis,
            in_place: true,
        } = r.node(id).op
        {
            let mut start = 0;
            for v in r.inputs_of(id) {
                let len = *shape(r.ty(v))?.get(axis)?;
                parent.insert(v, (Region::value(id), axis, start, start + len));
                start += len;
            }
        }
    }
    let has_children: std::collections::BTreeSet<ValueRef> =
        parent.values().map(|(c, ..)| *c).collect();
    let root = |mut v: ValueRef| {
        while let Some((c, ..)) = parent.get(&v) {
            v = *c;
        }
        v
    };
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut buffer_of: BTreeMap<ValueRef, usize> = BTreeMap::new();
    let mut shape_of: BTreeMap<ValueRef, Vec<usize>> = BTreeMap::new();
    let mut live_of: BTreeMap<ValueRef, ([usize; 2], u64)> = BTreeMap::new();
    let mut unplanned: u64 = 0;
    let mut values = 0;
    for &id in &order {
        let node = r.node(id);
        if !is_activation(&node.op) {
            continue;
        }
        let s = step[&id];
        let inputs = r.inputs_of(id);
        let ports = in_place_ports(node, inputs.len());
        for (port, ty) in node.outputs.iter().enumerate() {
            let v = ValueRef {
                node: id,
                port: u32::try_from(port).ok()?,
            };
            let dims = shape(ty)?;
            let size = bytes_of(elem(ty.dtype), &dims)?;
            shape_of.insert(v, dims);
            unplanned = unplanned.checked_add(size)?;
            values += 1;
            let end = last_use.get(&v).copied().unwrap_or(s);
            live_of.insert(v, ([s, end], size));
            let tree = parent.contains_key(&v) || has_children.contains(&v);
            if tree {
                // One buffer per concat tree, sized by its root, made at its first value.
                let top = root(v);
                let b = match buffer_of.get(&top) {
                    Some(b) => *b,
                    None => {
                        let top_size = bytes_of(elem(r.ty(top).dtype), &shape(r.ty(top))?)?;
                        buffers.push(Buffer {
                            size: top_size,
                            start: s,
                            end,
                        });
                        buffer_of.insert(top, buffers.len() - 1);
                        buffers.len() - 1
                    }
                };
                buffers[b].start = buffers[b].start.min(s);
                buffers[b].end = buffers[b].end.max(end);
                buffer_of.insert(v, b);
                continue;
            }
            let reuse = ports.iter().find_map(|&p| {
                let i = inputs.get(p)?;
                if parent.contains_key(i) || has_children.contains(i) {
                    return None;
                }
                // Same element order: the same layout, or channels-last flattening of an
                // NHWC value (whose memory is already in that order).
                let order_kept = if matches!(node.op, Op::FlattenChannelsLast) {
                    r.layout(*i) == crate::ir::op::Layout::Nhwc
                } else {
                    r.layout(*i) == r.layout(v)
                };
                if !order_kept {
                    return None;
                }
                let b = *buffer_of.get(i)?;
                let buf = &buffers[b];
                (buf.end == s && buf.size == size && last_use.get(i) == Some(&s)).then_some(b)
            });
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
    let lower_bound = must_live_bound(r, &order, &step, &buffer_of, &buffers)?;
    debug_assert!(
        live_set_max(&buffers, end_of_schedule).is_some_and(|m| lower_bound <= m),
        "the schedule-independent bound exceeds what this schedule keeps alive"
    );
    let (planned, offsets) = place(&buffers)?;
    let mut locations = BTreeMap::new();
    for (v, b) in &buffer_of {
        let offset = offsets[*b];
        let mut slices = Vec::new();
        let mut cur = *v;
        while let Some((c, axis, a, z)) = parent.get(&cur) {
            slices.push((*axis, *a, *z));
            cur = *c;
        }
        slices.reverse();
        let shape = shape_of.get(&cur)?.clone();
        let (live, bytes) = *live_of.get(v)?;
        locations.insert(
            *v,
            Location {
                offset,
                shape,
                slices,
                live,
                bytes,
                layout: r.layout(cur),
            },
        );
    }
    Some(MemoryPlan {
        batch: 0,
        planned_peak_bytes: planned,
        unplanned_bytes: unplanned,
        lower_bound_bytes: lower_bound,
        values,
        buffers: buffers.len(),
        locations,
    })
}

/// The plan as text (`netc compile --emit plan`): one line per activation value in
/// schedule order with the steps it is live in, its arena offset and size, and where it
/// is when it is a slice of a concat or shares an earlier value's buffer.
pub fn dump(r: &Region, plan: &MemoryPlan) -> String {
    use crate::report::table::thousands;
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "arena {} bytes (lower bound {}, unplanned {}), {} values in {} buffers, batch {}",
        thousands(plan.planned_peak_bytes),
        thousands(plan.lower_bound_bytes),
        thousands(plan.unplanned_bytes),
        plan.values,
        plan.buffers,
        plan.batch
    );
    let _ = writeln!(out, "{:<9} {:>12} {:>12}  value", "live", "offset", "bytes");
    let name = |v: &ValueRef| {
        let n = r.node(v.node);
        let base = if n.name.is_empty() {
            n.op.name()
        } else {
            &n.name
        };
        if n.outputs.len() > 1 {
            format!("{base}#{}", v.port)
        } else {
            base.to_string()
        }
    };
    let mut concat_of: BTreeMap<ValueRef, ValueRef> = BTreeMap::new();
    for id in r.node_ids() {
        if matches!(r.node(id).op, Op::Concat { in_place: true, .. }) {
            for v in r.inputs_of(id) {
                concat_of.insert(v, Region::value(id));
            }
        }
    }
    let mut rows: Vec<(&ValueRef, &Location)> = plan.locations.iter().collect();
    rows.sort_by_key(|(v, l)| (l.live[0], **v));
    // Which value first held each offset, to name sharing.
    let mut holder: BTreeMap<u64, (ValueRef, usize)> = BTreeMap::new();
    for (v, loc) in rows {
        let mut note = String::new();
        if loc.shape.len() == 4 && loc.layout != crate::ir::op::Layout::Nchw {
            let _ = write!(note, "  {}", loc.layout.as_str());
        }
        if let (Some((axis, a, b)), Some(c)) = (loc.slices.last(), concat_of.get(v)) {
            let _ = write!(note, "  slice [axis {axis}, {a}..{b}] of {}", name(c));
        } else if let Some((prev, end)) = holder.get(&loc.offset) {
            if *end == loc.live[0] && prev != v {
                let _ = write!(note, "  in place of {}", name(prev));
            }
        }
        if loc.slices.is_empty() {
            holder.insert(loc.offset, (*v, loc.live[1]));
        }
        let _ = writeln!(
            out,
            "{:<9} {:>12} {:>12}  {}{note}",
            format!("{}..{}", loc.live[0], loc.live[1]),
            thousands(first_byte(loc)),
            thousands(loc.bytes),
            name(v)
        );
    }
    out
}

/// The arena offset of a value's first element: its buffer's offset plus the start of
/// each slice times the buffer's row-major stride on that axis.
fn first_byte(loc: &Location) -> u64 {
    let sliced: u64 = loc
        .shape
        .iter()
        .enumerate()
        .map(|(axis, len)| {
            let mut n = *len as u64;
            for (a, s, e) in &loc.slices {
                if *a == axis {
                    n = (e - s) as u64;
                }
            }
            n
        })
        .product();
    let elem = loc.bytes.checked_div(sliced).unwrap_or(0);
    let strides = loc.strides();
    let mut offset = loc.offset;
    for (axis, start, _) in &loc.slices {
        offset += *start as u64 * strides[*axis] as u64 * elem;
    }
    offset
}

/// The lower bound on the arena of any schedule and any placement of these buffers: the
/// largest total size of the buffers that must be alive while some node runs, whatever the
/// order. While node `n` runs, a buffer must be alive when `n` writes one of its values, or
/// when one of its values is computed by an ancestor of `n` and one of its values is read by
/// `n` or a descendant of `n` (or is a net output): every topological order runs the
/// ancestor before `n` and the reader after it, and a buffer is alive from its first value's
/// definition to its last read.
fn must_live_bound(
    r: &Region,
    order: &[crate::ir::graph::NodeId],
    step: &BTreeMap<crate::ir::graph::NodeId, usize>,
    buffer_of: &BTreeMap<ValueRef, usize>,
    buffers: &[Buffer],
) -> Option<u64> {
    let n = order.len();
    let words = n.div_ceil(64);
    // ancestors[s]: the steps of the ancestors of step `s`, as a bit set.
    let mut ancestors: Vec<Vec<u64>> = vec![vec![0; words]; n];
    for (s, id) in order.iter().enumerate() {
        for v in r.inputs_of(*id) {
            let p = *step.get(&v.node)?;
            if p >= s {
                return None;
            }
            let (before, from) = ancestors.split_at_mut(s);
            for (w, bits) in from[0].iter_mut().zip(&before[p]) {
                *w |= bits;
            }
            from[0][p / 64] |= 1 << (p % 64);
        }
    }
    let is_ancestor = |a: usize, of: usize| (ancestors[of][a / 64] >> (a % 64)) & 1 == 1;
    let mut defs: Vec<Vec<usize>> = vec![Vec::new(); buffers.len()];
    let mut reads: Vec<Vec<usize>> = vec![Vec::new(); buffers.len()];
    let mut output = vec![false; buffers.len()];
    for (v, b) in buffer_of {
        defs[*b].push(*step.get(&v.node)?);
    }
    for (s, id) in order.iter().enumerate() {
        for v in r.inputs_of(*id) {
            if let Some(b) = buffer_of.get(&v) {
                reads[*b].push(s);
            }
        }
    }
    for o in &r.outputs {
        if let Some(b) = buffer_of.get(&o.value) {
            output[*b] = true;
        }
    }
    let mut best: u64 = 0;
    for s in 0..n {
        let mut total: u64 = 0;
        for (b, buf) in buffers.iter().enumerate() {
            let written = defs[b].contains(&s);
            let before = defs[b].iter().any(|d| is_ancestor(*d, s));
            let after = output[b] || reads[b].iter().any(|q| *q == s || is_ancestor(s, *q));
            if written || (before && after) {
                total = total.checked_add(buf.size)?;
            }
        }
        best = best.max(total);
    }
    Some(best)
}

/// The largest total size of buffers live at one step of this schedule (at least
/// [`must_live_bound`]).
fn live_set_max(buffers: &[Buffer], steps: usize) -> Option<u64> {
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

/// Places the buffers greedily by decreasing size at [`ALIGN`]ed offsets; returns the
/// arena's size and each buffer's offset.
fn place(buffers: &[Buffer]) -> Option<(u64, Vec<u64>)> {
    let mut by_size: Vec<usize> = (0..buffers.len()).collect();
    by_size.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].size), buffers[i].start, i));
    let mut placed: Vec<(u64, Buffer)> = Vec::new();
    let mut offsets = vec![0; buffers.len()];
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
            offset = offset.max(hi.checked_next_multiple_of(ALIGN)?);
        }
        peak = peak.max(offset.checked_add(b.size)?);
        offsets[i] = offset;
        placed.push((offset, b));
    }
    debug_assert!(
        disjoint(&placed),
        "the arena plan overlaps two live buffers"
    );
    Some((peak, offsets))
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

/// The input ports of `node` (which has `inputs` inputs) whose buffer its output may overwrite:
/// every element of the output is computed from the same element of that input (read
/// before it is written) and of nothing written earlier.
///
/// - elementwise ops and views: every port;
/// - a fused contraction or elementwise group with one output: the ports whose body input
///   is read only by elementwise ops at the output's shape (a residual shortcut read by
///   the epilogue's `add`), never by the contraction or through a slice.
pub fn in_place_ports(node: &crate::ir::graph::Node, inputs: usize) -> Vec<usize> {
    if in_place(&node.op) {
        return (0..inputs).collect();
    }
    let Op::Group(g) = &node.op else {
        return Vec::new();
    };
    if g.kind == GroupKind::Pool || g.body.outputs.len() != 1 {
        return Vec::new();
    }
    let Some(out) = node.outputs.first() else {
        return Vec::new();
    };
    let body = &g.body;
    let mut ports = Vec::new();
    for (port, id) in body.inputs.iter().enumerate() {
        if body.node(*id).outputs.first() != Some(out) {
            continue;
        }
        let readers = body.users_of(*id);
        let elementwise = !readers.is_empty()
            && readers.iter().all(|u| {
                let n = body.node(*u);
                in_place(&n.op)
                    && !matches!(n.op, Op::Flatten | Op::Reshape { .. } | Op::Dropout { .. })
                    && n.outputs.first() == Some(out)
            });
        if elementwise {
            ports.push(port);
        }
    }
    ports
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
        | Op::Dropout { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SoftmaxCrossEntropy
        | Op::Mse
        | Op::Loop(_)
        | Op::Group(_)
        | Op::Relayout { .. } => true,
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
        | Op::FlattenChannelsLast
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
        | Op::Group(_)
        | Op::Relayout { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer of `units` cache lines.
    fn buf(units: u64, start: usize, end: usize) -> Buffer {
        Buffer {
            size: units * ALIGN,
            start,
            end,
        }
    }

    #[test]
    fn a_chain_needs_two_buffers_at_a_time() {
        let bufs = [buf(10, 0, 1), buf(10, 1, 2), buf(10, 2, 3), buf(4, 3, 4)];
        assert_eq!(live_set_max(&bufs, 5), Some(20 * ALIGN));
        assert_eq!(place(&bufs).map(|p| p.0), Some(20 * ALIGN));
    }

    #[test]
    fn offsets_are_aligned_and_sizes_are_not_rounded() {
        // 100 bytes then 10 bytes live together: the second starts at 128.
        let bufs = [
            Buffer {
                size: 100,
                start: 0,
                end: 1,
            },
            Buffer {
                size: 10,
                start: 0,
                end: 1,
            },
        ];
        assert_eq!(place(&bufs), Some((138, vec![0, 128])));
        assert_eq!(live_set_max(&bufs, 2), Some(110));
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
        let peak = place(&bufs).expect("fits").0;
        let lb = live_set_max(&bufs, 7).expect("fits");
        assert!(
            lb <= peak && peak <= bufs.iter().map(|b| b.size).sum(),
            "{lb} {peak}"
        );
    }
}
