//! Lowering of the IR to compiled functions: one kernel (a small Cranelift function) per
//! node that computes something, and one driver, `main`, that calls them in the
//! schedule's order, each recurrence a run-time loop over its steps around the kernels of
//! its body (and the copies that feed and carry it). Every op of the IR is one arm of [`Lowerer::node`]; ops that
//! compute nothing at run time (inputs, parameters, constants, in-place concats) emit
//! nothing.

use super::abi::{self, Ctx};
use super::contraction::{self, Contraction, Kind};
use super::emit::{Bound, Kb, Operand, Src};
use super::expr::Expr;
use super::frame::region_at;
use super::program::{Packing, Program};
use super::{copy, elementwise, reduce, spatial, CodegenError, CodegenOptions, KernelInfo};
use crate::ir::graph::{Graph, NodeId, Region, ValueRef};
use crate::ir::op::{Emit, GroupKind, Layout, Op};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::BTreeMap;

/// The body of a kernel made by [`Lowerer::simple`]: its bound inputs and output.
type KernelBody<'x> = dyn FnMut(&mut Kb<'_>, &[Bound], &Bound) -> Result<(), CodegenError> + 'x;

/// The state of one compile.
pub struct Lowerer<'g> {
    /// The net.
    pub graph: &'g Graph,
    /// The tables' layout.
    pub program: Program,
    /// The JIT module functions are defined in.
    pub module: JITModule,
    /// Options.
    pub opts: CodegenOptions,
    /// Every kernel, by index.
    pub kernels: Vec<KernelInfo>,
    /// The CLIF text of every function, when kept.
    pub clif: Vec<String>,
    /// Bytes of machine code emitted so far.
    pub code_bytes: usize,
    /// The imported host GEMM entry.
    gemm: Option<FuncId>,
    /// The imported profiling clock (`netc_profile_tick`).
    tick: Option<FuncId>,
    /// Whether the next function may call the GEMM entry.
    next_calls_gemm: bool,
    /// The algorithm the next function uses, for `--emit kernels`.
    next_algorithm: String,
    /// The function of each kernel, by index.
    kernel_ids: Vec<FuncId>,
    /// The multiply-adds of the node being lowered (net body only).
    next_macs: Option<crate::ir::shape::Poly>,
    fbc: FunctionBuilderContext,
}

/// The signature of every compiled function: `(ctx: i64, t: i64)`.
pub fn signature(module: &JITModule) -> Signature {
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig
}

