//! Code generation: the optimised, memory-planned IR lowered to native code with
//! Cranelift, compiled in memory for the host CPU (see `docs/codegen.md`).
//!
//! ```text
//! ir::Graph (after fuse, concat_in_place, layout)
//!   --program--> tables' layout (slots of every planned value, packed weights)
//!   --lower-->   one small Cranelift function per kernel + the driver `main`
//!   --jit-->     machine code (cranelift-jit, host ISA, FMA)
//! Compiled --bind(weights)--> Executable --run(inputs)--> outputs
//!                 (parameter table)     (per-size tables cached: frame)
//! ```
//!
//! - [`compile`] builds the code once for every size: batch, sequence length and any other
//!   symbolic size are read from the meta table at run time ([`abi`]).
//! - [`Compiled::bind`] makes an [`Executable`]: the parameter table, with derived
//!   parameters computed and contraction weights packed.
//! - [`Executable::run`] checks the inputs against the net (the `E04xx` diagnostics),
//!   computes or reuses the tables for their sizes ([`frame`]), writes the inputs into the
//!   arena, runs the compiled code and reads the outputs. Errors found by compiled code (a
//!   token id out of range, an access out of bounds under `debug_bounds`) come back as
//!   [`RunError`]s naming the layer.
//!
//! Module map: [`abi`] (calling convention, tables), [`program`] (compile-time layout),
//! [`frame`] (per-size tables), [`emit`] (the kernel builder: loops, operands, checks),
//! [`expr`] (elementwise expressions), one lowering per op family ([`elementwise`],
//! [`contraction`], [`spatial`], [`reduce`], [`copy`]), [`math`] (vectorised
//! transcendentals), [`lower`] (nodes and regions to functions), [`jit`] (the Cranelift
//! module), [`bind`] (the parameter table), [`kernels`] (the only unsafe code).

pub mod abi;
pub mod bind;
pub mod contraction;
pub mod copy;
pub mod elementwise;
pub mod emit;
pub mod expr;
pub mod frame;
pub mod gemm_call;
pub mod jit;
pub mod kernels;
pub mod lower;
pub mod math;
pub mod program;
pub mod reduce;
pub mod spatial;

pub use bind::Executable;

use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::ir::graph::Graph;
use kernels::entry::CodePtr;
use std::time::Instant;

/// How to compile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodegenOptions {
    /// Compile every load and store with a check against its operand's extent; a failed
    /// check stops the run with an error naming the layer (`--debug-bounds`).
    pub debug_bounds: bool,
    /// Keep the CLIF text of every function (`--emit clif`).
    pub keep_clif: bool,
    /// Compute every contraction with the portable Cranelift `f32x4` loop nest instead of
    /// the host GEMM engine (the fallback and cross-check; always so under
    /// `debug_bounds`).
    pub portable_contractions: bool,
    /// Time every kernel (`netc bench --profile`): the driver reads the clock around each
    /// kernel call and adds the time to the kernel's total.
    pub profile: bool,
}

/// Why a net could not be compiled to native code.
#[derive(Clone, Debug, PartialEq)]
pub enum CodegenError {
    /// The net uses something the code generator does not lower.
    Unsupported {
        /// The layer.
        layer: String,
        /// What.
        what: String,
    },
    /// Cranelift rejected a function (a bug in netc).
    Cranelift {
        /// Cranelift's message.
        detail: String,
    },
    /// An inconsistency in the compiler's own tables (a bug in netc).
    Internal {
        /// What.
        detail: String,
    },
}

impl CodegenError {
    /// An internal error.
    pub fn internal(detail: String) -> CodegenError {
        CodegenError::Internal { detail }
    }

    /// A cranelift-module error.
    pub fn module(e: cranelift_module::ModuleError) -> CodegenError {
        CodegenError::Cranelift {
            detail: e.to_string(),
        }
    }

