//! Passes over the IR, and [`compile`], the pipeline from a checked program to a compiled
//! net: lowering (which infers shapes as it builds), then the verifier.
//!
//! Passes run in this order, each followed by the verifier in tests and debug builds:
//!
//! 1. [`lower`]: AST → IR, static evaluation, shape inference ([`infer_shapes`]);
//! 2. the optimisation passes of [`pipeline::pipeline`] ([`compile_with`] only):
//!    [`drop_dropout`], [`fold_batchnorm`], [`fold`], [`cse`], [`dce`], [`fuse`],
//!    [`concat_in_place`], [`layout`];
//! 3. [`plan_memory`]: the schedule, liveness and arena placement of the activations at
//!    the batch size asked for (figures in the layer table; the arena executor
//!    [`crate::runtime::arena`] plans again at a run's sizes).

pub mod concat_in_place;
pub mod cse;
pub mod dce;
pub mod drop_dropout;
pub mod fold;
pub mod fold_batchnorm;
pub mod fuse;
pub mod infer_shapes;
pub mod layout;
pub mod lower;
pub mod pipeline;
pub mod plan_memory;

use crate::diagnostics::Diagnostics;
use crate::ir::graph::Graph;
use crate::report::table::Report;
use crate::syntax::loader::Program;

/// What to compile.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// The net to compile; `None` for the last net of the root file.
    pub net: Option<String>,
    /// A known batch size to use instead of the symbolic batch dimension.
    pub batch: Option<u64>,
}

/// A compiled net: its IR and its layer table.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The IR.
    pub graph: Graph,
    /// The layer table and totals.
    pub report: Report,
}

/// Stack size for the thread that elaborates a net: expansion recurses through blocks,
/// bodies and expressions, each bounded, and their product must fit.
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// Compiles the chosen net of `program` (which should have passed name resolution; if it
/// did not, the problems are reported, never a panic).
pub fn compile(program: &Program, opts: &CompileOptions) -> Result<Compiled, Diagnostics> {
    let lopts = lower::LowerOptions {
        net: opts.net.clone(),
        batch: opts.batch,
    };
    let graph = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(STACK_BYTES)
            .spawn_scoped(s, || lower::lower(program, &lopts))
            .map(|h| h.join())
    });
    let graph = match graph {
        Ok(Ok(r)) => r?,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // No thread could be made: lower on this one.
        Err(_) => lower::lower(program, &lopts)?,
    };
    verify_after(&graph, "lower");
    let report = crate::report::table::build(&graph).map_err(|_| {
        crate::diagnostics::Diagnostic::error(
            crate::diagnostics::Code::SizeOverflow,
            "the totals of this net overflow 64 bits",
            crate::diagnostics::Label::new(graph.span, "in this net"),
        )
    })?;
    Ok(Compiled { graph, report })
}

/// A net compiled through the optimisation pipeline.
#[derive(Clone, Debug)]
pub struct Optimized {
    /// The optimised IR, with the layer table of the lowered net (one row per source
    /// layer) and the memory figures of the optimised one.
    pub compiled: Compiled,
    /// The rewrite log and the IR kept after `--after`.
    pub pipeline: pipeline::PipelineResult,
}

/// Compiles like [`compile`], then runs the selected passes and plans memory at
/// `opts.batch` (batch 1 when the batch is symbolic).
pub fn compile_with(
    program: &Program,
    opts: &CompileOptions,
    popts: &pipeline::PassOptions,
) -> Result<Optimized, Diagnostics> {
    let Compiled {
        mut graph,
        mut report,
    } = compile(program, opts)?;
    let result = pipeline::run(&mut graph, popts)?;
    report.totals.kernels = fuse::kernels(&graph.body);
    let batch = opts.batch.unwrap_or(1);
    report.totals.memory =
        plan_memory::plan(&graph.body, batch).map(|m| crate::report::table::Memory {
            batch: m.batch,
            planned_peak_bytes: m.planned_peak_bytes,
            unplanned_bytes: m.unplanned_bytes,
            lower_bound_bytes: m.lower_bound_bytes,
        });
    Ok(Optimized {
        compiled: Compiled { graph, report },
        pipeline: result,
    })
}

/// Runs the verifier after `pass` in tests and debug builds; a failure is a bug in netc, so
/// it panics with the IR dump.
pub fn verify_after(graph: &Graph, pass: &str) {
    if cfg!(debug_assertions) {
        if let Err(errors) = crate::ir::verify::verify(graph) {
            panic!(
                "internal compiler error: the IR is invalid after `{pass}`:\n{}\n\n{}",
                errors.join("\n"),
                crate::ir::print::graph(graph, None)
            );
        }
    }
}
