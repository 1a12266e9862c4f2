//! `fold`: constant folding and algebraic identities.
//!
//! One sweep in topological order, so chains collapse at once (`relu(neg(fill))`); each
//! rewrite makes the node's readers read the new value and removes the node (its inputs
//! are left to `dce`). The rules:
//!
//! - `fold/fill`: an elementwise op (`add`, `sub`, `mul`, `div`, `neg`, `relu`,
//!   `sigmoid`, `tanh`) all of whose inputs are `fill`s is one `fill` of its output type
//!   (whatever its shape, symbolic included). So is a layout op (`reshape`, `flatten`,
//!   `slice`) of a `fill`, or a `concat` of `fill`s of one value. The value is computed by
//!   the runtime's kernels on the values the interpreter would use (the fills rounded to
//!   `f32`, or converted to `i64` for integer tensors), so it is bit for bit what the
//!   unfolded node gives at run time. An integer division by zero is left alone: it is a
//!   run-time error. An integer result is folded only when `f64` holds it exactly.
//! - `fold/param`: an op of that list, `reshape`, `flatten`, `slice` or `concat` whose
//!   inputs are all constants (`fill`s and `param`s of fixed parameters with values),
//!   with a float output of known shape and at most [`MAX_FOLDED_ELEMENTS`] elements (and
//!   inputs no bigger), becomes a new fixed parameter `<node>/folded` holding its values,
//!   computed by the same kernels as the interpreter's.
//! - `fold/add_zero`, `fold/sub_zero`, `fold/mul_one`, `fold/div_one`: `x + 0`, `0 + x`,
//!   `x − 0`, `x · 1`, `1 · x` and `x / 1` (the constant a `fill`) are `x`. Sums and
//!   products of more operands drop the neutral ones and keep the node if two or more
//!   remain. Only when the result's type is exactly the node's output type: a neutral
//!   operand that broadcasts `x` to a bigger shape is kept.
//! - `fold/neg_neg`: `−(−x)` is `x`.
//! - `fold/weight_slice`: a `slice` of a learned parameter (a gate block of the built-in
//!   GRU's fused weight, sliced at every step) is a derived parameter
//!   ([`crate::ir::graph::Derivation::Slice`]), cut once when weights are bound.
//!
//! Why the identities are safe: `x − 0`, `x · 1`, `x / 1` and `−(−x)` are exact in IEEE
//! arithmetic for every `x`, infinities and NaN included, and so is `x + 0` except that
//! `−0 + 0` is `+0`: the folded net may give `−0` where the unfolded one gives `+0`
//! (they compare equal; the usual "no signed zeros" licence of optimising compilers).
//! `x · 0` is never folded to `0`: it is NaN for an infinite or NaN `x`, and `−0` for a
//! negative `x`.

use super::pipeline::{
    for_each_region, param_node, push_param, unique_param_name, Pass, RewriteLog,
};
use crate::diagnostics::Diagnostics;
use crate::ir::graph::{Graph, Node, NodeId, Param, ParamId, ParamKind, Region, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::{DType, TensorType};
use crate::runtime::kernels::elementwise::{self, BinOp, Unary};
use crate::runtime::kernels::layout;
use crate::runtime::tensor::storage;
use ndarray::{ArrayD, IxDyn};

/// The most elements a constant folded into a fixed parameter may have (and each of the
/// inputs it is computed from): bigger constants would bloat the IR.
pub const MAX_FOLDED_ELEMENTS: u64 = 65_536;

/// The pass.
pub struct Fold;

impl Pass for Fold {
    fn name(&self) -> &'static str {
        "fold"
    }

    fn doc(&self) -> &'static str {
        "evaluates constant expressions and removes x + 0, x * 1, -(-x) and the like"
    }

    fn run(&self, graph: &mut Graph, log: &mut RewriteLog) -> Result<(), Diagnostics> {
        // Regions are rewritten one at a time while the graph-level table grows.
        let Graph { body, params, .. } = graph;
        for_each_region(body, &mut |r| fold_in(r, params, log));
        Ok(())
    }
}

