//! The AVX-512F micro-kernels: an `8×32` tile in sixteen 512-bit accumulators (two
//! vectors of B, one broadcast of A per row and step). Zen 4 executes a 512-bit FMA as two
//! 256-bit halves, so AVX-512 adds registers, not FLOPs; what it gains over [`super::avx2`]
//! (a few per cent on Zen 4) comes from the wider tile: half as many broadcasts, loads and
//! C updates per FMA. Measured on Zen 4 against `12×32`, `14×32`, `6×64` and `8×48`: none
//! was faster, and the taller tiles lose the 8-row transposing packer.
//!
//! Blocking: `kc = 512` (long runs of FMAs per C update; the B micro-panel streams from L2,
//! which Zen 4 feeds fast enough), `mc = 96` (an A block of 192 KiB in L2), `nc = 4096`.

use super::driver::KernelSet;
use super::pack_avx;
use super::simd::{simd_ukr, ukr_table};
use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_max_ps, _mm512_mul_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

/// Rows of A per tile.
const MR: usize = 8;
/// 512-bit vectors per row of the tile.
const NV: usize = 2;

simd_ukr! {
    /// An `R×32` tile with AVX-512F.
    fn ukr;
    features = "avx512f", vector = __m512, width = 16, nv = NV;
    zero = _mm512_setzero_ps, load = _mm512_loadu_ps, store = _mm512_storeu_ps,
    splat = _mm512_set1_ps, fma = _mm512_fmadd_ps, add = _mm512_add_ps, mul = _mm512_mul_ps,
    max = _mm512_max_ps,
}

/// The AVX-512F kernel set.
pub(super) static KERNELS: KernelSet = KernelSet {
    name: "avx512 8x32",
    mr: MR,
    nr: NV * 16,
    kc: 512,
    mc: 96,
    nc: 4096,
    pack_a: pack_avx::pack_a,
    pack_b: pack_avx::pack_b,
    ukr: ukr_table!(ukr; 1 2 3 4 5 6 7 8),
};
