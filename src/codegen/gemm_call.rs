//! Contractions on the host GEMM engine ([`super::kernels::gemm`]: packed, register-blocked
//! `std::arch` micro-kernels at the machine's peak). The generated code drives it: it
//! walks the output in blocks of `mb` rows (output positions, or rows of a dense layer's
//! input), gathers a block of the convolution's input windows into the arena's scratch
//! area (im2col of one block only; a 1x1 convolution at stride 1 without padding, and a
//! dense layer, read their input in place), calls `netc_sgemm_packed` with the weight
//! packed once at binding, then runs the epilogue (bias is fused in the call; activation,
//! residual add, any elementwise expression) over the block of results while it is in
//! cache, storing the outputs.
//!
//! Used for convolutions with one group and dense layers whose weight is a parameter; the
//! portable Cranelift loop nest ([`super::contraction`]) does the rest, and everything under
//! `--debug-bounds`.

use super::contraction::Contraction;
use super::emit::{Kb, Lanes, Src};
use super::CodegenError;
use crate::ir::op::Conv2d;
use cranelift_codegen::ir::{
    types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value,
};

/// Byte offsets of the fields of `GemmCall` (see `kernels::gemm::abi`).
mod field {
    pub const M: i32 = 0;
    pub const N: i32 = 8;
    pub const K: i32 = 16;
    pub const A: i32 = 24;
    pub const RSA: i32 = 32;
    pub const CSA: i32 = 40;
    pub const B: i32 = 48;
    pub const RSB: i32 = 56;
    pub const CSB: i32 = 64;
    pub const PACKED_B: i32 = 72;
    pub const C: i32 = 80;
    pub const RSC: i32 = 88;
    pub const CSC: i32 = 96;
    pub const BIAS: i32 = 104;
    pub const RESIDUAL: i32 = 112;
    pub const RSR: i32 = 120;
    pub const CSR: i32 = 128;
    pub const RELU: i32 = 136;
    pub const ACCUMULATE: i32 = 140;
    pub const SIZE: u32 = 144;
}

/// Input channels up to which im2col copies a tap's channels in straight-line code.
const SMALL_CHANNELS: i64 = 8;

/// What the GEMM path of one contraction needs besides the descriptor.
pub struct GemmPlan {
    /// The parameter-table entry of the packed weight (a `PackedB`).
    pub packed: usize,
    /// Rows per block.
    pub mb: i64,
    /// The reduction depth `K` (taps × input channels, or features).
    pub k: i64,
    /// The output channels or units.
    pub n: i64,
    /// `Some(relu)` when the group computes only the contraction (plus its bias, and a
    /// ReLU when `relu`), all of which the engine applies in registers: the call then
    /// writes straight into the output, and no epilogue pass runs.
    pub direct: Option<bool>,
}

/// Rows per block for a reduction of depth `k`: the im2col block stays near 256 KiB, but
/// a block has at least 96 rows, below which re-reading the packed weight for every call
/// limits the engine (its measurements).
pub fn block_rows(k: i64) -> i64 {
    let rows = (65536 / k.max(1)).clamp(96, 256);
    rows / 16 * 16
}

/// Scratch elements a contraction needs: the im2col block and the result block.
pub fn scratch_elems(plan_k: i64, plan_n: i64) -> i64 {
    let mb = block_rows(plan_k);
    mb * plan_k + mb * plan_n
}

/// Emits one call of `netc_sgemm_packed` (the result block `c`, row-major `m × n`).
/// Where a call stores its `m × n` result: `c` with row and column strides (elements),
/// and whether the engine applies a ReLU last.
struct Dest {
    c: Value,
    rsc: Value,
    csc: Value,
    relu: bool,
}

#[allow(clippy::too_many_arguments)] // The fields of one GEMM call.
fn call(
    kb: &mut Kb<'_>,
    m: Value,
    plan: &GemmPlan,
    a: Value,
    rsa: Value,
    csa: Value,
    dest: &Dest,
    bias: Option<Value>,
) -> Result<(), CodegenError> {
    let gemm = kb
        .gemm
        .ok_or_else(|| CodegenError::internal("the GEMM entry is not imported".into()))?;
    let slot = kb.b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        field::SIZE,
        3,
    ));
    let p = kb.b.ins().stack_addr(types::I64, slot, 0);
    let f = MemFlagsData::trusted();
    let zero = kb.int(0);
    let n = kb.int(plan.n);
    let k = kb.int(plan.k);
    let off = i32::try_from(plan.packed * 8).unwrap_or(i32::MAX);
    let packed = kb.b.ins().load(types::I64, f, kb.params, off);
    let bias = bias.unwrap_or(zero);
    let zero32 = kb.b.ins().iconst(types::I32, 0);
    for (o, v) in [
        (field::M, m),
        (field::N, n),
        (field::K, k),
        (field::A, a),
        (field::RSA, rsa),
        (field::CSA, csa),
        (field::B, zero),
        (field::RSB, zero),
        (field::CSB, zero),
        (field::PACKED_B, packed),
        (field::C, dest.c),
        (field::RSC, dest.rsc),
        (field::CSC, dest.csc),
        (field::BIAS, bias),
        (field::RESIDUAL, zero),
        (field::RSR, zero),
        (field::CSR, zero),
    ] {
        kb.b.ins().store(f, v, p, o);
    }
    let relu = kb.b.ins().iconst(types::I32, i64::from(dest.relu));
    kb.b.ins().store(f, relu, p, field::RELU);
    kb.b.ins().store(f, zero32, p, field::ACCUMULATE);
    kb.b.ins().call(gemm, &[p]);
    Ok(())
}

