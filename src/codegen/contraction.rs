//! Contractions — `conv2d`, `dense`, `matmul` — with their fused epilogues, behind one
//! interface: a [`Contraction`] descriptor (the op, its operands, and the epilogue as the
//! group's elementwise expression) that [`lower`] turns into a loop nest. This file holds
//! the portable Cranelift lowering: the output channels (`conv2d`), units (`dense`) or
//! columns (`matmul`) in blocks of four `f32x4` accumulators (16 outputs) per output
//! position, then single vectors, then a scalar tail; each accumulator sums
//! `x · w` with `fma` over the reduction (taps × input channels, features, or `K`), starts
//! from the bias, and goes through the epilogue in registers before its one store. The
//! weights of `conv2d` and `dense` are read from copies packed at binding
//! ([`super::program::Packing`]) so that the outputs of one reduction step are contiguous.
//!
//! The fast engine (packed GEMM micro-kernels at the machine's peak) plugs in here: it
//! takes the same descriptor and replaces the loop nest of the contraction, keeping the
//! epilogue.

use super::emit::{Bound, Kb, Lanes};

/// A body of [`blocks`]: the first channel, the number of vectors, the lanes per vector.
type BlockBody<'x> = dyn FnMut(&mut Kb<'_>, Value, usize, i64) -> Result<(), CodegenError> + 'x;
use super::expr::Expr;
use super::CodegenError;
use crate::ir::graph::ValueRef;
use crate::ir::op::Conv2d;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::Variable;

/// Which contraction, with its attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A 2-D convolution; `packed` when the weight is `[kh, kw, C/g, O]` rather than the
    /// IR's `[O, C/g, kh, kw]`.
    Conv {
        /// The attributes.
        attrs: Conv2d,
        /// Whether the weight operand is the packed copy.
        packed: bool,
    },
    /// A dense layer; `packed` when the weight is `[F, U]` rather than `[U, F]`.
    Dense {
        /// Whether the weight operand is the transposed copy.
        packed: bool,
    },
    /// A matrix product on the last two axes, leading axes broadcast.
    MatMul,
}

/// A contraction to emit: `out = epilogue(x ⋆ w + bias)`.
pub struct Contraction<'e, 'r> {
    /// The op.
    pub kind: Kind,
    /// The input (`x`, or `A` of a matmul).
    pub x: Bound,
    /// The weight (or `B`).
    pub w: Bound,
    /// The bias, if any (a `[O]`/`[U]` vector).
    pub bias: Option<Bound>,
    /// The contraction's value in the epilogue's region.
    pub value: ValueRef,
    /// The epilogue: the values to store (each of the contraction's output shape) are
    /// evaluated by this expression with the contraction's value bound.
    pub expr: &'e mut Expr<'r>,
    /// The values stored, with their destinations.
    pub outputs: Vec<(ValueRef, Bound)>,
}

impl Contraction<'_, '_> {
    /// The first stored output (the one whose shape the loop nest walks).
    pub fn first_output(&self) -> Result<Bound, CodegenError> {
        self.outputs
            .first()
            .map(|(_, b)| b.clone())
            .ok_or_else(|| CodegenError::internal("a contraction without outputs".into()))
    }
}

/// Emits the contraction.
pub fn lower(kb: &mut Kb<'_>, c: &mut Contraction<'_, '_>) -> Result<(), CodegenError> {
    match c.kind.clone() {
        Kind::Conv { attrs, packed } => conv(kb, c, &attrs, packed),
        Kind::Dense { packed } => dense(kb, c, packed),
        Kind::MatMul => matmul(kb, c),
    }
}

/// Blocks of output channels: `(first, vectors, width)` passes over `0..n`: blocks of
/// four vectors where `allow16`, then single vectors where `allow4`, then scalars.
fn blocks(
    kb: &mut Kb<'_>,
    n: Value,
    allow16: bool,
    allow4: bool,
    body: &mut BlockBody<'_>,
) -> Result<(), CodegenError> {
    let zero = kb.int(0);
    let end16 = if allow16 {
        let e = kb.b.ins().band_imm_s(n, !15);
        kb.for_range(zero, e, 16, &mut |kb, o| body(kb, o, 4, 4))?;
        e
    } else {
        zero
    };
    let end4 = if allow4 {
        let len = kb.b.ins().isub(n, end16);
        let full = kb.b.ins().band_imm_s(len, !3);
        let e = kb.b.ins().iadd(end16, full);
        kb.for_range(end16, e, 4, &mut |kb, o| body(kb, o, 1, 4))?;
        e
    } else {
        end16
    };
    kb.for_range(end4, n, 1, &mut |kb, o| body(kb, o, 1, 1))
}

