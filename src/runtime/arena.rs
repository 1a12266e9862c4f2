//! The arena executor: runs a net's (optimised) IR the way compiled code will, with every
//! activation of the net's body at the place the memory plan gives it in one arena
//! ([`crate::passes::plan_memory::plan_with`], planned at the run's sizes), so the
//! optimisation passes and the plan itself are checked against the reference
//! interpreter ([`super::interp`]).
//!
//! - Each node reads its inputs from their arena locations (a concat slice is a strided
//!   view of the concat's buffer), computes with the reference kernels (a fused group
//!   runs its body; its temporaries are not in the arena, as they will be registers), and
//!   writes each result to its location, which may be an input's buffer (in place) or a
//!   slice of an in-place concat.
//! - An in-place concat does nothing: its inputs were written into its slices.
//! - The arena starts filled with NaN, so a read of a place nobody wrote, or a plan that
//!   lets two live values share bytes, shows up as a wrong output rather than passing by
//!   luck.
//!
//! Parameters and constants are not in the arena (weights are borrowed, as in the
//! interpreter).
//!
//! **What it does not check.** A node's result is computed whole before it is written, so
//! an in-place write (an output over a dying input) is checked for *where* it goes, not
//! for the order of element reads and writes inside the kernel: that legality is by
//! construction ([`crate::passes::plan_memory::in_place_ports`] allows it only when each
//! output element reads nothing but the same element of that input).

use super::bind::bind_inputs;
use super::error::RunError;
use super::interp::{internal, Interpreter, Val, View};
use super::tensor::{storage, Tensor};
use super::weights::Weights;
use crate::ir::graph::{Graph, Region, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::DType;
use crate::passes::plan_memory::{plan_with, Location};
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, IxDyn, ShapeBuilder, Slice};
use std::collections::BTreeMap;

/// An `f32` NaN in both halves of a word.
const NAN_WORD: u64 = 0x7fc0_0000_7fc0_0000;

