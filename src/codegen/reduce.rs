//! Reductions along an axis and the losses: softmax and log-softmax (the row's maximum,
//! the sum of shifted exponentials and the normalisation, one loop nest per row), mean and
//! sum over an axis (floats, or integers in `i64`), softmax cross-entropy (integer labels
//! or probabilities, numerically stable, averaged over positions) and mean squared error.
//! Sums of losses accumulate in `f64`, as the reference kernels do.

use super::abi::Status;
use super::emit::{Bound, Elem, Kb, Lanes};
use super::math;
use super::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};

fn with(idx: &[Value], axis: usize, i: Value) -> Vec<Value> {
    let mut v = idx.to_vec();
    v[axis] = i;
    v
}

/// Softmax (`log == false`) or log-softmax of `x` along `axis` into `out`.
pub fn softmax(
    kb: &mut Kb<'_>,
    x: &Bound,
    out: &Bound,
    axis: usize,
    log: bool,
) -> Result<(), CodegenError> {
    let dims = x.dims.clone();
    let len = dims[axis];
    kb.nest(&dims, Some(axis), &mut |kb, row| {
        let (m, lse_or_sum) = max_and_sum(kb, x, row, axis, len)?;
        let zero = kb.int(0);
        kb.for_range(zero, len, 1, &mut |kb, i| {
            let at = with(row, axis, i);
            let v = kb.load(x, &at, Lanes::One);
            let d = kb.b.ins().fsub(v, m);
            let y = if log {
                kb.b.ins().fsub(d, lse_or_sum.1)
            } else {
                let e = math::exp(&mut kb.b, d);
                kb.b.ins().fdiv(e, lse_or_sum.0)
            };
            kb.store(out, &at, Lanes::One, y);
            Ok(())
        })
    })
}

/// The row's maximum, and (the sum of `exp(x − max)`, its logarithm).
fn max_and_sum(
    kb: &mut Kb<'_>,
    x: &Bound,
    row: &[Value],
    axis: usize,
    len: Value,
) -> Result<(Value, (Value, Value)), CodegenError> {
    let zero = kb.int(0);
    let mv = kb.b.declare_var(types::F32);
    let ninf = kb.fconst(f32::NEG_INFINITY, 1);
    kb.b.def_var(mv, ninf);
    kb.for_range(zero, len, 1, &mut |kb, i| {
        let v = kb.load(x, &with(row, axis, i), Lanes::One);
        let m = kb.b.use_var(mv);
        let n = kb.max(v, m);
        kb.b.def_var(mv, n);
        Ok(())
    })?;
    let m = kb.b.use_var(mv);
    let sv = kb.b.declare_var(types::F32);
    let z = kb.fconst(0.0, 1);
    kb.b.def_var(sv, z);
    kb.for_range(zero, len, 1, &mut |kb, i| {
        let v = kb.load(x, &with(row, axis, i), Lanes::One);
        let d = kb.b.ins().fsub(v, m);
        let e = math::exp(&mut kb.b, d);
        let s = kb.b.use_var(sv);
        let s2 = kb.b.ins().fadd(s, e);
        kb.b.def_var(sv, s2);
        Ok(())
    })?;
    let s = kb.b.use_var(sv);
    let l = math::ln(&mut kb.b, s);
    Ok((m, (s, l)))
}

/// Mean (`mean == true`) or sum of `x` over `axis` (removed in `out`).
pub fn mean_sum(
    kb: &mut Kb<'_>,
    x: &Bound,
    out: &Bound,
    axis: usize,
    mean: bool,
) -> Result<(), CodegenError> {
    let dims = x.dims.clone();
    let len = dims[axis];
    let int_in = x.op.elem == Elem::I64;
    let int_out = out.op.elem == Elem::I64;
    kb.nest(&dims, Some(axis), &mut |kb, row| {
        let acc_ty = if int_out { types::I64 } else { types::F64 };
        let acc = kb.b.declare_var(acc_ty);
        let z = if int_out {
            kb.int(0)
        } else {
            kb.b.ins().f64const(0.0)
        };
        kb.b.def_var(acc, z);
        let zero = kb.int(0);
        kb.for_range(zero, len, 1, &mut |kb, i| {
            let v = kb.load(x, &with(row, axis, i), Lanes::One);
            let v = match (int_in, int_out) {
                (true, true) | (false, false) if int_out => v,
                (true, _) => kb.b.ins().fcvt_from_sint(types::F64, v),
                (false, _) => kb.b.ins().fpromote(types::F64, v),
            };
            let a = kb.b.use_var(acc);
            let s = if int_out {
                kb.b.ins().iadd(a, v)
            } else {
                kb.b.ins().fadd(a, v)
            };
            kb.b.def_var(acc, s);
            Ok(())
        })?;
        let mut r = kb.b.use_var(acc);
        if !int_out {
            if mean {
                let n = kb.b.ins().fcvt_from_sint(types::F64, len);
                r = kb.b.ins().fdiv(r, n);
            }
            r = kb.b.ins().fdemote(types::F32, r);
        }
        let mut oidx = row.to_vec();
        oidx.remove(axis);
        kb.store(out, &oidx, Lanes::One, r);
        Ok(())
    })
}