/// What a node becomes.
enum Rewrite {
    /// A `fill` of the node's output type with this value.
    Fill(f64),
    /// A new fixed parameter of the node's output type with these values.
    Param(Vec<f64>),
    /// An existing value.
    Value(ValueRef),
    /// The same op on fewer inputs.
    Inputs(Vec<ValueRef>),
    /// A new derived parameter of the node's output type, named after its source.
    Derived(String, crate::ir::graph::Derivation),
}

/// One sweep over `r` in topological order, rewriting each node some rule applies to.
fn fold_in(r: &mut Region, params: &mut Vec<Param>, log: &mut RewriteLog) {
    for id in r.topo_order() {
        if !r.contains(id) {
            continue;
        }
        let Some((rule, rw)) = rewrite_of(r, params, id) else {
            continue;
        };
        if u32::try_from(params.len() + 1).is_err()
            && matches!(rw, Rewrite::Param(_) | Rewrite::Derived(..))
        {
            continue;
        }
        if !log.rewrite("fold", rule) {
            return;
        }
        apply(r, params, id, rw);
    }
}

/// The rewrite of node `id`, with its rule name, if some rule applies.
fn rewrite_of(r: &Region, params: &[Param], id: NodeId) -> Option<(&'static str, Rewrite)> {
    let node = r.node(id);
    let [out] = node.outputs.as_slice() else {
        return None;
    };
    let inputs = r.inputs_of(id);
    if inputs.is_empty() {
        return None;
    }
    if let Some(v) = fill_fold(r, &node.op, &inputs, out) {
        return Some(("fill", Rewrite::Fill(v)));
    }
    if let Some(rw) = identity(r, params, &node.op, &inputs, out) {
        return Some(rw);
    }
    if let Some(v) = param_fold(r, params, &node.op, &inputs, out) {
        return Some(("param", Rewrite::Param(v)));
    }
    weight_slice(r, params, &node.op, &inputs)
}

/// `fold/weight_slice`: a `slice` of a stored (learned) parameter is a derived parameter,
/// computed once when weights are bound rather than copied by every run (and every step
/// of a loop: the gate blocks of the built-in GRU's fused weight).
fn weight_slice(
    r: &Region,
    params: &[Param],
    op: &Op,
    inputs: &[ValueRef],
) -> Option<(&'static str, Rewrite)> {
    let Op::Slice { axis, start, end } = op else {
        return None;
    };
    let [v] = inputs else {
        return None;
    };
    let Op::Param(source) = r.node(v.node).op else {
        return None;
    };
    let p = params.get(source.0 as usize)?;
    if !matches!(p.kind, ParamKind::Trainable | ParamKind::Buffer) {
        return None;
    }
    let name = format!("{}/slice{axis}.{start}-{end}", p.name);
    Some((
        "weight_slice",
        Rewrite::Derived(
            name,
            crate::ir::graph::Derivation::Slice {
                source,
                axis: *axis,
                start: *start,
                end: *end,
            },
        ),
    ))
}

/// The value of `v` when it is a `fill`, with its type.
fn fill_of(r: &Region, v: ValueRef) -> Option<(f64, &TensorType)> {
    match &r.node(v.node).op {
        Op::Fill { value, ty } => Some((*value, ty)),
        _ => None,
    }
}

/// A fill's value as the interpreter holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scalar {
    /// A float tensor's element (`f32`).
    F(f32),
    /// An integer tensor's element (`i64`).
    I(i64),
}

/// `value` as the interpreter stores a fill of `dtype`, or `None` for a type it cannot
/// hold.
fn scalar(value: f64, dtype: DType) -> Option<Scalar> {
    match storage(dtype)? {
        DType::I64 => Some(Scalar::I(value as i64)),
        _ => Some(Scalar::F(value as f32)),
    }
}

/// A scalar back as a fill's `f64`, if that gives the same value at run time.
fn unscalar(s: Scalar) -> Option<f64> {
    match s {
        Scalar::F(x) => Some(f64::from(x)),
        Scalar::I(i) => {
            let v = i as f64;
            // Exactly representable: converting back gives `i` again.
            (v as i64 == i && v.abs() < 9.007_199_254_740_992e15).then_some(v)
        }
    }
}

