//! The portable micro-kernels, in plain Rust: a `4×8` tile of `f32` accumulators whose
//! inner loops LLVM vectorises for the target's baseline vectors (SSE2 on x86-64, NEON on
//! AArch64), two 128-bit vectors per row. Multiply and add stay separate (`mul_add` would
//! be a libm call without hardware FMA), so results may differ from the FMA kernels in the
//! last bits.

use super::driver::{apply_ops, KernelSet, TileArgs, Ukr};
use super::pack;

/// Rows of A per tile.
const MR: usize = 4;
/// Columns of B per tile.
const NR: usize = 8;

/// An `R×8` tile.
///
/// # Safety
///
/// `R ≤ MR`, and the pointers of `t` are valid as [`TileArgs`] describes.
#[allow(
    clippy::needless_range_loop,
    reason = "index loops with constant bounds are what LLVM unrolls into registers"
)]
unsafe fn ukr<const R: usize>(t: &TileArgs) {
    // Constant-bound index loops only, so that LLVM keeps `acc` in vector registers (an
    // iterator or a loop of unknown length over it would leave it in memory).
    let mut acc = [[0.0f32; NR]; R];
    for l in 0..t.k {
        // SAFETY: step `l < k` of the B panel holds `NR` values, of the A panel `MR ≥ R`.
        let (a, b) = unsafe {
            let b = t.b.offset(l as isize * t.b_rs).cast::<[f32; NR]>();
            (t.a.offset(l as isize * t.a_cs), &*b)
        };
        for i in 0..R {
            // SAFETY: as above.
            let ai = unsafe { *a.offset(i as isize * t.a_rs) };
            for j in 0..NR {
                acc[i][j] += ai * b[j];
            }
        }
    }
    for i in 0..R {
        // SAFETY: row `i < R` of the tile holds `NR` contiguous elements.
        let c = unsafe { &mut *t.c.offset(i as isize * t.rsc).cast::<[f32; NR]>() };
        for j in 0..NR {
            c[j] = if t.load_c {
                acc[i][j] + c[j]
            } else {
                acc[i][j]
            };
        }
    }
    if !t.ops.is_empty() {
        for i in 0..R {
            for j in 0..NR {
                // SAFETY: `(i, j)` is inside the tile, and the ops' operands cover it.
                unsafe {
                    let c = t.c.offset(i as isize * t.rsc).add(j);
                    *c = apply_ops(*c, t.ops, t.row0 + i, t.col0 + j);
                }
            }
        }
    }
}

/// The portable kernel set.
pub(super) static KERNELS: KernelSet = KernelSet {
    name: "fallback 4x8",
    mr: MR,
    nr: NR,
    kc: 256,
    mc: 128,
    nc: 4096,
    pack_a: pack::pack_a,
    pack_b: pack::pack_b,
    ukr: &[ukr::<1> as Ukr, ukr::<2>, ukr::<3>, ukr::<4>],
};
