//! Data movement: views that need a copy (`flatten`, `flatten_channels_last`, `reshape`,
//! a standalone `slice`), copying concats, embedding lookups, and the copies of a
//! recurrence (a step's input `x[:, t]`, its emitted value into `y[:, t]`, states between
//! steps). Where both sides are dense in the order the copy walks, it is one flat `f32x4`
//! loop; otherwise each element's index is decomposed.
//!
//! A view written in place over its input (the memory plan allows it only when the element
//! order is the same) copies every element onto itself, which is harmless.

use super::abi::Status;
use super::elementwise::for_each_index;
use super::emit::{Bound, Elem, Kb, Lanes};
use super::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value};

/// Copies `src` into `dst`, element `i` of one to element `i` of the other in the orders
/// given: `src_order` and `dst_order` list logical axes outermost first, and element `i`
/// is the `i`-th in that order (row-major over the listed axes). `flat` says both buffers
/// are dense in exactly those orders, so the copy is one flat loop.
pub fn linear(
    kb: &mut Kb<'_>,
    src: &Bound,
    dst: &Bound,
    src_order: &[usize],
    flat: bool,
) -> Result<(), CodegenError> {
    let mut total = kb.int(1);
    for d in &dst.dims {
        total = kb.b.ins().imul(total, *d);
    }
    let vector = src.op.elem == Elem::F32;
    if flat {
        // Both dense: element i at byte i·elem from each base.
        let s1 = flat_bound(kb, src, total);
        let d1 = flat_bound(kb, dst, total);
        let zero = kb.int(0);
        return kb.for_lanes(zero, total, vector, &mut |kb, i, width| {
            let lanes = if width == 1 {
                Lanes::One
            } else {
                Lanes::Four(0)
            };
            let v = kb.load(&s1, &[i], lanes);
            kb.store(&d1, &[i], lanes, v);
            Ok(())
        });
    }
    // Walk the destination row-major; decompose the running index over the source's order.
    let dims = dst.dims.clone();
    kb.nest(&dims, None, &mut |kb, idx| {
        // Linear index of idx in dst (row-major).
        let mut lin = kb.int(0);
        for (a, i) in idx.iter().enumerate() {
            lin = kb.b.ins().imul(lin, dst.dims[a]);
            lin = kb.b.ins().iadd(lin, *i);
        }
        let mut sidx = vec![lin; src.rank()];
        let mut rest = lin;
        for &a in src_order.iter().rev() {
            let d = src.dims[a];
            let one = kb.int(1);
            let d = kb.b.ins().smax(d, one);
            sidx[a] = kb.b.ins().urem(rest, d);
            rest = kb.b.ins().udiv(rest, d);
        }
        let v = kb.load(src, &sidx, Lanes::One);
        kb.store(dst, idx, Lanes::One, v);
        Ok(())
    })
}

/// A rank-1 view of a dense operand of `total` elements.
fn flat_bound(kb: &mut Kb<'_>, x: &Bound, total: Value) -> Bound {
    let mut b = x.clone();
    b.op.dims = vec![crate::ir::shape::Dim::Known(0)];
    b.op.contig = Some(0);
    b.dims = vec![total];
    b.strides = vec![kb.int(1)];
    b
}

/// Copies `src` to `dst` shifted by `offset` along `axis` (`dst[…, i + offset, …] =
/// src[…, i, …]`): a copying concat's input, or (with a negative shift on the source
/// side) a slice.
pub fn shifted(
    kb: &mut Kb<'_>,
    src: &Bound,
    dst: &Bound,
    axis: usize,
    offset: i64,
    iterate_src: bool,
) -> Result<(), CodegenError> {
    let space = if iterate_src {
        src.clone()
    } else {
        dst.clone()
    };
    let vector = src.op.elem == Elem::F32;
    for_each_index(kb, &space, vector, &mut |kb, idx, lanes| {
        let mut other = idx.to_vec();
        other[axis] = kb.b.ins().iadd_imm_s(idx[axis], offset);
        if iterate_src {
            let v = kb.load(src, idx, lanes);
            kb.store(dst, &other, lanes, v);
        } else {
            let v = kb.load(src, &other, lanes);
            kb.store(dst, idx, lanes, v);
        }
        Ok(())
    })
}

/// Copies between a step value `[N, …]` and index `t` of axis 1 of a sequence `[N, T, …]`:
/// `gather` reads `seq[:, t]` into `step`, else `step` is written to `seq[:, t]`.
pub fn step(
    kb: &mut Kb<'_>,
    seq: &Bound,
    step: &Bound,
    t: Value,
    gather: bool,
) -> Result<(), CodegenError> {
    let vector = step.op.elem == Elem::F32;
    for_each_index(kb, step, vector, &mut |kb, idx, lanes| {
        let mut sidx = Vec::with_capacity(idx.len() + 1);
        sidx.push(idx[0]);
        sidx.push(t);
        sidx.extend_from_slice(&idx[1..]);
        let slanes = match lanes {
            Lanes::Four(0) => Lanes::Four(0),
            Lanes::Four(a) => Lanes::Four(a + 1),
            other => other,
        };
        if gather {
            let v = kb.load(seq, &sidx, slanes);
            kb.store(step, idx, lanes, v);
        } else {
            let v = kb.load(step, idx, lanes);
            kb.store(seq, &sidx, slanes, v);
        }
        Ok(())
    })
}

/// Copies `src` to `dst` of the same shape.
pub fn same(kb: &mut Kb<'_>, src: &Bound, dst: &Bound) -> Result<(), CodegenError> {
    let vector = dst.op.elem == Elem::F32;
    for_each_index(kb, dst, vector, &mut |kb, idx, lanes| {
        let v = kb.load(src, idx, lanes);
        kb.store(dst, idx, lanes, v);
        Ok(())
    })
}

/// Embedding lookup: `out[…, d] = table[ids[…], d]`; an id outside `0..V` sets the status
/// (and row 0 is read instead, never memory outside the table).
pub fn embed(kb: &mut Kb<'_>, ids: &Bound, table: &Bound, out: &Bound) -> Result<(), CodegenError> {
    let v_ = table.dims[0];
    let d_ = table.dims[1];
    let r = out.rank();
    let mut ids_space = out.clone();
    ids_space.dims.truncate(r - 1);
    ids_space.strides.truncate(r - 1);
    ids_space.op.dims.truncate(r - 1);
    ids_space.op.contig = (r - 1).checked_sub(1);
    for_each_index(kb, &ids_space, false, &mut |kb, idx, _| {
        let id = kb.load(ids, idx, Lanes::One);
        let ok = kb.in_range(id, v_);
        let bad = kb.b.ins().icmp_imm_s(IntCC::Equal, ok, 0);
        kb.if_then(bad, &mut |kb| {
            kb.set_status(Status::IdOutOfRange, id);
            Ok(())
        })?;
        let zero = kb.int(0);
        let safe = kb.b.ins().select(ok, id, zero);
        kb.for_lanes(zero, d_, true, &mut |kb, d, width| {
            let (tl, ol) = if width == 1 {
                (Lanes::One, Lanes::One)
            } else {
                (Lanes::Four(1), Lanes::Four(r - 1))
            };
            // A bad id reads row 0; the status makes the call fail, so it is never seen.
            let v = kb.load(table, &[safe, d], tl);
            let mut oidx = idx.to_vec();
            oidx.push(d);
            kb.store(out, &oidx, ol, v);
            Ok(())
        })
    })
}
