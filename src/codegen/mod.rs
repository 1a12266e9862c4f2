//! Code generation: the optimised, memory-planned IR lowered to native code with
//! Cranelift (see `docs/codegen.md`).

pub mod kernels;
pub mod math;
