//! The reference interpreter: runs a compiled net's IR on concrete tensors, node by node,
//! in the region's topological order. It is the oracle that later passes and the JIT are
//! tested against, so it favours being plainly correct over being fast: every op is one
//! arm of one exhaustive `match` (`Interpreter::eval_node`) that calls the op's reference
//! kernel in [`super::kernels`], whose docs give its formula.
//!
//! **Checks.** Before running, the inputs are matched against the declarations and the
//! symbolic sizes bound ([`super::bind`]); every weight is checked against its parameter.
//! After each node, the shape and element type of every result are compared with the
//! node's type in the IR, evaluated with those sizes: a difference is a bug in netc
//! ([`RunError::Internal`]), reported rather than carried on.
//!
//! **Recurrences** ([`Op::Loop`]): the body region runs once per time step. Its inputs are
//! the current states, then the step input (`x[:, t]` of a scanned `[N, T, …]` sequence, or
//! the whole `[N, …]` input when `steps:` feeds it at every step); its outputs are the new
//! states, then the emitted value. The loop returns the final states, then all emitted
//! values stacked on axis 1 (`emit: all`), or the last one (`emit: last`), or nothing more
//! (`emit: state`). Parameters read in the body are the same tensors at every step.
//!
//! **Inference semantics**: dropout is the identity, batch normalisation uses the running
//! statistics.
//!
//! Values are freed as soon as their last reader has run, so memory holds only the live
//! activations (plus the weights, which are borrowed, never copied).

use super::bind::{bind_inputs, Bindings};
use super::error::RunError;
use super::kernels::elementwise::{self, BinOp, Unary};
use super::kernels::reduce::Labels;
use super::kernels::{layout, linear, reduce, spatial, KernelError};
use super::tensor::{shape_string, storage, Tensor};
use super::weights::Weights;
use crate::ir::graph::{Graph, Node, ParamId, ParamKind, Region, ValueRef};
use crate::ir::op::{Emit, Loop, Op};
use crate::ir::shape::{DType, TensorType};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::collections::BTreeMap;

/// Runs `graph` with `weights` on `inputs` (by input name) and returns its outputs by
/// output name. `weights` must hold every trainable parameter and buffer (fixed kernels
/// come from the IR); [`super::weights::load`] checks a file against the net.
pub fn run(
    graph: &Graph,
    weights: &Weights,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, RunError> {
    Interpreter::new(graph, weights)?.run(inputs)
}

/// An interpreter for one net with its weights, ready to run on any number of inputs.
pub struct Interpreter<'a> {
    graph: &'a Graph,
    /// Every parameter's values as a row-major buffer with its shape: borrowed from the
    /// weights for learned ones, owned for fixed kernels.
    params: Vec<(Vec<usize>, ParamData<'a>)>,
}

enum ParamData<'a> {
    Borrowed(&'a [f32]),
    Owned(Vec<f32>),
}

/// A value in a region's environment: a computed tensor, or a parameter (not copied).
pub(super) enum Val {
    Tensor(Tensor),
    Param(ParamId),
}

/// A borrowed view of a value.
#[derive(Clone)]
pub(crate) enum View<'v> {
    F32(ArrayViewD<'v, f32>),
    I64(ArrayViewD<'v, i64>),
}

impl View<'_> {
    pub(super) fn shape(&self) -> &[usize] {
        match self {
            View::F32(a) => a.shape(),
            View::I64(a) => a.shape(),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            View::F32(_) => DType::F32,
            View::I64(_) => DType::I64,
        }
    }

    fn f32(&self) -> Result<&ArrayViewD<'_, f32>, KernelError> {
        match self {
            View::F32(a) => Ok(a),
            View::I64(a) => Err(KernelError::Shape(format!(
                "expected a float tensor, found i64{}",
                shape_string(a.shape())
            ))),
        }
    }

    fn i64(&self) -> Result<&ArrayViewD<'_, i64>, KernelError> {
        match self {
            View::I64(a) => Ok(a),
            View::F32(a) => Err(KernelError::Shape(format!(
                "expected an integer tensor, found f32{}",
                shape_string(a.shape())
            ))),
        }
    }

    pub(crate) fn to_tensor(&self) -> Tensor {
        match self {
            View::F32(a) => Tensor::F32(a.to_owned()),
            View::I64(a) => Tensor::I64(a.to_owned()),
        }
    }
}