/// Declares `nvec` accumulators of `width` lanes, each starting at the bias at
/// `o + 4·q` (or zero).
fn start_accumulators(
    kb: &mut Kb<'_>,
    bias: Option<&Bound>,
    o: Value,
    nvec: usize,
    width: i64,
) -> Vec<Variable> {
    let ty = if width == 1 { types::F32 } else { types::F32X4 };
    let mut accs = Vec::with_capacity(nvec);
    for q in 0..nvec {
        let var = kb.b.declare_var(ty);
        let oq = kb.b.ins().iadd_imm_s(o, 4 * q as i64);
        let init = match bias {
            Some(b) => {
                let lanes = if width == 1 {
                    Lanes::One
                } else {
                    Lanes::Four(0)
                };
                kb.load(b, &[oq], lanes)
            }
            None => kb.fconst(0.0, width),
        };
        kb.b.def_var(var, init);
        accs.push(var);
    }
    accs
}

/// `acc[q] += x · w[q]` for each accumulator; `x` is a broadcast scalar or a vector.
fn fma_step(kb: &mut Kb<'_>, accs: &[Variable], x: Value, ws: &[Value]) {
    for (acc, w) in accs.iter().zip(ws) {
        let a = kb.b.use_var(*acc);
        let s = kb.b.ins().fma(x, *w, a);
        kb.b.def_var(*acc, s);
    }
}

/// Runs the epilogue on the finished accumulators and stores every output: accumulator
/// `q` holds output index `idx` with `idx[axis] + 4·q`.
fn finish(
    kb: &mut Kb<'_>,
    c: &mut Contraction<'_, '_>,
    accs: &[Variable],
    idx: &[Value],
    axis: usize,
    width: i64,
) -> Result<(), CodegenError> {
    for (q, acc) in accs.iter().enumerate() {
        let mut at = idx.to_vec();
        at[axis] = kb.b.ins().iadd_imm_s(idx[axis], 4 * q as i64);
        let lanes = if width == 1 {
            Lanes::One
        } else {
            Lanes::Four(axis)
        };
        let a = kb.b.use_var(*acc);
        store_outputs(kb, c, &at, lanes, a)?;
    }
    Ok(())
}

/// Stores every output of the contraction's group at `at`, the contraction's value there
/// being `value` (the epilogue, evaluated in registers).
pub fn store_outputs(
    kb: &mut Kb<'_>,
    c: &mut Contraction<'_, '_>,
    at: &[Value],
    lanes: Lanes,
    value: Value,
) -> Result<(), CodegenError> {
    c.expr.clear();
    c.expr.bind(c.value, at, lanes, value);
    for (v, dst) in c.outputs.clone() {
        let y = c.expr.eval(kb, v, at, lanes)?;
        kb.store(&dst, at, lanes, y);
    }
    Ok(())
}

