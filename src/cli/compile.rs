//! `netc compile FILE`: lowers a net to the IR and prints its layer table (text or JSON),
//! or the IR itself (`--emit ir`, `--emit dot`).

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
    /// Print the IR instead of the layer table.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Write the output to this file instead of stdout.
    #[arg(short = 'o', long, value_name = "OUT")]
    pub output: Option<PathBuf>,
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
    let opts = CompileOptions {
        net: args.net.clone(),
        batch: args.batch,
    };
    let compiled = match passes::compile(&program, &opts) {
        Ok(c) => c,
        Err(errors) => {
            reporter.emit_all(&errors, &program.sources);
            return 1;
        }
    };
    let text = match (args.emit, args.format) {
        (Some(Emit::Ir), _) => crate::ir::print::graph(&compiled.graph, Some(&program.sources)),
        (Some(Emit::Dot), _) => crate::ir::dot::graph(&compiled.graph),
        (None, TableFormat::Text) => table::text(&compiled.report),
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
