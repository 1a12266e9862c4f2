//! Binding weights to compiled code, and running it: the parameter table (stored,
//! fixed and derived parameters, then the packed copies contractions read), the per-size
//! tables and arena cached by sizes, the inputs written into the arena, the call, the
//! status check and the outputs read back.

use super::abi::{Ctx, SlotMeta, Status};
use super::frame::{frame, Frame};
use super::kernels::gemm::PackedB;
use super::program::Packing;
use super::Compiled;
use crate::diagnostics::Span;
use crate::ir::graph::{ParamId, ParamKind, Region};
use crate::ir::op::{Emit, Op};
use crate::runtime::bind::bind_inputs;
use crate::runtime::error::RunError;
use crate::runtime::tensor::{storage, Tensor};
use crate::runtime::weights::Weights;
use ndarray::{ArrayD, IxDyn};
use std::collections::{BTreeMap, HashMap};

/// An `f32` NaN in both halves of a word: a fresh arena reads as NaN, so a value read
/// before it is written shows up in tests instead of passing by luck.
const NAN_WORD: u64 = 0x7fc0_0000_7fc0_0000;

/// The tables and arena for one set of sizes.
struct Sized {
    frame: Frame,
    arena: Vec<u64>,
    /// A recurrence returning its last step that runs no step at these sizes.
    empty_last: Option<(String, Span)>,
}

/// The input shapes of the last call and the sizes they bound.
struct Last {
    shapes: Vec<(crate::ir::shape::DType, Vec<usize>)>,
    key: Vec<(String, u64)>,
}

/// Compiled code with its weights bound, ready to run on inputs of any size.
pub struct Executable<'c> {
    compiled: &'c Compiled,
    /// Every parameter's values (row-major), then the packed copies.
    params: Vec<Vec<f32>>,
    /// Weights packed for the host GEMM engine (their addresses are in `ptrs`; the vector
    /// is never resized, so they never move).
    _gemm: Vec<PackedB>,
    /// Their addresses, the table compiled code reads.
    ptrs: Vec<*const f32>,
    /// Tables and arenas by the values of the symbolic sizes.
    sized: HashMap<Vec<(String, u64)>, Sized>,
    /// The last call's input shapes, to skip binding when they repeat.
    last: Option<Last>,
    /// Nanoseconds per kernel over every call so far (empty unless compiled with
    /// `profile`).
    profile: Vec<u64>,
}

impl std::fmt::Debug for Executable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable")
            .field("net", &self.compiled.graph.name)
            .field("sizes_cached", &self.sized.len())
            .finish()
    }
}

fn internal(layer: &str, span: Span, detail: &str) -> RunError {
    RunError::Internal {
        layer: layer.to_string(),
        span,
        detail: detail.to_string(),
    }
}

