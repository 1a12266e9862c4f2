//! The kernel builder: a Cranelift [`FunctionBuilder`] for one compiled function with the
//! pieces every lowering shares — the context's pointers, counted loops, and operands
//! (activations, parameters, constants) read and written by logical index with their
//! strides, as scalars or as `f32x4` vectors along one axis, with the optional bounds
//! checks of `--debug-bounds`.
//!
//! Invariant: every address the builder computes is `base + Σ index·stride·elem` for
//! indices inside the operand's sizes, which the lowerings guarantee by their loop bounds;
//! `--debug-bounds` checks each access against the operand's extent as well, so a wrong
//! lowering is caught and reported rather than reading stray memory.

use super::abi::{self, SlotMeta, Status};
use super::CodegenError;
use crate::ir::shape::Dim;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, Block, BlockArg, InstBuilder, MemFlagsData, Type, Value};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::FunctionBuilder;

/// A loop body given the loop's index.
pub type StepBody<'x> = dyn FnMut(&mut Kb<'_>, Value) -> Result<(), CodegenError> + 'x;
/// A loop body given the index and its width in lanes (4, or 1 in the scalar tail).
pub type LanesBody<'x> = dyn FnMut(&mut Kb<'_>, Value, i64) -> Result<(), CodegenError> + 'x;
/// A loop-nest body given one index per axis.
pub type IndexBody<'x> = dyn FnMut(&mut Kb<'_>, &[Value]) -> Result<(), CodegenError> + 'x;

/// Vector width of the `f32x4` code.
pub const LANES: i64 = 4;

/// Where an operand's elements are.
#[derive(Clone, Debug, PartialEq)]
pub enum Src {
    /// An activation: a slot of the meta table.
    Slot(SlotMeta),
    /// Parameter table entry `index`, row-major with `shape`.
    Param {
        /// The entry.
        index: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// Every element equal to this value (a `fill`).
    Const(f64),
}

/// Element storage: `f32` for every float type, `i64` for every integer type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// 32-bit float.
    F32,
    /// 64-bit integer.
    I64,
}

impl Elem {
    /// Bytes per element.
    pub fn bytes(self) -> i64 {
        match self {
            Elem::F32 => 4,
            Elem::I64 => 8,
        }
    }
    /// The Cranelift scalar type.
    pub fn ty(self) -> Type {
        match self {
            Elem::F32 => types::F32,
            Elem::I64 => types::I64,
        }
    }
}

/// An operand as the lowering sees it at compile time.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    /// Where it is.
    pub src: Src,
    /// Its element storage.
    pub elem: Elem,
    /// Its logical sizes (for broadcasting decisions: a known 1 is broadcast).
    pub dims: Vec<Dim>,
    /// The logical axis whose stride is 1 (`None` for constants).
    pub contig: Option<usize>,
}

/// An operand bound inside a function: its base address, sizes and strides as SSA values.
#[derive(Clone, Debug)]
pub struct Bound {
    /// The compile-time description.
    pub op: Operand,
    /// Address of the element at index 0 (unused for constants).
    pub base: Value,
    /// Sizes by axis.
    pub dims: Vec<Value>,
    /// Strides by axis, in elements.
    pub strides: Vec<Value>,
    /// Bytes from `base` to one past the last element.
    pub extent: Value,
}

impl Bound {
    /// The rank.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
}

/// How many lanes a load or store moves, and along which axis of the operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lanes {
    /// One element.
    One,
    /// Four elements at indices `i..i+4` of the axis (the index given is `i`).
    Four(usize),
    /// Four lanes, all the one element at the index (a broadcast).
    Splat,
}

/// The builder of one compiled function with signature `fn(ctx, t)`.
pub struct Kb<'a> {
    /// The Cranelift builder.
    pub b: FunctionBuilder<'a>,
    /// The context pointer.
    pub ctx: Value,
    /// The time step.
    pub t: Value,
    /// `ctx.arena`.
    pub arena: Value,
    /// `ctx.meta`.
    pub meta: Value,
    /// `ctx.params`.
    pub params: Value,
    /// This kernel's index (reported in the status).
    pub kernel: i64,
    /// Whether to check every access.
    pub debug_bounds: bool,
    /// The imported host GEMM entry (`netc_sgemm_packed`), when the kernel may call it.
    pub gemm: Option<cranelift_codegen::ir::FuncRef>,
    cfg: TargetFrontendConfig,
}

