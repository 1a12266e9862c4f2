//! `netc compile FILE`: lowers a net to the IR and prints its layer table (text or JSON),
//! or the IR itself (`--emit ir`, `--emit dot`). The optimisation passes run as chosen by
//! `--passes` (default all) and `--max-rewrites`; `--emit ir --after PASS` prints the IR
//! right after one pass (`lower` for the IR before any). The table's memory line is
//! planned at `--batch` (batch 1 when not given).

use super::{ColorChoice, MessageFormat};

use crate::passes::{self, CompileOptions};
use crate::report::table;
use std::path::PathBuf;

/// How the layer table is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum TableFormat {
    /// An aligned table for people.
    #[default]
    Text,
    /// One JSON object: `{"net", "layers": […], "totals": {…}}`.
    Json,
}

/// What to print instead of the layer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// The IR as text, with stable names.
    Ir,
    /// The IR as a Graphviz graph (render with `dot -Tsvg`).
    Dot,
    /// The memory plan of the net's activations at `--batch` (default 1): each value's
    /// lifetime, arena offset and size.
    Plan,
    /// The Cranelift IR of every compiled function (the kernels and the driver).
    Clif,
    /// The compiled kernels: function, layer and the algorithm each uses.
    Kernels,
}

/// Arguments of `netc compile`.
#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The .net file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The net to compile (default: the last net of the file).
    #[arg(long, value_name = "NAME")]
    pub net: Option<String>,
    /// A known batch size to use for the batch dimension `N`.
    #[arg(long, value_name = "N")]
    pub batch: Option<u64>,
    /// How to print the layer table.
    #[arg(long, value_enum, default_value_t)]
    pub format: TableFormat,
    /// Which optimisation passes run: `all`, `none`, `cse,dce` (only those) or
    /// `-cse,-dce` (all but those).
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub passes: String,
    /// Stop after this many rewrites (for bisecting a miscompilation).
    #[arg(long, value_name = "N")]
    pub max_rewrites: Option<usize>,
    /// With `--emit ir` or `--emit dot`: show the IR right after this pass (`lower` for
    /// the IR before any pass).
    #[arg(long, value_name = "PASS")]
    pub after: Option<String>,
    /// Print the applied rewrites (`pass/rule`, one a line, numbered) to stderr.
    #[arg(long)]
    pub print_rewrites: bool,
    /// Print the IR instead of the layer table.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Write the output to this file instead of stdout.
    #[arg(short = 'o', long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Compile every memory access with a bounds check (shown by `--emit clif`).
    #[arg(long)]
    pub debug_bounds: bool,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

/// Runs the compilation and returns the exit code: 0 success, 1 errors in the input, 2 I/O
/// errors.
pub fn run(args: &CompileArgs) -> i32 {
    let reporter = super::output::Reporter::new(args.message_format, args.color);
    let (program, diags) = crate::check_program(crate::syntax::loader::load(&args.file));
    reporter.emit_all(&diags, &program.sources);
    if diags.iter().any(|d| d.code == crate::diagnostics::Code::Io) {
        return 2;
    }
    if diags.has_errors() {
        return 1;
    }
    let selection = match passes::pipeline::PassSelection::parse(&args.passes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --passes: {e}; `all` and `none` select every pass or none");
            return 2;
        }
    };
    if let Some(after) = &args.after {
        if let Err(e) = passes::pipeline::check_after(after) {
            eprintln!("error: --after: {e}");
            return 2;
        }
    }
    let opts = CompileOptions {
        net: args.net.clone(),
        batch: args.batch,
    };
    let popts = passes::pipeline::PassOptions {
        selection,
        max_rewrites: args.max_rewrites,
        after: args.after.clone(),
    };
    let optimized = match passes::compile_with(&program, &opts, &popts) {
        Ok(c) => c,
        Err(errors) => {
            reporter.emit_all(&errors, &program.sources);
            return 1;
        }
    };
    if args.print_rewrites {
        for (i, entry) in optimized.pipeline.log.entries.iter().enumerate() {
            eprintln!("rewrite {}: {entry}", i + 1);
        }
    }
    let compiled = &optimized.compiled;
    let shown = optimized
        .pipeline
        .ir_after
        .as_ref()
        .unwrap_or(&compiled.graph);
    let text = match (args.emit, args.format) {
        (Some(Emit::Ir), _) => crate::ir::print::graph(shown, Some(&program.sources)),
        (Some(Emit::Dot), _) => crate::ir::dot::graph(shown),
        (Some(Emit::Plan), _) => {
            match passes::plan_memory::plan(&shown.body, args.batch.unwrap_or(1)) {
                Some(plan) => passes::plan_memory::dump(&shown.body, &plan),
                None => {
                    eprintln!(
                        "error: --emit plan: the activation sizes are not known (a size other \
                         than the batch `N` is symbolic) or overflow 64 bits"
                    );
                    return 2;
                }
            }
        }
        (Some(e @ (Emit::Clif | Emit::Kernels)), _) => {
            let opts = crate::codegen::CodegenOptions {
                debug_bounds: args.debug_bounds,
                keep_clif: e == Emit::Clif,
                ..Default::default()
            };
            match crate::codegen::compile(&compiled.graph, &opts) {
                Ok(c) if e == Emit::Clif => c.clif_text(),
                Ok(c) => c.kernels_text(),
                Err(e) => {
                    reporter.emit(&e.diagnostic(compiled.graph.span), &program.sources);
                    return 1;
                }
            }
        }
        (None, TableFormat::Text) => {
            let mut t = table::text(&compiled.report);
            let opts = crate::codegen::CodegenOptions {
                debug_bounds: args.debug_bounds,
                keep_clif: false,
                ..Default::default()
            };
            match crate::codegen::compile(&compiled.graph, &opts) {
                Ok(c) => t.push_str(&native_line(&c.stats)),
                Err(e) => {
                    reporter.emit(&e.diagnostic(compiled.graph.span), &program.sources);
                    return 1;
                }
            }
            t
        }
        (None, TableFormat::Json) => format!("{}\n", table::json_string(&compiled.report)),
    };
    match &args.output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                2
            }
        },
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            0
        }
    }
}

/// The line after the layer table: what the JIT made of the net.
fn native_line(s: &crate::codegen::CompileStats) -> String {
    format!(
        "\nnative code: {} functions, {} bytes of {} machine code, compiled in {:.1} ms\n",
        s.functions,
        table::thousands(s.code_bytes as u64),
        std::env::consts::ARCH,
        s.compile_ms
    )
}
