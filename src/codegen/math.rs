//! Transcendental functions emitted as Cranelift IR, for the JIT's elementwise kernels
//! (activations, softmax, LRN). Each function appends straight-line CLIF to the current
//! block of a [`FunctionBuilder`] and works on both `f32` scalars and `f32x4` vectors, so
//! a kernel's vector body and its scalar tail share one definition.
//!
//! # Why not libm
//!
//! A call into libm cannot be vectorised, costs a call per element and makes the JIT depend
//! on symbol resolution. The functions here are pure arithmetic: `fma`, `fmul`, `fadd`,
//! `fdiv`, integer shifts and adds on the float's bits, `fcmp` with `select`/`bitselect`.
//! There is no rounding instruction (which x64 has only from SSE4.1 on, else a libcall) and
//! no float-to-int conversion: the exponent of `exp` is found with the add-a-magic-constant
//! trick. With the host's `has_fma` flag every `fma` on `f32x4` is one instruction, and the
//! clamps become single `maxps`/`minps`; the generated code makes no calls (the tests check
//! that it has no relocations).
//!
//! # Methods
//!
//! - [`exp`]: clamp to `[-104, 89]`, Cody–Waite reduction `x = k·ln2 + r`, `|r| ≤ ln2/2`,
//!   with `k = round(x·log2 e)` read from the bits of `x·log2 e + 1.5·2²³` and `ln2` split in
//!   two so that `x - k·ln2_hi` is exact; `e^r` by the Cephes `expf` polynomial
//!   `1 + r + r²·P(r)` (degree 7 in all); the result is scaled by `2^k` as two factors
//!   `2^(k>>1)·2^(k-(k>>1))` built in the exponent field, so both gradual underflow to
//!   subnormals and overflow to `+inf` come out right without a special case.
//! - [`ln`]: `x = m·2^e` with `m ∈ [√½, √2)` taken from the bits (subnormal inputs are first
//!   scaled by 2²³), `ln x = e·ln2 + ln(1+f)`, `f = m - 1`, with the Cephes `logf`
//!   polynomial `f - f²/2 + f³·P(f)`; then the special inputs are patched in.
//! - [`sigmoid`]: with `e = exp(-|x|)`, `1/(1+e)` for `x ≥ 0` and `e/(1+e)` for `x < 0`, one
//!   division either way; never cancels, and the left tail keeps its relative accuracy.
//! - [`tanh`]: odd; on `a = |x|` the Cephes `tanhf` polynomial `a + a³·P(a²)` for `a ≤ 0.625`
//!   and `1 - 2/(exp(2a)+1)` above, then the sign of `x` is put back with a bit-or, so
//!   `tanh(-x) == -tanh(x)` exactly and `tanh(-0.0) == -0.0`.
//! - [`pow`]: `exp(y·ln x)`; its error grows with `|y·ln x|` because the rounding error of
//!   `ln x` is multiplied by `y` (see [`POW_MAX_REL_ERR`]).
//!
//! # Error bounds
//!
//! The `*_MAX_*_ERR` constants are the largest errors measured against `f64` references,
//! rounded up slightly: for the unary functions over every `f32` of the stated domain (one
//! exhaustive run), for [`pow`] over 10⁸ random pairs. `tests/codegen_math.rs` asserts them
//! on dense sweeps of every domain, through both the vector and the scalar code path. For
//! scale, rounding a correct result to `f32` alone costs up to `2⁻²⁴ ≈ 6.0e-8` relative:
//! exp, ln and tanh are within about 1.5 ulp, sigmoid within 3.
//!
//! # Special values
//!
//! | input        | `exp` | `ln`   | `sigmoid` | `tanh` |
//! |--------------|-------|--------|-----------|--------|
//! | `+inf`       | `+inf`| `+inf` | `1`       | `1`    |
//! | `-inf`       | `0`   | `NaN`  | `0`       | `-1`   |
//! | `±0`         | `1`   | `-inf` | `0.5`     | `±0`   |
//! | `< 0` finite | –     | `NaN`  | –         | –      |
//! | `NaN`        | `NaN` | `NaN`  | `NaN`     | `NaN`  |
//!
//! `exp` overflows to `+inf` above `ln(f32::MAX) ≈ 88.72` and underflows through the
//! subnormals to `0` below about `-103.9`; `sigmoid` reaches `0` and `1` without NaN for any
//! finite or infinite input. `pow(x, y)` is meant for finite `x > 0`; beyond that it is what
//! `exp(y·ln x)` gives (`pow(0, y<0) = +inf`, `pow(0, y>0) = 0`, `pow(0, 0)` and
//! `pow(+inf, 0)` are NaN, `pow(x<0, y)` is NaN).
//!
//! # Notes for callers
//!
//! The float/int reinterpretations are `bitcast`s between `f32x4` and `i32x4` (or `f32` and
//! `i32`) with little-endian `MemFlagsData`; the verifier accepts any byte-order flag when
//! the lane count does not change and requires one when it does. Vector constants are a
//! `splat` of a scalar constant, which the x64 backend turns into a constant-pool operand
//! (about 20 for `exp`, loaded at each use). Lane choices are `bitselect` on the bit-cast
//! `fcmp` mask (vectors) or `select` (scalars). Integer vector arithmetic cannot use
//! `iadd_imm_*` (it makes a scalar constant), so constants are splatted first.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// Largest relative error of [`exp`] over `[-87.3, 88.7]` (the inputs whose results are
/// normal floats): measured 8.46e-8 (about 1.4 ulp), checking every `f32` in the range.
/// Subnormal results (`x < -87.34`) carry the absolute error of a subnormal instead.
pub const EXP_MAX_REL_ERR: f64 = 9.0e-8;