impl Compiled {
    /// Binds `weights` (checked against every stored parameter: names and shapes), computes
    /// the derived parameters and packs the contraction weights.
    pub fn bind(&self, weights: &Weights) -> Result<Executable<'_>, RunError> {
        let graph = &self.graph;
        let mut params: Vec<Vec<f32>> = Vec::with_capacity(graph.params.len());
        for p in &graph.params {
            let shape: Vec<usize> =
                p.ty.shape
                    .dims()
                    .iter()
                    .map(|d| d.known().and_then(|k| usize::try_from(k).ok()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| internal(&p.name, p.span, "a parameter of symbolic shape"))?;
            let n: usize = shape.iter().product();
            let data = match p.kind {
                ParamKind::Fixed => {
                    let v = p.init.as_ref().ok_or_else(|| {
                        internal(&p.name, p.span, "fixed parameter without values")
                    })?;
                    if v.len() != n {
                        return Err(internal(
                            &p.name,
                            p.span,
                            "fixed parameter of the wrong size",
                        ));
                    }
                    v.iter().map(|x| *x as f32).collect()
                }
                ParamKind::Derived => Vec::new(),
                ParamKind::Trainable | ParamKind::Buffer => {
                    let Some((found, data)) = weights.tensors.get(&p.name) else {
                        return Err(RunError::MissingWeight {
                            name: p.name.clone(),
                            span: p.span,
                        });
                    };
                    if *found != shape || data.len() != n {
                        return Err(RunError::WeightShape {
                            name: p.name.clone(),
                            span: p.span,
                            expected: shape,
                            found: found.clone(),
                        });
                    }
                    data.clone()
                }
            };
            params.push(data);
        }
        for (i, p) in graph.params.iter().enumerate() {
            if p.kind != ParamKind::Derived {
                continue;
            }
            let id = ParamId(u32::try_from(i).unwrap_or(u32::MAX));
            let values = {
                let lookup = |src: ParamId| params.get(src.0 as usize).map(|v| v.as_slice());
                crate::runtime::derive::derive(graph, id, &lookup)
                    .map_err(|d| internal(&p.name, p.span, &d))?
            };
            params[i] = values;
        }
        let mut gemm: Vec<(usize, PackedB)> = Vec::new();
        for (src, packing, shape) in &self.program.packed {
            let p = graph.param(*src);
            let data = params
                .get(src.0 as usize)
                .ok_or_else(|| internal(&p.name, p.span, "a packed parameter without source"))?;
            if *packing == Packing::Gemm {
                let b = gemm_operand(data, &p.ty.shape, shape)
                    .map_err(|e| internal(&p.name, p.span, &e))?;
                gemm.push((params.len(), b));
                params.push(Vec::new());
            } else {
                params.push(pack(data, *packing, shape));
            }
        }
        let (slots, gemm): (Vec<usize>, Vec<PackedB>) = gemm.into_iter().unzip();
        let mut ptrs: Vec<*const f32> = params.iter().map(|v| v.as_ptr()).collect();
        for (i, b) in slots.iter().zip(&gemm) {
            // The entry is read by the generated code as the `PackedB` address; `gemm` is
            // never resized after this, so the address stays valid.
            ptrs[*i] = std::ptr::from_ref::<PackedB>(b).cast::<f32>();
        }
        Ok(Executable {
            compiled: self,
            params,
            _gemm: gemm,
            ptrs,
            sized: HashMap::new(),
            last: None,
            profile: if self.profiled {
                vec![0; self.kernels.len()]
            } else {
                Vec::new()
            },
        })
    }
}

/// The weight `data` (of the parameter's `shape`) as the GEMM engine's packed B of
/// `packed` shape `[K, N]`: a convolution's `[O, C, kh, kw]` in taps order, a dense
/// layer's `[U, F]` transposed.
fn gemm_operand(
    data: &[f32],
    shape: &crate::ir::shape::Shape,
    packed: &[usize],
) -> Result<PackedB, String> {
    let (k, n) = match packed {
        [k, n] => (*k, *n),
        _ => return Err("a GEMM weight of rank other than 2".into()),
    };
    let made = if shape.rank() == 4 {
        let dims: Vec<usize> = shape
            .dims()
            .iter()
            .map(|d| d.known().unwrap_or(0) as usize)
            .collect();
        let taps = pack(
            data,
            Packing::ConvTaps,
            &[dims[2], dims[3], dims[1], dims[0]],
        );
        PackedB::new(k, n, &taps, n as isize, 1)
    } else {
        PackedB::new(k, n, data, 1, k as isize)
    };
    made.map_err(|e| format!("packing the weight for the GEMM engine: {e:?}"))
}

/// The packed copy of `data` (the parameter's row-major values) with `packed` shape.
fn pack(data: &[f32], packing: Packing, packed: &[usize]) -> Vec<f32> {
    match (packing, packed) {
        // [O, C, kh, kw] → [kh, kw, C, O].
        (Packing::ConvTaps, [kh, kw, c, o]) => {
            let (kh, kw, c, o) = (*kh, *kw, *c, *o);
            let mut out = vec![0.0; data.len()];
            for oi in 0..o {
                for ci in 0..c {
                    for i in 0..kh {
                        for j in 0..kw {
                            out[((i * kw + j) * c + ci) * o + oi] =
                                data[((oi * c + ci) * kh + i) * kw + j];
                        }
                    }
                }
            }
            out
        }
        // [U, F] → [F, U].
        (Packing::Transpose, [f, u]) => {
            let (f, u) = (*f, *u);
            let mut out = vec![0.0; data.len()];
            for ui in 0..u {
                for fi in 0..f {
                    out[fi * u + ui] = data[ui * f + fi];
                }
            }
            out
        }
        _ => data.to_vec(),
    }
}

