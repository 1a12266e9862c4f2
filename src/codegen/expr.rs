//! Elementwise expressions: the value of a node of a region at one logical index, as
//! `f32`/`f32x4` (or `i64`) SSA values, following broadcasts and slices down to the loads
//! of the operands the expression reads. Fused groups (an elementwise chain, a
//! contraction's epilogue, a pool's prologue) and single elementwise ops are all lowered
//! through it, so each elementwise op has exactly one lowering, here.
//!
//! An index is one SSA value per axis of the node's shape; `lanes` says whether four
//! consecutive indices along one axis are computed at once. Broadcasting is resolved at
//! compile time from the types: an operand axis of known size 1 is read at index 0 (and
//! loses the lanes), as numpy's right-aligned broadcasting does.

use super::emit::{Bound, Kb, Lanes};
use super::math;
use super::CodegenError;
use crate::ir::graph::{Region, ValueRef};
use crate::ir::op::Op;
use crate::ir::shape::Dim;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value};
use std::collections::{BTreeMap, HashMap};

/// The evaluator of one region's elementwise nodes inside one kernel.
pub struct Expr<'r> {
    /// The region whose nodes are evaluated.
    pub region: &'r Region,
    /// Values read from memory (group inputs, a single op's inputs, parameters): bound
    /// operands by value.
    pub leaves: BTreeMap<ValueRef, Bound>,
    /// Values already computed, by (value, index, lanes).
    memo: HashMap<(ValueRef, Vec<Value>, Lanes), Value>,
    /// The layer name, for errors.
    pub layer: String,
}