/// Flags for loads and stores of data: no trap (the bounds are guaranteed or checked),
/// not necessarily aligned.
pub fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Flags for a lane-reinterpreting vector `bitcast` (Cranelift asks for an explicit byte
/// order when the lane types differ).
pub fn lane_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little)
}

impl<'a> Kb<'a> {
    /// Starts the function: an entry block taking `(ctx, t)`, with the context's pointers
    /// loaded.
    pub fn new(
        mut b: FunctionBuilder<'a>,
        cfg: TargetFrontendConfig,
        kernel: i64,
        debug_bounds: bool,
    ) -> Kb<'a> {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let ctx = b.block_params(entry)[0];
        let t = b.block_params(entry)[1];
        let flags = MemFlagsData::trusted();
        let arena = b.ins().load(types::I64, flags, ctx, abi::CTX_ARENA);
        let meta = b.ins().load(types::I64, flags, ctx, abi::CTX_META);
        let params = b.ins().load(types::I64, flags, ctx, abi::CTX_PARAMS);
        Kb {
            b,
            ctx,
            t,
            arena,
            meta,
            params,
            kernel,
            debug_bounds,
            gemm: None,
            cfg,
        }
    }

    /// Returns and finishes the function.
    pub fn finish(mut self) {
        self.b.ins().return_(&[]);
        self.b.seal_all_blocks();
        self.b.finalize(self.cfg);
    }

    /// An `i64` constant.
    pub fn int(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// Meta table entry `i`.
    pub fn meta_at(&mut self, i: usize) -> Value {
        self.b.ins().load(
            types::I64,
            MemFlagsData::trusted(),
            self.meta,
            abi::meta_offset(i),
        )
    }

    /// Binds an operand: loads its base, sizes and strides.
    pub fn bind(&mut self, op: &Operand) -> Bound {
        match &op.src {
            Src::Slot(s) => {
                let off = self.meta_at(s.offset());
                let base = self.b.ins().iadd(self.arena, off);
                let extent = self.meta_at(s.extent());
                let dims = (0..s.rank).map(|a| self.meta_at(s.dim(a))).collect();
                let strides = (0..s.rank).map(|a| self.meta_at(s.stride(a))).collect();
                Bound {
                    op: op.clone(),
                    base,
                    dims,
                    strides,
                    extent,
                }
            }
            Src::Param { index, shape } => {
                let off = i32::try_from(index * 8).unwrap_or(i32::MAX);
                let base = self
                    .b
                    .ins()
                    .load(types::I64, MemFlagsData::trusted(), self.params, off);
                let mut strides = vec![0i64; shape.len()];
                let mut acc = 1i64;
                for a in (0..shape.len()).rev() {
                    strides[a] = acc;
                    acc = acc.saturating_mul(i64::try_from(shape[a]).unwrap_or(i64::MAX));
                }
                let extent = self.int(acc.saturating_mul(op.elem.bytes()));
                let dims = shape
                    .iter()
                    .map(|d| self.int(i64::try_from(*d).unwrap_or(i64::MAX)))
                    .collect();
                let strides = strides.iter().map(|s| self.int(*s)).collect();
                Bound {
                    op: op.clone(),
                    base,
                    dims,
                    strides,
                    extent,
                }
            }
            Src::Const(_) => {
                let z = self.int(0);
                let one = self.int(1);
                Bound {
                    op: op.clone(),
                    base: z,
                    dims: vec![one; op.dims.len()],
                    strides: vec![z; op.dims.len()],
                    extent: z,
                }
            }
        }
    }

    /// The byte offset of the element at `idx` from the operand's base.
    pub fn byte_offset(&mut self, x: &Bound, idx: &[Value]) -> Value {
        let mut acc: Option<Value> = None;
        for (i, s) in idx.iter().zip(&x.strides) {
            let p = self.b.ins().imul(*i, *s);
            acc = Some(match acc {
                Some(a) => self.b.ins().iadd(a, p),
                None => p,
            });
        }
        let elems = match acc {
            Some(a) => a,
            None => self.int(0),
        };
        self.b.ins().imul_imm_s(elems, x.op.elem.bytes())
    }

    /// Loads the element(s) of `x` at `idx`. `F32` operands give `f32` or `f32x4`
    /// (`Lanes::Four(axis)`: indices `idx[axis]..+4` along `axis`; `Splat`: one element
    /// broadcast); `I64` operands only load `Lanes::One`.
    pub fn load(&mut self, x: &Bound, idx: &[Value], lanes: Lanes) -> Value {
        if let Src::Const(c) = x.op.src {
            return self.constant(x.op.elem, c, lanes);
        }
        let off = self.byte_offset(x, idx);
        match lanes {
            Lanes::One => self.checked_load(x, off, x.op.elem.ty(), x.op.elem.bytes()),
            Lanes::Splat => {
                let s = self.checked_load(x, off, x.op.elem.ty(), x.op.elem.bytes());
                self.b.ins().splat(types::F32X4, s)
            }
            Lanes::Four(axis) if x.op.contig == Some(axis) => {
                self.checked_load(x, off, types::F32X4, 16)
            }
            Lanes::Four(axis) => {
                let stride = self.b.ins().imul_imm_s(x.strides[axis], 4);
                let mut v = {
                    let s = self.checked_load(x, off, types::F32, 4);
                    self.b.ins().splat(types::F32X4, s)
                };
                let mut o = off;
                for lane in 1..4u8 {
                    o = self.b.ins().iadd(o, stride);
                    let s = self.checked_load(x, o, types::F32, 4);
                    v = self.b.ins().insertlane(v, s, lane);
                }
                v
            }
        }
    }

    /// Stores `v` (as [`Kb::load`] reads it) at `idx` of `x`.
    pub fn store(&mut self, x: &Bound, idx: &[Value], lanes: Lanes, v: Value) {
        if let Src::Const(_) = x.op.src {
            return;
        }
        let off = self.byte_offset(x, idx);
        match lanes {
            Lanes::One | Lanes::Splat => self.checked_store(x, off, v, x.op.elem.bytes()),
            Lanes::Four(axis) if x.op.contig == Some(axis) => self.checked_store(x, off, v, 16),
            Lanes::Four(axis) => {
                let stride = self.b.ins().imul_imm_s(x.strides[axis], 4);
                let mut o = off;
                for lane in 0..4u8 {
                    if lane > 0 {
                        o = self.b.ins().iadd(o, stride);
                    }
                    let s = self.b.ins().extractlane(v, lane);
                    self.checked_store(x, o, s, 4);
                }
            }
        }
    }

    /// A constant of `elem` as the lanes ask.
    pub fn constant(&mut self, elem: Elem, c: f64, lanes: Lanes) -> Value {
        match (elem, lanes) {
            (Elem::I64, _) => self.int(c as i64),
            (Elem::F32, Lanes::One) => self.b.ins().f32const(c as f32),
            (Elem::F32, _) => {
                let s = self.b.ins().f32const(c as f32);
                self.b.ins().splat(types::F32X4, s)
            }
        }
    }

    /// An `f32` constant of `width` lanes (1 or 4).
    pub fn fconst(&mut self, c: f32, width: i64) -> Value {
        let s = self.b.ins().f32const(c);
        if width == 1 {
            s
        } else {
            self.b.ins().splat(types::F32X4, s)
        }
    }

    fn checked_load(&mut self, x: &Bound, off: Value, ty: Type, bytes: i64) -> Value {
        if !self.debug_bounds {
            let addr = self.b.ins().iadd(x.base, off);
            return self.b.ins().load(ty, mem(), addr, 0);
        }
        let ok_block = self.b.create_block();
        let bad_block = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(done, ty);
        let ok = self.in_bounds(x, off, bytes);
        self.b.ins().brif(ok, ok_block, &[], bad_block, &[]);
        self.b.switch_to_block(ok_block);
        let addr = self.b.ins().iadd(x.base, off);
        let v = self.b.ins().load(ty, mem(), addr, 0);
        self.b.ins().jump(done, &[BlockArg::Value(v)]);
        self.b.switch_to_block(bad_block);
        self.set_status(Status::OutOfBounds, off);
        let z = self.zero_of(ty);
        self.b.ins().jump(done, &[BlockArg::Value(z)]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    fn checked_store(&mut self, x: &Bound, off: Value, v: Value, bytes: i64) {
        if !self.debug_bounds {
            let addr = self.b.ins().iadd(x.base, off);
            self.b.ins().store(mem(), v, addr, 0);
            return;
        }
        let ok_block = self.b.create_block();
        let bad_block = self.b.create_block();
        let done = self.b.create_block();
        let ok = self.in_bounds(x, off, bytes);
        self.b.ins().brif(ok, ok_block, &[], bad_block, &[]);
        self.b.switch_to_block(ok_block);
        let addr = self.b.ins().iadd(x.base, off);
        self.b.ins().store(mem(), v, addr, 0);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(bad_block);
        self.set_status(Status::OutOfBounds, off);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// `0 <= off && off + bytes <= extent`.
    fn in_bounds(&mut self, x: &Bound, off: Value, bytes: i64) -> Value {
        let lo = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, off, 0);
        let end = self.b.ins().iadd_imm_s(off, bytes);
        let hi = self
            .b
            .ins()
            .icmp(IntCC::SignedLessThanOrEqual, end, x.extent);
        self.b.ins().band(lo, hi)
    }

    fn zero_of(&mut self, ty: Type) -> Value {
        if ty == types::F32X4 {
            let z = self.b.ins().f32const(0.0);
            self.b.ins().splat(types::F32X4, z)
        } else if ty == types::F32 {
            self.b.ins().f32const(0.0)
        } else {
            self.b.ins().iconst(ty, 0)
        }
    }

    /// Records a failed check (the first one wins) with the offending `value`.
    pub fn set_status(&mut self, status: Status, value: Value) {
        let flags = MemFlagsData::trusted();
        let cur = self
            .b
            .ins()
            .load(types::I64, flags, self.ctx, abi::CTX_STATUS);
        let first = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(cur, done, &[], first, &[]);
        self.b.switch_to_block(first);
        let code = self.int(status as i64);
        self.b.ins().store(flags, code, self.ctx, abi::CTX_STATUS);
        let k = self.int(self.kernel);
        self.b
            .ins()
            .store(flags, k, self.ctx, abi::CTX_STATUS_KERNEL);
        self.b
            .ins()
            .store(flags, value, self.ctx, abi::CTX_STATUS_VALUE);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// Emits `for i in (lo..hi).step_by(step) { body(i) }` (`step > 0`).
    pub fn for_range(
        &mut self,
        lo: Value,
        hi: Value,
        step: i64,
        body: &mut StepBody<'_>,
    ) -> Result<(), CodegenError> {
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        self.b.ins().jump(header, &[BlockArg::Value(lo)]);
        self.b.switch_to_block(header);
        let i = self.b.block_params(header)[0];
        let more = self.b.ins().icmp(IntCC::SignedLessThan, i, hi);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        body(self, i)?;
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.ins().jump(header, &[BlockArg::Value(next)]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// Emits the vector loop `i = lo, lo+4, …` while `i + 4 <= hi`, then the scalar tail;
    /// `body(i, width)` is called once for each. Returns nothing: both loops are emitted.
    pub fn for_lanes(
        &mut self,
        lo: Value,
        hi: Value,
        vector: bool,
        body: &mut LanesBody<'_>,
    ) -> Result<(), CodegenError> {
        if !vector {
            return self.for_range(lo, hi, 1, &mut |kb, i| body(kb, i, 1));
        }
        // vec_end = lo + ((hi - lo) / 4) * 4, for hi >= lo; else lo.
        let len = self.b.ins().isub(hi, lo);
        let zero = self.int(0);
        let len = self.b.ins().smax(len, zero);
        let full = self.b.ins().band_imm_s(len, !3);
        let vec_end = self.b.ins().iadd(lo, full);
        self.for_range(lo, vec_end, LANES, &mut |kb, i| body(kb, i, LANES))?;
        self.for_range(vec_end, hi, 1, &mut |kb, i| body(kb, i, 1))
    }

    /// Loops over every index of `dims` (row-major, outermost first); `skip` leaves one
    /// axis out of the nest (its index is 0).
    pub fn nest(
        &mut self,
        dims: &[Value],
        skip: Option<usize>,
        body: &mut IndexBody<'_>,
    ) -> Result<(), CodegenError> {
        let zero = self.int(0);
        let mut at = vec![zero; dims.len()];
        self.nest_from(dims, skip, 0, &mut at, body)
    }

    fn nest_from(
        &mut self,
        dims: &[Value],
        skip: Option<usize>,
        axis: usize,
        at: &mut [Value],
        body: &mut IndexBody<'_>,
    ) -> Result<(), CodegenError> {
        if axis == dims.len() {
            return body(self, at);
        }
        if Some(axis) == skip {
            return self.nest_from(dims, skip, axis + 1, at, body);
        }
        let zero = self.int(0);
        self.for_range(zero, dims[axis], 1, &mut |kb, i| {
            let mut inner = at.to_vec();
            inner[axis] = i;
            kb.nest_from(dims, skip, axis + 1, &mut inner, body)
        })
    }

    /// `if cond { then() }`.
    pub fn if_then(
        &mut self,
        cond: Value,
        then: &mut dyn FnMut(&mut Kb<'a>) -> Result<(), CodegenError>,
    ) -> Result<(), CodegenError> {
        let yes = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(cond, yes, &[], done, &[]);
        self.b.switch_to_block(yes);
        then(self)?;
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        Ok(())
    }

    /// Whether `0 <= i < n` (an `i8` truth value).
    pub fn in_range(&mut self, i: Value, n: Value) -> Value {
        // One unsigned comparison covers both ends.
        self.b.ins().icmp(IntCC::UnsignedLessThan, i, n)
    }

    /// `max(x, 0)` of `f32`/`f32x4`.
    pub fn relu(&mut self, x: Value, width: i64) -> Value {
        let z = self.fconst(0.0, width);
        // fmax propagates NaN as the interpreter's `max(0)` does not matter: NaN stays NaN.
        self.b.ins().fmax(x, z)
    }

    /// Horizontal sum of an `f32x4`.
    pub fn hsum(&mut self, v: Value) -> Value {
        let a = self.b.ins().extractlane(v, 0);
        let b = self.b.ins().extractlane(v, 1);
        let c = self.b.ins().extractlane(v, 2);
        let d = self.b.ins().extractlane(v, 3);
        let ab = self.b.ins().fadd(a, b);
        let cd = self.b.ins().fadd(c, d);
        self.b.ins().fadd(ab, cd)
    }

    /// Horizontal maximum of an `f32x4`.
    pub fn hmax(&mut self, v: Value) -> Value {
        let a = self.b.ins().extractlane(v, 0);
        let b = self.b.ins().extractlane(v, 1);
        let c = self.b.ins().extractlane(v, 2);
        let d = self.b.ins().extractlane(v, 3);
        let ab = self.max(a, b);
        let cd = self.max(c, d);
        self.max(ab, cd)
    }

    /// `max(a, b)` that ignores NaN in neither operand order: `a > b ? a : b`.
    pub fn max(&mut self, a: Value, b: Value) -> Value {
        let gt = self.b.ins().fcmp(FloatCC::GreaterThan, a, b);
        self.b.ins().select(gt, a, b)
    }

    /// Creates a block (for lowerings that build their own control flow).
    pub fn block(&mut self) -> Block {
        self.b.create_block()
    }
}