    /// The diagnostic, pointing at the net (`span`).
    pub fn diagnostic(&self, span: Span) -> Diagnostic {
        match self {
            CodegenError::Unsupported { layer, what } => Diagnostic::error(
                Code::Codegen,
                format!("the code generator cannot compile {what}"),
                Label::new(span, format!("in layer `{layer}` of this net")),
            )
            .with_help("run it with `--backend interp` meanwhile, and report this net"),
            CodegenError::Cranelift { detail } | CodegenError::Internal { detail } => {
                Diagnostic::error(
                    Code::Codegen,
                    "internal error in the code generator",
                    Label::new(span, "compiling this net"),
                )
                .with_note(detail.clone())
                .with_help("this is a bug in netc; `--backend interp` runs the net meanwhile")
            }
        }
    }
}

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodegenError::Unsupported { layer, what } => {
                write!(f, "cannot compile {what} (layer `{layer}`)")
            }
            CodegenError::Cranelift { detail } => write!(f, "cranelift: {detail}"),
            CodegenError::Internal { detail } => write!(f, "internal: {detail}"),
        }
    }
}

/// One compiled kernel: its function name and the layer it computes.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelInfo {
    /// The function's name (`k12_conv2d`).
    pub name: String,
    /// The layer.
    pub layer: String,
    /// The layer's source.
    pub span: Span,
    /// How it computes (`gemm im2col`, `gemm 1x1`, `cranelift f32x4`, `copy`, …).
    pub algorithm: String,
    /// Multiply-adds per example of one call, for kernels of the net's body (not of a
    /// recurrence's step); zero for kernels that only move or map data.
    pub macs: Option<crate::ir::shape::Poly>,
}

/// Figures of one compile.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CompileStats {
    /// Compiled functions (kernels and the driver).
    pub functions: usize,
    /// Bytes of machine code.
    pub code_bytes: usize,
    /// Wall time of lowering and compiling, in milliseconds.
    pub compile_ms: f64,
}

/// A net compiled to machine code, for every size.
pub struct Compiled {
    /// The IR it was compiled from.
    pub graph: Graph,
    /// The tables' layout.
    pub program: program::Program,
    /// The kernels, by index (as the status reports them).
    pub kernels: Vec<KernelInfo>,
    /// The CLIF of every function, when asked for.
    pub clif: Vec<String>,
    /// Compile figures.
    pub stats: CompileStats,
    /// Whether the driver times every kernel.
    pub profiled: bool,
    main: CodePtr,
    /// Owns the machine code; never freed while `main` may be called.
    _module: jit::Module,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("net", &self.graph.name)
            .field("kernels", &self.kernels.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Compiles `graph` (optimised by the pass pipeline, or not) to machine code.
pub fn compile(graph: &Graph, opts: &CodegenOptions) -> Result<Compiled, CodegenError> {
    let start = Instant::now();
    let program = program::Program::new(graph)?;
    let module = jit::new_module()?;
    let mut l = lower::Lowerer::new(graph, program, module, *opts);
    let calls = l.region(0)?;
    let main_id = l.main(&calls)?;
    let lower::Lowerer {
        program,
        mut module,
        kernels,
        clif,
        code_bytes,
        ..
    } = l;
    let main = jit::finish(&mut module, main_id)?;
    let stats = CompileStats {
        functions: kernels.len() + 1,
        code_bytes,
        compile_ms: start.elapsed().as_secs_f64() * 1e3,
    };
    Ok(Compiled {
        graph: graph.clone(),
        program,
        kernels,
        clif,
        stats,
        profiled: opts.profile,
        main,
        _module: jit::Module(module),
    })
}

impl Compiled {
    /// The driver's entry point.
    pub(crate) fn entry(&self) -> CodePtr {
        self.main
    }

    /// One line per kernel: its function, the layer and the algorithm (`--emit kernels`).
    pub fn kernels_text(&self) -> String {
        let mut s = String::new();
        for k in &self.kernels {
            s.push_str(&format!("{:<28} {:<40} {}\n", k.name, k.layer, k.algorithm));
        }
        s
    }

    /// The CLIF text of every function (empty unless compiled with `keep_clif`).
    pub fn clif_text(&self) -> String {
        self.clif.join("\n")
    }
}