impl<'g> Lowerer<'g> {
    /// A lowerer for `graph` into `module`.
    pub fn new(
        graph: &'g Graph,
        program: Program,
        mut module: JITModule,
        opts: CodegenOptions,
    ) -> Lowerer<'g> {
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(types::I64));
        let gemm = module
            .declare_function(super::jit::GEMM_SYMBOL, Linkage::Import, &sig)
            .ok();
        let mut tick_sig = module.make_signature();
        tick_sig.params.push(AbiParam::new(types::I64));
        tick_sig.params.push(AbiParam::new(types::I64));
        let tick = module
            .declare_function(super::jit::TICK_SYMBOL, Linkage::Import, &tick_sig)
            .ok();
        Lowerer {
            graph,
            program,
            module,
            opts,
            kernels: Vec::new(),
            clif: Vec::new(),
            code_bytes: 0,
            gemm,
            tick,
            next_calls_gemm: false,
            next_algorithm: String::new(),
            kernel_ids: Vec::new(),
            next_macs: None,
            fbc: FunctionBuilderContext::new(),
        }
    }

    fn operand(&self, key: usize, r: &Region, v: ValueRef) -> Result<Operand, CodegenError> {
        self.program.operand(self.graph, key, r, v)
    }

    /// Defines one function named `name` whose body `emit` builds; returns its id.
    fn function(
        &mut self,
        name: &str,
        layer: &str,
        span: crate::diagnostics::Span,
        emit: &mut dyn FnMut(&mut Kb<'_>) -> Result<(), CodegenError>,
    ) -> Result<FuncId, CodegenError> {
        let index = self.kernels.len();
        if self.next_algorithm.is_empty() {
            self.next_algorithm = default_algorithm(name).to_string();
        }
        let sig = signature(&self.module);
        let full = format!("k{index}_{name}");
        let id = self
            .module
            .declare_function(&full, Linkage::Local, &sig)
            .map_err(CodegenError::module)?;
        let mut ctx = self.module.make_context();
        ctx.func.signature = sig;
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut self.fbc);
            let cfg = self.module.target_config();
            let mut kb = Kb::new(
                b,
                cfg,
                i64::try_from(index).unwrap_or(i64::MAX),
                self.opts.debug_bounds,
            );
            if std::mem::take(&mut self.next_calls_gemm) {
                if let Some(g) = self.gemm {
                    kb.gemm = Some(self.module.declare_func_in_func(g, kb.b.func));
                }
            }
            emit(&mut kb)?;
            kb.finish();
        }
        if self.opts.keep_clif {
            self.clif
                .push(format!("; {full}: {layer}\n{}", ctx.func.display()));
        }
        self.module
            .define_function(id, &mut ctx)
            .map_err(|e| CodegenError::Cranelift {
                detail: format!("{full} ({layer}): {e:?}"),
            })?;
        self.code_bytes += ctx
            .compiled_code()
            .map_or(0, |c| c.code_info().total_size as usize);
        self.kernel_ids.push(id);
        self.kernels.push(KernelInfo {
            name: full,
            layer: layer.to_string(),
            span,
            algorithm: std::mem::take(&mut self.next_algorithm),
            macs: self.next_macs.take(),
        });
        Ok(id)
    }

    /// Lowers region `key` (whose IR is `r`): its kernels, and its driver when `driver`.
    /// Returns the driver's id, or the calls in order for an inlined body.
    pub fn region(&mut self, key: usize) -> Result<Vec<Call>, CodegenError> {
        let path = self.program.regions[key].path.clone();
        let graph = self.graph;
        let r = region_at(&graph.body, &path)?;
        let mut calls = Vec::new();
        for id in r.topo_order() {
            calls.extend(self.node(key, r, id)?);
        }
        Ok(calls)
    }

    /// Emits the driver of the net's body: `main(ctx, 0)` calls every kernel in order.
    pub fn main(&mut self, calls: &[Call]) -> Result<FuncId, CodegenError> {
        let sig = signature(&self.module);
        let id = self
            .module
            .declare_function("main", Linkage::Local, &sig)
            .map_err(CodegenError::module)?;
        let mut ctx = self.module.make_context();
        ctx.func.signature = sig;
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut self.fbc);
            let cfg = self.module.target_config();
            let mut kb = Kb::new(b, cfg, -1, false);
            let mut refs = BTreeMap::new();
            let tick = match (self.opts.profile, self.tick) {
                (true, Some(t)) => Some(self.module.declare_func_in_func(t, kb.b.func)),
                _ => None,
            };
            let index: BTreeMap<FuncId, i64> = self
                .kernel_ids
                .iter()
                .enumerate()
                .map(|(i, f)| (*f, i as i64))
                .collect();
            let mut cx = CallCx {
                module: &mut self.module,
                refs: &mut refs,
                tick,
                index: &index,
            };
            emit_calls(&mut kb, &mut cx, calls, None)?;
            kb.finish();
        }
        if self.opts.keep_clif {
            self.clif.push(format!("; main\n{}", ctx.func.display()));
        }
        self.module
            .define_function(id, &mut ctx)
            .map_err(|e| CodegenError::Cranelift {
                detail: format!("main: {e:?}"),
            })?;
        self.code_bytes += ctx
            .compiled_code()
            .map_or(0, |c| c.code_info().total_size as usize);
        Ok(id)
    }

    /// The kernels (and loop structure) of one node.
    fn node(&mut self, key: usize, r: &Region, id: NodeId) -> Result<Vec<Call>, CodegenError> {
        let node = r.node(id);
        let layer = if node.name.is_empty() {
            node.op.name().to_string()
        } else {
            node.name.clone()
        };
        let span = node.span;
        self.next_macs = if key == 0 && !matches!(node.op, Op::Loop(_)) {
            r.node_macs(id)
        } else {
            None
        };
        let inputs = r.inputs_of(id);
        let ins: Vec<Operand> = inputs
            .iter()
            .map(|v| self.operand(key, r, *v))
            .collect::<Result<_, _>>()?;
        let outs: Vec<Operand> = (0..node.outputs.len())
            .map(|p| {
                self.operand(
                    key,
                    r,
                    ValueRef {
                        node: id,
                        port: p as u32,
                    },
                )
            })
            .collect::<Result<_, _>>()?;
        let name = node.op.name();
        match &node.op {
            Op::Input { .. } | Op::Param(_) | Op::Fill { .. } => Ok(Vec::new()),
            Op::Concat { in_place: true, .. } => Ok(Vec::new()),
            Op::Concat {
                axis,
                in_place: false,
            } => {
                let axis = *axis;
                // Offsets of each input along the axis: known, or summed at run time.
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    let mut off = kb.int(0);
                    for x in xs {
                        copy_at(kb, x, out, axis, off)?;
                        off = kb.b.ins().iadd(off, x.dims[axis]);
                    }
                    Ok(())
                })
            }
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Neg
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Dropout { .. }
            | Op::Relayout { .. }
            | Op::BatchNorm { .. } => {
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    let leaves: BTreeMap<ValueRef, Bound> =
                        inputs.iter().copied().zip(xs.iter().cloned()).collect();
                    let dst = [out.clone()];
                    elementwise::lower(kb, r, leaves, &[Region::value(id)], &dst, &layer)
                })
            }
            Op::Slice { axis, start, .. } => {
                let (axis, start) = (*axis, *start as i64);
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    copy::shifted(kb, &xs[0], out, axis, start, false)
                })
            }
            Op::Flatten | Op::Reshape { .. } | Op::FlattenChannelsLast => {
                let channels_last = matches!(node.op, Op::FlattenChannelsLast);
                let rank = ins[0].dims.len();
                let order: Vec<usize> = if channels_last && rank == 4 {
                    vec![0, 2, 3, 1]
                } else {
                    (0..rank).collect()
                };
                let src_layout = r.layout(super::program::concat_root(r, inputs[0]));
                let src_dense = self.dense(r, inputs[0], &ins[0])
                    && if rank == 4 {
                        (src_layout == Layout::Nhwc) == channels_last
                    } else {
                        !channels_last
                    };
                let dst_dense = self.dense(r, Region::value(id), &outs[0])
                    && (outs[0].dims.len() != 4 || r.layout(Region::value(id)) == Layout::Nchw);
                let flat = src_dense && dst_dense;
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    copy::linear(kb, &xs[0], out, &order, flat)
                })
            }
            Op::Embed => self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                copy::embed(kb, &xs[0], &xs[1], out)
            }),
            Op::Conv2d(_) | Op::Dense | Op::MatMul => {
                let leaves: Vec<ValueRef> = inputs.clone();
                let f = self.contraction(key, r, id, r, id, &leaves, &ins, &outs, &layer)?;
                Ok(vec![Call::Kernel(f)])
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let max = matches!(node.op, Op::MaxPool2d(_));
                let attrs = p.clone();
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    let x = &xs[0];
                    let mut expr = Expr::new(r, BTreeMap::from([(inputs[0], x.clone())]), &layer);
                    let mut pool = spatial::Pool {
                        max,
                        attrs: attrs.clone(),
                        input: inputs[0],
                        input_dims: x.dims.clone(),
                        value: Region::value(id),
                        expr: &mut expr,
                        outputs: vec![(Region::value(id), out.clone())],
                    };
                    spatial::pool(kb, &mut pool)
                })
            }
            Op::GlobalAvgPool | Op::GlobalMaxPool => {
                let max = matches!(node.op, Op::GlobalMaxPool);
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    spatial::global_pool(kb, &xs[0], out, max)
                })
            }
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } => {
                let (size, alpha, beta, k) = (*size, *alpha, *beta, *k);
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    spatial::lrn(kb, &xs[0], out, size, alpha, beta, k)
                })
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                let log = matches!(node.op, Op::LogSoftmax { .. });
                let axis = *axis;
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    reduce::softmax(kb, &xs[0], out, axis, log)
                })
            }
            Op::Mean { axis } | Op::Sum { axis } => {
                let mean = matches!(node.op, Op::Mean { .. });
                let axis = *axis;
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    reduce::mean_sum(kb, &xs[0], out, axis, mean)
                })
            }
            Op::SoftmaxCrossEntropy => {
                self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                    reduce::cross_entropy(kb, &xs[0], &xs[1], out)
                })
            }
            Op::Mse => self.simple(name, &layer, span, &ins, &outs, &mut |kb, xs, out| {
                reduce::mse(kb, &xs[0], &xs[1], out)
            }),
            Op::Group(g) => self.group(key, r, id, g, &ins, &outs, &layer),
            Op::Loop(l) => self.recurrence(key, r, id, l, &ins, &outs, &layer),
        }
    }

    /// One kernel that binds the operands `ins` and the first of `outs` and emits `body`
    /// (the ops whose lowering is one call).
    #[allow(clippy::too_many_arguments)] // The kernel's name, layer and operands.
    fn simple(
        &mut self,
        name: &str,
        layer: &str,
        span: crate::diagnostics::Span,
        ins: &[Operand],
        outs: &[Operand],
        body: &mut KernelBody<'_>,
    ) -> Result<Vec<Call>, CodegenError> {
        let out = outs
            .first()
            .ok_or_else(|| CodegenError::internal(format!("`{name}` without outputs")))?;
        let f = self.function(name, layer, span, &mut |kb| {
            let xs = bind_all(kb, ins);
            let o = kb.bind(out);
            body(kb, &xs, &o)
        })?;
        Ok(vec![Call::Kernel(f)])
    }

    /// Whether value `v` (operand `o`) is a whole buffer, dense in its layout's order.
    fn dense(&self, r: &Region, v: ValueRef, o: &Operand) -> bool {
        match o.src {
            Src::Slot(_) => super::program::concat_root(r, v) == v,
            Src::Param { .. } => true,
            Src::Const(_) => false,
        }
    }

    #[allow(clippy::too_many_arguments)] // The node, its region and its operands.
    fn group(
        &mut self,
        key: usize,
        r: &Region,
        id: NodeId,
        g: &crate::ir::op::Group,
        ins: &[Operand],
        outs: &[Operand],
        layer: &str,
    ) -> Result<Vec<Call>, CodegenError> {
        let body = &g.body;
        let span = r.node(id).span;
        // Leaves: the body's inputs are the group's operands; its parameters are read
        // from the table.
        let mut leaf_ops: Vec<(ValueRef, Operand)> = Vec::new();
        for (i, bid) in body.inputs.iter().enumerate() {
            let o = ins
                .get(i)
                .ok_or_else(|| CodegenError::internal("a group input without an operand".into()))?;
            leaf_ops.push((Region::value(*bid), o.clone()));
        }
        for bid in body.node_ids() {
            if let Op::Param(_) = body.node(bid).op {
                let v = Region::value(bid);
                leaf_ops.push((v, self.program.operand(self.graph, key, body, v)?));
            }
        }
        let outputs: Vec<ValueRef> = body.outputs.iter().map(|o| o.value).collect();
        match g.kind {
            GroupKind::Elementwise => {
                let f = self.function("group_elementwise", layer, span, &mut |kb| {
                    let leaves = leaf_ops
                        .iter()
                        .map(|(v, o)| (*v, kb.bind(o)))
                        .collect::<BTreeMap<_, _>>();
                    let dsts = bind_all(kb, outs);
                    elementwise::lower(kb, body, leaves, &outputs, &dsts, layer)
                })?;
                Ok(vec![Call::Kernel(f)])
            }
            GroupKind::Contraction => {
                let c = body
                    .node_ids()
                    .into_iter()
                    .find(|n| matches!(body.node(*n).op, Op::Conv2d(_) | Op::Dense | Op::MatMul))
                    .ok_or_else(|| {
                        CodegenError::internal("a contraction group without one".into())
                    })?;
                let leaves: Vec<ValueRef> = leaf_ops.iter().map(|(v, _)| *v).collect();
                let all: Vec<Operand> = leaf_ops.iter().map(|(_, o)| o.clone()).collect();
                let _ = key;
                let f =
                    self.contraction_group(body, c, &leaves, &all, &outputs, outs, layer, span)?;
                Ok(vec![Call::Kernel(f)])
            }
            GroupKind::Pool => {
                let p = body
                    .node_ids()
                    .into_iter()
                    .find(|n| matches!(body.node(*n).op, Op::MaxPool2d(_) | Op::AvgPool2d(_)))
                    .ok_or_else(|| CodegenError::internal("a pool group without a pool".into()))?;
                let pnode = body.node(p);
                let (max, attrs) = match &pnode.op {
                    Op::MaxPool2d(a) => (true, a.clone()),
                    Op::AvgPool2d(a) => (false, a.clone()),
                    _ => return Err(CodegenError::internal("not a pool".into())),
                };
                let pin = *body
                    .inputs_of(p)
                    .first()
                    .ok_or_else(|| CodegenError::internal("a pool without input".into()))?;
                // The sizes of the pooled map are those of the group's input it reads
                // through the activation: the first group input of 4 axes.
                let f = self.function("group_pool", layer, span, &mut |kb| {
                    let leaves = leaf_ops
                        .iter()
                        .map(|(v, o)| (*v, kb.bind(o)))
                        .collect::<BTreeMap<_, _>>();
                    let input_dims = leaves
                        .values()
                        .find(|b| b.rank() == 4)
                        .map(|b| b.dims.clone())
                        .ok_or_else(|| {
                            CodegenError::internal("a pool group without a map".into())
                        })?;
                    let dsts = bind_all(kb, outs);
                    let mut expr = Expr::new(body, leaves, layer);
                    let mut pool = spatial::Pool {
                        max,
                        attrs: attrs.clone(),
                        input: pin,
                        input_dims,
                        value: Region::value(p),
                        expr: &mut expr,
                        outputs: outputs.iter().copied().zip(dsts).collect(),
                    };
                    spatial::pool(kb, &mut pool)
                })?;
                Ok(vec![Call::Kernel(f)])
            }
        }
    }

    /// A standalone contraction node: its inputs are the leaves.
    #[allow(clippy::too_many_arguments)] // The node, its region and its operands.
    fn contraction(
        &mut self,
        _key: usize,
        r: &Region,
        _id0: NodeId,
        body: &Region,
        c: NodeId,
        leaves: &[ValueRef],
        ins: &[Operand],
        outs: &[Operand],
        layer: &str,
    ) -> Result<FuncId, CodegenError> {
        let outputs = vec![Region::value(c)];
        let span = r.node(c).span;
        self.contraction_group(body, c, leaves, ins, &outputs, outs, layer, span)
    }

    /// A contraction `c` of region `body` with its epilogue computing `outputs`.
    #[allow(clippy::too_many_arguments)] // The contraction, its leaves and outputs.
    fn contraction_group(
        &mut self,
        body: &Region,
        c: NodeId,
        leaves: &[ValueRef],
        leaf_ops: &[Operand],
        outputs: &[ValueRef],
        outs: &[Operand],
        layer: &str,
        span: crate::diagnostics::Span,
    ) -> Result<FuncId, CodegenError> {
        let cnode = body.node(c);
        let cin = body.inputs_of(c);
        let find = |v: ValueRef| -> Result<Operand, CodegenError> {
            leaves
                .iter()
                .position(|l| *l == v)
                .and_then(|i| leaf_ops.get(i).cloned())
                .ok_or_else(|| CodegenError::Unsupported {
                    layer: layer.to_string(),
                    what: "a contraction whose operand is computed inside its group".into(),
                })
        };
        let x = find(cin[0])?;
        let mut w = find(cin[1])?;
        let bias = if cin.len() > 2 && !matches!(cnode.op, Op::MatMul) {
            Some(find(cin[2])?)
        } else {
            None
        };
        // The host GEMM engine, where it applies.
        let f32s = [&x, &w].iter().all(|o| o.elem == super::emit::Elem::F32);
        let gemm_ok = !self.opts.debug_bounds
            && !self.opts.portable_contractions
            && f32s
            && matches!(w.src, Src::Param { .. })
            && match &cnode.op {
                // (Also for few output channels, as LeNet's 6: the loop nest measured
                // 2x slower there than the engine's padded 32-wide panels.)
                Op::Conv2d(a) => a.groups == 1 && x.dims.len() == 4,
                Op::Dense => x.dims.len() >= 2,
                _ => false,
            };
        if gemm_ok {
            return self.gemm_contraction(
                body,
                c,
                &all_leaves_of(leaves, leaf_ops),
                x,
                w,
                bias,
                outputs,
                outs,
                layer,
                span,
            );
        }
        // Weights that are parameters are read from a packed copy.
        let kind = match &cnode.op {
            Op::Conv2d(a) => {
                let packed = self.pack(&mut w, Packing::ConvTaps);
                Kind::Conv {
                    attrs: a.clone(),
                    packed,
                }
            }
            Op::Dense => {
                let packed = self.pack(&mut w, Packing::Transpose);
                Kind::Dense { packed }
            }
            _ => Kind::MatMul,
        };
        let name = cnode.op.name();
        let value = Region::value(c);
        let all_leaves: Vec<(ValueRef, Operand)> = leaves
            .iter()
            .copied()
            .zip(leaf_ops.iter().cloned())
            .collect();
        self.function(name, layer, span, &mut |kb| {
            let lv = all_leaves
                .iter()
                .map(|(v, o)| (*v, kb.bind(o)))
                .collect::<BTreeMap<_, _>>();
            let xb = kb.bind(&x);
            let wb = kb.bind(&w);
            let bb = bias.as_ref().map(|b| kb.bind(b));
            let dsts = bind_all(kb, outs);
            let mut expr = Expr::new(body, lv, layer);
            let mut con = Contraction {
                kind: kind.clone(),
                x: xb,
                w: wb,
                bias: bb,
                value,
                expr: &mut expr,
                outputs: outputs.iter().copied().zip(dsts).collect(),
            };
            contraction::lower(kb, &mut con)
        })
    }

    /// A contraction through the host GEMM engine ([`super::gemm_call`]).
    #[allow(clippy::too_many_arguments)] // The contraction, its leaves and outputs.
    fn gemm_contraction(
        &mut self,
        body: &Region,
        c: NodeId,
        leaves: &[(ValueRef, Operand)],
        x: Operand,
        w: Operand,
        bias: Option<Operand>,
        outputs: &[ValueRef],
        outs: &[Operand],
        layer: &str,
        span: crate::diagnostics::Span,
    ) -> Result<FuncId, CodegenError> {
        let cnode = body.node(c);
        let Src::Param { index, .. } = w.src else {
            return Err(CodegenError::internal(
                "a GEMM weight that is not a parameter".into(),
            ));
        };
        let pid = crate::ir::graph::ParamId(u32::try_from(index).unwrap_or(u32::MAX));
        let t = self.program.packed_param(self.graph, pid, Packing::Gemm);
        let shape = self.program.packed[t - self.graph.params.len()].2.clone();
        let (k, n) = match shape.as_slice() {
            [k, n] => (*k as i64, *n as i64),
            _ => return Err(CodegenError::internal("a GEMM weight of rank ≠ 2".into())),
        };
        // The engine applies the bias and a ReLU in registers: a group computing only
        // those writes straight into its output.
        let value = Region::value(c);
        let bias_fused = bias
            .as_ref()
            .is_none_or(|b| matches!(b.src, Src::Param { .. }));
        let direct = match outputs {
            [v] if bias_fused && *v == value => Some(false),
            [v] if bias_fused
                && matches!(body.node(v.node).op, Op::Relu)
                && body.inputs_of(v.node) == [value] =>
            {
                Some(true)
            }
            _ => None,
        };
        let plan = super::gemm_call::GemmPlan {
            packed: t,
            mb: super::gemm_call::block_rows(k),
            k,
            n,
            direct,
        };
        let need = super::gemm_call::scratch_elems(k, n) as u64 * 4;
        self.program.scratch_bytes = self.program.scratch_bytes.max(need);
        let scratch_meta = self.program.scratch_meta;
        let attrs = match &cnode.op {
            Op::Conv2d(a) => Some(a.clone()),
            _ => None,
        };
        self.next_calls_gemm = true;
        let engine = super::kernels::gemm::selected_kernel();
        self.next_algorithm = match &attrs {
            Some(a) if a.kernel == [1, 1] && a.stride == [1, 1] && a.pad == [0, 0, 0, 0] => {
                format!("gemm {engine} (1x1: input read in place), epilogue in cache")
            }
            Some(a) => format!(
                "gemm {engine} on im2col blocks of {} rows ({}x{} taps), epilogue in cache",
                plan.mb, a.kernel[0], a.kernel[1]
            ),
            None => format!("gemm {engine}, epilogue in cache"),
        };
        if plan.direct.is_some() {
            self.next_algorithm = self.next_algorithm.replace(
                "epilogue in cache",
                "bias/relu in registers, stored in place",
            );
        }
        self.function(
            &format!("{}_gemm", cnode.op.name()),
            layer,
            span,
            &mut |kb| {
                let lv = leaves
                    .iter()
                    .map(|(v, o)| (*v, kb.bind(o)))
                    .collect::<BTreeMap<_, _>>();
                let xb = kb.bind(&x);
                let wb = kb.bind(&w);
                let bb = bias.as_ref().map(|b| kb.bind(b));
                let dsts = bind_all(kb, outs);
                let off = kb.meta_at(scratch_meta);
                let scratch = kb.b.ins().iadd(kb.arena, off);
                let mut expr = Expr::new(body, lv, layer);
                let mut con = Contraction {
                    kind: Kind::MatMul,
                    x: xb,
                    w: wb,
                    bias: bb,
                    value,
                    expr: &mut expr,
                    outputs: outputs.iter().copied().zip(dsts).collect(),
                };
                match &attrs {
                    Some(a) => super::gemm_call::conv(kb, &mut con, a, &plan, scratch),
                    None => super::gemm_call::dense(kb, &mut con, &plan, scratch),
                }
            },
        )
    }

    /// Points a parameter weight operand at its packed copy; whether it did.
    fn pack(&mut self, w: &mut Operand, packing: Packing) -> bool {
        let Src::Param { index, .. } = w.src else {
            return false;
        };
        let pid = crate::ir::graph::ParamId(u32::try_from(index).unwrap_or(u32::MAX));
        let t = self.program.packed_param(self.graph, pid, packing);
        let shape = self.program.packed[t - self.graph.params.len()].2.clone();
        w.contig = shape.len().checked_sub(1);
        w.src = Src::Param { index: t, shape };
        true
    }

    #[allow(clippy::too_many_arguments)] // The node, its region and its operands.
    fn recurrence(
        &mut self,
        key: usize,
        r: &Region,
        id: NodeId,
        l: &crate::ir::op::Loop,
        ins: &[Operand],
        outs: &[Operand],
        layer: &str,
    ) -> Result<Vec<Call>, CodegenError> {
        let info = self
            .program
            .loops
            .get(&(key, id))
            .cloned()
            .ok_or_else(|| CodegenError::internal("a loop without its tables".into()))?;
        let span = r.node(id).span;
        let body = &l.body;
        let bkey = info.body;
        let states = l.states;
        let body_in: Vec<Operand> = body
            .inputs
            .iter()
            .map(|b| {
                self.program
                    .operand(self.graph, bkey, body, Region::value(*b))
            })
            .collect::<Result<_, _>>()?;
        let body_out: Vec<Operand> = body
            .outputs
            .iter()
            .map(|o| self.program.operand(self.graph, bkey, body, o.value))
            .collect::<Result<_, _>>()?;
        let staging: Vec<Operand> = info
            .staging
            .iter()
            .enumerate()
            .map(|(s, slot)| Program::staging_operand(*slot, &r.node(id).outputs[s]))
            .collect::<Result<_, _>>()?;
        // Before the loop: the initial states into the step's state inputs.
        let init = self.function("loop_init", layer, span, &mut |kb| {
            for s in 0..states {
                let src = kb.bind(&ins[s]);
                let dst = kb.bind(&body_in[s]);
                copy::same(kb, &src, &dst)?;
            }
            Ok(())
        })?;
        // At each step: the step input.
        let seq = ins
            .get(states)
            .cloned()
            .ok_or_else(|| CodegenError::internal("a loop without its sequence".into()))?;
        let scan = l.scan;
        let feed = self.function("loop_input", layer, span, &mut |kb| {
            let src = kb.bind(&seq);
            let dst = kb.bind(&body_in[states]);
            if scan {
                let t = kb.t;
                copy::step(kb, &src, &dst, t, true)
            } else {
                copy::same(kb, &src, &dst)
            }
        })?;
        let steps_calls = self.region(bkey)?;
        // After each step: new states through the staging area, and the emitted value.
        let emit = l.emit;
        let carry = self.function("loop_carry", layer, span, &mut |kb| {
            for s in 0..states {
                let src = kb.bind(&body_out[s]);
                let st = kb.bind(&staging[s]);
                copy::same(kb, &src, &st)?;
            }
            for s in 0..states {
                let st = kb.bind(&staging[s]);
                let dst = kb.bind(&body_in[s]);
                copy::same(kb, &st, &dst)?;
            }
            match emit {
                Emit::All => {
                    let src = kb.bind(&body_out[states]);
                    let dst = kb.bind(&outs[states]);
                    let t = kb.t;
                    copy::step(kb, &dst, &src, t, false)?;
                }
                Emit::Last => {
                    let src = kb.bind(&body_out[states]);
                    let dst = kb.bind(&outs[states]);
                    copy::same(kb, &src, &dst)?;
                }
                Emit::State => {}
            }
            Ok(())
        })?;
        // After the loop: the final states out.
        let fin = self.function("loop_final", layer, span, &mut |kb| {
            for s in 0..states {
                let src = kb.bind(&body_in[s]);
                let dst = kb.bind(&outs[s]);
                copy::same(kb, &src, &dst)?;
            }
            Ok(())
        })?;
        let mut step = vec![Call::Kernel(feed)];
        step.extend(steps_calls);
        step.push(Call::Kernel(carry));
        Ok(vec![
            Call::Kernel(init),
            Call::Loop {
                steps_meta: info.steps,
                body: step,
            },
            Call::Kernel(fin),
        ])
    }
}

