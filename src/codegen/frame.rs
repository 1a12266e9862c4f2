//! The per-size tables of a call: for the sizes bound from a call's inputs, the memory plan
//! of every planned region ([`crate::passes::plan_memory::plan_with`]) placed in one
//! arena, and the meta table ([`super::abi`]) holding every slot's offset, extent, sizes
//! and strides, the symbols' values and the recurrences' step counts. Computed once per
//! distinct set of sizes and cached by the executable, never by recompiling.
//!
//! Invariant (checked here, before any compiled code runs): every slot's elements lie
//! inside the arena — `offset + extent <= arena_bytes` — so code that indexes a slot
//! within its sizes stays inside the arena.

use super::program::{elem_of, Program};
use super::CodegenError;
use crate::ir::graph::{Graph, Region};
use crate::ir::op::Op;
use crate::passes::plan_memory::{plan_with, Location, ALIGN};
use crate::runtime::bind::Bindings;
use std::collections::BTreeMap;

/// The tables for one set of sizes.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The meta table.
    pub meta: Vec<i64>,
    /// The arena's size in bytes.
    pub arena_bytes: u64,
    /// Where each slot of the net's body is (for writing inputs and reading outputs):
    /// the meta entries already hold it; this keeps the `Location`s by value.
    pub body: BTreeMap<crate::ir::graph::ValueRef, Location>,
}

fn round_up(x: u64) -> Option<u64> {
    x.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN)
}

fn to_i64(x: u64) -> Result<i64, CodegenError> {
    i64::try_from(x).map_err(|_| CodegenError::internal("a size past 2^63".into()))
}

