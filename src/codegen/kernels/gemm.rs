//! Single-precision matrix multiplication for the JIT: `C[m, n] (+)= Σ_k A[m, k]·B[k, n]`
//! with any row and column strides, followed by a short list of fused output operations
//! (bias, residual, ReLU) applied to each output tile while it is still in registers.
//!
//! # Why a hand-written engine
//!
//! Dense layers, convolutions lowered to im2col and recurrent cells spend nearly all their
//! time here. Cranelift only emits 128-bit vectors on x86-64 (about 41 GFLOP/s at best on
//! this project's Zen 4 machines), while a host kernel written with `std::arch` reaches the
//! machine's 256/512-bit FMA peak (~116 GFLOP/s per core). So JIT code calls into this
//! module ([`netc_sgemm`], [`netc_sgemm_packed`]) instead of emitting its own loops, and the
//! rest of netc calls the checked, safe [`sgemm`].
//!
//! # Design (BLIS)
//!
//! The classic five loops of BLIS around a register-blocked micro-kernel (Van Zee and van de
//! Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS Functionality", 2015):
//!
//! ```text
//! for jc in 0..n step nc                      B block kc×nc (L3)
//!   for pc in 0..k step kc                    pack B[pc.., jc..] into nr-column panels
//!     for ic in 0..m step mc                  pack A[ic.., pc..] into mr-row panels (L2)
//!       for jr in 0..nc step nr               one B micro-panel kc×nr
//!         for ir in 0..mc step mr             micro-kernel: an mr×nr tile of C in registers
//! ```
//!
//! - A micro-kernel (`driver::TileArgs`) multiplies an `mr×kc` panel of A by a `kc×nr`
//!   panel of B in registers, then adds C (when accumulating), applies the fused operations
//!   (only after the last `kc` block) and stores the tile. There is one kernel per row count
//!   `1..=mr`, so an edge in `m` wastes no arithmetic; an edge in `n`, a C with a non-unit
//!   column stride, or a residual with one, goes through a small temporary tile whose valid
//!   part is merged into C by scalar code.
//! - Packing (`pack`, `pack_avx`) copies A and B into contiguous, zero-padded panels, so the
//!   micro-kernel reads both sequentially whatever the caller's strides are (transposed
//!   operands cost nothing in the inner loop). A row-major A and a column-major B are
//!   packed by 8×8 register transposes. Where packing costs more than it saves, the
//!   kernels read the operand in place instead: a row-major A when `n ≤ 512` (packing A
//!   costs about as much as `nr` columns of product) and its rows are not a multiple of
//!   4 KiB apart (L1 set conflicts), and the full-width panels of a row-major B when a `kc`
//!   block of it spans at most 256 KiB (beyond that the TLB sets the pace).
//! - The blocking of each kernel set: `kc` up to 512 and `mc` about 12 panels, each
//!   balanced so the last block is not a sliver; `nc` 4096. Measured on Zen 4 (1 MiB L2):
//!   a `kc` of 256 was 5–8 % slower (twice the C traffic, though its B micro-panel would
//!   fit L1), and the swapped inner loops (A micro-panel in L1, B streamed from L2) were no
//!   faster.
//! - The kernels are chosen at run time ([`Isa::detected`], cached): AVX-512F (`8×32`),
//!   AVX2+FMA (`6×16`), or a portable plain-Rust fallback (`4×8`) that LLVM vectorises for
//!   the target's baseline. Each is one `driver::KernelSet` value: its tile, its blocking,
//!   its packers and a table of micro-kernel function pointers; the driver knows nothing
//!   else about it. The SIMD kernels share one body, a macro over the vector intrinsics.
//! - Weights are the B side (`out[m, n] = Σ_k x[m, k]·W[k, n]`). [`PackedB`] packs them once
//!   at bind time, in exactly the layout the driver would produce, so [`sgemm_packed`]
//!   skips B packing on every call.
//!
//! The result is deterministic: for one ISA, the order of every floating-point operation
//! depends only on `m`, `n` and `k` (not on strides, packing or whether B came packed).
//! Different ISAs may differ in the last bits (different tiles and `kc` order the sums
//! differently; the fallback does not fuse multiply and add).
//!
//! Everything is single-threaded for now; the packing workspace is per thread.
//!
//! # Safety
//!
//! The safe functions check, before any unsafe code runs, that every element their
//! operands' shapes and strides can reach lies inside the operands' slices (returning a
//! [`GemmError`] otherwise); from then on the driver works on raw pointers and strides. The
//! C-ABI entry points skip those checks: their caller (JIT code) guarantees them.