/// Largest relative error of [`ln`] over all positive finite inputs, subnormals included:
/// measured 8.16e-8, checking every positive `f32`. It stays relative near `x = 1`, where
/// the result is near 0.
pub const LN_MAX_REL_ERR: f64 = 9.0e-8;

/// Largest absolute error of [`sigmoid`]: measured 8.93e-8, checking every `f32` in
/// `[-88, 88]` (outside it the result is exactly 0 or 1, or subnormal).
pub const SIGMOID_MAX_ABS_ERR: f64 = 9.5e-8;

/// Largest relative error of [`sigmoid`]: measured 1.78e-7 (about 3 ulp), checking every
/// `f32` in `[-88, 88]`; the left tail, where the result is tiny, keeps it.
pub const SIGMOID_MAX_REL_ERR: f64 = 1.9e-7;

/// Largest absolute error of [`tanh`]: measured 7.93e-8, checking every `f32` in
/// `[-40, 40]` (outside it the result is exactly ±1).
pub const TANH_MAX_ABS_ERR: f64 = 8.5e-8;

/// Largest relative error of [`tanh`]: measured 1.42e-7, checking every `f32` in
/// `[-40, 40]`, tiny and subnormal `|x|` included (there `tanh x = x` exactly); the worst
/// case is just above the switch at `|x| = 0.625`.
pub const TANH_MAX_REL_ERR: f64 = 1.5e-7;

/// Largest relative error of [`pow`] for `x ∈ [1e-3, 1e3]`, `y ∈ [-1, 1]`: measured 5.48e-7
/// over 10⁸ random pairs and a 1001×999 grid. It grows with `|y·ln x|` (here at most 6.9),
/// roughly as `8e-8·(1.5 + |y·ln x|)`, because the rounding error of `ln x` is scaled by `y`.
pub const POW_MAX_REL_ERR: f64 = 6.0e-7;

