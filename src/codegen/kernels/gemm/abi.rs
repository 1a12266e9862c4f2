//! The C-ABI entry points that JIT-compiled code calls: one `#[repr(C)]` argument block,
//! [`GemmCall`], filled in by the generated code (in its stack frame or arena) and passed
//! by address to [`netc_sgemm`] or [`netc_sgemm_packed`]. Nothing is checked here beyond
//! what is free: the JIT guarantees the pointers and extents (see [`GemmCall`]).

use super::driver::{self, BSrc, Problem, RawOp};
use super::pack::PackedB;
use super::Isa;

/// The argument block of [`netc_sgemm`] and [`netc_sgemm_packed`]: computes
/// `C = A·B` (or `C += A·B` when `accumulate ≠ 0`), then adds `bias[j]` to each column
/// (when `bias` is not null), then `residual[i·rsr + j·csr]` (when `residual` is not null),
/// then applies ReLU (when `relu ≠ 0`), and stores to C.
///
/// Element `(i, j)` of an operand is at `ptr + i·rs + j·cs` (strides in elements, any
/// sign). All integers are `i64` but the two flags (`i32`); the layout, in bytes, is:
///
/// | offset | field | offset | field | offset | field |
/// |---|---|---|---|---|---|
/// | 0 | `m` | 48 | `b` | 96 | `csc` |
/// | 8 | `n` | 56 | `rsb` | 104 | `bias` |
/// | 16 | `k` | 64 | `csb` | 112 | `residual` |
/// | 24 | `a` | 72 | `packed_b` | 120 | `rsr` |
/// | 32 | `rsa` | 80 | `c` | 128 | `csr` |
/// | 40 | `csa` | 88 | `rsc` | 136 | `relu` (i32), 140 `accumulate` (i32) |
///
/// 144 bytes in all, 8-byte aligned.
///
/// # Contract (what the JIT guarantees)
///
/// `m, n, k ≥ 0`. For every `i < m`, `j < n`, `l < k`: A's `(i, l)` and B's `(l, j)` are
/// readable `f32`s; C's `(i, j)` is a readable and writable `f32`; `bias[j]` and the
/// residual's `(i, j)` are readable when those pointers are not null. C overlaps none of
/// A, B, `bias` and the residual, and no other thread writes any of them during the call.
/// With [`netc_sgemm_packed`], `packed_b` points to a live [`PackedB`] with `k` rows and `n`
/// columns that no one mutates during the call (`b`, `rsb`, `csb` are ignored); with
/// [`netc_sgemm`], `packed_b` is ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GemmCall {
    /// Rows of A and C.
    pub m: i64,
    /// Columns of B and C.
    pub n: i64,
    /// Columns of A, rows of B (may be 0: then C is only scaled and the epilogue applied).
    pub k: i64,
    /// A's element `(0, 0)`.
    pub a: *const f32,
    /// A's row stride.
    pub rsa: i64,
    /// A's column stride.
    pub csa: i64,
    /// B's element `(0, 0)` ([`netc_sgemm`] only).
    pub b: *const f32,
    /// B's row stride.
    pub rsb: i64,
    /// B's column stride.
    pub csb: i64,
    /// The pre-packed B ([`netc_sgemm_packed`] only).
    pub packed_b: *const PackedB,
    /// C's element `(0, 0)`.
    pub c: *mut f32,
    /// C's row stride.
    pub rsc: i64,
    /// C's column stride.
    pub csc: i64,
    /// `n` biases added per column, or null.
    pub bias: *const f32,
    /// The residual's element `(0, 0)`, or null.
    pub residual: *const f32,
    /// The residual's row stride.
    pub rsr: i64,
    /// The residual's column stride.
    pub csr: i64,
    /// Non-zero: apply ReLU last.
    pub relu: i32,
    /// Non-zero: add the product to C instead of overwriting it.
    pub accumulate: i32,
}

/// Multiplies as `*call` describes, with the detected kernels ([`Isa::detected`]).
///
/// # Safety
///
/// `call` points to a [`GemmCall`] that meets its contract. A negative extent aborts the
/// process (a broken contract found for free).
pub unsafe extern "C" fn netc_sgemm(call: *const GemmCall) {
    // SAFETY: the caller passes a valid `GemmCall`.
    let call = unsafe { &*call };
    let b = BSrc::Strided {
        p: call.b,
        rs: call.rsb as isize,
        cs: call.csb as isize,
    };
    let ks = Isa::detected().kernels();
    // SAFETY: the contract of `GemmCall` is `driver::run`'s, and `detected` runs here.
    unsafe { run(call, b, ks) };
}

/// Multiplies as `*call` describes, with `*call.packed_b` as B and the kernels that packed
/// it.
///
/// # Safety
///
/// `call` points to a [`GemmCall`] that meets its contract, `packed_b` included. A
/// negative extent, or a `PackedB` whose shape is not `k×n`, aborts the process.
pub unsafe extern "C" fn netc_sgemm_packed(call: *const GemmCall) {
    // SAFETY: the caller passes a valid `GemmCall` whose `packed_b` is a live `PackedB`.
    let call = unsafe { &*call };
    // SAFETY: as above.
    let packed = unsafe { &*call.packed_b };
    assert!(
        i64::try_from(packed.k()) == Ok(call.k) && i64::try_from(packed.n()) == Ok(call.n),
        "netc_sgemm_packed: the packed B is {}x{}, the call {}x{}",
        packed.k(),
        packed.n(),
        call.k,
        call.n
    );
    let (p, npad) = packed.raw();
    // A `PackedB` can only be built for a supported ISA, so its kernels run here.
    let ks = packed.isa().kernels();
    // SAFETY: the contract of `GemmCall`, with the packed B's shape checked above.
    unsafe { run(call, BSrc::Packed { p, npad }, ks) };
}