/// The bias pointer when the bias is a parameter (fused into the call), else `None` (and
/// the epilogue adds it).
fn bias_ptr(kb: &mut Kb<'_>, c: &Contraction<'_, '_>) -> Option<Value> {
    let b = c.bias.as_ref()?;
    match b.op.src {
        Src::Param { .. } => Some(b.base),
        Src::Slot(_) | Src::Const(_) => None,
    }
    .inspect(|_| {
        let _ = kb;
    })
}

/// The epilogue of one block: for rows `0..m` of the result block `cblk` (row-major,
/// `n` columns), `idx_of(row)` gives the output index (with the column axis to fill);
/// each result goes through the group's expression to every output.
#[allow(clippy::too_many_arguments)] // The block, its geometry and the epilogue.
fn epilogue(
    kb: &mut Kb<'_>,
    c: &mut Contraction<'_, '_>,
    m: Value,
    n: i64,
    cblk: Value,
    axis: usize,
    add_bias: bool,
    idx_of: &mut dyn FnMut(&mut Kb<'_>, Value) -> Vec<Value>,
) -> Result<(), CodegenError> {
    let zero = kb.int(0);
    let nv = kb.int(n);
    kb.for_range(zero, m, 1, &mut |kb, i| {
        let idx = idx_of(kb, i);
        let row = kb.b.ins().imul_imm_s(i, n * 4);
        let rowp = kb.b.ins().iadd(cblk, row);
        kb.for_lanes(zero, nv, true, &mut |kb, o, width| {
            let lanes = if width == 1 {
                Lanes::One
            } else {
                Lanes::Four(axis)
            };
            let ty = if width == 1 { types::F32 } else { types::F32X4 };
            let off = kb.b.ins().imul_imm_s(o, 4);
            let addr = kb.b.ins().iadd(rowp, off);
            let mut v = kb.b.ins().load(ty, super::emit::mem(), addr, 0);
            if add_bias {
                if let Some(b) = c.bias.clone() {
                    let bl = if width == 1 {
                        Lanes::One
                    } else {
                        Lanes::Four(0)
                    };
                    let bv = kb.load(&b, &[o], bl);
                    v = kb.b.ins().fadd(v, bv);
                }
            }
            let mut at = idx.clone();
            at[axis] = o;
            super::contraction::store_outputs(kb, c, &at, lanes, v)
        })
    })
}

/// A convolution with one group: blocks of output positions through im2col and GEMM.
pub fn conv(
    kb: &mut Kb<'_>,
    c: &mut Contraction<'_, '_>,
    a: &Conv2d,
    plan: &GemmPlan,
    scratch: Value,
) -> Result<(), CodegenError> {
    let out = c.first_output()?;
    let x = c.x.clone();
    let (n_, oh_, ow_) = (out.dims[0], out.dims[2], out.dims[3]);
    let (h_, w_) = (x.dims[2], x.dims[3]);
    let cin = x.op.dims[1].known().unwrap_or(0) as i64;
    let [kh, kw] = [a.kernel[0] as i64, a.kernel[1] as i64];
    let [sh, sw] = [a.stride[0] as i64, a.stride[1] as i64];
    let [dh, dw] = [a.dilation[0] as i64, a.dilation[1] as i64];
    let (pt, pl) = (a.pad[0] as i64, a.pad[1] as i64);
    let direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && a.pad == [0, 0, 0, 0];
    let mb = plan.mb;
    let kdepth = plan.k;
    let ablk = scratch;
    let cblk = kb.b.ins().iadd_imm_s(scratch, mb * kdepth * 4);
    let bias = bias_ptr(kb, c);
    let add_bias = bias.is_none() && c.bias.is_some();
    let positions = kb.b.ins().imul(oh_, ow_);
    let zero = kb.int(0);
    let x_vec = x.op.contig == Some(1);
    kb.for_range(zero, n_, 1, &mut |kb, n| {
        let p_end = positions;
        let mbv = kb.int(mb);
        kb.for_range(zero, p_end, mb, &mut |kb, p0| {
            let left = kb.b.ins().isub(p_end, p0);
            let m = kb.b.ins().smin(left, mbv);
            let (ap, rsa, csa) = if direct {
                // Row p of A is x[n, :, p / W, p % W]: rows are `stride_w` apart (the
                // rows of both storage orders are dense over (h, w)).
                let oh0 = kb.b.ins().udiv(p0, ow_);
                let ow0 = kb.b.ins().urem(p0, ow_);
                let base = kb.byte_offset(&x, &[n, zero, oh0, ow0]);
                let ap = kb.b.ins().iadd(x.base, base);
                (ap, x.strides[3], x.strides[1])
            } else {
                im2col(
                    kb,
                    &x,
                    n,
                    p0,
                    m,
                    ow_,
                    h_,
                    w_,
                    ablk,
                    kdepth,
                    cin,
                    [kh, kw, sh, sw, dh, dw, pt, pl],
                    x_vec,
                )?;
                let k = kb.int(kdepth);
                let one = kb.int(1);
                (ablk, k, one)
            };
            if let (Some(relu), Some((_, out))) = (plan.direct, c.outputs.first()) {
                // Straight into the output: row p is (p / OW, p % OW), rows `stride_w`
                // apart (both storage orders are dense over (h, w)).
                let oh0 = kb.b.ins().udiv(p0, ow_);
                let ow0 = kb.b.ins().urem(p0, ow_);
                let off = kb.byte_offset(out, &[n, zero, oh0, ow0]);
                let dest = Dest {
                    c: kb.b.ins().iadd(out.base, off),
                    rsc: out.strides[3],
                    csc: out.strides[1],
                    relu,
                };
                return call(kb, m, plan, ap, rsa, csa, &dest, bias);
            }
            let nv = kb.int(plan.n);
            let onev = kb.int(1);
            let dest = Dest {
                c: cblk,
                rsc: nv,
                csc: onev,
                relu: false,
            };
            call(kb, m, plan, ap, rsa, csa, &dest, bias)?;
            epilogue(kb, c, m, plan.n, cblk, 1, add_bias, &mut |kb, i| {
                let p = kb.b.ins().iadd(p0, i);
                let oh = kb.b.ins().udiv(p, ow_);
                let ow = kb.b.ins().urem(p, ow_);
                vec![n, zero, oh, ow]
            })
        })
    })
}

/// Gathers the input windows of output positions `p0..p0+m` of image `n` into `ablk`,
/// row-major `m × K` with columns in `(kh, kw, c)` order (the packed weight's rows);
/// padding reads as zero.
#[allow(clippy::too_many_arguments)] // The window's geometry.
fn im2col(
    kb: &mut Kb<'_>,
    x: &super::emit::Bound,
    n: Value,
    p0: Value,
    m: Value,
    ow_: Value,
    h_: Value,
    w_: Value,
    ablk: Value,
    kdepth: i64,
    cin: i64,
    g: [i64; 8],
    vector: bool,
) -> Result<(), CodegenError> {
    let [kh, kw, sh, sw, dh, dw, pt, pl] = g;
    let zero = kb.int(0);
    let khv = kb.int(kh);
    let kwv = kb.int(kw);
    let cv = kb.int(cin);
    kb.for_range(zero, m, 1, &mut |kb, i| {
        let p = kb.b.ins().iadd(p0, i);
        let oh = kb.b.ins().udiv(p, ow_);
        let ow = kb.b.ins().urem(p, ow_);
        let ih0 = kb.b.ins().imul_imm_s(oh, sh);
        let ih0 = kb.b.ins().iadd_imm_s(ih0, -pt);
        let iw0 = kb.b.ins().imul_imm_s(ow, sw);
        let iw0 = kb.b.ins().iadd_imm_s(iw0, -pl);
        let row = kb.b.ins().imul_imm_s(i, kdepth * 4);
        let rowp = kb.b.ins().iadd(ablk, row);
        kb.for_range(zero, khv, 1, &mut |kb, ki| {
            let o = kb.b.ins().imul_imm_s(ki, dh);
            let ih = kb.b.ins().iadd(ih0, o);
            let ok_h = kb.in_range(ih, h_);
            kb.for_range(zero, kwv, 1, &mut |kb, kj| {
                let o = kb.b.ins().imul_imm_s(kj, dw);
                let iw = kb.b.ins().iadd(iw0, o);
                let ok_w = kb.in_range(iw, w_);
                let ok = kb.b.ins().band(ok_h, ok_w);
                let tap = kb.b.ins().imul_imm_s(ki, kw);
                let tap = kb.b.ins().iadd(tap, kj);
                let col = kb.b.ins().imul_imm_s(tap, cin * 4);
                let dst = kb.b.ins().iadd(rowp, col);
                let yes = kb.block();
                let no = kb.block();
                let done = kb.block();
                kb.b.ins().brif(ok, yes, &[], no, &[]);
                kb.b.switch_to_block(yes);
                if cin <= SMALL_CHANNELS {
                    // A few channels (the first layer's RGB): straight-line copies.
                    for ci in 0..cin {
                        let civ = kb.int(ci);
                        let v = kb.load(x, &[n, civ, ih, iw], Lanes::One);
                        kb.b.ins()
                            .store(super::emit::mem(), v, dst, (ci * 4) as i32);
                    }
                } else {
                    kb.for_lanes(zero, cv, vector, &mut |kb, ci, width| {
                        let lanes = if width == 1 {
                            Lanes::One
                        } else {
                            Lanes::Four(1)
                        };
                        let v = kb.load(x, &[n, ci, ih, iw], lanes);
                        let off = kb.b.ins().imul_imm_s(ci, 4);
                        let a = kb.b.ins().iadd(dst, off);
                        kb.b.ins().store(super::emit::mem(), v, a, 0);
                        Ok(())
                    })?;
                }
                kb.b.ins().jump(done, &[]);
                kb.b.switch_to_block(no);
                if cin <= SMALL_CHANNELS {
                    let z = kb.fconst(0.0, 1);
                    for ci in 0..cin {
                        kb.b.ins()
                            .store(super::emit::mem(), z, dst, (ci * 4) as i32);
                    }
                } else {
                    kb.for_lanes(zero, cv, true, &mut |kb, ci, width| {
                        let z = kb.fconst(0.0, width);
                        let off = kb.b.ins().imul_imm_s(ci, 4);
                        let a = kb.b.ins().iadd(dst, off);
                        kb.b.ins().store(super::emit::mem(), z, a, 0);
                        Ok(())
                    })?;
                }
                kb.b.ins().jump(done, &[]);
                kb.b.switch_to_block(done);
                Ok(())
            })
        })
    })
}

/// A dense layer: blocks of input rows straight from the input, through GEMM.
pub fn dense(
    kb: &mut Kb<'_>,
    c: &mut Contraction<'_, '_>,
    plan: &GemmPlan,
    scratch: Value,
) -> Result<(), CodegenError> {
    let out = c.first_output()?;
    let x = c.x.clone();
    let r = out.rank();
    if r < 2 {
        return Err(CodegenError::internal("a dense layer of rank < 2".into()));
    }
    let mb = plan.mb;
    let cblk = kb.b.ins().iadd_imm_s(scratch, mb * plan.k * 4);
    let bias = bias_ptr(kb, c);
    let add_bias = bias.is_none() && c.bias.is_some();
    let dims = out.dims.clone();
    let rows = dims[r - 2];
    let zero = kb.int(0);
    kb.nest(&dims[..r - 2], None, &mut |kb, lead| {
        let mbv = kb.int(mb);
        kb.for_range(zero, rows, mb, &mut |kb, p0| {
            let left = kb.b.ins().isub(rows, p0);
            let m = kb.b.ins().smin(left, mbv);
            let mut xi = lead.to_vec();
            xi.push(p0);
            xi.push(zero);
            let off = kb.byte_offset(&x, &xi);
            let ap = kb.b.ins().iadd(x.base, off);
            if let (Some(relu), Some((_, out))) = (plan.direct, c.outputs.first()) {
                let mut oi = lead.to_vec();
                oi.push(p0);
                oi.push(zero);
                let off = kb.byte_offset(out, &oi);
                let dest = Dest {
                    c: kb.b.ins().iadd(out.base, off),
                    rsc: out.strides[r - 2],
                    csc: out.strides[r - 1],
                    relu,
                };
                return call(
                    kb,
                    m,
                    plan,
                    ap,
                    x.strides[r - 2],
                    x.strides[r - 1],
                    &dest,
                    bias,
                );
            }
            let nv = kb.int(plan.n);
            let onev = kb.int(1);
            let dest = Dest {
                c: cblk,
                rsc: nv,
                csc: onev,
                relu: false,
            };
            call(
                kb,
                m,
                plan,
                ap,
                x.strides[r - 2],
                x.strides[r - 1],
                &dest,
                bias,
            )?;
            let lead = lead.to_vec();
            epilogue(kb, c, m, plan.n, cblk, r - 1, add_bias, &mut |kb, i| {
                let mut idx = lead.clone();
                let row = kb.b.ins().iadd(p0, i);
                idx.push(row);
                idx.push(zero);
                idx
            })
        })
    })
}