mod abi;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod check;
mod driver;
mod fallback;
mod pack;
#[cfg(target_arch = "x86_64")]
mod pack_avx;
#[cfg(target_arch = "x86_64")]
mod simd;

pub use abi::{netc_sgemm, netc_sgemm_packed, GemmCall};
pub use check::{GemmError, Operand};
pub use pack::PackedB;

use std::sync::OnceLock;

/// A read-only strided matrix view: element `(i, j)` is `data[i·rs + j·cs]` for
/// `i < rows`, `j < cols`. Strides count elements and may be any value (a transposed view
/// swaps them); the checked functions reject a view whose elements fall outside `data`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// The elements, at least as long as the strides and extents require.
    pub data: &'a [f32],
    /// The number of rows.
    pub rows: usize,
    /// The number of columns.
    pub cols: usize,
    /// How many elements apart two consecutive rows are.
    pub rs: isize,
    /// How many elements apart two consecutive columns are.
    pub cs: isize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major `rows×cols` view of `data` (`rs = cols`, `cs = 1`).
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rows,
            cols,
            rs: stride(cols),
            cs: 1,
        }
    }

    /// A dense column-major `rows×cols` view of `data` (`rs = 1`, `cs = rows`).
    pub fn col_major(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rows,
            cols,
            rs: 1,
            cs: stride(rows),
        }
    }

    /// The transposed view of the same elements.
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// A writable strided matrix view, laid out as in [`MatRef`].
#[derive(Debug)]
pub struct MatMut<'a> {
    /// The elements, at least as long as the strides and extents require.
    pub data: &'a mut [f32],
    /// The number of rows.
    pub rows: usize,
    /// The number of columns.
    pub cols: usize,
    /// How many elements apart two consecutive rows are.
    pub rs: isize,
    /// How many elements apart two consecutive columns are.
    pub cs: isize,
}

impl<'a> MatMut<'a> {
    /// A dense row-major `rows×cols` view of `data` (`rs = cols`, `cs = 1`).
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        MatMut {
            data,
            rows,
            cols,
            rs: stride(cols),
            cs: 1,
        }
    }

    /// A dense column-major `rows×cols` view of `data` (`rs = 1`, `cs = rows`).
    pub fn col_major(data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        MatMut {
            data,
            rows,
            cols,
            rs: 1,
            cs: stride(rows),
        }
    }
}

/// A dense extent as a stride; an extent too large for `isize` gives `isize::MAX`, which
/// the bounds check then rejects (no slice is that long).
fn stride(extent: usize) -> isize {
    isize::try_from(extent).unwrap_or(isize::MAX)
}

