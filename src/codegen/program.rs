//! The compile-time layout of a net's code: which regions are planned (the net's body and
//! every recurrence's step), the meta-table slot of every activation value in them, the
//! staging slots of carried states, the entries of the symbolic sizes and step counts,
//! and the parameter table (the graph's parameters, then the packed copies contractions
//! read). [`super::frame`] fills the table for the sizes of a call; the lowerings read it.

use super::abi::SlotMeta;
use super::emit::{Elem, Operand, Src};
use super::CodegenError;
use crate::ir::graph::{Graph, NodeId, ParamId, Region, ValueRef};
use crate::ir::op::{Layout, Op};
use crate::ir::shape::{DType, Dim, TensorType};
use std::collections::BTreeMap;

/// One planned region: the net's body (`path` empty) or the step of the loop reached by
/// following `path` (loop nodes, outermost first).
#[derive(Clone, Debug)]
pub struct PlannedRegion {
    /// The loop nodes leading to it.
    pub path: Vec<NodeId>,
    /// The slot of each activation value.
    pub slots: BTreeMap<ValueRef, SlotMeta>,
}

/// A recurrence's compile-time entries.
#[derive(Clone, Debug)]
pub struct LoopInfo {
    /// The region index of its step.
    pub body: usize,
    /// The meta entry of its step count.
    pub steps: usize,
    /// The staging slot of each carried state.
    pub staging: Vec<SlotMeta>,
}

/// How a packed parameter is made from a stored one at binding ([`super::bind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// A convolution weight `[O, C/g, kh, kw]` stored as `[kh, kw, C/g, O]`, so the output
    /// channels of one tap are contiguous.
    ConvTaps,
    /// A dense weight `[U, F]` stored transposed, `[F, U]`.
    Transpose,
    /// A convolution weight (as `[kh·kw·C, O]`, the taps' order) or a dense weight (as
    /// `[F, U]`) packed for the host GEMM engine: the table entry is a `PackedB`.
    Gemm,
}

/// The layout of a net's tables.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// The planned regions; index 0 is the net's body.
    pub regions: Vec<PlannedRegion>,
    /// Recurrences by (region index, loop node).
    pub loops: BTreeMap<(usize, NodeId), LoopInfo>,
    /// The meta entry of each symbolic size.
    pub symbols: BTreeMap<String, usize>,
    /// Packed parameters: table index → (source parameter, packing, packed shape).
    pub packed: Vec<(ParamId, Packing, Vec<usize>)>,
    /// The number of meta entries.
    pub meta_len: usize,
    /// The meta entry of the scratch area's offset.
    pub scratch_meta: usize,
    /// Bytes of scratch the GEMM-driven contractions need (the largest of them).
    pub scratch_bytes: u64,
}

impl Program {
    /// Lays out the tables of `graph`.
    pub fn new(graph: &Graph) -> Result<Program, CodegenError> {
        let mut p = Program::default();
        p.scratch_meta = p.alloc(1);
        p.add_region(&graph.body, Vec::new())?;
        let mut names = Vec::new();
        collect_symbols(&graph.body, &mut names);
        for n in names {
            if !p.symbols.contains_key(&n) {
                let i = p.alloc(1);
                p.symbols.insert(n, i);
            }
        }
        Ok(p)
    }

    fn alloc(&mut self, n: usize) -> usize {
        let i = self.meta_len;
        self.meta_len += n;
        i
    }

    fn slot(&mut self, rank: usize) -> SlotMeta {
        let base = self.alloc(2 + 2 * rank);
        SlotMeta { base, rank }
    }

    fn add_region(&mut self, r: &Region, path: Vec<NodeId>) -> Result<usize, CodegenError> {
        let key = self.regions.len();
        self.regions.push(PlannedRegion {
            path: path.clone(),
            slots: BTreeMap::new(),
        });
        let mut slots = BTreeMap::new();
        for id in r.topo_order() {
            let node = r.node(id);
            if matches!(node.op, Op::Param(_) | Op::Fill { .. }) {
                continue;
            }
            for (port, ty) in node.outputs.iter().enumerate() {
                let v = ValueRef {
                    node: id,
                    port: u32::try_from(port)
                        .map_err(|_| CodegenError::internal("too many outputs".into()))?,
                };
                slots.insert(v, self.slot(ty.shape.rank()));
            }
        }
        self.regions[key].slots = slots;
        for id in r.topo_order() {
            if let Op::Loop(l) = &r.node(id).op {
                let mut sub = path.clone();
                sub.push(id);
                let steps = self.alloc(1);
                let body = self.add_region(&l.body, sub)?;
                let mut staging = Vec::new();
                for s in 0..l.states {
                    let ty = r.node(id).outputs.get(s).ok_or_else(|| {
                        CodegenError::internal("a loop without its state outputs".into())
                    })?;
                    staging.push(self.slot(ty.shape.rank()));
                }
                self.loops.insert(
                    (key, id),
                    LoopInfo {
                        body,
                        steps,
                        staging,
                    },
                );
            }
        }
        Ok(key)
    }

