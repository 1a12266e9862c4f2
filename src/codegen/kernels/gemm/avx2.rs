//! The AVX2 + FMA micro-kernels: a `6×16` tile in twelve 256-bit accumulators, the tile of
//! BLIS and OpenBLAS for Haswell-class cores (16 vector registers: 12 accumulators, 2 B
//! vectors, 1 broadcast). Blocking as for [`super::avx512`]: `kc = 512`, `mc = 72`
//! (12 panels), `nc = 4096`.

use super::driver::KernelSet;
use super::pack_avx;
use super::simd::{simd_ukr, ukr_table};
use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_max_ps, _mm256_mul_ps,
    _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

/// Rows of A per tile.
const MR: usize = 6;
/// 256-bit vectors per row of the tile.
const NV: usize = 2;

simd_ukr! {
    /// An `R×16` tile with AVX2 and FMA.
    fn ukr;
    features = "avx2,fma", vector = __m256, width = 8, nv = NV;
    zero = _mm256_setzero_ps, load = _mm256_loadu_ps, store = _mm256_storeu_ps,
    splat = _mm256_set1_ps, fma = _mm256_fmadd_ps, add = _mm256_add_ps, mul = _mm256_mul_ps,
    max = _mm256_max_ps,
}

/// The AVX2 + FMA kernel set.
pub(super) static KERNELS: KernelSet = KernelSet {
    name: "avx2 6x16",
    mr: MR,
    nr: NV * 8,
    kc: 512,
    mc: 72,
    nc: 4096,
    pack_a: pack_avx::pack_a,
    pack_b: pack_avx::pack_b,
    ukr: ukr_table!(ukr; 1 2 3 4 5 6),
};