impl<'r> Expr<'r> {
    /// An evaluator over `region` reading `leaves`.
    pub fn new(region: &'r Region, leaves: BTreeMap<ValueRef, Bound>, layer: &str) -> Expr<'r> {
        Expr {
            region,
            leaves,
            memo: HashMap::new(),
            layer: layer.to_string(),
        }
    }

    /// Forgets computed values: call at the start of every loop body, since values
    /// computed in another block need not dominate this one.
    pub fn clear(&mut self) {
        self.memo.clear();
    }

    /// Records that `v` at `idx` is `value` (a contraction's accumulator, a pool's result).
    pub fn bind(&mut self, v: ValueRef, idx: &[Value], lanes: Lanes, value: Value) {
        self.memo.insert((v, idx.to_vec(), lanes), value);
    }

    fn unsupported(&self, what: &str) -> CodegenError {
        CodegenError::Unsupported {
            layer: self.layer.clone(),
            what: what.to_string(),
        }
    }

    /// The value of `v` at `idx` (one index per axis of `v`'s shape).
    pub fn eval(
        &mut self,
        kb: &mut Kb<'_>,
        v: ValueRef,
        idx: &[Value],
        lanes: Lanes,
    ) -> Result<Value, CodegenError> {
        let key = (v, idx.to_vec(), lanes);
        if let Some(x) = self.memo.get(&key) {
            return Ok(*x);
        }
        let x = self.compute(kb, v, idx, lanes)?;
        self.memo.insert(key, x);
        Ok(x)
    }

    fn compute(
        &mut self,
        kb: &mut Kb<'_>,
        v: ValueRef,
        idx: &[Value],
        lanes: Lanes,
    ) -> Result<Value, CodegenError> {
        if let Some(b) = self.leaves.get(&v) {
            let b = b.clone();
            return Ok(kb.load(&b, idx, lanes));
        }
        let region = self.region;
        let node = region.node(v.node);
        let inputs = region.inputs_of(v.node);
        let ty = region.ty(v);
        let width = if lanes == Lanes::One { 1 } else { 4 };
        let int = ty.dtype.is_int();
        let arg = |e: &mut Self, kb: &mut Kb<'_>, i: usize| -> Result<Value, CodegenError> {
            let u = *inputs
                .get(i)
                .ok_or_else(|| e.unsupported("an elementwise op without its inputs"))?;
            let (uidx, ulanes) = broadcast(kb, region, u, ty.shape.dims(), idx, lanes);
            e.eval(kb, u, &uidx, ulanes)
        };
        match &node.op {
            Op::Fill { value, .. } => Ok(if int {
                kb.int(*value as i64)
            } else {
                kb.fconst(*value as f32, width)
            }),
            Op::Add | Op::Sub | Op::Mul | Op::Div => {
                let mut acc = arg(self, kb, 0)?;
                for i in 1..inputs.len() {
                    let y = arg(self, kb, i)?;
                    acc = match (&node.op, int) {
                        (Op::Add, false) => kb.b.ins().fadd(acc, y),
                        (Op::Sub, false) => kb.b.ins().fsub(acc, y),
                        (Op::Mul, false) => kb.b.ins().fmul(acc, y),
                        (Op::Div, false) => kb.b.ins().fdiv(acc, y),
                        (Op::Add, true) => kb.b.ins().iadd(acc, y),
                        (Op::Sub, true) => kb.b.ins().isub(acc, y),
                        (Op::Mul, true) => kb.b.ins().imul(acc, y),
                        _ => int_div(kb, acc, y),
                    };
                }
                Ok(acc)
            }
            Op::Neg => {
                let x = arg(self, kb, 0)?;
                Ok(if int {
                    kb.b.ins().ineg(x)
                } else {
                    kb.b.ins().fneg(x)
                })
            }
            Op::Relu => {
                let x = arg(self, kb, 0)?;
                Ok(kb.relu(x, width))
            }
            Op::Sigmoid => {
                let x = arg(self, kb, 0)?;
                Ok(math::sigmoid(&mut kb.b, x))
            }
            Op::Tanh => {
                let x = arg(self, kb, 0)?;
                Ok(math::tanh(&mut kb.b, x))
            }
            // Inference: the identity; a relayout changes storage, not values.
            Op::Dropout { .. } | Op::Relayout { .. } => arg(self, kb, 0),
            Op::Slice { axis, start, .. } => {
                let u = *inputs
                    .first()
                    .ok_or_else(|| self.unsupported("a slice without its input"))?;
                let mut uidx = idx.to_vec();
                let a = uidx
                    .get_mut(*axis)
                    .ok_or_else(|| self.unsupported("a slice axis past the rank"))?;
                // A slice from 0 reads its input at the same index: the same SSA index, so a
                // value bound at it (a contraction's accumulator) is found.
                if *start != 0 {
                    *a =
                        kb.b.ins()
                            .iadd_imm_s(*a, i64::try_from(*start).unwrap_or(i64::MAX));
                }
                self.eval(kb, u, &uidx, lanes)
            }
            Op::BatchNorm { eps } => {
                // y = (x − mean) · scale / sqrt(var + eps) + shift, per channel (axis 1).
                let x = arg(self, kb, 0)?;
                let c = *idx
                    .get(1)
                    .ok_or_else(|| self.unsupported("a batch norm of rank < 2"))?;
                let clanes = match lanes {
                    Lanes::Four(1) => Lanes::Four(0),
                    Lanes::One => Lanes::One,
                    Lanes::Four(_) | Lanes::Splat => Lanes::Splat,
                };
                let mut p = Vec::new();
                for i in 1..5 {
                    let u = *inputs
                        .get(i)
                        .ok_or_else(|| self.unsupported("a batch norm without its statistics"))?;
                    p.push(self.eval(kb, u, &[c], clanes)?);
                }
                let e = kb.fconst(*eps as f32, width);
                let ve = kb.b.ins().fadd(p[3], e);
                let sd = kb.b.ins().sqrt(ve);
                let k = kb.b.ins().fdiv(p[0], sd);
                let xm = kb.b.ins().fsub(x, p[2]);
                let y = kb.b.ins().fmul(xm, k);
                Ok(kb.b.ins().fadd(y, p[1]))
            }
            Op::Input { .. }
            | Op::Param(_)
            | Op::Conv2d(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Lrn { .. }
            | Op::Dense
            | Op::MatMul
            | Op::Embed
            | Op::Flatten
            | Op::FlattenChannelsLast
            | Op::Reshape { .. }
            | Op::Concat { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Mean { .. }
            | Op::Sum { .. }
            | Op::SoftmaxCrossEntropy
            | Op::Mse
            | Op::Loop(_)
            | Op::Group(_) => Err(self.unsupported(&format!(
                "`{}` inside an elementwise expression",
                node.op.name()
            ))),
        }
    }
}

/// Integer division truncating toward zero; a zero divisor sets the status and gives 0.
fn int_div(kb: &mut Kb<'_>, a: Value, b: Value) -> Value {
    let zero = kb.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
    let one = kb.int(1);
    let safe = kb.b.ins().select(zero, one, b);
    let q = kb.b.ins().sdiv(a, safe);
    let z = kb.int(0);
    let _ = kb.if_then(zero, &mut |kb| {
        let v = kb.int(0);
        kb.set_status(super::abi::Status::DivideByZero, v);
        Ok(())
    });
    kb.b.ins().select(zero, z, q)
}

/// The index and lanes of operand `u` read by a node of shape `out` at `idx`: numpy's
/// right-aligned broadcasting, an axis of known size 1 read at 0.
pub fn broadcast(
    kb: &mut Kb<'_>,
    region: &Region,
    u: ValueRef,
    out: &[Dim],
    idx: &[Value],
    lanes: Lanes,
) -> (Vec<Value>, Lanes) {
    let udims = region.ty(u).shape.dims();
    let shift = out.len().saturating_sub(udims.len());
    let mut uidx = Vec::with_capacity(udims.len());
    let mut ulanes = match lanes {
        Lanes::One => Lanes::One,
        Lanes::Four(_) | Lanes::Splat => Lanes::Splat,
    };
    for (j, d) in udims.iter().enumerate() {
        let oj = j + shift;
        let broadcast = *d == Dim::Known(1) && out.get(oj) != Some(&Dim::Known(1));
        if broadcast {
            uidx.push(kb.int(0));
        } else {
            uidx.push(idx.get(oj).copied().unwrap_or_else(|| kb.int(0)));
            if lanes == Lanes::Four(oj) {
                ulanes = Lanes::Four(j);
            }
        }
    }
    (uidx, ulanes)
}

/// Whether every value the expressions of `outputs` compute or read, down to `leaves`, is
/// a float (so the kernel may run on `f32x4`).
pub fn all_float(
    region: &Region,
    outputs: &[ValueRef],
    leaves: &BTreeMap<ValueRef, Bound>,
) -> bool {
    let mut stack: Vec<ValueRef> = outputs.to_vec();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        if !region.ty(v).dtype.is_float() {
            return false;
        }
        if leaves.contains_key(&v) {
            continue;
        }
        stack.extend(region.inputs_of(v.node));
    }
    true
}
