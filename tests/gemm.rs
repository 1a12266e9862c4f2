//! The GEMM engine (`codegen::kernels::gemm`) against a plain triple loop accumulated in
//! f64, through the public safe API only, for every kernel variant this machine supports
//! (the portable fallback always among them): every tile shape up to twice the kernel's
//! tile, depths across the `kc` blocking, transposed and padded operands, pre-packed B,
//! each fused operation, accumulation on and off, `k = 0`, and the errors that stand in
//! for out-of-bounds accesses. The tolerance is relative to `Σ|a||b|` per element.

use netc::codegen::kernels::gemm::{
    selected_kernel, sgemm, sgemm_packed, sgemm_with, FusedOp, GemmError, Isa, MatMut, MatRef,
    Operand, PackedB,
};

/// Deterministic values in [-1, 1) (a 64-bit LCG).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A strided matrix owned by the test: its buffer, filled with a sentinel outside the
/// view, so writes outside it are caught.
struct Mat {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

/// Where a matrix's elements go in its buffer.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row-major, `pad` unused elements after each row.
    Rows { pad: usize },
    /// Column-major, `pad` unused elements after each column.
    Cols { pad: usize },
}

const SENTINEL: f32 = 1234.5;

impl Mat {
    fn new(rows: usize, cols: usize, layout: Layout, seed: u64) -> Mat {
        let (rs, cs, len) = match layout {
            Layout::Rows { pad } => ((cols + pad) as isize, 1, rows * (cols + pad)),
            Layout::Cols { pad } => (1, (rows + pad) as isize, cols * (rows + pad)),
        };
        let mut data = vec![SENTINEL; len];
        let v = values(rows * cols, seed);
        for i in 0..rows {
            for j in 0..cols {
                data[i * rs as usize + j * cs as usize] = v[i * cols + j];
            }
        }
        Mat {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs as usize + j * self.cs as usize]
    }

    fn view(&self) -> MatRef<'_> {
        MatRef {
            data: &self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    fn view_mut(&mut self) -> MatMut<'_> {
        MatMut {
            data: &mut self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// Whether every element outside the view still holds the sentinel.
    fn padding_intact(&self) -> bool {
        let mut inside = vec![false; self.data.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                inside[i * self.rs as usize + j * self.cs as usize] = true;
            }
        }
        self.data
            .iter()
            .zip(&inside)
            .all(|(x, &ins)| ins || *x == SENTINEL)
    }
}

/// The operands of a fused op as the test owns them.
enum Op {
    PerColAdd(Vec<f32>),
    PerRowAdd(Vec<f32>),
    ScalarMul(f32),
    AddC(Mat),
    Relu,
}

impl Op {
    fn fused(&self) -> FusedOp<'_> {
        match self {
            Op::PerColAdd(v) => FusedOp::PerColAdd(v),
            Op::PerRowAdd(v) => FusedOp::PerRowAdd(v),
            Op::ScalarMul(s) => FusedOp::ScalarMul(*s),
            Op::AddC(r) => FusedOp::AddC(r.view()),
            Op::Relu => FusedOp::Relu,
        }
    }
}

/// The expected C and a per-element error bound: the product in f64, the old C when
/// accumulating, then the ops; the bound grows with `Σ|a||b|` and every magnitude added.
fn reference(a: &Mat, b: &Mat, c_old: &Mat, ops: &[Op], accumulate: bool) -> Vec<(f64, f64)> {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let (mut t, mut mag) = (0.0f64, 0.0f64);
            for l in 0..k {
                let p = a.at(i, l) as f64 * b.at(l, j) as f64;
                t += p;
                mag += p.abs();
            }
            if accumulate {
                t += c_old.at(i, j) as f64;
                mag += (c_old.at(i, j) as f64).abs();
            }
            for op in ops {
                match op {
                    Op::PerColAdd(v) => (t, mag) = (t + v[j] as f64, mag + (v[j] as f64).abs()),
                    Op::PerRowAdd(v) => (t, mag) = (t + v[i] as f64, mag + (v[i] as f64).abs()),
                    Op::ScalarMul(s) => (t, mag) = (t * *s as f64, mag * (*s as f64).abs()),
                    Op::AddC(r) => {
                        let x = r.at(i, j) as f64;
                        (t, mag) = (t + x, mag + x.abs());
                    }
                    Op::Relu => t = t.max(0.0),
                }
            }
            let bound = (k as f64 + 8.0) * f32::EPSILON as f64 * mag + f32::MIN_POSITIVE as f64;
            out.push((t, bound));
        }
    }
    out
}

