//! Window and channel ops on `[N, C, H, W]` maps: max and average pools (with the
//! activation fused before them, ceil mode, `count_pad`), global pools, and local response
//! normalisation. Pools run over the channels in `f32x4` vectors (contiguous in NHWC
//! storage), with a scalar tail; every tap's bounds are checked against the image, so
//! padding is never read.

use super::elementwise::for_each_index;
use super::emit::{Bound, Kb, Lanes};
use super::expr::Expr;
use super::math;
use super::CodegenError;
use crate::ir::graph::ValueRef;
use crate::ir::op::Pool2d;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};

/// A window pool: `out = pool(input)`, where `input` is a value of the expression's region
/// (a leaf, or the activation before the pool in a fused group).
pub struct Pool<'e, 'r> {
    /// Max (`true`) or average.
    pub max: bool,
    /// The attributes.
    pub attrs: Pool2d,
    /// The pooled value in the region.
    pub input: ValueRef,
    /// The input's sizes (`[N, C, H, W]`), for the loop bounds.
    pub input_dims: Vec<Value>,
    /// The pool's value in the region (bound for the outputs' expressions).
    pub value: ValueRef,
    /// The expression evaluator.
    pub expr: &'e mut Expr<'r>,
    /// The values stored, with their destinations.
    pub outputs: Vec<(ValueRef, Bound)>,
}

/// `m = (v > m || v is NaN) ? v : m`: the interpreter's maximum, NaN propagating.
fn nan_max(kb: &mut Kb<'_>, m: Value, v: Value, width: i64) -> Value {
    let gt = kb.b.ins().fcmp(FloatCC::GreaterThan, v, m);
    let un = kb.b.ins().fcmp(FloatCC::Unordered, v, v);
    let c = kb.b.ins().bor(gt, un);
    if width == 1 {
        kb.b.ins().select(c, v, m)
    } else {
        let mask =
            kb.b.ins()
                .bitcast(types::F32X4, super::emit::lane_flags(), c);
        kb.b.ins().bitselect(mask, v, m)
    }
}

/// Emits a pool.
pub fn pool(kb: &mut Kb<'_>, p: &mut Pool<'_, '_>) -> Result<(), CodegenError> {
    let out = p
        .outputs
        .first()
        .map(|(_, b)| b.clone())
        .ok_or_else(|| CodegenError::internal("a pool without outputs".into()))?;
    let (n_, c_, oh_, ow_) = (out.dims[0], out.dims[1], out.dims[2], out.dims[3]);
    let (h_, w_) = (p.input_dims[2], p.input_dims[3]);
    let a = p.attrs.clone();
    let [kh, kw] = [a.window[0] as i64, a.window[1] as i64];
    let [sh, sw] = [a.stride[0] as i64, a.stride[1] as i64];
    let [pt, pl, pb, pr] = a.pad.map(|x| x as i64);
    let zero = kb.int(0);
    kb.for_range(zero, n_, 1, &mut |kb, n| {
        kb.for_range(zero, oh_, 1, &mut |kb, oh| {
            kb.for_range(zero, ow_, 1, &mut |kb, ow| {
                let hs = kb.b.ins().imul_imm_s(oh, sh);
                let ws = kb.b.ins().imul_imm_s(ow, sw);
                let ih0 = kb.b.ins().iadd_imm_s(hs, -pt);
                let iw0 = kb.b.ins().iadd_imm_s(ws, -pl);
                kb.for_lanes(zero, c_, true, &mut |kb, c, width| {
                    p.expr.clear();
                    let lanes = if width == 1 {
                        Lanes::One
                    } else {
                        Lanes::Four(1)
                    };
                    let ty = if width == 1 { types::F32 } else { types::F32X4 };
                    let acc = kb.b.declare_var(ty);
                    let init = kb.fconst(if p.max { f32::NEG_INFINITY } else { 0.0 }, width);
                    kb.b.def_var(acc, init);
                    let count = kb.b.declare_var(types::I64);
                    let z = kb.int(0);
                    kb.b.def_var(count, z);
                    let khv = kb.int(kh);
                    let kwv = kb.int(kw);
                    kb.for_range(zero, khv, 1, &mut |kb, i| {
                        let ih = kb.b.ins().iadd(ih0, i);
                        let ok_h = kb.in_range(ih, h_);
                        kb.if_then(ok_h, &mut |kb| {
                            kb.for_range(zero, kwv, 1, &mut |kb, j| {
                                let iw = kb.b.ins().iadd(iw0, j);
                                let ok_w = kb.in_range(iw, w_);
                                kb.if_then(ok_w, &mut |kb| {
                                    // The prologue's values live only in this block.
                                    p.expr.clear();
                                    let v = p.expr.eval(kb, p.input, &[n, c, ih, iw], lanes)?;
                                    let m = kb.b.use_var(acc);
                                    let next = if p.max {
                                        nan_max(kb, m, v, width)
                                    } else {
                                        kb.b.ins().fadd(m, v)
                                    };
                                    kb.b.def_var(acc, next);
                                    let k = kb.b.use_var(count);
                                    let k1 = kb.b.ins().iadd_imm_s(k, 1);
                                    kb.b.def_var(count, k1);
                                    Ok(())
                                })
                            })
                        })
                    })?;
                    let mut result = kb.b.use_var(acc);
                    if !p.max {
                        let divisor = if a.count_pad {
                            // The window clipped to the padded input.
                            let hend = kb.b.ins().iadd_imm_s(h_, pt + pb);
                            let hw = kb.b.ins().iadd_imm_s(hs, kh);
                            let hmin = kb.b.ins().smin(hw, hend);
                            let rows = kb.b.ins().isub(hmin, hs);
                            let wend = kb.b.ins().iadd_imm_s(w_, pl + pr);
                            let ww = kb.b.ins().iadd_imm_s(ws, kw);
                            let wmin = kb.b.ins().smin(ww, wend);
                            let cols = kb.b.ins().isub(wmin, ws);
                            kb.b.ins().imul(rows, cols)
                        } else {
                            kb.b.use_var(count)
                        };
                        // A window with no taps sums to 0 and averages to 0 (the
                        // interpreter's rule): divide by max(divisor, 1).
                        let one = kb.int(1);
                        let divisor = kb.b.ins().smax(divisor, one);
                        let df = kb.b.ins().fcvt_from_sint(types::F32, divisor);
                        let df = if width == 1 {
                            df
                        } else {
                            kb.b.ins().splat(types::F32X4, df)
                        };
                        result = kb.b.ins().fdiv(result, df);
                    }
                    p.expr.clear();
                    let at = [n, c, oh, ow];
                    p.expr.bind(p.value, &at, lanes, result);
                    for (v, dst) in p.outputs.clone() {
                        let y = p.expr.eval(kb, v, &at, lanes)?;
                        kb.store(&dst, &at, lanes, y);
                    }
                    Ok(())
                })
            })
        })
    })
}

