//! Binding weights to compiled code, and running it: the parameter table (stored,
//! fixed and derived parameters, then the packed copies contractions read), the per-size
//! tables and arena cached by sizes, the inputs written into the arena, the call, the
//! status check and the outputs read back.

use super::abi::{Ctx, Status};
use super::frame::{frame, Frame};
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
}

/// Compiled code with its weights bound, ready to run on inputs of any size.
pub struct Executable<'c> {
    compiled: &'c Compiled,
    /// Every parameter's values (row-major), then the packed copies.
    params: Vec<Vec<f32>>,
    /// Their addresses, the table compiled code reads.
    ptrs: Vec<*const f32>,
    /// Tables and arenas by the values of the symbolic sizes.
    sized: HashMap<Vec<(String, u64)>, Sized>,
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
            let shape: Vec<usize> = p
                .ty
                .shape
                .dims()
                .iter()
                .map(|d| d.known().and_then(|k| usize::try_from(k).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| internal(&p.name, p.span, "a parameter of symbolic shape"))?;
            let n: usize = shape.iter().product();
            let data = match p.kind {
                ParamKind::Fixed => {
                    let v = p
                        .init
                        .as_ref()
                        .ok_or_else(|| internal(&p.name, p.span, "fixed parameter without values"))?;
                    if v.len() != n {
                        return Err(internal(&p.name, p.span, "fixed parameter of the wrong size"));
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
        for (src, packing, shape) in &self.program.packed {
            let p = graph.param(*src);
            let data = params
                .get(src.0 as usize)
                .ok_or_else(|| internal(&p.name, p.span, "a packed parameter without source"))?;
            params.push(pack(data, *packing, shape));
        }
        let ptrs = params.iter().map(|v| v.as_ptr()).collect();
        Ok(Executable {
            compiled: self,
            params,
            ptrs,
            sized: HashMap::new(),
        })
    }
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
                            out[((i * kw + j) * c + ci) * o + oi] = data[((oi * c + ci) * kh + i) * kw + j];
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

    /// Runs the net on `inputs` (by input name); returns the outputs by name. The inputs
    /// are checked against the net's declarations before any compiled code runs.
    pub fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, RunError> {
        let c = self.compiled;
        let graph = &c.graph;
        let (ordered, b) = bind_inputs(graph, inputs)?;
        // A recurrence returning its last step needs a step.
        for ((key, id), info) in &c.program.loops {
            let _ = info;
            let region = super::frame::region_at(&graph.body, &c.program.regions[*key].path)
                .map_err(|e| internal(&graph.name, graph.span, &e.to_string()))?;
            let node = region.node(*id);
            if let Op::Loop(l) = &node.op {
                if l.emit == Emit::Last && b.eval_dim(&l.steps) == Some(0) {
                    return Err(RunError::EmptySequence {
                        layer: node.name.clone(),
                        span: node.span,
                    });
                }
            }
        }
        let key: Vec<(String, u64)> = b.iter().map(|(k, v)| (k.to_string(), v)).collect();
        if !self.sized.contains_key(&key) {
            let fr = frame(graph, &c.program, &b)
                .map_err(|e| internal(&graph.name, graph.span, &e.to_string()))?;
            let words = usize::try_from(fr.arena_bytes.div_ceil(8))
                .map_err(|_| internal(&graph.name, graph.span, "the arena does not fit in memory"))?;
            self.sized.insert(
                key.clone(),
                Sized {
                    arena: vec![NAN_WORD; words],
                    frame: fr,
                },
            );
        }
        let sized = self
            .sized
            .get_mut(&key)
            .ok_or_else(|| internal(&graph.name, graph.span, "no tables for these sizes"))?;
        let body = &graph.body;
        for (i, t) in ordered.iter().enumerate() {
            let id = body.inputs.get(i).ok_or_else(|| internal(&graph.name, graph.span, "an input without a node"))?;
            let loc = sized.frame.body.get(&Region::value(*id));
            crate::runtime::arena::write(&mut sized.arena, loc, t)
                .map_err(|d| internal(&body.node(*id).name, body.node(*id).span, &d))?;
        }
        let mut ctx = Ctx {
            arena: sized.arena.as_mut_ptr().cast(),
            meta: sized.frame.meta.as_ptr(),
            params: self.ptrs.as_ptr(),
            status: 0,
            status_kernel: -1,
            status_value: 0,
        };
        super::kernels::entry::call_main(c.entry(), &mut ctx, &sized.frame, &sized.arena, &self.ptrs);
        if ctx.status != 0 {
            return Err(status_error(c, &ctx));
        }
        let mut out = BTreeMap::new();
        for o in &body.outputs {
            let node = body.node(o.value.node);
            let ty = body.ty(o.value);
            let t = match &node.op {
                Op::Param(id) => {
                    let shape = b.eval_shape(&ty.shape).ok_or_else(|| internal(&o.name, graph.span, "unbound output size"))?;
                    let data = self.params.get(id.0 as usize).cloned().unwrap_or_default();
                    Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| internal(&o.name, graph.span, &e.to_string()))?)
                }
                Op::Fill { value, .. } => {
                    let shape = b.eval_shape(&ty.shape).ok_or_else(|| internal(&o.name, graph.span, "unbound output size"))?;
                    match storage(ty.dtype) {
                        Some(crate::ir::shape::DType::I64) => Tensor::I64(ArrayD::from_elem(IxDyn(&shape), *value as i64)),
                        _ => Tensor::F32(ArrayD::from_elem(IxDyn(&shape), *value as f32)),
                    }
                }
                _ => crate::runtime::arena::read(&sized.arena, sized.frame.body.get(&o.value), ty.dtype)
                    .map(|v| v.to_tensor())
                    .ok_or_else(|| internal(&o.name, graph.span, "a net output has no value"))?,
            };
            out.insert(o.name.clone(), t);
        }
        Ok(out)
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
            limit: 0,
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

/// The rows of the embedding table of the layer at `span`, for the error message.
fn embed_rows(c: &Compiled, span: Span) -> Option<usize> {
    fn find(r: &Region, span: Span, g: &crate::ir::graph::Graph) -> Option<usize> {
        for id in r.topo_order() {
            let n = r.node(id);
            if let Op::Embed = n.op {
                if n.span == span {
                    let t = r.inputs_of(id).get(1).copied()?;
                    return r.ty(t).shape.dims().first()?.known().map(|k| k as usize);
                }
            }
            if let Op::Loop(l) = &n.op {
                if let Some(v) = find(&l.body, span, g) {
                    return Some(v);
                }
            }
        }
        None
    }
    find(&c.graph.body, span, &c.graph)
}