/// One operation of the fused epilogue, applied to each element `t` of the output tile
/// after the product: the tile is first `T = A·B` (plus the old C when accumulating), then
/// the operations run in order, then `T` is stored to C. (The style of tract-linalg's
/// `FusedSpec`: a short list, each item applied by the micro-kernel in registers.)
#[derive(Clone, Copy, Debug)]
pub enum FusedOp<'a> {
    /// `t[i, j] += v[j]`: a bias per output column (`v.len() == n`).
    PerColAdd(&'a [f32]),
    /// `t[i, j] += v[i]`: a bias per output row (`v.len() == m`).
    PerRowAdd(&'a [f32]),
    /// `t[i, j] *= s`.
    ScalarMul(f32),
    /// `t[i, j] += r[i, j]`: a residual, an `m×n` matrix (any strides).
    AddC(MatRef<'a>),
    /// `t = if t < 0 { 0 } else { t }`: ReLU that keeps NaN visible, like the interpreter.
    Relu,
}

/// The instruction-set variants of the micro-kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// AVX-512F kernels (x86-64).
    Avx512,
    /// AVX2 + FMA kernels (x86-64).
    Avx2,
    /// Plain Rust that LLVM vectorises for the compilation target; runs everywhere.
    Fallback,
}

impl Isa {
    /// Every variant, best first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Fallback];

    /// Whether this machine can run the variant.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Fallback => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The variants this machine supports, best first (always ends with
    /// [`Isa::Fallback`]).
    pub fn supported() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }

    /// The variant [`sgemm`] uses on this machine: the first supported one of
    /// [`Isa::ALL`], detected once and cached.
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .find(|isa| isa.is_supported())
                .unwrap_or(Isa::Fallback)
        })
    }

    /// A short name that also gives the micro-kernel's tile, e.g. `"avx2 6x16"`.
    pub fn name(self) -> &'static str {
        self.kernels().name
    }

    /// The micro-kernel tile `(mr, nr)`: rows of A and columns of B per kernel call.
    pub fn tile(self) -> (usize, usize) {
        let ks = self.kernels();
        (ks.mr, ks.nr)
    }

    /// The kernels and blocking of this variant (whether or not the machine runs them).
    fn kernels(self) -> &'static driver::KernelSet {
        match self {
            Isa::Fallback => &fallback::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => &avx2::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => &avx512::KERNELS,
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => &fallback::KERNELS,
        }
    }

    /// The kernels of this variant, or an error when the machine cannot run them.
    fn kernels_checked(self) -> Result<&'static driver::KernelSet, GemmError> {
        if self.is_supported() {
            Ok(self.kernels())
        } else {
            Err(GemmError::Unsupported(self))
        }
    }
}

/// The name of the micro-kernel variant [`sgemm`] uses on this machine, e.g.
/// `"avx512 ..."`, `"avx2 6x16"` or `"fallback 4x8"`.
pub fn selected_kernel() -> &'static str {
    Isa::detected().name()
}

/// `C = A·B` (or `C += A·B` when `accumulate`), then the fused `ops` in order, with the
/// detected kernels. `A` is `m×k`, `B` is `k×n`, `C` is `m×n`; any strides.
///
/// Returns an error, having touched nothing, when the shapes disagree or some element the
/// shapes and strides reach lies outside its slice.
pub fn sgemm(
    a: MatRef,
    b: MatRef,
    c: MatMut,
    ops: &[FusedOp],
    accumulate: bool,
) -> Result<(), GemmError> {
    sgemm_with(Isa::detected(), a, b, c, ops, accumulate)
}

/// [`sgemm`] with the kernels of `isa` (for tests and benchmarks); an error when this
/// machine does not support `isa`.
pub fn sgemm_with(
    isa: Isa,
    a: MatRef,
    b: MatRef,
    c: MatMut,
    ops: &[FusedOp],
    accumulate: bool,
) -> Result<(), GemmError> {
    let ks = isa.kernels_checked()?;
    let problem = check::checked_problem(a, check::BOperand::Strided(b), c, ops, accumulate)?;
    let raw_ops = check::raw_ops(ops);
    // SAFETY: `checked_problem` verified that every element reachable from each operand's
    // extents and strides lies inside its slice, that the shapes agree, and that the ops'
    // operands cover `m×n`; the slices are borrowed for the whole call (C mutably, so
    // nothing else aliases it); and `kernels_checked` verified this CPU runs `ks`.
    unsafe { driver::run(ks, &problem.with_ops(&raw_ops)) };
    Ok(())
}

/// [`sgemm`] with a B packed in advance by [`PackedB::new`], with the kernels that packed
/// it. `A` is `m×k` with `k == b.k()`, `C` is `m×b.n()`.
pub fn sgemm_packed(
    a: MatRef,
    b: &PackedB,
    c: MatMut,
    ops: &[FusedOp],
    accumulate: bool,
) -> Result<(), GemmError> {
    let ks = b.isa().kernels_checked()?;
    let problem = check::checked_problem(a, check::BOperand::Packed(b), c, ops, accumulate)?;
    let raw_ops = check::raw_ops(ops);
    // SAFETY: as in `sgemm_with`; in addition `b` was packed by `ks`'s layout for exactly
    // `k×n` (checked against A and C), and it is borrowed for the whole call.
    unsafe { driver::run(ks, &problem.with_ops(&raw_ops)) };
    Ok(())
}