fn conv(
    kb: &mut Kb<'_>,
    c: &mut Contraction<'_, '_>,
    a: &Conv2d,
    packed: bool,
) -> Result<(), CodegenError> {
    let out = c.first_output()?;
    let x = c.x.clone();
    let w = c.w.clone();
    // Sizes: x [N, C, H, W]; out [N, O, OH, OW]; weight [O, C/g, kh, kw].
    let (n_, o_, oh_, ow_) = (out.dims[0], out.dims[1], out.dims[2], out.dims[3]);
    let (h_, w_) = (x.dims[2], x.dims[3]);
    let cin = x.op.dims[1].known().unwrap_or(0) as i64;
    let cout = out.op.dims[1].known().unwrap_or(0) as i64;
    let groups = a.groups.max(1) as i64;
    let cg = cin / groups;
    let og = cout / groups;
    let depthwise = cg == 1 && og == 1;
    let (allow16, allow4) = if groups == 1 || depthwise {
        (true, true)
    } else {
        (og % 16 == 0, og % 4 == 0)
    };
    let [kh, kw] = [a.kernel[0] as i64, a.kernel[1] as i64];
    let [sh, sw] = [a.stride[0] as i64, a.stride[1] as i64];
    let [dh, dw] = [a.dilation[0] as i64, a.dilation[1] as i64];
    let (pt, pl) = (a.pad[0] as i64, a.pad[1] as i64);
    let bias = c.bias.clone();
    let zero = kb.int(0);
    kb.for_range(zero, n_, 1, &mut |kb, n| {
        kb.for_range(zero, oh_, 1, &mut |kb, oh| {
            kb.for_range(zero, ow_, 1, &mut |kb, ow| {
                let ih0 = kb.b.ins().imul_imm_s(oh, sh);
                let ih0 = kb.b.ins().iadd_imm_s(ih0, -pt);
                let iw0 = kb.b.ins().imul_imm_s(ow, sw);
                let iw0 = kb.b.ins().iadd_imm_s(iw0, -pl);
                blocks(kb, o_, allow16, allow4, &mut |kb, o, nvec, width| {
                    let accs = start_accumulators(kb, bias.as_ref(), o, nvec, width);
                    // The group of this block (all its lanes share it, or it is depthwise).
                    let g = if groups == 1 {
                        kb.int(0)
                    } else {
                        kb.b.ins().sdiv_imm_s(o, og)
                    };
                    let cbase = kb.b.ins().imul_imm_s(g, cg);
                    // The taps are run-time loops: unrolling them would multiply the
                    // function's size (and Cranelift's compile time) by kh·kw.
                    let khv = kb.int(kh);
                    let kwv = kb.int(kw);
                    let zero = kb.int(0);
                    kb.for_range(zero, khv, 1, &mut |kb, ki| {
                        let off = kb.b.ins().imul_imm_s(ki, dh);
                        let ih = kb.b.ins().iadd(ih0, off);
                        let ok_h = kb.in_range(ih, h_);
                        kb.if_then(ok_h, &mut |kb| {
                            kb.for_range(zero, kwv, 1, &mut |kb, kj| {
                                let off = kb.b.ins().imul_imm_s(kj, dw);
                                let iw = kb.b.ins().iadd(iw0, off);
                                let ok_w = kb.in_range(iw, w_);
                                kb.if_then(ok_w, &mut |kb| {
                                    let cg_v = kb.int(cg);
                                    kb.for_range(zero, cg_v, 1, &mut |kb, ci| {
                                        let chan = kb.b.ins().iadd(cbase, ci);
                                        let (xv, xl) = if depthwise {
                                            let l = if width == 1 {
                                                Lanes::One
                                            } else {
                                                Lanes::Four(1)
                                            };
                                            (o, l)
                                        } else {
                                            let l =
                                                if width == 1 { Lanes::One } else { Lanes::Splat };
                                            (chan, l)
                                        };
                                        let mut ws = Vec::with_capacity(accs.len());
                                        for q in 0..accs.len() {
                                            let oq = kb.b.ins().iadd_imm_s(o, 4 * q as i64);
                                            let (widx, wl) = if packed {
                                                let l = if width == 1 {
                                                    Lanes::One
                                                } else {
                                                    Lanes::Four(3)
                                                };
                                                (vec![ki, kj, ci, oq], l)
                                            } else {
                                                let l = if width == 1 {
                                                    Lanes::One
                                                } else {
                                                    Lanes::Four(0)
                                                };
                                                (vec![oq, ci, ki, kj], l)
                                            };
                                            ws.push(kb.load(&w, &widx, wl));
                                        }
                                        if depthwise {
                                            // Each accumulator block reads its own channels.
                                            for (q, acc) in accs.iter().enumerate() {
                                                let ch = kb.b.ins().iadd_imm_s(xv, 4 * q as i64);
                                                let xval = kb.load(&x, &[n, ch, ih, iw], xl);
                                                fma_step(kb, &[*acc], xval, &ws[q..q + 1]);
                                            }
                                        } else {
                                            let xval = kb.load(&x, &[n, xv, ih, iw], xl);
                                            fma_step(kb, &accs, xval, &ws);
                                        }
                                        Ok(())
                                    })
                                })
                            })
                        })
                    })?;
                    finish(kb, c, &accs, &[n, o, oh, ow], 1, width)
                })
            })
        })
    })
}