/// Computes the tables of `program` for `graph` at the sizes in `b`.
pub fn frame(graph: &Graph, program: &Program, b: &Bindings) -> Result<Frame, CodegenError> {
    let mut meta = vec![0i64; program.meta_len];
    let mut cursor: u64 = 0;
    let mut body = BTreeMap::new();
    let too_big =
        || CodegenError::internal("the activations cannot be planned at these sizes".into());
    for (key, pr) in program.regions.iter().enumerate() {
        let region = region_at(&graph.body, &pr.path)?;
        let elem = |d: crate::ir::shape::DType| elem_of(d).map(|e| e.bytes() as u64).unwrap_or(4);
        let mut plan =
            plan_with(region, &|ty| b.eval_shape(&ty.shape), &elem).ok_or_else(too_big)?;
        let base = cursor;
        cursor = round_up(
            base.checked_add(plan.planned_peak_bytes)
                .ok_or_else(too_big)?,
        )
        .ok_or_else(too_big)?;
        // A step's inputs (the carried states and the step's input) get places of their
        // own after the step's plan: they are written between steps (by the copies that
        // carry the states and feed the next input), so no value of the step may share
        // their bytes, which the step's plan alone would allow once an input is dead.
        if key != 0 {
            for id in &region.inputs {
                let v = crate::ir::graph::Region::value(*id);
                if let Some(loc) = plan.locations.get_mut(&v) {
                    let bytes = loc.bytes;
                    loc.offset = cursor - base;
                    loc.slices.clear();
                    cursor = round_up(cursor.checked_add(bytes).ok_or_else(too_big)?)
                        .ok_or_else(too_big)?;
                }
            }
        }
        for (v, slot) in &pr.slots {
            let loc = plan.locations.get(v).ok_or_else(|| {
                CodegenError::internal(format!(
                    "value of `{}` has no place in the plan",
                    region.node(v.node).name
                ))
            })?;
            let esize = elem(region.ty(*v).dtype);
            let strides = loc.strides();
            let mut shape = loc.shape.clone();
            let mut first: u64 = 0;
            for &(axis, start, end) in &loc.slices {
                let s = *strides.get(axis).ok_or_else(too_big)? as u64;
                first = first
                    .checked_add((start as u64).checked_mul(s).ok_or_else(too_big)?)
                    .ok_or_else(too_big)?;
                if let Some(d) = shape.get_mut(axis) {
                    *d = end - start;
                }
            }
            if shape.len() != slot.rank {
                return Err(CodegenError::internal("a slot of the wrong rank".into()));
            }
            let offset = base
                .checked_add(loc.offset)
                .and_then(|o| o.checked_add(first.checked_mul(esize)?))
                .ok_or_else(too_big)?;
            let extent = extent_bytes(&shape, &strides, esize).ok_or_else(too_big)?;
            meta[slot.offset()] = to_i64(offset)?;
            meta[slot.extent()] = to_i64(extent)?;
            for a in 0..slot.rank {
                meta[slot.dim(a)] = to_i64(shape[a] as u64)?;
                meta[slot.stride(a)] = to_i64(strides[a] as u64)?;
            }
            if key == 0 {
                body.insert(*v, loc.clone());
            }
        }
    }
    // Staging slots of the carried states, row-major.
    for ((key, id), info) in &program.loops {
        let region = region_at(&graph.body, &program.regions[*key].path)?;
        let node = region.node(*id);
        let steps = match &node.op {
            Op::Loop(l) => b.eval_dim(&l.steps).ok_or_else(too_big)?,
            _ => return Err(CodegenError::internal("a loop entry for another op".into())),
        };
        meta[info.steps] = to_i64(steps as u64)?;
        for (s, slot) in info.staging.iter().enumerate() {
            let ty = &node.outputs[s];
            let shape = b.eval_shape(&ty.shape).ok_or_else(too_big)?;
            let esize = elem_of(ty.dtype)?.bytes() as u64;
            let mut strides = vec![0usize; shape.len()];
            let mut acc = 1usize;
            for a in (0..shape.len()).rev() {
                strides[a] = acc;
                acc = acc.checked_mul(shape[a]).ok_or_else(too_big)?;
            }
            let bytes = (acc as u64).checked_mul(esize).ok_or_else(too_big)?;
            meta[slot.offset()] = to_i64(cursor)?;
            meta[slot.extent()] = to_i64(bytes)?;
            for a in 0..slot.rank {
                meta[slot.dim(a)] = to_i64(shape[a] as u64)?;
                meta[slot.stride(a)] = to_i64(strides[a] as u64)?;
            }
            cursor =
                round_up(cursor.checked_add(bytes).ok_or_else(too_big)?).ok_or_else(too_big)?;
        }
    }
    // The scratch area of the GEMM-driven contractions.
    meta[program.scratch_meta] = to_i64(cursor)?;
    cursor = round_up(
        cursor
            .checked_add(program.scratch_bytes)
            .ok_or_else(too_big)?,
    )
    .ok_or_else(too_big)?;
    for (name, i) in &program.symbols {
        meta[*i] = match b.get(name) {
            Some(v) => to_i64(v)?,
            None => 0,
        };
    }
    // The invariant: every slot inside the arena.
    for pr in &program.regions {
        for slot in pr.slots.values() {
            let end = meta[slot.offset()].checked_add(meta[slot.extent()]);
            if end.is_none_or(|e| e as u64 > cursor) || meta[slot.offset()] < 0 {
                return Err(CodegenError::internal(
                    "a value placed outside the arena".into(),
                ));
            }
        }
    }
    Ok(Frame {
        meta,
        arena_bytes: cursor.max(ALIGN),
        body,
    })
}

/// Bytes from a value's first element to one past its last: `(Σ (d−1)·s + 1) · elem`, or
/// 0 for an empty value.
fn extent_bytes(shape: &[usize], strides: &[usize], elem: u64) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    let mut last: u64 = 0;
    for (d, s) in shape.iter().zip(strides) {
        last = last.checked_add((*d as u64 - 1).checked_mul(*s as u64)?)?;
    }
    last.checked_add(1)?.checked_mul(elem)
}

/// The region reached from `body` through the loop nodes of `path`.
pub fn region_at<'r>(
    body: &'r Region,
    path: &[crate::ir::graph::NodeId],
) -> Result<&'r Region, CodegenError> {
    let mut r = body;
    for id in path {
        r = match &r.node(*id).op {
            Op::Loop(l) => &l.body,
            _ => {
                return Err(CodegenError::internal(
                    "a region path through a non-loop".into(),
                ))
            }
        };
    }
    Ok(r)
}