/// One multiplication to check.
struct Case {
    m: usize,
    n: usize,
    k: usize,
    a: Layout,
    b: Layout,
    c: Layout,
    accumulate: bool,
    packed: bool,
}

impl Case {
    fn new(m: usize, n: usize, k: usize) -> Case {
        let dense = Layout::Rows { pad: 0 };
        Case {
            m,
            n,
            k,
            a: dense,
            b: dense,
            c: dense,
            accumulate: false,
            packed: false,
        }
    }
}

/// Runs `case` with `isa` and the ops `make_ops(m, n)` builds, and compares with the
/// reference; returns the C it computed.
fn check(isa: Isa, case: &Case, make_ops: &dyn Fn(usize, usize) -> Vec<Op>) -> Vec<f32> {
    let (m, n, k) = (case.m, case.n, case.k);
    let seed = (m * 1_000_003 + n * 1009 + k) as u64;
    let a = Mat::new(m, k, case.a, seed);
    let b = Mat::new(k, n, case.b, seed + 1);
    let mut c = Mat::new(m, n, case.c, seed + 2);
    if !case.accumulate {
        // Overwriting must not read C: NaN there would show.
        for i in 0..m {
            for j in 0..n {
                c.data[i * c.rs as usize + j * c.cs as usize] = f32::NAN;
            }
        }
    }
    let c_old = Mat {
        data: c.data.clone(),
        ..c
    };
    let ops = make_ops(m, n);
    let fused: Vec<FusedOp> = ops.iter().map(Op::fused).collect();
    let what = format!(
        "{isa:?} m={m} n={n} k={k} a={:?} b={:?} c={:?} acc={} packed={} ops={}",
        case.a,
        case.b,
        case.c,
        case.accumulate,
        case.packed,
        ops.len()
    );
    if case.packed {
        let packed = PackedB::new_with(isa, b.view()).expect("packs");
        assert_eq!((packed.k(), packed.n(), packed.isa()), (k, n, isa));
        sgemm_packed(a.view(), &packed, c.view_mut(), &fused, case.accumulate)
    } else {
        sgemm_with(
            isa,
            a.view(),
            b.view(),
            c.view_mut(),
            &fused,
            case.accumulate,
        )
    }
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = reference(&a, &b, &c_old, &ops, case.accumulate);
    for i in 0..m {
        for j in 0..n {
            let got = c.at(i, j) as f64;
            let (t, bound) = want[i * n + j];
            assert!(
                (got - t).abs() <= bound,
                "{what}: C[{i},{j}] = {got}, want {t} ± {bound}"
            );
        }
    }
    assert!(c.padding_intact(), "{what}: wrote outside C");
    (0..m)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| c.at(i, j))
        .collect()
}

fn no_ops(_: usize, _: usize) -> Vec<Op> {
    Vec::new()
}

/// Every fused op, in an order that exercises each (bias, residual, scale, ReLU).
fn all_ops(m: usize, n: usize) -> Vec<Op> {
    vec![
        Op::PerColAdd(values(n, 11)),
        Op::AddC(Mat::new(m, n, Layout::Rows { pad: 1 }, 12)),
        Op::PerRowAdd(values(m, 13)),
        Op::ScalarMul(-1.5),
        Op::Relu,
    ]
}

#[test]
fn the_detected_variant_is_supported_and_named() {
    let isa = Isa::detected();
    assert!(isa.is_supported());
    assert_eq!(Isa::supported()[0], isa);
    assert_eq!(
        *Isa::supported().last().expect("never empty"),
        Isa::Fallback
    );
    assert_eq!(selected_kernel(), isa.name());
    let (mr, nr) = isa.tile();
    assert!(isa.name().contains(&format!("{mr}x{nr}")), "{}", isa.name());
}

#[test]
fn every_tile_shape_up_to_twice_the_tile() {
    // The full cube: m up to 2·mr, n up to 2·nr, and k from 0 to 9 (the kernels unroll the
    // depth by 4, so this covers every remainder twice over).
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        for m in 1..=2 * mr {
            for n in 1..=2 * nr {
                for k in 0..=9 {
                    check(isa, &Case::new(m, n, k), &no_ops);
                }
            }
        }
    }
}