fn dense(kb: &mut Kb<'_>, c: &mut Contraction<'_, '_>, packed: bool) -> Result<(), CodegenError> {
    let out = c.first_output()?;
    let x = c.x.clone();
    let w = c.w.clone();
    let r = out.rank();
    let last = r - 1;
    let units = out.dims[last];
    let feats = x.dims[x.rank() - 1];
    let bias = c.bias.clone();
    let dims = out.dims.clone();
    kb.nest(&dims[..last], None, &mut |kb, lead| {
        blocks(kb, units, true, true, &mut |kb, u, nvec, width| {
            let accs = start_accumulators(kb, bias.as_ref(), u, nvec, width);
            let zero = kb.int(0);
            kb.for_range(zero, feats, 1, &mut |kb, f| {
                let mut xi = lead.to_vec();
                xi.push(f);
                let xl = if width == 1 { Lanes::One } else { Lanes::Splat };
                let xval = kb.load(&x, &xi, xl);
                let mut ws = Vec::with_capacity(accs.len());
                for q in 0..accs.len() {
                    let uq = kb.b.ins().iadd_imm_s(u, 4 * q as i64);
                    let (widx, wl) = if packed {
                        (
                            vec![f, uq],
                            if width == 1 {
                                Lanes::One
                            } else {
                                Lanes::Four(1)
                            },
                        )
                    } else {
                        (
                            vec![uq, f],
                            if width == 1 {
                                Lanes::One
                            } else {
                                Lanes::Four(0)
                            },
                        )
                    };
                    ws.push(kb.load(&w, &widx, wl));
                }
                fma_step(kb, &accs, xval, &ws);
                Ok(())
            })?;
            let mut idx = lead.to_vec();
            idx.push(u);
            finish(kb, c, &accs, &idx, last, width)
        })
    })
}

fn matmul(kb: &mut Kb<'_>, c: &mut Contraction<'_, '_>) -> Result<(), CodegenError> {
    let out = c.first_output()?;
    let a = c.x.clone();
    let b = c.w.clone();
    let r = out.rank();
    let (ra, rb) = (a.rank(), b.rank());
    if r < 2 || ra < 2 || rb < 2 {
        return Err(CodegenError::Unsupported {
            layer: c.expr.layer.clone(),
            what: "a matmul of vectors".into(),
        });
    }
    let cols = out.dims[r - 1];
    let inner = a.dims[ra - 1];
    let dims = out.dims.clone();
    kb.nest(&dims[..r - 1], None, &mut |kb, lead| {
        // lead = [batch axes…, m].
        let m = lead[r - 2];
        let zero = kb.int(0);
        let map = |kb: &mut Kb<'_>, op: &Bound, rank: usize| -> Vec<Value> {
            // Right-aligned broadcast of the leading axes; a size-1 axis reads index 0.
            let mut v = Vec::new();
            for j in 0..rank - 2 {
                let oj = j + (r - rank);
                if op.op.dims[j] == crate::ir::shape::Dim::Known(1) {
                    v.push(kb.int(0));
                } else {
                    v.push(lead[oj]);
                }
            }
            v
        };
        let a_lead = map(kb, &a, ra);
        let b_lead = map(kb, &b, rb);
        blocks(kb, cols, true, true, &mut |kb, p, nvec, width| {
            let accs = start_accumulators(kb, None, p, nvec, width);
            kb.for_range(zero, inner, 1, &mut |kb, k| {
                let mut ai = a_lead.clone();
                ai.push(m);
                ai.push(k);
                let xl = if width == 1 { Lanes::One } else { Lanes::Splat };
                let xval = kb.load(&a, &ai, xl);
                let mut ws = Vec::with_capacity(accs.len());
                for q in 0..accs.len() {
                    let pq = kb.b.ins().iadd_imm_s(p, 4 * q as i64);
                    let mut bi = b_lead.clone();
                    bi.push(k);
                    bi.push(pq);
                    let wl = if width == 1 {
                        Lanes::One
                    } else {
                        Lanes::Four(rb - 1)
                    };
                    ws.push(kb.load(&b, &bi, wl));
                }
                fma_step(kb, &accs, xval, &ws);
                Ok(())
            })?;
            let mut idx = lead.to_vec();
            idx.push(p);
            finish(kb, c, &accs, &idx, r - 1, width)
        })
    })
}