fn view(t: &Tensor) -> View<'_> {
    match t {
        Tensor::F32(a) => View::F32(a.view()),
        Tensor::I64(a) => View::I64(a.view()),
    }
}

/// Applies a dtype-generic kernel to a float or an integer view.
macro_rules! generic {
    ($v:expr, |$a:ident| $body:expr) => {
        match $v {
            View::F32($a) => $body.map(Tensor::F32),
            View::I64($a) => $body.map(Tensor::I64),
        }
    };
}

impl<'a> Interpreter<'a> {
    /// Prepares to run `graph`: checks that `weights` holds every trainable parameter and
    /// buffer with its shape, and unpacks the fixed kernels.
    pub fn new(graph: &'a Graph, weights: &'a Weights) -> Result<Interpreter<'a>, RunError> {
        let no_bindings = Bindings::default();
        let mut params = Vec::with_capacity(graph.params.len());
        for p in &graph.params {
            let shape = no_bindings
                .eval_shape(&p.ty.shape)
                .ok_or_else(|| RunError::Internal {
                    layer: p.name.clone(),
                    span: p.span,
                    detail: format!("parameter of symbolic shape {}", p.ty),
                })?;
            let data = match (p.kind, &p.init) {
                (ParamKind::Fixed, Some(values)) => {
                    ParamData::Owned(values.iter().map(|v| *v as f32).collect())
                }
                // Computed below, once every stored parameter is in place.
                (ParamKind::Derived, _) => ParamData::Owned(Vec::new()),
                (ParamKind::Fixed, None) => {
                    return Err(RunError::Internal {
                        layer: p.name.clone(),
                        span: p.span,
                        detail: "fixed parameter without values".into(),
                    })
                }
                (ParamKind::Trainable | ParamKind::Buffer, _) => {
                    let Some((found, data)) = weights.tensors.get(&p.name) else {
                        return Err(RunError::MissingWeight {
                            name: p.name.clone(),
                            span: p.span,
                        });
                    };
                    if *found != shape || data.len() != shape.iter().product::<usize>() {
                        return Err(RunError::WeightShape {
                            name: p.name.clone(),
                            span: p.span,
                            expected: shape,
                            found: found.clone(),
                        });
                    }
                    ParamData::Borrowed(data)
                }
            };
            if let (ParamData::Owned(v), false) = (&data, p.kind == ParamKind::Derived) {
                if v.len() != shape.iter().product::<usize>() {
                    return Err(RunError::Internal {
                        layer: p.name.clone(),
                        span: p.span,
                        detail: "fixed parameter with the wrong number of values".into(),
                    });
                }
            }
            params.push((shape, data));
        }
        let mut derived = Vec::new();
        for (i, p) in graph.params.iter().enumerate() {
            if p.kind != ParamKind::Derived {
                continue;
            }
            let id = ParamId(u32::try_from(i).unwrap_or(u32::MAX));
            let lookup = |src: ParamId| -> Option<&[f32]> {
                match &params.get(src.0 as usize)?.1 {
                    ParamData::Borrowed(d) => Some(*d),
                    ParamData::Owned(d) => Some(d.as_slice()),
                }
            };
            let values =
                super::derive::derive(graph, id, &lookup).map_err(|detail| RunError::Internal {
                    layer: p.name.clone(),
                    span: p.span,
                    detail,
                })?;
            derived.push((i, values));
        }
        for (i, values) in derived {
            if let Some(slot) = params.get_mut(i) {
                slot.1 = ParamData::Owned(values);
            }
        }
        Ok(Interpreter { graph, params })
    }

    /// Runs the net on `inputs` (by input name); returns the outputs by name.
    pub fn run(
        &self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, RunError> {
        let (ordered, bindings) = bind_inputs(self.graph, inputs)?;
        let body = &self.graph.body;
        let values = self.eval_region(body, ordered, &bindings)?;
        Ok(body
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .zip(values)
            .collect())
    }

    fn param_view(&self, id: ParamId) -> Option<ArrayViewD<'_, f32>> {
        let (shape, data) = self.params.get(id.0 as usize)?;
        let slice: &[f32] = match data {
            ParamData::Borrowed(d) => d,
            ParamData::Owned(d) => d,
        };
        ArrayViewD::from_shape(IxDyn(shape), slice).ok()
    }

    pub(super) fn view_of<'s>(&'s self, v: &'s Val) -> Option<View<'s>> {
        match v {
            Val::Tensor(t) => Some(view(t)),
            Val::Param(id) => self.param_view(*id).map(View::F32),
        }
    }

    /// Runs one region on its inputs (in input order) and returns its outputs in order.
    fn eval_region(
        &self,
        region: &Region,
        inputs: Vec<Tensor>,
        b: &Bindings,
    ) -> Result<Vec<Tensor>, RunError> {
        let order = region.topo_order();
        // How many readers each value still has; a value is dropped after its last.
        let mut readers: BTreeMap<ValueRef, usize> = BTreeMap::new();
        let mut args_of = BTreeMap::new();
        for &id in &order {
            let args = region.inputs_of(id);
            for v in &args {
                *readers.entry(*v).or_default() += 1;
            }
            args_of.insert(id, args);
        }
        for o in &region.outputs {
            *readers.entry(o.value).or_default() += 1;
        }
        let mut inputs: Vec<Option<Tensor>> = inputs.into_iter().map(Some).collect();
        let mut env: BTreeMap<ValueRef, Val> = BTreeMap::new();
        for &id in &order {
            let node = region.node(id);
            let args = args_of.remove(&id).unwrap_or_default();
            let results = {
                let mut views = Vec::with_capacity(args.len());
                for v in &args {
                    let view = env.get(v).and_then(|val| self.view_of(val));
                    views.push(view.ok_or_else(|| internal(node, "an input has no value"))?);
                }
                self.eval_node(node, &views, &mut inputs, b)?
            };
            self.check_results(node, &results, b)?;
            for (port, val) in results.into_iter().enumerate() {
                let port = u32::try_from(port).map_err(|_| internal(node, "too many outputs"))?;
                let key = ValueRef { node: id, port };
                if readers.get(&key).copied().unwrap_or(0) > 0 {
                    env.insert(key, val);
                }
            }
            for v in args {
                release(&mut readers, &mut env, v);
            }
        }
        let mut out = Vec::with_capacity(region.outputs.len());
        for o in &region.outputs {
            let last = readers.get(&o.value).copied() == Some(1);
            let t = if last {
                readers.remove(&o.value);
                env.remove(&o.value).and_then(|v| self.owned(v))
            } else {
                release(&mut readers, &mut env, o.value);
                env.get(&o.value)
                    .and_then(|v| self.view_of(v))
                    .map(|v| v.to_tensor())
            };
            out.push(t.ok_or_else(|| RunError::Internal {
                layer: o.name.clone(),
                span: self.graph.span,
                detail: "a region output has no value".into(),
            })?);
        }
        Ok(out)
    }

    pub(super) fn owned(&self, v: Val) -> Option<Tensor> {
        match v {
            Val::Tensor(t) => Some(t),
            Val::Param(id) => self.param_view(id).map(|a| Tensor::F32(a.to_owned())),
        }
    }

    /// Compares each result with the node's type in the IR.
    pub(super) fn check_results(
        &self,
        node: &Node,
        results: &[Val],
        b: &Bindings,
    ) -> Result<(), RunError> {
        if results.len() != node.outputs.len() {
            return Err(internal(node, "wrong number of results"));
        }
        for (val, ty) in results.iter().zip(&node.outputs) {
            let v = self
                .view_of(val)
                .ok_or_else(|| internal(node, "a parameter has no value"))?;
            let want = b.eval_shape(&ty.shape);
            if want.as_deref() != Some(v.shape()) || storage(ty.dtype) != Some(v.dtype()) {
                return Err(internal(
                    node,
                    &format!(
                        "computed {}{} where the IR says {ty}",
                        v.dtype().as_str(),
                        shape_string(v.shape())
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Evaluates one node: every op of the IR is one arm, calling its reference kernel.
    pub(super) fn eval_node(
        &self,
        node: &Node,
        args: &[View<'_>],
        region_inputs: &mut [Option<Tensor>],
        b: &Bindings,
    ) -> Result<Vec<Val>, RunError> {
        let kerr = |e: KernelError| RunError::from_kernel(e, &node.name, node.span);
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| kerr(KernelError::Shape(format!("input {i} is missing"))))
        };
        let f = |i: usize| arg(i).and_then(|v| v.f32().map_err(kerr));
        let opt_f = |i: usize| args.get(i).map(|v| v.f32().map_err(kerr)).transpose();
        let one = |r: Result<Tensor, KernelError>| r.map(|t| vec![Val::Tensor(t)]).map_err(kerr);
        let float = |r: Result<ArrayD<f32>, KernelError>| one(r.map(Tensor::F32));
        match &node.op {
            Op::Input { index, .. } => {
                let t = region_inputs
                    .get_mut(*index)
                    .and_then(Option::take)
                    .ok_or_else(|| internal(node, "no value for this input"))?;
                Ok(vec![Val::Tensor(t)])
            }
            Op::Param(id) => Ok(vec![Val::Param(*id)]),
            Op::Fill { value, ty } => one(fill(*value, ty, b)),
            Op::Conv2d(c) => float(spatial::conv2d(f(0)?, f(1)?, opt_f(2)?, c)),
            Op::MaxPool2d(p) => float(spatial::max_pool2d(f(0)?, p)),
            Op::AvgPool2d(p) => float(spatial::avg_pool2d(f(0)?, p)),
            Op::GlobalAvgPool => float(spatial::global_avg_pool(f(0)?)),
            Op::GlobalMaxPool => float(spatial::global_max_pool(f(0)?)),
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } => float(spatial::lrn(f(0)?, *size, *alpha, *beta, *k)),
            Op::BatchNorm { eps } => {
                float(spatial::batch_norm(f(0)?, f(1)?, f(2)?, f(3)?, f(4)?, *eps))
            }
            Op::Dense => float(linear::dense(f(0)?, f(1)?, opt_f(2)?)),
            Op::MatMul => float(linear::matmul(f(0)?, f(1)?)),
            Op::Embed => {
                let ids = arg(0)?.i64().map_err(kerr)?;
                float(linear::embed(ids, f(1)?))
            }
            Op::Flatten => one(generic!(arg(0)?, |a| layout::flatten(a))),
            // (n, c, h, w) → (n, (h·W + w)·C + c): flatten the [N, H, W, C] view.
            Op::FlattenChannelsLast => {
                if arg(0)?.shape().len() != 4 {
                    return Err(internal(node, "channels-last flatten of a non-4-D value"));
                }
                one(generic!(arg(0)?, |a| layout::flatten(
                    &a.view().permuted_axes(IxDyn(&[0, 2, 3, 1]))
                )))
            }
            Op::Reshape { shape } => {
                let dims = b
                    .eval_shape(&crate::ir::shape::Shape(shape.clone()))
                    .ok_or_else(|| internal(node, "reshape to an unbound size"))?;
                one(generic!(arg(0)?, |a| layout::reshape(a, &dims)))
            }
            Op::Concat { axis, .. } => one(concat(args, *axis)),
            Op::Slice { axis, start, end } => {
                let (s, e) = (to_usize(*start), to_usize(*end));
                one(generic!(arg(0)?, |a| layout::slice(a, *axis, s, e)))
            }
            Op::Add => one(fold(BinOp::Add, args)),
            Op::Sub => one(fold(BinOp::Sub, args)),
            Op::Mul => one(fold(BinOp::Mul, args)),
            Op::Div => one(fold(BinOp::Div, args)),
            Op::Neg => float(Ok(elementwise::unary(Unary::Neg, f(0)?))),
            Op::Relu => float(Ok(elementwise::unary(Unary::Relu, f(0)?))),
            Op::Sigmoid => float(Ok(elementwise::unary(Unary::Sigmoid, f(0)?))),
            Op::Tanh => float(Ok(elementwise::unary(Unary::Tanh, f(0)?))),
            Op::Softmax { axis } => float(reduce::softmax(f(0)?, *axis)),
            Op::LogSoftmax { axis } => float(reduce::log_softmax(f(0)?, *axis)),
            // A change of storage order only: the logical value is the input.
            Op::Relayout { .. } => Ok(vec![Val::Tensor(arg(0)?.to_tensor())]),
            // Inference: dropout passes its input through unchanged.
            Op::Dropout { .. } => Ok(vec![Val::Tensor(arg(0)?.to_tensor())]),
            Op::Mean { axis } => match arg(0)? {
                View::F32(a) => float(reduce::mean_f32(a, *axis)),
                View::I64(a) => float(reduce::mean_i64(a, *axis)),
            },
            Op::Sum { axis } => match arg(0)? {
                View::F32(a) => float(reduce::sum_f32(a, *axis)),
                View::I64(a) => one(reduce::sum_i64(a, *axis).map(Tensor::I64)),
            },
            Op::SoftmaxCrossEntropy => {
                let labels = match arg(1)? {
                    View::I64(a) => Labels::Classes(a.clone()),
                    View::F32(a) => Labels::Probabilities(a.clone()),
                };
                float(reduce::softmax_cross_entropy(f(0)?, &labels))
            }
            Op::Mse => float(reduce::mse(f(0)?, f(1)?)),
            Op::Loop(l) => self.eval_loop(node, l, args, b),
            // A group means its body inlined: run it as a region of its own.
            Op::Group(g) => {
                let inputs: Vec<Tensor> = args.iter().map(View::to_tensor).collect();
                let outs = self.eval_region(&g.body, inputs, b)?;
                Ok(outs.into_iter().map(Val::Tensor).collect())
            }
        }
    }

    /// Runs a recurrence (see the module docs).
    fn eval_loop(
        &self,
        node: &Node,
        l: &Loop,
        args: &[View<'_>],
        b: &Bindings,
    ) -> Result<Vec<Val>, RunError> {
        let kerr = |e: KernelError| RunError::from_kernel(e, &node.name, node.span);
        if args.len() != l.states + 1 {
            return Err(internal(
                node,
                "a loop needs its states and one sequence input",
            ));
        }
        let seq = &args[l.states];
        let steps = b
            .eval_dim(&l.steps)
            .ok_or_else(|| internal(node, "the number of steps is unbound"))?;
        if l.scan && seq.shape().get(1) != Some(&steps) {
            return Err(internal(node, "the sequence length differs from the steps"));
        }
        let mut states: Vec<Tensor> = args[..l.states].iter().map(View::to_tensor).collect();
        let mut emitted = Vec::new();
        for t in 0..steps {
            let x = if l.scan {
                generic!(seq, |a| layout::step(a, t)).map_err(kerr)?
            } else {
                seq.to_tensor()
            };
            let mut step_inputs = std::mem::take(&mut states);
            step_inputs.push(x);
            let mut outs = self.eval_region(&l.body, step_inputs, b)?;
            if l.emit != Emit::State {
                let e = outs
                    .pop()
                    .ok_or_else(|| internal(node, "the body emits nothing"))?;
                if l.emit == Emit::Last {
                    emitted.clear();
                }
                emitted.push(e);
            }
            if outs.len() != l.states {
                return Err(internal(
                    node,
                    "the body returns the wrong number of states",
                ));
            }
            states = outs;
        }
        let mut results: Vec<Val> = states.into_iter().map(Val::Tensor).collect();
        match l.emit {
            Emit::All => {
                let ty = node
                    .outputs
                    .get(l.states)
                    .ok_or_else(|| internal(node, "no type for the emitted values"))?;
                results.push(Val::Tensor(stack(emitted, ty, b).map_err(kerr)?));
            }
            Emit::Last => {
                let last = emitted.pop().ok_or_else(|| RunError::EmptySequence {
                    layer: node.name.clone(),
                    span: node.span,
                })?;
                results.push(Val::Tensor(last));
            }
            Emit::State => {}
        }
        Ok(results)
    }
}

fn release(
    readers: &mut BTreeMap<ValueRef, usize>,
    env: &mut BTreeMap<ValueRef, Val>,
    v: ValueRef,
) {
    if let Some(n) = readers.get_mut(&v) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            readers.remove(&v);
            env.remove(&v);
        }
    }
}

pub(super) fn internal(node: &Node, detail: &str) -> RunError {
    RunError::Internal {
        layer: if node.name.is_empty() {
            node.op.name().to_string()
        } else {
            node.name.clone()
        },
        span: node.span,
        detail: detail.to_string(),
    }
}

fn to_usize(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// A tensor of type `ty` (its sizes evaluated) with every element `value`.
fn fill(value: f64, ty: &TensorType, b: &Bindings) -> Result<Tensor, KernelError> {
    let shape = b
        .eval_shape(&ty.shape)
        .ok_or_else(|| KernelError::Shape(format!("fill of unbound type {ty}")))?;
    match storage(ty.dtype) {
        Some(DType::I64) => Ok(Tensor::I64(ArrayD::from_elem(IxDyn(&shape), value as i64))),
        Some(_) => Ok(Tensor::F32(ArrayD::from_elem(IxDyn(&shape), value as f32))),
        None => Err(KernelError::Shape(format!("fill of type {ty}"))),
    }
}

/// Concatenation of same-typed inputs.
fn concat(args: &[View<'_>], axis: usize) -> Result<Tensor, KernelError> {
    match args.first() {
        Some(View::F32(_)) => {
            let v: Result<Vec<ArrayViewD<f32>>, _> =
                args.iter().map(|a| a.f32().cloned()).collect();
            layout::concat(&v?, axis).map(Tensor::F32)
        }
        Some(View::I64(_)) => {
            let v: Result<Vec<ArrayViewD<i64>>, _> =
                args.iter().map(|a| a.i64().cloned()).collect();
            layout::concat(&v?, axis).map(Tensor::I64)
        }
        None => Err(KernelError::Shape("concat of nothing".into())),
    }
}

/// `((a op b) op c) …`: n-ary sums and products fold left; `sub` and `div` have two
/// inputs, so the fold is the operation itself.
fn fold(op: BinOp, args: &[View<'_>]) -> Result<Tensor, KernelError> {
    let (first, rest) = args
        .split_first()
        .ok_or_else(|| KernelError::Shape("an elementwise op without inputs".into()))?;
    if rest.is_empty() {
        return Err(KernelError::Shape(
            "an elementwise op with one input".into(),
        ));
    }
    let mut acc = first.to_tensor();
    for b in rest {
        acc = match (&acc, b) {
            (Tensor::F32(x), View::F32(y)) => {
                Tensor::F32(elementwise::binary_f32(op, &x.view(), y)?)
            }
            (Tensor::I64(x), View::I64(y)) => {
                Tensor::I64(elementwise::binary_i64(op, &x.view(), y)?)
            }
            _ => {
                return Err(KernelError::Shape(
                    "operands of different element types".into(),
                ))
            }
        };
    }
    Ok(acc)
}

/// The per-step values stacked on axis 1; for zero steps, an empty tensor of type `ty`.
fn stack(emitted: Vec<Tensor>, ty: &TensorType, b: &Bindings) -> Result<Tensor, KernelError> {
    if emitted.is_empty() {
        return fill(0.0, ty, b);
    }
    let mut f = Vec::new();
    let mut i = Vec::new();
    for t in emitted {
        match t {
            Tensor::F32(a) => f.push(a),
            Tensor::I64(a) => i.push(a),
        }
    }
    match (f.is_empty(), i.is_empty()) {
        (false, true) => layout::stack_steps(&f).map(Tensor::F32),
        (true, false) => layout::stack_steps(&i).map(Tensor::I64),
        _ => Err(KernelError::Shape(
            "steps emitted different element types".into(),
        )),
    }
}

#[cfg(test)]
#[path = "interp_tests.rs"]
mod tests;
