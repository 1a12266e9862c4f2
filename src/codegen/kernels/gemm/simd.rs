//! The one body of every `std::arch` micro-kernel, as a macro instantiated per instruction
//! set with its vector type and intrinsics ([`super::avx512`], [`super::avx2`]). The kernel
//! keeps an `R×NV` array of vector accumulators (`R` rows of A, `NV` vectors of B's row);
//! with every bound a constant, LLVM unrolls the loops and keeps the array in registers.
//! Per step of `k` it loads `NV` vectors of the B panel, broadcasts `R` values of the A
//! panel and issues `R·NV` fused multiply-adds.

/// Defines `unsafe fn $name<const R: usize>(t: &TileArgs)`, a [`Ukr`](super::driver::Ukr)
/// for `R` rows, with the given target features, vector type, lanes per vector, vectors
/// per row `nv` (so `nr = nv·width`), and intrinsics.
macro_rules! simd_ukr {
    (
        $(#[$attr:meta])*
        fn $name:ident;
        features = $feat:literal, vector = $v:ty, width = $w:expr, nv = $nv:expr;
        zero = $zero:path, load = $load:path, store = $store:path, splat = $splat:path,
        fma = $fma:path, add = $add:path, mul = $mul:path, max = $max:path $(,)?
    ) => {
        $(#[$attr])*
        ///
        /// # Safety
        ///
        /// The CPU supports the target features, `R ≤ mr`, and the pointers of `t` are valid
        /// as [`TileArgs`](super::driver::TileArgs) describes (every `AddC` has unit column
        /// stride).
        #[target_feature(enable = $feat)]
        unsafe fn $name<const R: usize>(t: &super::driver::TileArgs) {
            use super::driver::RawOp;
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            const LANES: usize = $w;
            const VECS: usize = $nv;
            // SAFETY: the caller guarantees the features and that, for every step `l < k`,
            // `t.a` holds rows `i < R` at `i·a_rs + l·a_cs` and `t.b` holds `VECS·LANES`
            // contiguous values at `l·b_rs`; that the tile is `R` rows of `VECS·LANES`
            // contiguous values at stride `t.rsc`; and that each op's operand covers the
            // tile. Every access below is one of those (the prefetches and the pointer
            // steps past the last one do not access memory).
            unsafe {
                let mut acc: [[$v; VECS]; R] = [[$zero(); VECS]; R];
                let (mut a, mut b) = (t.a, t.b);
                // Ask for the C tile now, so it has arrived when the product is done.
                for i in 0..R {
                    let c = t.c.wrapping_offset(i as isize * t.rsc).cast::<i8>();
                    _mm_prefetch::<_MM_HINT_T0>(c);
                    _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(4 * (VECS * LANES) - 1));
                }
                macro_rules! step {
                    () => {
                        let mut bv: [$v; VECS] = [$zero(); VECS];
                        for v in 0..VECS {
                            bv[v] = $load(b.add(v * LANES));
                        }
                        for i in 0..R {
                            let ai = $splat(*a.offset(i as isize * t.a_rs));
                            for v in 0..VECS {
                                acc[i][v] = $fma(ai, bv[v], acc[i][v]);
                            }
                        }
                        a = a.wrapping_offset(t.a_cs);
                        b = b.wrapping_offset(t.b_rs);
                    };
                }
                for _ in 0..t.k / 4 {
                    step!();
                    step!();
                    step!();
                    step!();
                }
                for _ in 0..t.k % 4 {
                    step!();
                }
                let row_ptr = |i: usize| t.c.offset(i as isize * t.rsc);
                if t.load_c {
                    for i in 0..R {
                        for v in 0..VECS {
                            acc[i][v] = $add(acc[i][v], $load(row_ptr(i).add(v * LANES)));
                        }
                    }
                }
                for op in t.ops {
                    match *op {
                        RawOp::PerColAdd(p) => {
                            for v in 0..VECS {
                                let bias = $load(p.add(t.col0 + v * LANES));
                                for i in 0..R {
                                    acc[i][v] = $add(acc[i][v], bias);
                                }
                            }
                        }
                        RawOp::PerRowAdd(p) => {
                            for i in 0..R {
                                let bias = $splat(*p.add(t.row0 + i));
                                for v in 0..VECS {
                                    acc[i][v] = $add(acc[i][v], bias);
                                }
                            }
                        }
                        RawOp::ScalarMul(s) => {
                            let s = $splat(s);
                            for i in 0..R {
                                for v in 0..VECS {
                                    acc[i][v] = $mul(acc[i][v], s);
                                }
                            }
                        }
                        RawOp::AddC { p, rs, .. } => {
                            for i in 0..R {
                                let r = p.offset((t.row0 + i) as isize * rs + t.col0 as isize);
                                for v in 0..VECS {
                                    acc[i][v] = $add(acc[i][v], $load(r.add(v * LANES)));
                                }
                            }
                        }
                        RawOp::Relu => {
                            // `max(0, x)` returns its second operand when either is NaN, so
                            // NaN stays NaN and -0.0 stays -0.0, like `driver::relu`.
                            let zero = $zero();
                            for i in 0..R {
                                for v in 0..VECS {
                                    acc[i][v] = $max(zero, acc[i][v]);
                                }
                            }
                        }
                    }
                }
                for i in 0..R {
                    for v in 0..VECS {
                        $store(row_ptr(i).add(v * LANES), acc[i][v]);
                    }
                }
            }
        }
    };
}

/// The table `[name::<1>, …, name::<mr>]` of a kernel's row variants.
macro_rules! ukr_table {
    ($name:ident; $($r:literal)+) => {
        &[$($name::<$r> as super::driver::Ukr),+]
    };
}

pub(super) use {simd_ukr, ukr_table};
