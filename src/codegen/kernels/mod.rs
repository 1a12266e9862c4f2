//! The only module of netc with `unsafe` code: calls into machine code that the JIT
//! emitted ([`entry`]), and the host micro-kernels that JIT code calls (contractions at the
//! machine's peak through `std::arch`). Every `unsafe` block carries a `// SAFETY:` comment
//! saying which invariant makes it sound; everything outside this module keeps
//! `unsafe_code = "deny"`.
#![allow(unsafe_code)] // This module is where netc's unsafe code is confined (see above).

pub mod entry;
pub mod gemm;