#[test]
fn depths_and_sizes_across_the_cache_blocks() {
    // Several `kc` blocks (C accumulated between them), several `mc` blocks, several `nc`
    // blocks, each with a ragged last block.
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        check(isa, &Case::new(mr + 1, nr + 3, 700), &no_ops);
        check(isa, &Case::new(301, 2 * nr + 5, 33), &no_ops);
        check(isa, &Case::new(3, 4100, 3), &no_ops);
        check(
            isa,
            &Case {
                accumulate: true,
                ..Case::new(2 * mr - 1, nr, 515)
            },
            &all_ops,
        );
    }
}

#[test]
fn every_packing_path() {
    // The engine reads row-major operands in place when that is cheap and packs them
    // otherwise; these shapes force each packing path: A packed because `n` is large, or
    // because its rows are 4 KiB apart; B packed because a block of it spans many pages.
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        let m = 2 * mr + 3;
        check(isa, &Case::new(m, 520, 19), &all_ops);
        let far_rows = Layout::Rows { pad: 1024 - 19 };
        check(
            isa,
            &Case {
                a: far_rows,
                ..Case::new(m, nr + 1, 19)
            },
            &all_ops,
        );
        let far_b = Layout::Rows { pad: 70_000 / 19 };
        check(
            isa,
            &Case {
                b: far_b,
                ..Case::new(m, 2 * nr + 1, 19)
            },
            &all_ops,
        );
    }
}

#[test]
fn strided_operands() {
    let rows = |pad| Layout::Rows { pad };
    let cols = |pad| Layout::Cols { pad };
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        for (m, n, k) in [
            (mr, nr, 9),
            (2 * mr - 1, 2 * nr - 3, 17),
            (1, 1, 1),
            (mr + 2, 5, 4),
        ] {
            for (a, b, c) in [
                (cols(0), rows(0), rows(0)), // A transposed
                (rows(0), cols(0), rows(0)), // B transposed
                (cols(2), cols(1), rows(3)), // both, C with padding between rows
                (rows(1), rows(2), cols(0)), // C column-major
                (rows(0), rows(0), cols(2)), // C column-major with padding
            ] {
                for packed in [false, true] {
                    let case = Case {
                        a,
                        b,
                        c,
                        packed,
                        ..Case::new(m, n, k)
                    };
                    check(isa, &case, &all_ops);
                }
            }
        }
    }
}

#[test]
fn each_fused_op_with_and_without_accumulation() {
    let ops: [&dyn Fn(usize, usize) -> Vec<Op>; 6] = [
        &|_, n| vec![Op::PerColAdd(values(n, 21))],
        &|m, _| vec![Op::PerRowAdd(values(m, 22))],
        &|_, _| vec![Op::ScalarMul(0.25)],
        &|m, n| vec![Op::AddC(Mat::new(m, n, Layout::Rows { pad: 0 }, 23))],
        &|m, n| vec![Op::AddC(Mat::new(m, n, Layout::Cols { pad: 3 }, 24))],
        &|_, _| vec![Op::Relu],
    ];
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        for (m, n, k) in [
            (mr, nr, 6),
            (2 * mr, 2 * nr, 11),
            (mr + 1, nr + 1, 5),
            (3, 2, 0),
        ] {
            for make in ops {
                for accumulate in [false, true] {
                    for packed in [false, true] {
                        let case = Case {
                            accumulate,
                            packed,
                            ..Case::new(m, n, k)
                        };
                        check(isa, &case, make);
                    }
                }
            }
            check(
                isa,
                &Case {
                    accumulate: true,
                    ..Case::new(m, n, k)
                },
                &all_ops,
            );
        }
    }
}

#[test]
fn relu_keeps_nan_and_zeroes_negatives() {
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        let (m, n) = (mr, nr);
        let a = vec![1.0f32; m];
        let b: Vec<f32> = (0..n).map(|j| [f32::NAN, -2.0, 3.0, -0.0][j % 4]).collect();
        let mut c = vec![0.0f32; m * n];
        let (a, b) = (MatRef::row_major(&a, m, 1), MatRef::row_major(&b, 1, n));
        sgemm_with(
            isa,
            a,
            b,
            MatMut::row_major(&mut c, m, n),
            &[FusedOp::Relu],
            false,
        )
        .expect("multiplies");
        for (j, x) in c[..n].iter().enumerate() {
            match j % 4 {
                0 => assert!(x.is_nan(), "{isa:?}"),
                1 | 3 => assert_eq!(*x, 0.0, "{isa:?}"),
                _ => assert_eq!(*x, 3.0, "{isa:?}"),
            }
        }
    }
}

