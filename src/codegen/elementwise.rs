//! Elementwise kernels: a fused elementwise group, or one elementwise op (`add`, `relu`,
//! a batch norm at inference, a dropout at inference, a relayout), as one loop nest over
//! the output in its memory order, the innermost (contiguous) axis in `f32x4` vectors with
//! a scalar tail. Each element is the expression of [`super::expr`].

use super::emit::{Bound, Kb, Lanes};

/// A body of [`for_each_index`]: the index and the lanes it covers.
pub type PointBody<'x> = dyn FnMut(&mut Kb<'_>, &[Value], Lanes) -> Result<(), CodegenError> + 'x;
use super::expr::{all_float, Expr};
use super::CodegenError;
use crate::ir::graph::{Region, ValueRef};
use cranelift_codegen::ir::Value;
use std::collections::BTreeMap;

/// Calls `body(idx, lanes)` for every index of `out`'s shape, in `out`'s memory order; the
/// contiguous axis in steps of four when `vector` (then a scalar tail).
pub fn for_each_index(
    kb: &mut Kb<'_>,
    out: &Bound,
    vector: bool,
    body: &mut PointBody<'_>,
) -> Result<(), CodegenError> {
    let rank = out.rank();
    if rank == 0 {
        return body(kb, &[], Lanes::One);
    }
    let inner = out.op.contig.unwrap_or(rank - 1);
    let mut order: Vec<usize> = (0..rank).filter(|a| *a != inner).collect();
    order.push(inner);
    let zero = kb.int(0);
    let mut idx = vec![zero; rank];
    nest(kb, out, &order, 0, &mut idx, vector, body)
}

fn nest(
    kb: &mut Kb<'_>,
    out: &Bound,
    order: &[usize],
    level: usize,
    idx: &mut [Value],
    vector: bool,
    body: &mut PointBody<'_>,
) -> Result<(), CodegenError> {
    let axis = order[level];
    let zero = kb.int(0);
    let hi = out.dims[axis];
    if level + 1 == order.len() {
        return kb.for_lanes(zero, hi, vector, &mut |kb, i, width| {
            let mut at = idx.to_vec();
            at[axis] = i;
            let lanes = if width == 1 {
                Lanes::One
            } else {
                Lanes::Four(axis)
            };
            body(kb, &at, lanes)
        });
    }
    kb.for_range(zero, hi, 1, &mut |kb, i| {
        let mut at = idx.to_vec();
        at[axis] = i;
        nest(kb, out, order, level + 1, &mut at, vector, body)
    })
}

/// Emits the kernel computing `outputs` (values of `region`, all of one shape) into `dsts`,
/// reading `leaves`.
pub fn lower(
    kb: &mut Kb<'_>,
    region: &Region,
    leaves: BTreeMap<ValueRef, Bound>,
    outputs: &[ValueRef],
    dsts: &[Bound],
    layer: &str,
) -> Result<(), CodegenError> {
    let first = dsts
        .first()
        .ok_or_else(|| CodegenError::internal("an elementwise kernel without outputs".into()))?
        .clone();
    for v in outputs {
        if region.ty(*v).shape != region.ty(outputs[0]).shape {
            return Err(CodegenError::Unsupported {
                layer: layer.to_string(),
                what: "a fused group whose outputs differ in shape".into(),
            });
        }
    }
    let vector = all_float(region, outputs, &leaves)
        && leaves.values().all(|b| b.op.elem == super::emit::Elem::F32);
    let mut expr = Expr::new(region, leaves, layer);
    for_each_index(kb, &first, vector, &mut |kb, idx, lanes| {
        expr.clear();
        for (v, dst) in outputs.iter().zip(dsts) {
            let x = expr.eval(kb, *v, idx, lanes)?;
            kb.store(dst, idx, lanes, x);
        }
        Ok(())
    })
}
