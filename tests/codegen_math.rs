//! Accuracy of the transcendental approximations in `netc::codegen::math`, run as JIT code.
//!
//! Each function is compiled into `extern "C" fn(input, output, len)` that maps it over an
//! array with an `f32x4` loop and a scalar tail (every length here leaves a tail, so both
//! types are exercised), called through `codegen::kernels::entry::call_map`. The results are
//! compared with `f64` references over dense sweeps of each domain, against the error bounds
//! the module documents; edge inputs (±inf, ±0, NaN, huge and tiny values) are checked one by
//! one.
#![allow(
    clippy::print_stderr,
    reason = "the sweeps report the errors they measured"
)]

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Type, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};
use netc::codegen::kernels::entry::{call_map, CodePtr};
use netc::codegen::math;

/// What a kernel maps over its input.
#[derive(Clone, Copy)]
enum Op {
    /// `out[i] = f(in[i])`.
    Unary(fn(&mut FunctionBuilder, Value) -> Value),
    /// With `n = len / 2`: `out[i] = f(in[i], in[n + i])` and `out[n + i] = in[n + i]`.
    Binary(fn(&mut FunctionBuilder, Value, Value) -> Value),
}

/// A compiled kernel and the JIT module that owns its code.
struct Kernel {
    _module: JITModule,
    code: CodePtr,
    /// Relocations in the machine code: any would be a call out (a libcall).
    relocs: usize,
}

impl Kernel {
    fn new(op: Op) -> Kernel {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").expect("opt_level flag");
        flags.set("is_pic", "false").expect("is_pic flag");
        let isa = cranelift_native::builder()
            .expect("host ISA")
            .finish(settings::Flags::new(flags))
            .expect("ISA");
        let mut module = JITModule::new(JITBuilder::with_isa(
            isa,
            cranelift_module::default_libcall_names(),
        ));
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.signature.params.push(AbiParam::new(types::I64));
        let id = module
            .declare_function("map", Linkage::Export, &ctx.func.signature)
            .expect("declare");
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        build_map(&mut b, op);
        b.seal_all_blocks();
        b.finalize(module.target_config());
        module.define_function(id, &mut ctx).expect("define");
        let relocs = ctx.compiled_code().expect("compiled").buffer.relocs().len();
        module.clear_context(&mut ctx);
        module.finalize_definitions().expect("finalize");
        let code = CodePtr::new(module.get_finalized_function(id));
        Kernel {
            _module: module,
            code,
            relocs,
        }
    }

    fn unary(f: fn(&mut FunctionBuilder, Value) -> Value) -> Kernel {
        Kernel::new(Op::Unary(f))
    }

    fn run(&self, input: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; input.len()];
        call_map(self.code, input, &mut out);
        out
    }

    /// For a [`Op::Binary`] kernel: `f(x[i], y[i])`.
    fn run2(&self, x: &[f32], y: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), y.len());
        let input: Vec<f32> = x.iter().chain(y).copied().collect();
        let out = self.run(&input);
        assert_eq!(&out[x.len()..], y, "the kernel copies y through");
        out[..x.len()].to_vec()
    }
}

/// Emits the loop: an `f32x4` body while four elements remain, then a scalar tail.
fn build_map(b: &mut FunctionBuilder, op: Op) {
    let entry = b.create_block();
    let vhead = b.create_block();
    let vbody = b.create_block();
    let thead = b.create_block();
    let tbody = b.create_block();
    let exit = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.append_block_param(vhead, types::I64);
    b.append_block_param(thead, types::I64);

    b.switch_to_block(entry);
    let (inp, out, len) = {
        let p = b.block_params(entry);
        (p[0], p[1], p[2])
    };
    let n = match op {
        Op::Unary(_) => len,
        Op::Binary(_) => b.ins().sshr_imm_u(len, 1),
    };
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(vhead, &[BlockArg::Value(zero)]);

    b.switch_to_block(vhead);
    let i = b.block_params(vhead)[0];
    let i4 = b.ins().iadd_imm_s(i, 4);
    let more = b.ins().icmp(IntCC::SignedLessThanOrEqual, i4, n);
    b.ins().brif(more, vbody, &[], thead, &[BlockArg::Value(i)]);

    b.switch_to_block(vbody);
    element(b, op, types::F32X4, [inp, out, n, i]);
    b.ins().jump(vhead, &[BlockArg::Value(i4)]);

    b.switch_to_block(thead);
    let j = b.block_params(thead)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, j, n);
    b.ins().brif(more, tbody, &[], exit, &[]);

    b.switch_to_block(tbody);
    element(b, op, types::F32, [inp, out, n, j]);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(thead, &[BlockArg::Value(j1)]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
}