/// Global average (`max == false`) or max pool: `[N, C, H, W]` → `[N, C, 1, 1]`.
pub fn global_pool(kb: &mut Kb<'_>, x: &Bound, out: &Bound, max: bool) -> Result<(), CodegenError> {
    let (n_, c_, h_, w_) = (x.dims[0], x.dims[1], x.dims[2], x.dims[3]);
    let zero = kb.int(0);
    kb.for_range(zero, n_, 1, &mut |kb, n| {
        kb.for_lanes(zero, c_, true, &mut |kb, c, width| {
            let lanes = if width == 1 {
                Lanes::One
            } else {
                Lanes::Four(1)
            };
            let ty = if width == 1 { types::F32 } else { types::F32X4 };
            let acc = kb.b.declare_var(ty);
            let init = kb.fconst(if max { f32::NEG_INFINITY } else { 0.0 }, width);
            kb.b.def_var(acc, init);
            kb.for_range(zero, h_, 1, &mut |kb, i| {
                kb.for_range(zero, w_, 1, &mut |kb, j| {
                    let v = kb.load(x, &[n, c, i, j], lanes);
                    let m = kb.b.use_var(acc);
                    let next = if max {
                        nan_max(kb, m, v, width)
                    } else {
                        kb.b.ins().fadd(m, v)
                    };
                    kb.b.def_var(acc, next);
                    Ok(())
                })
            })?;
            let mut r = kb.b.use_var(acc);
            if !max {
                let hw = kb.b.ins().imul(h_, w_);
                let f = kb.b.ins().fcvt_from_sint(types::F32, hw);
                let f = if width == 1 {
                    f
                } else {
                    kb.b.ins().splat(types::F32X4, f)
                };
                r = kb.b.ins().fdiv(r, f);
            }
            let z = kb.int(0);
            kb.store(out, &[n, c, z, z], lanes, r);
            Ok(())
        })
    })
}

/// Local response normalisation across channels (ONNX's `LRN`):
/// `y = x / (k + alpha/size · Σ x²)^beta` over the channel window clipped to `0..C`.
pub fn lrn(
    kb: &mut Kb<'_>,
    x: &Bound,
    out: &Bound,
    size: u64,
    alpha: f64,
    beta: f64,
    k: f64,
) -> Result<(), CodegenError> {
    let before = ((size.max(1) - 1) / 2) as i64;
    let after = (size.max(1) - 1) as i64 - before;
    let scale = (alpha / size.max(1) as f64) as f32;
    let c_ = x.dims[1];
    for_each_index(kb, out, false, &mut |kb, idx, _| {
        let c = idx[1];
        let sum = kb.b.declare_var(types::F32);
        let z = kb.fconst(0.0, 1);
        kb.b.def_var(sum, z);
        for d in -before..=after {
            let cj = kb.b.ins().iadd_imm_s(c, d);
            let ok = kb.in_range(cj, c_);
            kb.if_then(ok, &mut |kb| {
                let mut at = idx.to_vec();
                at[1] = cj;
                let v = kb.load(x, &at, Lanes::One);
                let s = kb.b.use_var(sum);
                let s2 = kb.b.ins().fma(v, v, s);
                kb.b.def_var(sum, s2);
                Ok(())
            })?;
        }
        let s = kb.b.use_var(sum);
        let sc = kb.fconst(scale, 1);
        let kk = kb.fconst(k as f32, 1);
        let base = kb.b.ins().fma(s, sc, kk);
        let nb = kb.fconst(-(beta as f32), 1);
        let f = math::pow(&mut kb.b, base, nb);
        let v = kb.load(x, idx, Lanes::One);
        let y = kb.b.ins().fmul(v, f);
        kb.store(out, idx, Lanes::One, y);
        Ok(())
    })
}
