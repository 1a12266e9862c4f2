//! The Cranelift JIT module: the host's ISA with its features (`has_fma`, AVX, …) as
//! `cranelift-native` detects them, optimised for speed, position-dependent code (what
//! `cranelift-jit` 0.135 needs), and the host symbols compiled code may call.

use super::kernels::entry::CodePtr;
use super::CodegenError;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::FuncId;

/// The host GEMM entry compiled code calls (`kernels::gemm::netc_sgemm_packed`).
pub const GEMM_SYMBOL: &str = "netc_sgemm_packed";

/// The profiling clock compiled code calls (`kernels::entry::netc_profile_tick`).
pub const TICK_SYMBOL: &str = "netc_profile_tick";

/// Owns a finished JIT module: its machine code lives as long as this value, and is never
/// freed before (cranelift-jit frees nothing on drop, so code pointers never dangle).
pub struct Module(pub JITModule);

fn setting(e: impl std::fmt::Display) -> CodegenError {
    CodegenError::Cranelift {
        detail: e.to_string(),
    }
}

/// A JIT module for the host.
pub fn new_module() -> Result<JITModule, CodegenError> {
    let mut flags = settings::builder();
    flags
        .set("use_colocated_libcalls", "false")
        .map_err(setting)?;
    flags.set("is_pic", "false").map_err(setting)?;
    flags.set("opt_level", "speed").map_err(setting)?;
    let isa = cranelift_native::builder()
        .map_err(setting)?
        .finish(settings::Flags::new(flags))
        .map_err(setting)?;
    let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    builder.symbol(
        GEMM_SYMBOL,
        super::kernels::gemm::netc_sgemm_packed as *const u8,
    );
    builder.symbol(
        TICK_SYMBOL,
        super::kernels::entry::netc_profile_tick as *const u8,
    );
    Ok(JITModule::new(builder))
}

/// Finalises every function of `module` and returns the address of `main`.
pub fn finish(module: &mut JITModule, main: FuncId) -> Result<CodePtr, CodegenError> {
    module
        .finalize_definitions()
        .map_err(super::CodegenError::module)?;
    Ok(CodePtr::new(module.get_finalized_function(main)))
}
