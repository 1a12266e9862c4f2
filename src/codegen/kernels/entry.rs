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