/// The algorithm of a kernel named `name` (before its index), as `--emit kernels` shows.
fn default_algorithm(name: &str) -> &'static str {
    match name {
        "conv2d" | "dense" | "matmul" => {
            "cranelift f32x4 loop nest (16 outputs a block), epilogue in registers"
        }
        "group_elementwise" | "add" | "sub" | "mul" | "div" | "neg" | "relu" | "sigmoid"
        | "tanh" | "batchnorm" | "dropout" | "relayout" => "elementwise f32x4 loop",
        "group_pool" | "maxpool2d" | "avgpool2d" | "global_avgpool" | "global_maxpool" => {
            "window loop, f32x4 over channels"
        }
        "loop_init" | "loop_input" | "loop_carry" | "loop_final" => "recurrence copies",
        "flatten" | "flatten_channels_last" | "reshape" | "concat" | "slice" | "embed" => {
            "copy (f32x4 when both sides are dense)"
        }
        _ => "scalar loop",
    }
}

fn all_leaves_of(leaves: &[ValueRef], ops: &[Operand]) -> Vec<(ValueRef, Operand)> {
    leaves.iter().copied().zip(ops.iter().cloned()).collect()
}

fn bind_all(kb: &mut Kb<'_>, ops: &[Operand]) -> Vec<Bound> {
    ops.iter().map(|o| kb.bind(o)).collect()
}

