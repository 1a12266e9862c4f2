//! Packing with AVX for the x86-64 kernel sets: when the operand's packed direction is
//! strided but the other is contiguous (a row-major A, a column-major B), the generic
//! packers copy one element at a time; these instead load eight contiguous values from each
//! of eight rows, transpose the 8×8 block in registers and store it in panel order. Other
//! strides, and the ragged ends, go to the generic packers in [`super::pack`].

use super::pack;
use std::arch::x86_64::{
    __m256, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_loadu_ps, _mm256_permute2f128_ps,
    _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_storeu_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    _mm_castps_pd, _mm_storel_pd, _mm_storeu_ps,
};

/// Transposes the 8×8 block whose rows are `r`: afterwards `r[j][i]` is the old `r[i][j]`.
#[target_feature(enable = "avx")]
fn transpose8(r: &mut [__m256; 8]) {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    r[0] = _mm256_permute2f128_ps::<0x20>(s0, s4);
    r[1] = _mm256_permute2f128_ps::<0x20>(s1, s5);
    r[2] = _mm256_permute2f128_ps::<0x20>(s2, s6);
    r[3] = _mm256_permute2f128_ps::<0x20>(s3, s7);
    r[4] = _mm256_permute2f128_ps::<0x31>(s0, s4);
    r[5] = _mm256_permute2f128_ps::<0x31>(s1, s5);
    r[6] = _mm256_permute2f128_ps::<0x31>(s2, s6);
    r[7] = _mm256_permute2f128_ps::<0x31>(s3, s7);
}

/// Copies `rows` (6 or 8) strided vectors of `len` contiguous elements, transposed:
/// `dst[s·width + v] = src[v·stride + s]` for `v < rows`, `s < len`. Steps go eight at a
/// time through [`transpose8`], the rest one by one.
///
/// # Safety
///
/// `src[v·stride + s]` is readable and `dst[s·width + v]` writable for `v < rows`,
/// `s < len`; `rows` is 6 or 8 and `width ≥ rows`, and when `rows` is 8 the stores may also
/// write elements `rows..8` of a step, so `width ≥ 8`.
#[target_feature(enable = "avx")]
unsafe fn transpose_copy(
    dst: *mut f32,
    width: usize,
    src: *const f32,
    stride: isize,
    rows: usize,
    len: usize,
) {
    debug_assert!((rows == 6 || rows == 8) && width >= rows);
    // SAFETY: every access is one the caller allows (`s + 8 ≤ len` for the vector loads,
    // which read 8 elements of each of the `rows` vectors; the stores write `rows` elements
    // of each step).
    unsafe {
        let row = |v: usize| src.offset(v as isize * stride);
        let mut s = 0;
        while s + 8 <= len {
            let mut r = [_mm256_setzero_ps(); 8];
            for (v, x) in r.iter_mut().enumerate().take(rows) {
                *x = _mm256_loadu_ps(row(v).add(s));
            }
            transpose8(&mut r);
            for (j, x) in r.iter().enumerate() {
                let d = dst.add((s + j) * width);
                if rows == 8 {
                    _mm256_storeu_ps(d, *x);
                } else {
                    // Six lanes: the low four, then two of the high half as one f64.
                    _mm_storeu_ps(d, _mm256_castps256_ps128(*x));
                    _mm_storel_pd(
                        d.add(4).cast(),
                        _mm_castps_pd(_mm256_extractf128_ps::<1>(*x)),
                    );
                }
            }
            s += 8;
        }
        for s in s..len {
            for v in 0..rows {
                *dst.add(s * width + v) = *row(v).add(s);
            }
        }
    }
}

/// [`pack::pack_a`] with 8×8 transposes when A's rows are contiguous (`csa == 1`) and the
/// panel height `mr` is 6 or 8.
///
/// # Safety
///
/// As for [`pack::pack_a`], and the CPU supports AVX.
pub(super) unsafe fn pack_a(
    dst: *mut f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    mb: usize,
    kb: usize,
    mr: usize,
) {
    if csa != 1 || !(mr == 6 || mr == 8) {
        // SAFETY: forwarded.
        return unsafe { pack::pack_a(dst, a, rsa, csa, mb, kb, mr) };
    }
    for (q, i0) in (0..mb).step_by(mr).enumerate() {
        let rows = mr.min(mb - i0);
        // SAFETY: panel `q` and rows `i0..i0 + rows` are inside the block (caller); a full
        // panel is `rows = mr` contiguous rows of `kb` written at width `mr`; a ragged one
        // goes to the generic packer, which zero-pads it.
        unsafe {
            let (panel, src) = (dst.add(q * mr * kb), a.offset(i0 as isize * rsa));
            if rows == mr {
                transpose_copy(panel, mr, src, rsa, mr, kb);
            } else {
                pack::pack_a(panel, src, rsa, csa, rows, kb, mr);
            }
        }
    }
}

/// [`pack::pack_b`] with 8×8 transposes when B's columns are contiguous (`rsb == 1`, a
/// transposed weight matrix) and the panel width `nr` is a multiple of 8.
///
/// # Safety
///
/// As for [`pack::pack_b`], and the CPU supports AVX.
pub(super) unsafe fn pack_b(
    dst: *mut f32,
    b: *const f32,
    rsb: isize,
    csb: isize,
    kb: usize,
    nb: usize,
    nr: usize,
) {
    if rsb != 1 || csb == 1 || !nr.is_multiple_of(8) {
        // SAFETY: forwarded.
        return unsafe { pack::pack_b(dst, b, rsb, csb, kb, nb, nr) };
    }
    for (q, j0) in (0..nb).step_by(nr).enumerate() {
        let cols = nr.min(nb - j0);
        // SAFETY: panel `q` and columns `j0..j0 + cols` are inside the block (caller); each
        // group of 8 columns is written at width `nr ≥ 8` (its stores stay inside the step);
        // a ragged panel goes to the generic packer, which zero-pads it.
        unsafe {
            let (panel, src) = (dst.add(q * nr * kb), b.offset(j0 as isize * csb));
            if cols == nr {
                for g in (0..nr).step_by(8) {
                    transpose_copy(panel.add(g), nr, src.offset(g as isize * csb), csb, 8, kb);
                }
            } else {
                pack::pack_b(panel, src, rsb, csb, kb, cols, nr);
            }
        }
    }
}