/// One step of the loop at index `i`, on `ty` (`f32x4` or `f32`).
fn element(b: &mut FunctionBuilder, op: Op, ty: Type, [inp, out, n, i]: [Value; 4]) {
    // Unaligned (a Vec<f32> is 4-byte aligned) but in bounds.
    let flags = MemFlagsData::new().with_notrap();
    let off = b.ins().ishl_imm_u(i, 2);
    let src = b.ins().iadd(inp, off);
    let x = b.ins().load(ty, flags, src, 0);
    let r = match op {
        Op::Unary(f) => f(b, x),
        Op::Binary(f) => {
            let ni = b.ins().iadd(n, i);
            let yoff = b.ins().ishl_imm_u(ni, 2);
            let ysrc = b.ins().iadd(inp, yoff);
            let y = b.ins().load(ty, flags, ysrc, 0);
            let ydst = b.ins().iadd(out, yoff);
            b.ins().store(flags, y, ydst, 0);
            f(b, x, y)
        }
    };
    let dst = b.ins().iadd(out, off);
    b.ins().store(flags, r, dst, 0);
}

/// `n` points evenly spaced over `[lo, hi]`.
fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32)
        .collect()
}

/// `n` points evenly spaced in log scale over `[lo, hi]`, `0 < lo < hi`.
fn logspace(lo: f64, hi: f64, n: usize) -> Vec<f32> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..n)
        .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp() as f32)
        .collect()
}

/// The largest errors of a sweep, with the inputs where they occur.
#[derive(Debug, Default)]
struct Errors {
    max_abs: f64,
    at_abs: f64,
    max_rel: f64,
    at_rel: f64,
}

/// Compares `got[i]` with `want(x[i])`; panics on a NaN or a non-finite result where the
/// reference is finite. `rel_floor` excludes references smaller than it from the relative
/// error (they are checked in absolute terms only).
fn measure(
    name: &str,
    xs: &[f32],
    got: &[f32],
    want: impl Fn(usize) -> f64,
    rel_floor: f64,
) -> Errors {
    let mut e = Errors::default();
    for (i, (&x, &g)) in xs.iter().zip(got).enumerate() {
        let w = want(i);
        assert!(
            !g.is_nan() && (g.is_finite() || !w.is_finite()),
            "{name}({x:e}) = {g}, want {w:e}"
        );
        let abs = (f64::from(g) - w).abs();
        if abs > e.max_abs {
            e.max_abs = abs;
            e.at_abs = f64::from(x);
        }
        if w.abs() >= rel_floor {
            let rel = if w == 0.0 {
                if g == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                abs / w.abs()
            };
            if rel > e.max_rel {
                e.max_rel = rel;
                e.at_rel = f64::from(x);
            }
        }
    }
    eprintln!("{name}: {e:?}");
    e
}

fn sigmoid64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Evaluates `kernel` on `xs` one element at a time (the scalar path) and checks the result
/// is bit-identical to the batched run `batch` (mostly the vector path).
fn same_on_scalar_path(kernel: &Kernel, xs: &[f32], batch: &[f32]) {
    for (i, (&x, &v)) in xs.iter().zip(batch).enumerate().step_by(97) {
        let s = kernel.run(&[x])[0];
        assert!(
            s.to_bits() == v.to_bits() || (s.is_nan() && v.is_nan()),
            "element {i}: x = {x:e}: scalar {s:e}, vector {v:e}"
        );
    }
}

const N: usize = 1_000_003;

#[test]
fn no_calls_out_of_the_generated_code() {
    let kernels = [
        Kernel::unary(math::exp),
        Kernel::unary(math::ln),
        Kernel::unary(math::sigmoid),
        Kernel::unary(math::tanh),
        Kernel::new(Op::Binary(math::pow)),
    ];
    for k in &kernels {
        assert_eq!(k.relocs, 0, "a kernel calls out (libcall)");
    }
}

#[test]
fn exp_relative_error_over_its_range() {
    let k = Kernel::unary(math::exp);
    let xs = linspace(-87.0, 88.0, 2 * N);
    let got = k.run(&xs);
    let e = measure("exp", &xs, &got, |i| f64::from(xs[i]).exp(), 0.0);
    assert!(e.max_rel <= math::EXP_MAX_REL_ERR, "{e:?}");
    // Around zero, where the reduction does nothing, densely.
    let xs = linspace(-1.0, 1.0, N);
    let got = k.run(&xs);
    let e = measure("exp near 0", &xs, &got, |i| f64::from(xs[i]).exp(), 0.0);
    assert!(e.max_rel <= math::EXP_MAX_REL_ERR, "{e:?}");
    same_on_scalar_path(&k, &xs, &got);
}