impl Executable<'_> {
    /// The compiled net.
    pub fn compiled(&self) -> &Compiled {
        self.compiled
    }

    /// Nanoseconds spent in each kernel over every call so far (by kernel index, as
    /// [`Compiled::kernels`]); empty unless compiled with `profile`.
    pub fn profile(&self) -> &[u64] {
        &self.profile
    }

    /// Forgets the profile so far.
    pub fn reset_profile(&mut self) {
        self.profile.iter_mut().for_each(|p| *p = 0);
    }

    /// The arena's size in bytes for the last call's sizes (`None` before any call).
    pub fn arena_bytes(&self) -> Option<u64> {
        let key = &self.last.as_ref()?.key;
        self.sized.get(key).map(|s| s.frame.arena_bytes)
    }

    /// Runs the net on `inputs` (by input name); returns the outputs by name. The inputs
    /// are checked against the net's declarations before any compiled code runs.
    pub fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, RunError> {
        let mut out = BTreeMap::new();
        self.run_into(inputs, &mut out)?;
        Ok(out)
    }

    /// Like [`Executable::run`], writing each output into `outputs[name]` when that tensor
    /// already has the output's shape and element type (else it is replaced). After a
    /// first call with given input shapes, a call with the same shapes into the same
    /// outputs allocates nothing: the inputs' shapes are compared with the last call's,
    /// and the tables and arena for those sizes are reused.
    pub fn run_into(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        outputs: &mut BTreeMap<String, Tensor>,
    ) -> Result<(), RunError> {
        let c = self.compiled;
        let graph = &c.graph;
        let body = &graph.body;
        let same_as_last = self.last.as_ref().is_some_and(|last| {
            inputs.len() == body.inputs.len()
                && body
                    .inputs
                    .iter()
                    .zip(&last.shapes)
                    .all(|(id, (dtype, shape))| {
                        input_name(body, *id)
                            .and_then(|n| inputs.get(n))
                            .is_some_and(|t| t.dtype() == *dtype && t.shape() == shape.as_slice())
                    })
        });
        if !same_as_last {
            let (_, b) = bind_inputs(graph, inputs)?;
            let key: Vec<(String, u64)> = b.iter().map(|(k, v)| (k.to_string(), v)).collect();
            if !self.sized.contains_key(&key) {
                let sized = self.prepare(&b)?;
                self.sized.insert(key.clone(), sized);
            }
            let mut shapes = Vec::with_capacity(body.inputs.len());
            for id in &body.inputs {
                let t = input_name(body, *id)
                    .and_then(|n| inputs.get(n))
                    .ok_or_else(|| internal(&graph.name, graph.span, "an input vanished"))?;
                shapes.push((t.dtype(), t.shape().to_vec()));
            }
            self.last = Some(Last { shapes, key });
        }
        let key = &self
            .last
            .as_ref()
            .ok_or_else(|| internal(&graph.name, graph.span, "no sizes bound"))?
            .key;
        let sized = self
            .sized
            .get_mut(key)
            .ok_or_else(|| internal(&graph.name, graph.span, "no tables for these sizes"))?;
        if let Some((layer, span)) = &sized.empty_last {
            return Err(RunError::EmptySequence {
                layer: layer.clone(),
                span: *span,
            });
        }
        let slots = &c.program.regions[0].slots;
        let params = &self.params;
        for id in &body.inputs {
            let node = body.node(*id);
            let t = input_name(body, *id)
                .and_then(|n| inputs.get(n))
                .ok_or_else(|| internal(&node.name, node.span, "an input vanished"))?;
            let slot = slots
                .get(&Region::value(*id))
                .ok_or_else(|| internal(&node.name, node.span, "an input without a slot"))?;
            copy_tensor(&mut sized.arena, &sized.frame.meta, *slot, t, true)
                .map_err(|d| internal(&node.name, node.span, d))?;
        }
        let mut ctx = Ctx {
            arena: sized.arena.as_mut_ptr().cast(),
            meta: sized.frame.meta.as_ptr(),
            params: self.ptrs.as_ptr(),
            status: 0,
            status_kernel: -1,
            status_value: 0,
            profile: if self.profile.is_empty() {
                std::ptr::null_mut()
            } else {
                self.profile.as_mut_ptr()
            },
            profile_last: 0,
        };
        super::kernels::entry::call_main(
            c.entry(),
            &mut ctx,
            &sized.frame,
            &sized.arena,
            &self.ptrs,
        );
        if ctx.status != 0 {
            return Err(status_error(c, &ctx));
        }
        for o in &body.outputs {
            let node = body.node(o.value.node);
            let ty = body.ty(o.value);
            let int = storage(ty.dtype) == Some(crate::ir::shape::DType::I64);
            match &node.op {
                Op::Param(_) | Op::Fill { .. } => {
                    let b = bind_inputs(graph, inputs).map(|(_, b)| b)?;
                    let shape = b
                        .eval_shape(&ty.shape)
                        .ok_or_else(|| internal(&o.name, graph.span, "unbound output size"))?;
                    let t = match &node.op {
                        Op::Param(id) => {
                            let data = params.get(id.0 as usize).cloned().unwrap_or_default();
                            Tensor::F32(
                                ArrayD::from_shape_vec(IxDyn(&shape), data)
                                    .map_err(|e| internal(&o.name, graph.span, &e.to_string()))?,
                            )
                        }
                        Op::Fill { value, .. } if int => {
                            Tensor::I64(ArrayD::from_elem(IxDyn(&shape), *value as i64))
                        }
                        Op::Fill { value, .. } => {
                            Tensor::F32(ArrayD::from_elem(IxDyn(&shape), *value as f32))
                        }
                        _ => return Err(internal(&o.name, graph.span, "not a constant")),
                    };
                    outputs.insert(o.name.clone(), t);
                }
                _ => {
                    let slot = *slots
                        .get(&o.value)
                        .ok_or_else(|| internal(&o.name, graph.span, "an output without a slot"))?;
                    let meta = &sized.frame.meta;
                    let fits = outputs.get(&o.name).is_some_and(|t| {
                        (t.dtype() == crate::ir::shape::DType::I64) == int
                            && t.shape().len() == slot.rank
                            && t.shape()
                                .iter()
                                .enumerate()
                                .all(|(a, d)| meta[slot.dim(a)] == *d as i64)
                            && match t {
                                Tensor::F32(x) => x.is_standard_layout(),
                                Tensor::I64(x) => x.is_standard_layout(),
                            }
                    });
                    if !fits {
                        let shape: Vec<usize> =
                            (0..slot.rank).map(|a| meta[slot.dim(a)] as usize).collect();
                        let t = if int {
                            Tensor::I64(ArrayD::zeros(IxDyn(&shape)))
                        } else {
                            Tensor::F32(ArrayD::zeros(IxDyn(&shape)))
                        };
                        outputs.insert(o.name.clone(), t);
                    }
                    let t = outputs
                        .get_mut(&o.name)
                        .ok_or_else(|| internal(&o.name, graph.span, "an output vanished"))?;
                    copy_out(&sized.arena, meta, slot, t)
                        .map_err(|d| internal(&o.name, graph.span, d))?;
                }
            }
        }
        Ok(())
    }

    /// The tables and arena for the sizes in `b`, and the recurrence that would return an
    /// empty sequence's last step, if any.
    fn prepare(&self, b: &crate::runtime::bind::Bindings) -> Result<Sized, RunError> {
        let c = self.compiled;
        let graph = &c.graph;
        let mut empty_last = None;
        for (key, id) in c.program.loops.keys() {
            let region = super::frame::region_at(&graph.body, &c.program.regions[*key].path)
                .map_err(|e| internal(&graph.name, graph.span, &e.to_string()))?;
            let node = region.node(*id);
            if let Op::Loop(l) = &node.op {
                if l.emit == Emit::Last && b.eval_dim(&l.steps) == Some(0) && empty_last.is_none() {
                    empty_last = Some((node.name.clone(), node.span));
                }
            }
        }
        let fr = frame(graph, &c.program, b)
            .map_err(|e| internal(&graph.name, graph.span, &e.to_string()))?;
        let words = usize::try_from(fr.arena_bytes.div_ceil(8))
            .map_err(|_| internal(&graph.name, graph.span, "the arena does not fit in memory"))?;
        Ok(Sized {
            arena: vec![NAN_WORD; words],
            frame: fr,
            empty_last,
        })
    }
}