/// `e^x` for an `f32` or `f32x4` value; see the module docs for method, error and special
/// values ([`EXP_MAX_REL_ERR`]).
pub fn exp(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = float_type(b, x);
    // Clamping keeps `k` in [-150, 128], where both halves of 2^k are normal floats; past
    // either end the result is already 0 or +inf. NaN passes through the clamps.
    let x = clamp(b, x, -104.0, 89.0);

    // k = round(x·log2 e): adding 1.5·2^23 leaves the integer in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: i32 = 0x4B40_0000;
    let log2e = fconst(b, ty, std::f32::consts::LOG2_E);
    let magic = fconst(b, ty, MAGIC);
    let t = b.ins().fma(x, log2e, magic);
    let kf = b.ins().fsub(t, magic);

    // r = x - k·ln2 in two steps; the first is exact (see the module docs).
    const LN2_HI: f32 = std::f32::consts::LN_2;
    const LN2_LO: f32 = -1.904_654_2e-9;
    let neg_hi = fconst(b, ty, -LN2_HI);
    let neg_lo = fconst(b, ty, -LN2_LO);
    let r = b.ins().fma(kf, neg_hi, x);
    let r = b.ins().fma(kf, neg_lo, r);

    // e^r = 1 + r + r²·P(r) (Cephes expf).
    let p = horner(
        b,
        r,
        &[
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_6e-1,
            0.5,
        ],
    );
    let r2 = b.ins().fmul(r, r);
    let p = b.ins().fma(p, r2, r);
    let one = fconst(b, ty, 1.0);
    let p = b.ins().fadd(p, one);

    // 2^k as 2^n1 · 2^n2 with n1 = k >> 1, n2 = k - n1, both in [-75, 64].
    let t_bits = to_bits(b, t);
    let k = add_const(b, t_bits, -MAGIC_BITS);
    let n1 = b.ins().sshr_imm_u(k, 1);
    let n2 = b.ins().isub(k, n1);
    let s1 = pow2(b, n1);
    let s2 = pow2(b, n2);
    let y = b.ins().fmul(p, s1);
    b.ins().fmul(y, s2)
}