#[test]
fn results_are_deterministic_and_packing_changes_nothing() {
    for isa in Isa::supported() {
        let (mr, nr) = isa.tile();
        for (m, n, k) in [(2 * mr + 1, 3 * nr - 1, 300), (mr, nr, 31)] {
            let c1 = check(isa, &Case::new(m, n, k), &all_ops);
            let c2 = check(isa, &Case::new(m, n, k), &all_ops);
            let c3 = check(
                isa,
                &Case {
                    packed: true,
                    ..Case::new(m, n, k)
                },
                &all_ops,
            );
            let bits = |c: &[f32]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&c1), bits(&c2), "{isa:?}: two runs differ");
            assert_eq!(bits(&c1), bits(&c3), "{isa:?}: packed B differs");
        }
    }
}

#[test]
fn the_detected_entry_points_agree_with_the_forced_ones() {
    let (m, n, k) = (7, 45, 19);
    let a = values(m * k, 1);
    let b = values(k * n, 2);
    let run = |f: &dyn Fn(MatMut) -> Result<(), GemmError>| {
        let mut c = vec![0.0; m * n];
        f(MatMut::row_major(&mut c, m, n)).expect("multiplies");
        c
    };
    let (av, bv) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    let forced = run(&|c| sgemm_with(Isa::detected(), av, bv, c, &[], false));
    assert_eq!(forced, run(&|c| sgemm(av, bv, c, &[], false)));
    let packed = PackedB::new(k, n, &b, n as isize, 1).expect("packs");
    assert_eq!(forced, run(&|c| sgemm_packed(av, &packed, c, &[], false)));
    // A transposed view of a column-major B is the same matrix.
    let bt: Vec<f32> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
    assert_eq!(
        forced,
        run(&|c| sgemm(av, MatRef::col_major(&bt, k, n), c, &[], false))
    );
    assert_eq!(
        forced,
        run(&|c| sgemm(av, MatRef::row_major(&bt, n, k).t(), c, &[], false))
    );
}