/// The binary operator of an n-ary elementwise op.
fn bin_op(op: &Op) -> Option<BinOp> {
    match op {
        Op::Add => Some(BinOp::Add),
        Op::Sub => Some(BinOp::Sub),
        Op::Mul => Some(BinOp::Mul),
        Op::Div => Some(BinOp::Div),
        _ => None,
    }
}

/// The float map of a one-input elementwise op.
fn unary_op(op: &Op) -> Option<Unary> {
    match op {
        Op::Neg => Some(Unary::Neg),
        Op::Relu => Some(Unary::Relu),
        Op::Sigmoid => Some(Unary::Sigmoid),
        Op::Tanh => Some(Unary::Tanh),
        _ => None,
    }
}

/// `a op b` by the runtime's kernel on one element; `None` where the kernel fails (an
/// integer division by zero) or the operands' types differ.
fn scalar_binary(op: BinOp, a: Scalar, b: Scalar) -> Option<Scalar> {
    let one = IxDyn(&[]);
    match (a, b) {
        (Scalar::F(x), Scalar::F(y)) => {
            let (x, y) = (ArrayD::from_elem(one.clone(), x), ArrayD::from_elem(one, y));
            let z = elementwise::binary_f32(op, &x.view(), &y.view()).ok()?;
            z.iter().next().copied().map(Scalar::F)
        }
        (Scalar::I(x), Scalar::I(y)) => {
            let (x, y) = (ArrayD::from_elem(one.clone(), x), ArrayD::from_elem(one, y));
            let z = elementwise::binary_i64(op, &x.view(), &y.view()).ok()?;
            z.iter().next().copied().map(Scalar::I)
        }
        _ => None,
    }
}

/// `fold/fill`: the value of the `fill` that node (`op` on `inputs`, giving `out`) equals.
fn fill_fold(r: &Region, op: &Op, inputs: &[ValueRef], out: &TensorType) -> Option<f64> {
    let fills: Vec<(f64, &TensorType)> = inputs
        .iter()
        .map(|v| fill_of(r, *v))
        .collect::<Option<_>>()?;
    storage(out.dtype)?;
    let scalars: Vec<Scalar> = fills
        .iter()
        .map(|(v, ty)| scalar(*v, ty.dtype))
        .collect::<Option<_>>()?;
    let result = if let Some(b) = bin_op(op) {
        // ((a op b) op c) …, as the interpreter folds n-ary sums and products.
        let (first, rest) = scalars.split_first()?;
        let mut acc = *first;
        for s in rest {
            acc = scalar_binary(b, acc, *s)?;
        }
        acc
    } else if let Some(u) = unary_op(op) {
        let [Scalar::F(x)] = scalars.as_slice() else {
            return None;
        };
        let y = elementwise::unary(u, &ArrayD::from_elem(IxDyn(&[]), *x).view());
        Scalar::F(y.iter().next().copied()?)
    } else {
        match op {
            // Moving elements of a uniform tensor keeps it uniform.
            Op::Reshape { .. } | Op::Flatten | Op::Slice { .. } => match scalars.as_slice() {
                [s] => *s,
                _ => return None,
            },
            Op::Concat { .. } => {
                let (first, rest) = scalars.split_first()?;
                if rest.iter().any(|s| !same_bits(*s, *first)) {
                    return None;
                }
                *first
            }
            _ => return None,
        }
    };
    // The fill's dtype is the output's: its stored value must read back as `result`.
    let v = unscalar(result)?;
    (scalar(v, out.dtype).is_some_and(|s| same_bits(s, result))).then_some(v)
}

/// Whether two scalars hold the same bits (so NaNs and signed zeros are told apart).
fn same_bits(a: Scalar, b: Scalar) -> bool {
    match (a, b) {
        (Scalar::F(x), Scalar::F(y)) => x.to_bits() == y.to_bits(),
        (Scalar::I(x), Scalar::I(y)) => x == y,
        _ => false,
    }
}