#[test]
fn exp_edges() {
    let k = Kernel::unary(math::exp);
    let xs = [
        0.0,
        -0.0,
        1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        88.72,
        88.73,
        100.0,
        -87.3,
        -100.0,
        -103.0,
        -104.0,
        -200.0,
        f32::NAN,
    ];
    let got = k.run(&xs);
    assert_eq!(got[0], 1.0);
    assert_eq!(got[1], 1.0);
    assert!((f64::from(got[2]) - std::f64::consts::E).abs() < 3e-7);
    assert_eq!(got[3], f32::INFINITY);
    assert_eq!(got[4], 0.0);
    assert_eq!(got[5], f32::INFINITY);
    assert_eq!(got[6], 0.0);
    assert!(
        got[7].is_finite() && got[7] > 3.3e38,
        "exp(88.72) = {}",
        got[7]
    );
    assert_eq!(got[8], f32::INFINITY, "exp(88.73) overflows");
    assert_eq!(got[9], f32::INFINITY);
    // Subnormal results: within a couple of subnormal ulps (2^-149 ≈ 1.4e-45).
    for i in 10..14 {
        let want = f64::from(xs[i]).exp();
        let err = (f64::from(got[i]) - want).abs();
        assert!(
            err <= 1.5e-45_f64.max(want * math::EXP_MAX_REL_ERR),
            "exp({}) = {:e}, want {want:e}",
            xs[i],
            got[i]
        );
    }
    assert_eq!(got[14], 0.0);
    assert!(got[15].is_nan());
}

#[test]
fn ln_relative_error_over_its_range() {
    let k = Kernel::unary(math::ln);
    // log-spaced over (1e-30, 1e30), dense near 1 where ln is near 0, and subnormals.
    for (name, xs) in [
        ("ln log-spaced", logspace(1e-30, 1e30, N)),
        ("ln on [0.5, 2]", linspace(0.5, 2.0, N)),
        ("ln near 1", linspace(1.0 - 1e-3, 1.0 + 1e-3, N)),
        ("ln subnormal", logspace(1.5e-45, 1.1e-38, 100_003)),
    ] {
        let got = k.run(&xs);
        let e = measure(name, &xs, &got, |i| f64::from(xs[i]).ln(), 0.0);
        assert!(e.max_rel <= math::LN_MAX_REL_ERR, "{name}: {e:?}");
        same_on_scalar_path(&k, &xs, &got);
    }
}

#[test]
fn ln_edges() {
    let k = Kernel::unary(math::ln);
    let xs = [
        1.0,
        0.0,
        -0.0,
        f32::INFINITY,
        -1.0,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-45,
        2.0,
    ];
    let got = k.run(&xs);
    assert_eq!(got[0], 0.0);
    assert_eq!(got[1], f32::NEG_INFINITY);
    assert_eq!(got[2], f32::NEG_INFINITY);
    assert_eq!(got[3], f32::INFINITY);
    assert!(got[4].is_nan() && got[5].is_nan() && got[6].is_nan());
    for i in 7..11 {
        let want = f64::from(xs[i]).ln();
        let rel = ((f64::from(got[i]) - want) / want).abs();
        assert!(rel <= math::LN_MAX_REL_ERR, "ln({:e}) = {}", xs[i], got[i]);
    }
}

#[test]
fn sigmoid_absolute_and_relative_error() {
    let k = Kernel::unary(math::sigmoid);
    let xs = linspace(-30.0, 30.0, 2 * N);
    let got = k.run(&xs);
    let e = measure("sigmoid", &xs, &got, |i| sigmoid64(f64::from(xs[i])), 0.0);
    assert!(e.max_abs <= math::SIGMOID_MAX_ABS_ERR, "{e:?}");
    assert!(e.max_rel <= math::SIGMOID_MAX_REL_ERR, "{e:?}");
    same_on_scalar_path(&k, &xs, &got);
    // sigmoid(x) + sigmoid(-x) = 1.
    let neg: Vec<f32> = xs.iter().map(|x| -x).collect();
    let got_neg = k.run(&neg);
    for (i, (a, b)) in got.iter().zip(&got_neg).enumerate() {
        assert!((f64::from(*a) + f64::from(*b) - 1.0).abs() <= 2.0 * math::SIGMOID_MAX_ABS_ERR);
        assert!(*a >= 0.0 && *a <= 1.0, "sigmoid({}) = {a}", xs[i]);
    }
}