/// Mean softmax cross-entropy of `logits [N, …, C]` against integer `labels [N, …]` or
/// probabilities of the logits' shape, into the scalar `out`.
pub fn cross_entropy(
    kb: &mut Kb<'_>,
    logits: &Bound,
    labels: &Bound,
    out: &Bound,
) -> Result<(), CodegenError> {
    let dims = logits.dims.clone();
    let axis = dims.len() - 1;
    let classes = dims[axis];
    let total = kb.b.declare_var(types::F64);
    let z = kb.b.ins().f64const(0.0);
    kb.b.def_var(total, z);
    let count = kb.b.declare_var(types::I64);
    let zi = kb.int(0);
    kb.b.def_var(count, zi);
    let int_labels = labels.op.elem == Elem::I64;
    kb.nest(&dims, Some(axis), &mut |kb, row| {
        let (m, (_, lse)) = max_and_sum(kb, logits, row, axis, classes)?;
        let c = kb.b.use_var(count);
        let c1 = kb.b.ins().iadd_imm_s(c, 1);
        kb.b.def_var(count, c1);
        if int_labels {
            let label = kb.load(labels, &row[..axis], Lanes::One);
            let ok = kb.in_range(label, classes);
            let bad = kb.b.ins().icmp_imm_s(IntCC::Equal, ok, 0);
            kb.if_then(bad, &mut |kb| {
                kb.set_status(Status::LabelOutOfRange, label);
                Ok(())
            })?;
            kb.if_then(ok, &mut |kb| {
                let v = kb.load(logits, &with(row, axis, label), Lanes::One);
                let d = kb.b.ins().fsub(v, m);
                let lp = kb.b.ins().fsub(d, lse);
                let lp = kb.b.ins().fpromote(types::F64, lp);
                let t = kb.b.use_var(total);
                let t2 = kb.b.ins().fsub(t, lp);
                kb.b.def_var(total, t2);
                Ok(())
            })?;
        } else {
            let zero = kb.int(0);
            kb.for_range(zero, classes, 1, &mut |kb, i| {
                let at = with(row, axis, i);
                let v = kb.load(logits, &at, Lanes::One);
                let q = kb.load(labels, &at, Lanes::One);
                let d = kb.b.ins().fsub(v, m);
                let lp = kb.b.ins().fsub(d, lse);
                let lp = kb.b.ins().fpromote(types::F64, lp);
                let q = kb.b.ins().fpromote(types::F64, q);
                let t = kb.b.use_var(total);
                let prod = kb.b.ins().fmul(q, lp);
                let t2 = kb.b.ins().fsub(t, prod);
                kb.b.def_var(total, t2);
                Ok(())
            })?;
        }
        Ok(())
    })?;
    let t = kb.b.use_var(total);
    let c = kb.b.use_var(count);
    let one = kb.int(1);
    let c = kb.b.ins().smax(c, one);
    let cf = kb.b.ins().fcvt_from_sint(types::F64, c);
    let r = kb.b.ins().fdiv(t, cf);
    let r = kb.b.ins().fdemote(types::F32, r);
    kb.store(out, &[], Lanes::One, r);
    Ok(())
}

/// Mean squared error of `a` and `b` (one shape) into the scalar `out`.
pub fn mse(kb: &mut Kb<'_>, a: &Bound, b: &Bound, out: &Bound) -> Result<(), CodegenError> {
    let dims = a.dims.clone();
    let total = kb.b.declare_var(types::F64);
    let z = kb.b.ins().f64const(0.0);
    kb.b.def_var(total, z);
    kb.nest(&dims, None, &mut |kb, idx| {
        let x = kb.load(a, idx, Lanes::One);
        let y = kb.load(b, idx, Lanes::One);
        let d = kb.b.ins().fsub(x, y);
        let d = kb.b.ins().fpromote(types::F64, d);
        let t = kb.b.use_var(total);
        let t2 = kb.b.ins().fma(d, d, t);
        kb.b.def_var(total, t2);
        Ok(())
    })?;
    let mut n = kb.int(1);
    for d in &dims {
        n = kb.b.ins().imul(n, *d);
    }
    let one = kb.int(1);
    let n = kb.b.ins().smax(n, one);
    let nf = kb.b.ins().fcvt_from_sint(types::F64, n);
    let t = kb.b.use_var(total);
    let r = kb.b.ins().fdiv(t, nf);
    let r = kb.b.ins().fdemote(types::F32, r);
    kb.store(out, &[], Lanes::One, r);
    Ok(())
}