/// The name of input node `id`.
fn input_name(body: &Region, id: crate::ir::graph::NodeId) -> Option<&str> {
    match &body.node(id).op {
        Op::Input { name, .. } => Some(name.as_str()),
        _ => None,
    }
}

/// Calls `f(element offset)` for every element of a slot in row-major order of its
/// logical index, without allocating (ranks up to 8).
fn each_offset(
    meta: &[i64],
    slot: SlotMeta,
    f: &mut dyn FnMut(usize, usize) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    const MAX: usize = 8;
    let r = slot.rank;
    if r > MAX {
        return Err("a value of more than 8 axes");
    }
    let mut dims = [0i64; MAX];
    let mut strides = [0i64; MAX];
    for a in 0..r {
        dims[a] = meta[slot.dim(a)];
        strides[a] = meta[slot.stride(a)];
    }
    let total: i64 = dims[..r].iter().product();
    if total <= 0 {
        return Ok(());
    }
    let mut idx = [0i64; MAX];
    let mut off: i64 = 0;
    for i in 0..total as usize {
        f(i, usize::try_from(off).map_err(|_| "a negative offset")?)?;
        // Increment the index, row-major.
        let mut a = r;
        while a > 0 {
            a -= 1;
            idx[a] += 1;
            off += strides[a];
            if idx[a] < dims[a] {
                break;
            }
            off -= strides[a] * dims[a];
            idx[a] = 0;
        }
    }
    Ok(())
}

