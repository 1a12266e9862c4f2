//! Calling JIT-compiled functions. A compiled function is only ever called through the
//! typed wrappers here, each of which states the signature the code generator gave it and
//! the buffer sizes it relies on.

/// The address of a finished JIT function, valid for as long as the JIT module that made
/// it is alive (the owner keeps both together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePtr(pub(crate) *const u8);

// SAFETY: a `CodePtr` is an address of immutable, finalised machine code; sharing it
// between threads shares no mutable state.
unsafe impl Send for CodePtr {}
// SAFETY: as above, the code it points to is never written after finalisation.
unsafe impl Sync for CodePtr {}

impl CodePtr {
    /// Wraps the address cranelift-jit returned for a finalised function.
    pub fn new(p: *const u8) -> CodePtr {
        CodePtr(p)
    }
}

/// Calls `code`, a function compiled with the signature
/// `extern "C" fn(input: *const f32, output: *mut f32, len: i64)` that reads `len`
/// elements of `input` and writes `len` elements of `output` (the test harness of the
/// elementwise approximations and kernels). Panics when the slices' lengths differ, so the
/// function never sees a shorter buffer than `len`.
pub fn call_map(code: CodePtr, input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), output.len(), "call_map: lengths differ");
    let len = i64::try_from(input.len()).unwrap_or(i64::MAX);
    // SAFETY: `code` was compiled with exactly this signature (the caller's contract, kept
    // by the code generator's test harness); it reads `len` floats from `input` and writes
    // `len` floats to `output`, both of which are at least that long (asserted above).
    unsafe {
        let f: extern "C" fn(*const f32, *mut f32, i64) = std::mem::transmute(code.0);
        f(input.as_ptr(), output.as_mut_ptr(), len);
    }
}

/// Runs a net's compiled driver `code` (signature `extern "C" fn(*mut Ctx, i64)`) with
/// `ctx`, whose pointers must be those of `arena`, `frame.meta` and `params`.
///
/// Checked here before the call: the context points at exactly these tables, the arena
/// is at least as large as the frame's plan, and the meta table has its full length. The
/// frame itself guarantees that every slot lies inside the arena (checked when it was
/// computed, [`crate::codegen::frame`]), and the code generator indexes every operand
/// within its sizes; `--debug-bounds` code checks each access on top of that.
pub fn call_main(
    code: CodePtr,
    ctx: &mut crate::codegen::abi::Ctx,
    frame: &crate::codegen::frame::Frame,
    arena: &[u64],
    params: &[*const f32],
) {
    let arena_ok = (arena.len() as u64).saturating_mul(8) >= frame.arena_bytes
        && std::ptr::eq(ctx.arena.cast_const(), arena.as_ptr().cast::<u8>());
    let tables_ok = std::ptr::eq(ctx.meta, frame.meta.as_ptr())
        && std::ptr::eq(ctx.params, params.as_ptr())
        && params.iter().all(|p| !p.is_null());
    assert!(
        arena_ok && tables_ok,
        "internal error: the context does not point at the call's tables"
    );
    // SAFETY: `code` is the finalised driver compiled with signature `fn(*mut Ctx, i64)`
    // and is alive (its module is owned by the `Compiled` the caller borrows). The context
    // points at the tables checked above; compiled code reads and writes only the arena
    // (every slot inside it, checked by the frame), the meta table (indices fixed at
    // compile time below its length), the parameter buffers (each of its parameter's
    // size) and the context's status words.
    unsafe {
        let f: extern "C" fn(*mut crate::codegen::abi::Ctx, i64) = std::mem::transmute(code.0);
        f(ctx, 0);
    }
}

/// Nanoseconds since the first call (a monotonic clock).
fn now_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The profiling clock of compiled code: `kernel < 0` starts a kernel's interval; otherwise
/// the time since the last tick is added to `profile[kernel]`.
///
/// # Safety
///
/// `ctx` points to the live [`crate::codegen::abi::Ctx`] of the call, whose `profile` is
/// null or points to a table with an entry for every kernel index the code passes (the
/// executable allocates one entry per kernel of the compiled net).
pub unsafe extern "C" fn netc_profile_tick(ctx: *mut crate::codegen::abi::Ctx, kernel: i64) {
    // SAFETY: the caller (compiled code) passes its own context, alive for the call.
    let ctx = unsafe { &mut *ctx };
    let now = now_ns();
    if let (Ok(k), false) = (usize::try_from(kernel), ctx.profile.is_null()) {
        // SAFETY: the table has an entry for every kernel index (see above).
        unsafe { *ctx.profile.add(k) += now.saturating_sub(ctx.profile_last) };
    }
    ctx.profile_last = now;
}