/// Runs `graph` with `weights` on `inputs` (by input name) in a planned arena and returns
/// its outputs by output name, like [`super::interp::run`].
pub fn run(
    graph: &Graph,
    weights: &Weights,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, RunError> {
    let interp = Interpreter::new(graph, weights)?;
    let (ordered, b) = bind_inputs(graph, inputs)?;
    let mut ordered: Vec<Option<Tensor>> = ordered.into_iter().map(Some).collect();
    let body = &graph.body;
    let stored = |d: DType| match storage(d) {
        Some(DType::I64) => 8,
        _ => 4,
    };
    let plan = plan_with(body, &|ty| b.eval_shape(&ty.shape), &stored).ok_or_else(|| {
        RunError::Internal {
            layer: graph.name.clone(),
            span: graph.span,
            detail: "the activations cannot be planned at these sizes".into(),
        }
    })?;
    let words =
        usize::try_from(plan.planned_peak_bytes.div_ceil(8)).map_err(|_| RunError::Internal {
            layer: graph.name.clone(),
            span: graph.span,
            detail: "the arena does not fit in memory".into(),
        })?;
    let mut arena = vec![NAN_WORD; words];
    // Parameters and constants, by value.
    let mut side: BTreeMap<ValueRef, Val> = BTreeMap::new();
    for id in body.topo_order() {
        let node = body.node(id);
        match &node.op {
            Op::Concat { in_place: true, .. } => continue,
            Op::Input { index, .. } => {
                let t = ordered
                    .get_mut(*index)
                    .and_then(Option::take)
                    .ok_or_else(|| internal(node, "no value for this input"))?;
                write(&mut arena, plan.locations.get(&Region::value(id)), &t)
                    .map_err(|d| internal(node, &d))?;
                continue;
            }
            _ => {}
        }
        let results = {
            let mut views = Vec::new();
            for v in body.inputs_of(id) {
                let view = match side.get(&v) {
                    Some(val) => interp.view_of(val),
                    None => {
                        let loc = plan.locations.get(&v);
                        read(&arena, loc, body.ty(v).dtype)
                    }
                };
                views.push(view.ok_or_else(|| internal(node, "an input has no value"))?);
            }
            interp.eval_node(node, &views, &mut [], &b)?
        };
        interp.check_results(node, &results, &b)?;
        for (port, val) in results.into_iter().enumerate() {
            let v = ValueRef {
                node: id,
                port: u32::try_from(port).map_err(|_| internal(node, "too many outputs"))?,
            };
            match (&val, plan.locations.get(&v)) {
                (Val::Tensor(t), Some(loc)) => {
                    write(&mut arena, Some(loc), t).map_err(|d| internal(node, &d))?;
                }
                _ => {
                    side.insert(v, val);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for o in &body.outputs {
        let t = match side.get(&o.value) {
            Some(val) => interp.view_of(val).map(|v| v.to_tensor()),
            None => read(&arena, plan.locations.get(&o.value), body.ty(o.value).dtype)
                .map(|v| v.to_tensor()),
        };
        let t = t.ok_or_else(|| RunError::Internal {
            layer: o.name.clone(),
            span: graph.span,
            detail: "a net output has no value".into(),
        })?;
        out.insert(o.name.clone(), t);
    }
    Ok(out)
}

/// The words of the arena a location's buffer starts at, or `None` if it lies outside.
fn words_at(arena: &[u64], loc: &Location) -> Option<std::ops::Range<usize>> {
    if !loc.offset.is_multiple_of(8) {
        return None;
    }
    let start = usize::try_from(loc.offset / 8).ok()?;
    (start <= arena.len()).then_some(start..arena.len())
}

/// A view of the value at `loc`, of element type `dtype`.
pub(crate) fn read<'a>(arena: &'a [u64], loc: Option<&Location>, dtype: DType) -> Option<View<'a>> {
    let loc = loc?;
    let words = &arena[words_at(arena, loc)?];
    let n: usize = loc.shape.iter().product();
    let shape = IxDyn(&loc.shape).strides(IxDyn(&loc.strides()));
    let mut view = match storage(dtype)? {
        DType::I64 => {
            let ints: &[i64] = bytemuck::cast_slice(words);
            View::I64(ArrayViewD::from_shape(shape, ints.get(..n)?).ok()?)
        }
        _ => {
            let floats: &[f32] = bytemuck::cast_slice(words);
            View::F32(ArrayViewD::from_shape(shape, floats.get(..n)?).ok()?)
        }
    };
    for &(axis, start, end) in &loc.slices {
        if end > *view.shape().get(axis)? || start > end {
            return None;
        }
        match &mut view {
            View::F32(a) => a.slice_axis_inplace(Axis(axis), Slice::from(start..end)),
            View::I64(a) => a.slice_axis_inplace(Axis(axis), Slice::from(start..end)),
        }
    }
    Some(view)
}

/// Writes `t` to the value's place at `loc`; `Err` says why it does not fit (a bug).
pub(crate) fn write(arena: &mut [u64], loc: Option<&Location>, t: &Tensor) -> Result<(), String> {
    let loc = loc.ok_or("a computed value has no place in the arena")?;
    let range = words_at(arena, loc).ok_or("a place outside the arena")?;
    let words = &mut arena[range];
    let n: usize = loc.shape.iter().product();
    macro_rules! put {
        ($data:expr, $ty:ty) => {{
            let elems: &mut [$ty] = bytemuck::cast_slice_mut(words);
            let buf = elems.get_mut(..n).ok_or("a place past the arena's end")?;
            let shape = IxDyn(&loc.shape).strides(IxDyn(&loc.strides()));
            let mut view = ArrayViewMutD::from_shape(shape, buf).map_err(|e| e.to_string())?;
            for &(axis, start, end) in &loc.slices {
                if view.shape().get(axis).is_none_or(|len| end > *len) || start > end {
                    return Err("a slice outside its concat".into());
                }
                view.slice_axis_inplace(Axis(axis), Slice::from(start..end));
            }
            if view.shape() != $data.shape() {
                return Err(format!(
                    "a result of shape {:?} for a place of shape {:?}",
                    $data.shape(),
                    view.shape()
                ));
            }
            view.assign($data);
        }};
    }
    match t {
        Tensor::F32(a) => put!(a, f32),
        Tensor::I64(a) => put!(a, i64),
    }
    Ok(())
}