/// The common part of the two entry points.
///
/// # Safety
///
/// `call` meets its contract with B as `b`, and the CPU runs `ks`.
unsafe fn run(call: &GemmCall, b: BSrc, ks: &driver::KernelSet) {
    let extent = |x: i64| {
        // A panic cannot unwind out of `extern "C"`: this aborts, with the message.
        usize::try_from(x).unwrap_or_else(|_| panic!("netc_sgemm: negative extent {x}"))
    };
    let (m, n, k) = (extent(call.m), extent(call.n), extent(call.k));
    let mut ops = [RawOp::Relu; 3];
    let mut len = 0;
    if !call.bias.is_null() {
        ops[len] = RawOp::PerColAdd(call.bias);
        len += 1;
    }
    if !call.residual.is_null() {
        ops[len] = RawOp::AddC {
            p: call.residual,
            rs: call.rsr as isize,
            cs: call.csr as isize,
        };
        len += 1;
    }
    if call.relu != 0 {
        ops[len] = RawOp::Relu;
        len += 1;
    }
    let problem = Problem {
        m,
        n,
        k,
        a: call.a,
        rsa: call.rsa as isize,
        csa: call.csa as isize,
        b,
        c: call.c,
        rsc: call.rsc as isize,
        csc: call.csc as isize,
        ops: &ops[..len],
        accumulate: call.accumulate != 0,
    };
    // SAFETY: the caller's contract is `driver::run`'s precondition.
    unsafe { driver::run(ks, &problem) };
}

#[cfg(test)]
mod tests {
    use super::super::{sgemm, FusedOp, MatMut, MatRef, PackedB};
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn the_layout_is_the_documented_one() {
        let offsets = [
            offset_of!(GemmCall, m),
            offset_of!(GemmCall, n),
            offset_of!(GemmCall, k),
            offset_of!(GemmCall, a),
            offset_of!(GemmCall, rsa),
            offset_of!(GemmCall, csa),
            offset_of!(GemmCall, b),
            offset_of!(GemmCall, rsb),
            offset_of!(GemmCall, csb),
            offset_of!(GemmCall, packed_b),
            offset_of!(GemmCall, c),
            offset_of!(GemmCall, rsc),
            offset_of!(GemmCall, csc),
            offset_of!(GemmCall, bias),
            offset_of!(GemmCall, residual),
            offset_of!(GemmCall, rsr),
            offset_of!(GemmCall, csr),
        ];
        assert_eq!(offsets, std::array::from_fn(|i| 8 * i));
        assert_eq!(offset_of!(GemmCall, relu), 136);
        assert_eq!(offset_of!(GemmCall, accumulate), 140);
        assert_eq!(size_of::<GemmCall>(), 144);
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000)
            .map(|x| x as f32 / 500.0 - 1.0)
            .collect()
    }

    /// The C-ABI entry points give bit for bit what the safe API gives, with transposed A,
    /// padded C, bias, residual, ReLU and accumulation.
    #[test]
    fn the_entry_points_agree_with_the_safe_api() {
        let (m, n, k) = (13, 37, 21);
        let a = values(m * k, 1); // Column-major.
        let b = values(k * n, 2); // Row-major.
        let bias = values(n, 3);
        let residual = values(m * n, 4); // Row-major.
        let c0 = values(m * (n + 3), 5); // Rows padded by 3.
        let packed = PackedB::new(k, n, &b, n as isize, 1).expect("packs");
        for accumulate in [false, true] {
            let mut want = c0.clone();
            let c = MatMut {
                data: &mut want,
                rows: m,
                cols: n,
                rs: n as isize + 3,
                cs: 1,
            };
            let ops = [
                FusedOp::PerColAdd(&bias),
                FusedOp::AddC(MatRef::row_major(&residual, m, n)),
                FusedOp::Relu,
            ];
            let (av, bv) = (MatRef::col_major(&a, m, k), MatRef::row_major(&b, k, n));
            sgemm(av, bv, c, &ops, accumulate).expect("multiplies");
            for use_packed in [false, true] {
                let mut got = c0.clone();
                let call = GemmCall {
                    m: m as i64,
                    n: n as i64,
                    k: k as i64,
                    a: a.as_ptr(),
                    rsa: 1,
                    csa: m as i64,
                    b: if use_packed {
                        std::ptr::null()
                    } else {
                        b.as_ptr()
                    },
                    rsb: n as i64,
                    csb: 1,
                    packed_b: if use_packed {
                        &packed
                    } else {
                        std::ptr::null()
                    },
                    c: got.as_mut_ptr(),
                    rsc: n as i64 + 3,
                    csc: 1,
                    bias: bias.as_ptr(),
                    residual: residual.as_ptr(),
                    rsr: n as i64,
                    csr: 1,
                    relu: 1,
                    accumulate: i32::from(accumulate),
                };
                // SAFETY: every pointer covers the extents and strides in `call`, C is a
                // separate buffer, and the packed B is `k×n`.
                unsafe {
                    if use_packed {
                        netc_sgemm_packed(&call);
                    } else {
                        netc_sgemm(&call);
                    }
                }
                assert_eq!(got, want, "packed: {use_packed}, accumulate: {accumulate}");
            }
        }
    }
}