/// Copies `x` into `out` at offset `off` (an SSA value) along `axis`.
fn copy_at(
    kb: &mut Kb<'_>,
    x: &Bound,
    out: &Bound,
    axis: usize,
    off: cranelift_codegen::ir::Value,
) -> Result<(), CodegenError> {
    // Shift the destination's base by `off` along `axis` and copy as same-shaped.
    let mut dst = out.clone();
    let delta = kb.b.ins().imul(off, out.strides[axis]);
    let delta = kb.b.ins().imul_imm_s(delta, out.op.elem.bytes());
    dst.base = kb.b.ins().iadd(out.base, delta);
    dst.extent = kb.b.ins().isub(out.extent, delta);
    dst.dims = x.dims.clone();
    copy::same(kb, x, &dst)
}

/// What a driver does, in order.
#[derive(Clone, Debug)]
pub enum Call {
    /// Call a kernel with `(ctx, t)`.
    Kernel(FuncId),
    /// Run `body` for `t` in `0..meta[steps_meta]`, calling its kernels with that `t`.
    Loop {
        /// The meta entry of the step count.
        steps_meta: usize,
        /// The calls of one step.
        body: Vec<Call>,
    },
}

/// What emitting the driver's calls needs.
struct CallCx<'m> {
    module: &'m mut JITModule,
    refs: &'m mut BTreeMap<FuncId, cranelift_codegen::ir::FuncRef>,
    /// The profiling clock, when profiling is compiled in.
    tick: Option<cranelift_codegen::ir::FuncRef>,
    /// Each kernel's index.
    index: &'m BTreeMap<FuncId, i64>,
}