/// Copies tensor `t` into (`into == true`) the arena at `slot`, checking its shape.
fn copy_tensor(
    arena: &mut [u64],
    meta: &[i64],
    slot: SlotMeta,
    t: &Tensor,
    into: bool,
) -> Result<(), &'static str> {
    let _ = into;
    if t.shape().len() != slot.rank
        || t.shape()
            .iter()
            .enumerate()
            .any(|(a, d)| meta[slot.dim(a)] != *d as i64)
    {
        return Err("an input of another shape than its place");
    }
    let base = usize::try_from(meta[slot.offset()]).map_err(|_| "a negative offset")?;
    match t {
        Tensor::F32(x) => {
            let dst: &mut [f32] = bytemuck::cast_slice_mut(arena);
            let base = base / 4;
            let mut it = x.iter();
            each_offset(meta, slot, &mut |_, off| {
                let v = it.next().ok_or("an input shorter than its shape")?;
                *dst.get_mut(base + off)
                    .ok_or("an input place past the arena")? = *v;
                Ok(())
            })
        }
        Tensor::I64(x) => {
            let dst: &mut [i64] = bytemuck::cast_slice_mut(arena);
            let base = base / 8;
            let mut it = x.iter();
            each_offset(meta, slot, &mut |_, off| {
                let v = it.next().ok_or("an input shorter than its shape")?;
                *dst.get_mut(base + off)
                    .ok_or("an input place past the arena")? = *v;
                Ok(())
            })
        }
    }
}

/// Copies the value at `slot` into `t` (of its shape, standard layout).
fn copy_out(
    arena: &[u64],
    meta: &[i64],
    slot: SlotMeta,
    t: &mut Tensor,
) -> Result<(), &'static str> {
    let base = usize::try_from(meta[slot.offset()]).map_err(|_| "a negative offset")?;
    match t {
        Tensor::F32(x) => {
            let src: &[f32] = bytemuck::cast_slice(arena);
            let base = base / 4;
            let out = x.as_slice_mut().ok_or("an output not in standard layout")?;
            each_offset(meta, slot, &mut |i, off| {
                *out.get_mut(i).ok_or("an output shorter than its value")? =
                    *src.get(base + off)
                        .ok_or("an output place past the arena")?;
                Ok(())
            })
        }
        Tensor::I64(x) => {
            let src: &[i64] = bytemuck::cast_slice(arena);
            let base = base / 8;
            let out = x.as_slice_mut().ok_or("an output not in standard layout")?;
            each_offset(meta, slot, &mut |i, off| {
                *out.get_mut(i).ok_or("an output shorter than its value")? =
                    *src.get(base + off)
                        .ok_or("an output place past the arena")?;
                Ok(())
            })
        }
    }
}

/// The error for a status compiled code set.
fn status_error(c: &Compiled, ctx: &Ctx) -> RunError {
    let k = usize::try_from(ctx.status_kernel)
        .ok()
        .and_then(|i| c.kernels.get(i));
    let (layer, span) = match k {
        Some(k) => (k.layer.clone(), k.span),
        None => (c.graph.name.clone(), c.graph.span),
    };
    match Status::from_code(ctx.status) {
        Some(Status::IdOutOfRange) => RunError::IndexOutOfRange {
            layer,
            span,
            what: "token id",
            index: ctx.status_value,
            limit: embed_rows(c, span).unwrap_or(0),
        },
        Some(Status::LabelOutOfRange) => RunError::IndexOutOfRange {
            layer,
            span,
            what: "label",
            index: ctx.status_value,
            limit: classes_at(c, span).unwrap_or(0),
        },
        Some(Status::DivideByZero) => RunError::DivideByZero { layer, span },
        Some(Status::OutOfBounds) => RunError::Internal {
            layer,
            span,
            detail: format!(
                "compiled code accessed memory outside an operand's buffer (byte offset {}); caught by --debug-bounds",
                ctx.status_value
            ),
        },
        None => RunError::Internal {
            layer,
            span,
            detail: format!("compiled code reported an unknown status {}", ctx.status),
        },
    }
}