/// Whether `v` is a `fill` whose run-time value is `neutral` (0 or 1).
fn is_fill_of(r: &Region, v: ValueRef, neutral: f64) -> bool {
    let Some((value, ty)) = fill_of(r, v) else {
        return false;
    };
    match scalar(value, ty.dtype) {
        // `==`: a fill of −0 is a zero too (and `x + −0` is exactly `x`).
        Some(Scalar::F(x)) => f64::from(x) == neutral,
        Some(Scalar::I(i)) => i as f64 == neutral,
        None => false,
    }
}

/// The identity rules: what node (`op` on `inputs`, giving `out`) reduces to.
fn identity(
    r: &Region,
    params: &[Param],
    op: &Op,
    inputs: &[ValueRef],
    out: &TensorType,
) -> Option<(&'static str, Rewrite)> {
    let same = |v: &ValueRef| r.ty(*v) == out;
    match (op, inputs) {
        (Op::Sub, [x, z]) if is_fill_of(r, *z, 0.0) && same(x) => {
            Some(("sub_zero", Rewrite::Value(*x)))
        }
        (Op::Div, [x, o]) if is_fill_of(r, *o, 1.0) && same(x) => {
            Some(("div_one", Rewrite::Value(*x)))
        }
        (Op::Neg, [x]) => match r.node(x.node).op {
            Op::Neg => {
                let inner = *r.inputs_of(x.node).first()?;
                same(&inner).then_some(("neg_neg", Rewrite::Value(inner)))
            }
            _ => None,
        },
        (Op::Add | Op::Mul, _) => {
            let (rule, neutral) = match op {
                Op::Add => ("add_zero", 0.0),
                _ => ("mul_one", 1.0),
            };
            let kept: Vec<ValueRef> = inputs
                .iter()
                .copied()
                .filter(|v| !is_fill_of(r, *v, neutral))
                .collect();
            match kept.as_slice() {
                // All neutral: `fold/fill`'s business.
                [] => None,
                _ if kept.len() == inputs.len() => None,
                [x] => same(x).then_some((rule, Rewrite::Value(*x))),
                _ => {
                    // The remaining operands must still broadcast to exactly `out`.
                    let types: Vec<&TensorType> = kept.iter().map(|v| r.ty(*v)).collect();
                    let t = crate::passes::infer_shapes::infer(op, &types, params).ok()?;
                    (t.as_slice() == [out.clone()]).then_some((rule, Rewrite::Inputs(kept)))
                }
            }
        }
        _ => None,
    }
}

/// A constant's value as an `f32` array, when `v` is a `fill` of known shape or a `param`
/// of a fixed parameter, of at most [`MAX_FOLDED_ELEMENTS`] float elements.
fn constant(r: &Region, params: &[Param], v: ValueRef) -> Option<ArrayD<f32>> {
    let ty = r.ty(v);
    if storage(ty.dtype)? != DType::F32 {
        return None;
    }
    let shape = known_shape(ty)?;
    match &r.node(v.node).op {
        Op::Fill { value, .. } => Some(ArrayD::from_elem(IxDyn(&shape), *value as f32)),
        Op::Param(id) => {
            let p = params.get(id.0 as usize)?;
            let (ParamKind::Fixed, Some(init)) = (p.kind, &p.init) else {
                return None;
            };
            let data: Vec<f32> = init.iter().map(|x| *x as f32).collect();
            ArrayD::from_shape_vec(IxDyn(&shape), data).ok()
        }
        _ => None,
    }
}

/// The sizes of `ty` when all are known and it has at most [`MAX_FOLDED_ELEMENTS`]
/// elements.
fn known_shape(ty: &TensorType) -> Option<Vec<usize>> {
    let dims: Vec<u64> = ty
        .shape
        .dims()
        .iter()
        .map(|d| d.known())
        .collect::<Option<_>>()?;
    let mut n: u64 = 1;
    for d in &dims {
        n = n.checked_mul(*d)?;
    }
    if n > MAX_FOLDED_ELEMENTS {
        return None;
    }
    dims.into_iter().map(|d| usize::try_from(d).ok()).collect()
}

