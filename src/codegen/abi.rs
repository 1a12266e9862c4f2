//! The calling convention between the host and JIT code, and the layout of the per-call
//! tables it reads.
//!
//! Every compiled function — the kernel of one IR node, or the driver `main` that calls
//! the kernels in order with each recurrence as a loop around its step's kernels — has the
//! signature `extern "C" fn(ctx: *mut Ctx, t: i64)`: `ctx` is the [`Ctx`] of the call and
//! `t` the current time step inside a recurrence (0 elsewhere). Nothing else crosses the
//! boundary, so one compile serves every batch size and sequence length: sizes, offsets
//! and strides are read from `ctx.meta`, a table of `i64` filled by the host for the sizes
//! of the call ([`super::frame`]) before any compiled code runs.
//!
//! **The meta table.** Its layout is fixed at compile time ([`super::program`]), in this
//! order:
//! - entry 0: the byte offset of the scratch area of the GEMM-driven contractions;
//! - per activation value (a *slot*), region by region: `offset` (bytes from the arena's
//!   start to the value's first element), `extent` (bytes from there to one past its last
//!   element), then its `rank` sizes and its `rank` strides (in elements, by logical
//!   axis); after each recurrence's body, its number of steps and the staging slots of its
//!   states;
//! - last, one entry per symbolic size (`N`, `T`, …), filled for every call (kept for
//!   kernels that need a size no slot carries; none reads them today).
//!
//! **The arena** is one allocation holding every activation: the net's values at the
//! places the memory plan gives them, then each recurrence's step values (the body
//! planned on its own), the staging slots of the carried states, and the scratch area
//! (im2col blocks and result blocks of the GEMM-driven contractions).
//!
//! **Parameters** are read through `ctx.params`, a table of pointers (one per parameter
//! of the graph, plus the packed copies the contractions read, [`super::bind`]), each to a
//! row-major `f32` buffer of the parameter's known shape.
//!
//! **Status.** Compiled code never stops half-way on bad data: a token id out of range or
//! (with `--debug-bounds`) an access outside its buffer writes a code, the kernel's index
//! and the offending value into `ctx.status*`, skips the access and goes on; the host
//! turns that into an error naming the layer after the call.

/// The context of one call of compiled code. `repr(C)`: the offsets below are what the
/// generated code loads.
#[repr(C)]
#[derive(Debug)]
pub struct Ctx {
    /// The arena's first byte.
    pub arena: *mut u8,
    /// The meta table.
    pub meta: *const i64,
    /// The parameter table.
    pub params: *const *const f32,
    /// 0, or a [`Status`] code set by the first failed check.
    pub status: i64,
    /// The index of the kernel that set `status` ([`super::Compiled`]'s kernel list).
    pub status_kernel: i64,
    /// The offending value (a token id, an address offset).
    pub status_value: i64,
    /// With profiling compiled in: nanoseconds spent in each kernel, by kernel index
    /// (null otherwise).
    pub profile: *mut u64,
    /// With profiling: the clock reading at the last tick, in nanoseconds.
    pub profile_last: u64,
}

/// Byte offset of [`Ctx::arena`].
pub const CTX_ARENA: i32 = 0;
/// Byte offset of [`Ctx::meta`].
pub const CTX_META: i32 = 8;
/// Byte offset of [`Ctx::params`].
pub const CTX_PARAMS: i32 = 16;
/// Byte offset of [`Ctx::status`].
pub const CTX_STATUS: i32 = 24;
/// Byte offset of [`Ctx::status_kernel`].
pub const CTX_STATUS_KERNEL: i32 = 32;
/// Byte offset of [`Ctx::status_value`].
pub const CTX_STATUS_VALUE: i32 = 40;

/// Byte offset of [`Ctx::profile`].
pub const CTX_PROFILE: i32 = 48;

/// What a failed run-time check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Status {
    /// An embedding id outside `0..V`.
    IdOutOfRange = 1,
    /// (`--debug-bounds`) an access outside its operand's buffer.
    OutOfBounds = 2,
    /// An integer division by zero.
    DivideByZero = 3,
    /// A class label outside `0..C` in a cross-entropy.
    LabelOutOfRange = 4,
}

impl Status {
    /// The status of code `c`, if it is one.
    pub fn from_code(c: i64) -> Option<Status> {
        match c {
            1 => Some(Status::IdOutOfRange),
            2 => Some(Status::OutOfBounds),
            3 => Some(Status::DivideByZero),
            4 => Some(Status::LabelOutOfRange),
            _ => None,
        }
    }
}

/// Where a slot's entries start in the meta table, and its rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMeta {
    /// Index of the `offset` entry.
    pub base: usize,
    /// Number of axes.
    pub rank: usize,
}

impl SlotMeta {
    /// Index of the `offset` entry.
    pub fn offset(self) -> usize {
        self.base
    }
    /// Index of the `extent` entry.
    pub fn extent(self) -> usize {
        self.base + 1
    }
    /// Index of the size of `axis`.
    pub fn dim(self, axis: usize) -> usize {
        self.base + 2 + axis
    }
    /// Index of the stride of `axis`.
    pub fn stride(self, axis: usize) -> usize {
        self.base + 2 + self.rank + axis
    }
    /// Number of entries.
    pub fn len(self) -> usize {
        2 + 2 * self.rank
    }
    /// Whether the slot has no entries (never: every slot has an offset and an extent).
    pub fn is_empty(self) -> bool {
        false
    }
}

/// Byte offset of meta entry `i` (the generated code addresses entries by byte offset).
pub fn meta_offset(i: usize) -> i32 {
    i32::try_from(i * 8).unwrap_or(i32::MAX)
}