    /// The table index of the packed copy of `param` (made once per parameter and packing).
    pub fn packed_param(&mut self, graph: &Graph, param: ParamId, packing: Packing) -> usize {
        if let Some(i) = self
            .packed
            .iter()
            .position(|(p, k, _)| *p == param && *k == packing)
        {
            return graph.params.len() + i;
        }
        let shape: Vec<usize> = graph
            .param(param)
            .ty
            .shape
            .dims()
            .iter()
            .map(|d| d.known().and_then(|k| usize::try_from(k).ok()).unwrap_or(0))
            .collect();
        let packed = match (packing, shape.as_slice()) {
            (Packing::ConvTaps, [o, c, kh, kw]) => vec![*kh, *kw, *c, *o],
            (Packing::Transpose, [u, f]) => vec![*f, *u],
            (Packing::Gemm, [o, c, kh, kw]) => vec![kh * kw * c, *o],
            (Packing::Gemm, [u, f]) => vec![*f, *u],
            _ => shape,
        };
        self.packed.push((param, packing, packed));
        graph.params.len() + self.packed.len() - 1
    }

    /// The operand of value `v` of region `key` (whose IR is `r`).
    pub fn operand(
        &self,
        graph: &Graph,
        key: usize,
        r: &Region,
        v: ValueRef,
    ) -> Result<Operand, CodegenError> {
        let node = r.node(v.node);
        let ty = r.ty(v);
        let elem = elem_of(ty.dtype)?;
        let dims = ty.shape.dims().to_vec();
        match &node.op {
            Op::Param(id) => {
                let shape = graph
                    .param(*id)
                    .ty
                    .shape
                    .dims()
                    .iter()
                    .map(|d| d.known().and_then(|k| usize::try_from(k).ok()))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| CodegenError::internal("a parameter of unknown size".into()))?;
                let contig = shape.len().checked_sub(1);
                Ok(Operand {
                    src: Src::Param {
                        index: id.0 as usize,
                        shape,
                    },
                    elem,
                    dims,
                    contig,
                })
            }
            Op::Fill { value, .. } => Ok(Operand {
                src: Src::Const(*value),
                elem,
                dims,
                contig: None,
            }),
            _ => {
                let slot = *self.regions[key].slots.get(&v).ok_or_else(|| {
                    CodegenError::internal(format!("value of `{}` has no slot", node.name))
                })?;
                let rank = dims.len();
                let root = concat_root(r, v);
                let contig = if rank == 4 && r.layout(root) == Layout::Nhwc {
                    Some(1)
                } else {
                    rank.checked_sub(1)
                };
                Ok(Operand {
                    src: Src::Slot(slot),
                    elem,
                    dims,
                    contig,
                })
            }
        }
    }

    /// A staging operand of type `ty` (row-major) at `slot`.
    pub fn staging_operand(slot: SlotMeta, ty: &TensorType) -> Result<Operand, CodegenError> {
        Ok(Operand {
            src: Src::Slot(slot),
            elem: elem_of(ty.dtype)?,
            dims: ty.shape.dims().to_vec(),
            contig: ty.shape.rank().checked_sub(1),
        })
    }
}

/// The element storage of a declared type.
pub fn elem_of(d: DType) -> Result<Elem, CodegenError> {
    match crate::runtime::tensor::storage(d) {
        Some(DType::I64) => Ok(Elem::I64),
        Some(_) => Ok(Elem::F32),
        None => Err(CodegenError::Unsupported {
            layer: String::new(),
            what: format!("values of type {}", d.as_str()),
        }),
    }
}

/// The value whose buffer `v` lives in: itself, or the outermost in-place concat holding
/// it.
pub fn concat_root(r: &Region, v: ValueRef) -> ValueRef {
    let mut cur = v;
    // Bounded by the region's size: each step moves to a later node.
    for _ in 0..r.len() + 1 {
        let parent = r.users_of(cur.node).into_iter().find(|u| {
            matches!(r.node(*u).op, Op::Concat { in_place: true, .. })
                && r.inputs_of(*u).contains(&cur)
        });
        match parent {
            Some(p) => cur = Region::value(p),
            None => break,
        }
    }
    cur
}

fn collect_symbols(r: &Region, out: &mut Vec<String>) {
    let mut add = |d: &Dim| {
        if let Dim::Sym(p) = d {
            for s in p.symbols() {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    };
    for id in r.topo_order() {
        let node = r.node(id);
        for ty in &node.outputs {
            for d in ty.shape.dims() {
                add(d);
            }
        }
        match &node.op {
            Op::Loop(l) => {
                add(&l.steps);
                let mut inner = Vec::new();
                collect_symbols(&l.body, &mut inner);
                for s in inner {
                    add(&Dim::sym(&s));
                }
            }
            Op::Group(g) => {
                let mut inner = Vec::new();
                collect_symbols(&g.body, &mut inner);
                for s in inner {
                    add(&Dim::sym(&s));
                }
            }
            _ => {}
        }
    }
}