#[test]
fn sigmoid_edges() {
    let k = Kernel::unary(math::sigmoid);
    let xs = [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        100.0,
        -100.0,
        f32::MAX,
        f32::MIN,
        -90.0,
        f32::NAN,
    ];
    let got = k.run(&xs);
    assert_eq!(got[0], 0.5);
    assert_eq!(got[1], 0.5);
    assert_eq!(got[2], 1.0);
    assert_eq!(got[3], 0.0);
    assert_eq!(got[4], 1.0);
    assert!(
        got[5] >= 0.0 && got[5] < 1e-40,
        "sigmoid(-100) = {:e}",
        got[5]
    );
    assert_eq!(got[6], 1.0);
    assert_eq!(got[7], 0.0);
    // exp(-90) ≈ 8.2e-40 is subnormal; the result keeps its leading digits.
    assert!((f64::from(got[8]) / (-90.0f64).exp() - 1.0).abs() < 1e-4);
    assert!(got[9].is_nan());
}

#[test]
fn tanh_absolute_and_relative_error() {
    let k = Kernel::unary(math::tanh);
    let xs = linspace(-30.0, 30.0, 2 * N);
    let got = k.run(&xs);
    let e = measure("tanh", &xs, &got, |i| f64::from(xs[i]).tanh(), 0.0);
    assert!(e.max_abs <= math::TANH_MAX_ABS_ERR, "{e:?}");
    assert!(e.max_rel <= math::TANH_MAX_REL_ERR, "{e:?}");
    same_on_scalar_path(&k, &xs, &got);
    // Relative accuracy for tiny |x| and across the switch at 0.625, both signs.
    let mut xs = logspace(1e-30, 2.0, N);
    xs.extend(linspace(0.5, 0.75, N));
    let neg: Vec<f32> = xs.iter().map(|x| -x).collect();
    xs.extend(&neg);
    let got = k.run(&xs);
    let e = measure("tanh small", &xs, &got, |i| f64::from(xs[i]).tanh(), 0.0);
    assert!(e.max_rel <= math::TANH_MAX_REL_ERR, "{e:?}");
    // Exactly odd.
    let half = xs.len() / 2;
    for i in 0..half {
        assert_eq!(got[i], -got[half + i], "tanh(-{}) != -tanh({0})", xs[i]);
    }
}

#[test]
fn tanh_edges() {
    let k = Kernel::unary(math::tanh);
    let xs = [
        0.0,
        -0.0,
        20.0,
        -20.0,
        9.1,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        1e-38,
        f32::NAN,
    ];
    let got = k.run(&xs);
    assert_eq!(got[0].to_bits(), 0.0f32.to_bits());
    assert_eq!(got[1].to_bits(), (-0.0f32).to_bits());
    assert_eq!(got[2], 1.0);
    assert_eq!(got[3], -1.0);
    assert_eq!(got[4], 1.0);
    assert_eq!(got[5], 1.0);
    assert_eq!(got[6], -1.0);
    assert_eq!(got[7], 1.0);
    assert_eq!(got[8], -1.0);
    assert_eq!(got[9], 1e-38);
    assert!(got[10].is_nan());
}

#[test]
fn pow_relative_error_for_lrn_inputs() {
    let k = Kernel::new(Op::Binary(math::pow));
    // A grid of 1001 x values (log-spaced) by 999 y values: 999,999 pairs.
    let xg = logspace(1e-3, 1e3, 1001);
    let yg = linspace(-1.0, 1.0, 999);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for &x in &xg {
        for &y in &yg {
            xs.push(x);
            ys.push(y);
        }
    }
    let got = k.run2(&xs, &ys);
    let want = |i: usize| f64::from(xs[i]).powf(f64::from(ys[i]));
    let e = measure("pow", &xs, &got, want, 0.0);
    assert!(e.max_rel <= math::POW_MAX_REL_ERR, "{e:?}");
    // Exact cases and LRN's typical exponent.
    let xs = [7.0, 1.0, 4.0, 2.0, 1e3, 1e-3, 0.0, 0.0];
    let ys = [0.0, -0.75, 0.5, -0.75, 1.0, -1.0, -0.75, 0.75];
    let got = k.run2(&xs, &ys);
    assert_eq!(got[0], 1.0);
    assert_eq!(got[1], 1.0);
    for i in 2..6 {
        let want = f64::from(xs[i]).powf(f64::from(ys[i]));
        assert!(((f64::from(got[i]) - want) / want).abs() <= math::POW_MAX_REL_ERR);
    }
    assert_eq!(got[6], f32::INFINITY);
    assert_eq!(got[7], 0.0);
}
