//! netc: a compiler for declarative neural-network descriptions.
//!
//! The pipeline, each stage a module:
//!
//! ```text
//! grammar/net.pest --syntax::parser--> AST (spans) --syntax::resolve--> checked program
//!   --passes::lower--> IR (petgraph) --passes: infer shapes, check, fold, fuse, plan memory-->
//!   runtime (reference interpreter) / codegen (Cranelift JIT)
//! ```
//!
//! Every user-facing problem is a [`diagnostics::Diagnostic`] with spans into the source.

pub mod cli;
pub mod codegen;
pub mod diagnostics;
pub mod export;
pub mod ir;
pub mod lsp;
pub mod model;
pub mod passes;
pub mod report;
pub mod runtime;
pub mod syntax;

use diagnostics::Diagnostics;
use syntax::loader::{self, Program};

/// Loads `name` (whose contents are `bytes`; imports are read from disk) and runs every
/// check that needs no shapes: reading, parsing, imports, names and arguments.
pub fn check_bytes(name: &str, bytes: &[u8]) -> Diagnostics {
    check_program(loader::load_source_with(name, bytes, &loader::DiskReader)).1
}

/// Runs name resolution on a loaded program, adding to the loader's diagnostics.
pub fn check_program((program, mut diags): (Program, Diagnostics)) -> (Program, Diagnostics) {
    if !diags.has_errors() {
        diags.extend(syntax::resolve::check(&program));
    }
    diags.sort();
    (program, diags)
}