/// The natural logarithm of an `f32` or `f32x4` value; accurate for every positive input,
/// subnormals included (see [`LN_MAX_REL_ERR`]); `ln(±0) = -inf`, `ln(+inf) = +inf`, NaN
/// for negative inputs and NaN.
pub fn ln(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = float_type(b, x);
    // Subnormals: scale into the normal range first and take the 23 back from e.
    let min_normal = fconst(b, ty, f32::MIN_POSITIVE);
    let two23 = fconst(b, ty, 8_388_608.0);
    let scaled = b.ins().fmul(x, two23);
    let xs = pick(b, FloatCC::LessThan, x, min_normal, scaled, x);
    let minus23 = fconst(b, ty, -23.0);
    let zero = fconst(b, ty, 0.0);
    let e_adj = pick(b, FloatCC::LessThan, x, min_normal, minus23, zero);

    // Subtracting the bits of √½ makes the exponent field round at √2 instead of 2:
    // e = ix >> 23 and the mantissa of ix with √½'s bits added back is m ∈ [√½, √2).
    const SQRT_HALF_BITS: i32 = 0x3F35_04F3;
    let bits = to_bits(b, xs);
    let ix = add_const(b, bits, -SQRT_HALF_BITS);
    let e = b.ins().sshr_imm_u(ix, 23);
    let mask = iconst(b, ty.as_int(), 0x007F_FFFF);
    let mant = b.ins().band(ix, mask);
    let m_bits = add_const(b, mant, SQRT_HALF_BITS);
    let m = from_bits(b, m_bits);
    let one = fconst(b, ty, 1.0);
    let f = b.ins().fsub(m, one);
    let fe = b.ins().fcvt_from_sint(ty, e);
    let fe = b.ins().fadd(fe, e_adj);

    // ln(1+f) = f - f²/2 + f³·P(f) (Cephes logf), plus e·ln2 with ln2 split in two.
    let p = horner(
        b,
        f,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_84e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_7e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let f2 = b.ins().fmul(f, f);
    let pf = b.ins().fmul(p, f);
    let y = b.ins().fmul(pf, f2);
    let ln2_lo = fconst(b, ty, -2.121_944_4e-4);
    let y = b.ins().fma(fe, ln2_lo, y);
    let minus_half = fconst(b, ty, -0.5);
    let y = b.ins().fma(f2, minus_half, y);
    let r = b.ins().fadd(f, y);
    let ln2_hi = fconst(b, ty, 0.693_359_4);
    let r = b.ins().fma(fe, ln2_hi, r);

    // Special inputs: +inf and NaN give themselves, ±0 gives -inf, negatives give NaN.
    let max = fconst(b, ty, f32::MAX);
    let r = pick(b, FloatCC::UnorderedOrGreaterThan, x, max, x, r);
    let neg_inf = fconst(b, ty, f32::NEG_INFINITY);
    let r = pick(b, FloatCC::Equal, x, zero, neg_inf, r);
    let nan = fconst(b, ty, f32::NAN);
    pick(b, FloatCC::LessThan, x, zero, nan, r)
}

/// The logistic function `1/(1+e^-x)` of an `f32` or `f32x4` value; exactly 0 at `-inf`,
/// 1 at `+inf`, never NaN for a non-NaN input ([`SIGMOID_MAX_ABS_ERR`],
/// [`SIGMOID_MAX_REL_ERR`]).
pub fn sigmoid(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = float_type(b, x);
    let a = b.ins().fabs(x);
    let neg_a = b.ins().fneg(a);
    let e = exp(b, neg_a);
    let one = fconst(b, ty, 1.0);
    let d = b.ins().fadd(one, e);
    let zero = fconst(b, ty, 0.0);
    // NaN fails `x >= 0` and takes `e`, which is NaN.
    let num = pick(b, FloatCC::GreaterThanOrEqual, x, zero, one, e);
    b.ins().fdiv(num, d)
}

/// The hyperbolic tangent of an `f32` or `f32x4` value; exactly odd, relative accuracy
/// kept near 0, exactly ±1 for `|x| ≳ 9` ([`TANH_MAX_ABS_ERR`], [`TANH_MAX_REL_ERR`]).
pub fn tanh(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = float_type(b, x);
    let a = b.ins().fabs(x);

    // |x| ≤ 0.625: a + a³·P(a²) (Cephes tanhf).
    let z = b.ins().fmul(a, a);
    let p = horner(
        b,
        z,
        &[
            -5.704_988_7e-3,
            2.063_908_8e-2,
            -5.373_971_5e-2,
            1.333_144_2e-1,
            -3.333_328e-1,
        ],
    );
    let pz = b.ins().fmul(p, z);
    let small = b.ins().fma(pz, a, a);

    // |x| > 0.625: 1 - 2/(e^2a + 1), which tends to 1 as e^2a tends to +inf.
    let a2 = b.ins().fadd(a, a);
    let e = exp(b, a2);
    let one = fconst(b, ty, 1.0);
    let two = fconst(b, ty, 2.0);
    let d = b.ins().fadd(e, one);
    let q = b.ins().fdiv(two, d);
    let big = b.ins().fsub(one, q);

    let cut = fconst(b, ty, 0.625);
    let r = pick(b, FloatCC::GreaterThan, a, cut, big, small);
    // r ≥ 0 (or NaN): or-ing in the sign bit of x gives tanh(x) = sign(x)·tanh|x|.
    let sign_bit = fconst(b, ty, -0.0);
    let sign = b.ins().band(x, sign_bit);
    b.ins().bor(r, sign)
}

/// `x^y = exp(y·ln x)` for `f32` or `f32x4` values of one type, meant for finite `x > 0`
/// (LRN's `(k + α·s)^-β`); see [`POW_MAX_REL_ERR`] and the module docs for other inputs.
pub fn pow(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let ty = float_type(b, x);
    assert_eq!(
        ty,
        b.func.dfg.value_type(y),
        "math::pow: x and y have different types"
    );
    let l = ln(b, x);
    let yl = b.ins().fmul(y, l);
    exp(b, yl)
}

/// The type of `x`, which must be `f32` or `f32x4` (anything else is a code generator bug).
fn float_type(b: &FunctionBuilder, x: Value) -> Type {
    let ty = b.func.dfg.value_type(x);
    assert!(
        ty == types::F32 || ty == types::F32X4,
        "codegen::math works on f32 and f32x4, not {ty}"
    );
    ty
}

/// The float constant `v` of type `ty` (splatted for vectors).
fn fconst(b: &mut FunctionBuilder, ty: Type, v: f32) -> Value {
    let c = b.ins().f32const(v);
    if ty.is_vector() {
        b.ins().splat(ty, c)
    } else {
        c
    }
}

/// The integer constant `v` of type `ty`, `i32` or `i32x4` (splatted for vectors).
fn iconst(b: &mut FunctionBuilder, ty: Type, v: i32) -> Value {
    let c = b.ins().iconst(types::I32, i64::from(v));
    if ty.is_vector() {
        b.ins().splat(ty, c)
    } else {
        c
    }
}

/// `x + v` for an `i32` or `i32x4` value. (`iadd_imm` cannot be used on vectors: it makes a
/// scalar constant.)
fn add_const(b: &mut FunctionBuilder, x: Value, v: i32) -> Value {
    let ty = b.func.dfg.value_type(x);
    let c = iconst(b, ty, v);
    b.ins().iadd(x, c)
}

/// Byte order for the bitcasts: required by the verifier only when the lane count changes,
/// harmless otherwise, and it states the layout the bit tricks assume.
fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// The bits of a float value as the integer type of the same shape.
fn to_bits(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = b.func.dfg.value_type(x).as_int();
    b.ins().bitcast(ty, little(), x)
}

/// The float value of the same shape with the bits of `x`.
fn from_bits(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = b.func.dfg.value_type(x);
    let fty = if ty.is_vector() {
        types::F32X4
    } else {
        types::F32
    };
    b.ins().bitcast(fty, little(), x)
}

/// `2^n` for an integer `n` in `[-126, 127]`, built in the exponent field.
fn pow2(b: &mut FunctionBuilder, n: Value) -> Value {
    let biased = add_const(b, n, 127);
    let bits = b.ins().ishl_imm_u(biased, 23);
    from_bits(b, bits)
}

/// `(l cc r) ? t : f`, lane by lane.
fn pick(b: &mut FunctionBuilder, cc: FloatCC, l: Value, r: Value, t: Value, f: Value) -> Value {
    let c = b.ins().fcmp(cc, l, r);
    let ty = b.func.dfg.value_type(t);
    if ty.is_vector() {
        let mask = b.ins().bitcast(ty, MemFlagsData::new(), c);
        b.ins().bitselect(mask, t, f)
    } else {
        b.ins().select(c, t, f)
    }
}

/// `x` clamped to `[lo, hi]`; NaN stays NaN. Written as the compare-and-select pairs that
/// the x64 backend turns into single `maxps`/`minps` (or `maxss`/`minss`).
fn clamp(b: &mut FunctionBuilder, x: Value, lo: f32, hi: f32) -> Value {
    let ty = b.func.dfg.value_type(x);
    let lo = fconst(b, ty, lo);
    let hi = fconst(b, ty, hi);
    // x < lo ? lo : x, then hi < x ? hi : x; a NaN x fails both and is kept.
    let x = pick(b, FloatCC::LessThan, x, lo, lo, x);
    pick(b, FloatCC::LessThan, hi, x, hi, x)
}

/// `c[0]·x^(n-1) + … + c[n-1]` by Horner's rule with one `fma` a step.
fn horner(b: &mut FunctionBuilder, x: Value, c: &[f32]) -> Value {
    let ty = b.func.dfg.value_type(x);
    let (first, rest) = c
        .split_first()
        .expect("horner: a non-empty coefficient list");
    let mut acc = fconst(b, ty, *first);
    for &ci in rest {
        let k = fconst(b, ty, ci);
        acc = b.ins().fma(acc, x, k);
    }
    acc
}