#[test]
fn bad_operands_are_errors_and_touch_nothing() {
    let (m, n, k) = (5, 6, 7);
    let a = values(m * k, 1);
    let b = values(k * n, 2);
    let bias = values(n, 3);
    let mut c = vec![SENTINEL; m * n];
    let av = MatRef::row_major(&a, m, k);
    let bv = MatRef::row_major(&b, k, n);
    let mut go = |a: MatRef, b: MatRef, c_len: usize, rsc: isize, ops: &[FusedOp]| {
        let c = MatMut {
            data: &mut c[..c_len],
            rows: m,
            cols: n,
            rs: rsc,
            cs: 1,
        };
        sgemm(a, b, c, ops, false)
    };
    let oob = |operand, needed: usize, len| {
        Err(GemmError::OutOfBounds {
            operand,
            needed: needed as u128,
            len,
        })
    };
    // Slices one element too short.
    assert_eq!(
        go(MatRef::row_major(&a[1..], m, k), bv, m * n, 6, &[]),
        oob(Operand::A, 35, 34)
    );
    assert_eq!(
        go(av, MatRef::row_major(&b[1..], k, n), m * n, 6, &[]),
        oob(Operand::B, 42, 41)
    );
    assert_eq!(go(av, bv, m * n - 1, 6, &[]), oob(Operand::C, 30, 29));
    // A row stride that reaches past the end.
    assert_eq!(go(av, bv, m * n, 7, &[]), oob(Operand::C, 34, 30));
    let a_far = MatRef {
        rs: 1,
        cs: m as isize + 1,
        ..av
    };
    assert_eq!(go(a_far, bv, m * n, 6, &[]), oob(Operand::A, 41, 35));
    // Negative strides with more than one row, and strides that would overflow.
    let a_neg = MatRef {
        rs: -(k as isize),
        ..av
    };
    assert_eq!(
        go(a_neg, bv, m * n, 6, &[]),
        Err(GemmError::NegativeOffset {
            operand: Operand::A
        })
    );
    let b_huge = MatRef {
        rs: isize::MAX,
        ..bv
    };
    assert!(matches!(
        go(av, b_huge, m * n, 6, &[]),
        Err(GemmError::OutOfBounds {
            operand: Operand::B,
            ..
        })
    ));
    // Shapes that disagree.
    let b_short = MatRef::row_major(&b[..(k - 1) * n], k - 1, n);
    assert_eq!(
        go(av, b_short, m * n, 6, &[]),
        Err(GemmError::Shape {
            operand: Operand::B,
            found: (k - 1, n),
            expected: (k, n)
        })
    );
    let c_wide = MatMut {
        data: &mut vec![0.0; m * (n + 1)],
        rows: m,
        cols: n + 1,
        rs: 7,
        cs: 1,
    };
    assert!(matches!(
        sgemm(av, bv, c_wide, &[], false),
        Err(GemmError::Shape {
            operand: Operand::C,
            found: (5, 7),
            expected: (5, 6)
        })
    ));
    // Fused ops' operands.
    let short_bias = [FusedOp::Relu, FusedOp::PerColAdd(&bias[1..])];
    assert_eq!(
        go(av, bv, m * n, 6, &short_bias),
        Err(GemmError::Shape {
            operand: Operand::Op(1),
            found: (n - 1, 1),
            expected: (n, 1)
        })
    );
    let row_bias = [FusedOp::PerRowAdd(&bias)];
    assert!(matches!(
        go(av, bv, m * n, 6, &row_bias),
        Err(GemmError::Shape {
            operand: Operand::Op(0),
            ..
        })
    ));
    let r = values(m * n, 4);
    let residual = [FusedOp::AddC(MatRef::row_major(&r[1..], m, n))];
    assert_eq!(go(av, bv, m * n, 6, &residual), oob(Operand::Op(0), 30, 29));
    let residual = [FusedOp::AddC(MatRef::row_major(&r, m, n - 1))];
    assert!(matches!(
        go(av, bv, m * n, 6, &residual),
        Err(GemmError::Shape {
            operand: Operand::Op(0),
            ..
        })
    ));
    assert!(c.iter().all(|x| *x == SENTINEL), "an error wrote to C");
    // The exact fit is accepted: A transposed reaches its last element and no further.
    let a_t = MatRef {
        rs: 1,
        cs: m as isize,
        ..av
    };
    assert_eq!(
        sgemm(
            a_t,
            bv,
            MatMut::row_major(&mut vec![0.0; m * n], m, n),
            &[],
            false
        ),
        Ok(())
    );

    // Packing checks B, and the packed B's shape must fit A and C.
    assert!(matches!(
        PackedB::new(k, n, &b[1..], n as isize, 1),
        Err(GemmError::OutOfBounds {
            operand: Operand::B,
            ..
        })
    ));
    let packed = PackedB::new(k - 1, n, &b, n as isize, 1).expect("packs");
    let c = MatMut::row_major(&mut c, m, n);
    assert!(matches!(
        sgemm_packed(av, &packed, c, &[], false),
        Err(GemmError::Shape {
            operand: Operand::B,
            ..
        })
    ));
    // Every error renders as one line naming the operand.
    let e = GemmError::OutOfBounds {
        operand: Operand::Op(2),
        needed: 10,
        len: 9,
    };
    assert_eq!(
        e.to_string(),
        "gemm: fused op #2 reaches element 9 of a slice of 9"
    );
}

#[test]
fn empty_products() {
    for isa in Isa::supported() {
        // k = 0: C is overwritten with the epilogue of zero, or kept and the epilogue
        // applied.
        for accumulate in [false, true] {
            check(
                isa,
                &Case {
                    accumulate,
                    ..Case::new(4, 19, 0)
                },
                &all_ops,
            );
            check(
                isa,
                &Case {
                    accumulate,
                    packed: true,
                    ..Case::new(9, 3, 0)
                },
                &all_ops,
            );
        }
        // m = 0 or n = 0: nothing to do, and empty slices are fine.
        let (a, b) = (values(6, 1), values(6, 2));
        let mut c: Vec<f32> = Vec::new();
        let ok = sgemm_with(
            isa,
            MatRef::row_major(&[], 0, 3),
            MatRef::row_major(&b, 3, 2),
            MatMut::row_major(&mut c, 0, 2),
            &[],
            false,
        );
        assert_eq!(ok, Ok(()));
        let ok = sgemm_with(
            isa,
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&[], 3, 0),
            MatMut::row_major(&mut c, 2, 0),
            &[FusedOp::PerColAdd(&[])],
            false,
        );
        assert_eq!(ok, Ok(()));
    }
}