/// The classes of the cross-entropy at `span` (its logits' last axis), for the message.
fn classes_at(c: &Compiled, span: Span) -> Option<usize> {
    fn find(r: &Region, span: Span) -> Option<usize> {
        for id in r.topo_order() {
            let n = r.node(id);
            if matches!(n.op, Op::SoftmaxCrossEntropy) && n.span == span {
                let t = r.inputs_of(id).first().copied()?;
                return r.ty(t).shape.dims().last()?.known().map(|k| k as usize);
            }
            if let Op::Loop(l) = &n.op {
                if let Some(v) = find(&l.body, span) {
                    return Some(v);
                }
            }
        }
        None
    }
    find(&c.graph.body, span)
}

/// The rows of the embedding table of the layer at `span`, for the error message.
fn embed_rows(c: &Compiled, span: Span) -> Option<usize> {
    fn find(r: &Region, span: Span) -> Option<usize> {
        for id in r.topo_order() {
            let n = r.node(id);
            if let Op::Embed = n.op {
                if n.span == span {
                    let t = r.inputs_of(id).get(1).copied()?;
                    return r.ty(t).shape.dims().first()?.known().map(|k| k as usize);
                }
            }
            if let Op::Loop(l) = &n.op {
                if let Some(v) = find(&l.body, span) {
                    return Some(v);
                }
            }
        }
        None
    }
    find(&c.graph.body, span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::CodegenOptions;
    use crate::model::{Model, ModelOptions};

    fn lenet(debug_bounds: bool) -> (Model, Compiled) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("nets/lenet5.net");
        let opts = ModelOptions {
            passes: Some(Default::default()),
            ..ModelOptions::default()
        };
        let model = Model::load(&path, &opts).expect("lenet5 loads");
        let compiled = model
            .compile(&CodegenOptions {
                debug_bounds,
                keep_clif: false,
                ..Default::default()
            })
            .expect("compiles");
        (model, compiled)
    }

    /// A deliberately corrupted plan — a value's width made 8 times what its buffer
    /// holds — is caught by the bounds checks: the run stops with an error naming the
    /// layer, and nothing outside the arena is touched.
    #[test]
    fn debug_bounds_catches_a_corrupted_plan() {
        let (model, compiled) = lenet(true);
        let w = model.init_weights(0);
        let mut exe = compiled.bind(&w).expect("binds");
        let x = ArrayD::from_elem(IxDyn(&[1, 1, 32, 32]), 0.25f32);
        let inputs = BTreeMap::from([("x".to_string(), Tensor::F32(x))]);
        exe.run(&inputs).expect("the plan as made runs cleanly");
        // The first fused convolution's output: widen its last axis in the meta table.
        let body = &compiled.graph.body;
        let conv = body
            .topo_order()
            .into_iter()
            .find(|id| matches!(body.node(*id).op, Op::Group(_)))
            .expect("lenet5 has a fused convolution");
        let slot = compiled.program.regions[0].slots[&Region::value(conv)];
        for sized in exe.sized.values_mut() {
            sized.frame.meta[slot.dim(3)] *= 8;
        }
        let e = exe.run(&inputs).expect_err("the corrupted plan is caught");
        match &e {
            RunError::Internal { layer, detail, .. } => {
                assert_eq!(layer, &body.node(conv).name, "{e:?}");
                assert!(detail.contains("--debug-bounds"), "{detail}");
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    /// Without `debug_bounds` no check is emitted: the CLIF of the two compiles differs by
    /// the checks' compare-and-branch blocks.
    #[test]
    fn debug_bounds_adds_checks_to_the_code() {
        let count = |debug_bounds: bool| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("nets/lenet5.net");
            let model = Model::load(&path, &ModelOptions::default()).expect("loads");
            let c = model
                .compile(&CodegenOptions {
                    debug_bounds,
                    keep_clif: true,
                    ..Default::default()
                })
                .expect("compiles");
            c.clif_text().matches("icmp sle").count()
        };
        assert!(count(true) > count(false) + 10);
    }
}