/// Emits `calls` into the driver; `t` is the enclosing loop's counter (`None`: the
/// function's own `t`). With profiling, the clock ticks before and after every kernel.
fn emit_calls(
    kb: &mut Kb<'_>,
    cx: &mut CallCx<'_>,
    calls: &[Call],
    t: Option<cranelift_codegen::ir::Value>,
) -> Result<(), CodegenError> {
    for c in calls {
        match c {
            Call::Kernel(f) => {
                let fref = match cx.refs.get(f) {
                    Some(r) => *r,
                    None => {
                        let r = cx.module.declare_func_in_func(*f, kb.b.func);
                        cx.refs.insert(*f, r);
                        r
                    }
                };
                let tv = t.unwrap_or(kb.t);
                let ctx = kb.ctx;
                if let Some(tick) = cx.tick {
                    let none = kb.int(-1);
                    kb.b.ins().call(tick, &[ctx, none]);
                }
                kb.b.ins().call(fref, &[ctx, tv]);
                if let Some(tick) = cx.tick {
                    let k = kb.int(cx.index.get(f).copied().unwrap_or(-1));
                    kb.b.ins().call(tick, &[ctx, k]);
                }
            }
            Call::Loop { steps_meta, body } => {
                let steps = kb.meta_at(*steps_meta);
                let zero = kb.int(0);
                kb.for_range(zero, steps, 1, &mut |kb, i| {
                    emit_calls(kb, cx, body, Some(i))
                })?;
            }
        }
    }
    Ok(())
}

/// Size of [`Ctx`] (asserted against the offsets the code uses).
pub const CTX_BYTES: usize = std::mem::size_of::<Ctx>();
const _: () = assert!(CTX_BYTES == 64 && abi::CTX_STATUS_VALUE == 40 && abi::CTX_PROFILE == 48);