/// `fold/param`: the values of node (`op` on `inputs`, giving `out`) when every input is a
/// constant, computed by the interpreter's kernels.
fn param_fold(
    r: &Region,
    params: &[Param],
    op: &Op,
    inputs: &[ValueRef],
    out: &TensorType,
) -> Option<Vec<f64>> {
    if out.dtype != DType::F32 {
        return None;
    }
    let shape = known_shape(out)?;
    let args: Vec<ArrayD<f32>> = inputs
        .iter()
        .map(|v| constant(r, params, *v))
        .collect::<Option<_>>()?;
    let views: Vec<ndarray::ArrayViewD<f32>> = args.iter().map(|a| a.view()).collect();
    let y = if let Some(b) = bin_op(op) {
        let (first, rest) = views.split_first()?;
        if rest.is_empty() {
            return None;
        }
        let mut acc = first.to_owned();
        for v in rest {
            acc = elementwise::binary_f32(b, &acc.view(), v).ok()?;
        }
        acc
    } else if let Some(u) = unary_op(op) {
        let [x] = views.as_slice() else {
            return None;
        };
        elementwise::unary(u, x)
    } else {
        match (op, views.as_slice()) {
            (Op::Reshape { .. }, [x]) => layout::reshape(x, &shape).ok()?,
            (Op::Flatten, [x]) => layout::flatten(x).ok()?,
            (Op::Slice { axis, start, end }, [x]) => layout::slice(
                x,
                *axis,
                usize::try_from(*start).ok()?,
                usize::try_from(*end).ok()?,
            )
            .ok()?,
            (Op::Concat { axis, .. }, _) => layout::concat(&views, *axis).ok()?,
            _ => return None,
        }
    };
    if y.shape() != shape.as_slice() {
        return None;
    }
    // Row-major, as parameters are stored.
    Some(y.iter().map(|x| f64::from(*x)).collect())
}

/// Replaces node `id` by what `rw` says: its readers read the new value, and it is removed.
fn apply(r: &mut Region, params: &mut Vec<Param>, id: NodeId, rw: Rewrite) {
    let node = r.node(id).clone();
    let Some(out) = node.outputs.first().cloned() else {
        return;
    };
    let new = match rw {
        Rewrite::Value(v) => v,
        Rewrite::Fill(value) => {
            let fill = Node {
                op: Op::Fill {
                    value,
                    ty: out.clone(),
                },
                outputs: vec![out],
                name: String::new(),
                span: node.span,
                scope: node.scope,
            };
            Region::value(r.add(fill, &[]))
        }
        Rewrite::Param(values) => {
            let name = unique_param_name(params, &format!("{}/folded", node.name));
            let (kind, init, derived) = (ParamKind::Fixed, Some(values), None);
            let p = Param {
                name,
                ty: out,
                kind,
                init,
                derived,
                span: node.span,
            };
            let Some(v) = add_param(r, params, p, node.scope) else {
                return;
            };
            v
        }
        Rewrite::Derived(base, how) => {
            let name = unique_param_name(params, &base);
            let (kind, init, derived) = (ParamKind::Derived, None, Some(how));
            let p = Param {
                name,
                ty: out,
                kind,
                init,
                derived,
                span: node.span,
            };
            let Some(v) = add_param(r, params, p, node.scope) else {
                return;
            };
            v
        }
        Rewrite::Inputs(inputs) => {
            let same = Node {
                op: node.op,
                outputs: node.outputs,
                name: node.name,
                span: node.span,
                scope: node.scope,
            };
            Region::value(r.add(same, &inputs))
        }
    };
    r.replace_uses(Region::value(id), new);
    r.remove(id);
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;

/// Adds `p` to the table and a `Param` node reading it to `r`; `None` (nothing added to
/// `r`) when the table is full.
fn add_param(
    r: &mut Region,
    params: &mut Vec<Param>,
    p: Param,
    scope: crate::ir::graph::ScopeId,
) -> Option<ValueRef> {
    let pid: ParamId = push_param(params, p)?;
    param_node(r, params, pid, scope).map(Region::value)
}
