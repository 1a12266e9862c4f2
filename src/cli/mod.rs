//! The command line: flags → options → library calls → rendered output and an exit code.
//!
//! Exit codes: 0 success, 1 the input has errors, 2 usage or I/O errors. Diagnostics are
//! written to stderr for people, or to stdout as JSON lines with `--message-format json`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command line is where netc talks to the terminal"
)]

mod bench;
mod check;
mod compile;
mod export;
mod lsp;
mod output;
mod run;
mod weights;

use clap::{Parser, Subcommand, ValueEnum};

/// netc compiles declarative neural-network descriptions (`.net` files).
#[derive(Parser, Debug)]
#[command(
    name = "netc",
    version,
    about = "A compiler for declarative neural-network descriptions (.net files)",
    long_about = "netc reads a network written in the .net language — layer stacks, inception \
                  branches, residual skips, parameterised blocks, recurrent cells — checks it \
                  with diagnostics that point at the source, and reports its shapes, parameters \
                  and cost.\n\nThe language is documented in docs/language.md; every error code \
                  in docs/errors.md.",
    after_help = "Examples:\n  netc check nets/*.net\n  netc check --message-format json nets/lenet5.net\n  netc layers conv"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check files for syntax, name and argument errors.
    ///
    /// Exits 0 when every file is clean (warnings allowed), 1 when any has errors, and 2 on
    /// usage or I/O errors.
    Check(check::CheckArgs),
    /// Compile a net: its layer table (shapes, params, MACs, memory), IR or Graphviz DOT.
    Compile(compile::CompileArgs),
    /// Run a net on inputs (.npy, images, text) with weights from a safetensors file.
    Run(run::RunArgs),
    /// Time a net's native code on random inputs: compile time, latency, GFLOP/s.
    Bench(bench::BenchArgs),
    /// Write initial weights for a net to a safetensors file (deterministic for a seed).
    Init(weights::InitArgs),
    /// List the weights a net expects: names, shapes and element counts.
    Weights(weights::WeightsArgs),
    /// Export a net with its weights to ONNX.
    Export(export::ExportArgs),
    /// List the built-in layers, or describe one.
    Layers {
        /// A layer to describe (all when omitted).
        name: Option<String>,
    },
    /// Run the language server on stdin/stdout, for editors (see docs/editors.md).
    Lsp {
        /// Use stdio (the only transport; accepted because some clients pass it).
        #[arg(long)]
        stdio: bool,
    },
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum MessageFormat {
    /// Rendered for people, with the source lines (on stderr).
    #[default]
    Human,
    /// One JSON object per diagnostic per line (on stdout), for editors and CI.
    Json,
}

/// When to colour human output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorChoice::Auto => std::io::stderr().is_terminal(),
            ColorChoice::Always => true,
            ColorChoice::Never => false,
        }
    }
}

/// Runs netc with the process arguments and returns the exit code. The work runs on a thread
/// with a large stack so that deeply nested (but accepted) input cannot overflow it.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let worker = std::thread::Builder::new()
        .name("netc".into())
        .stack_size(256 << 20)
        .spawn(move || dispatch(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!(
                "error: internal compiler error (the worker thread failed); please report it"
            );
            101
        }
    }
}

fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Compile(args) => compile::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Init(args) => weights::run_init(&args),
        Command::Weights(args) => weights::run_weights(&args),
        Command::Export(args) => export::run(&args),
        Command::Layers { name } => layers(name.as_deref()),
        Command::Lsp { .. } => lsp::run(),
    }
}

fn layers(name: Option<&str>) -> i32 {
    use crate::syntax::builtins::{self, DefaultValue};
    match name {
        None => {
            for l in builtins::LAYERS {
                output::say!("{:<24} {}", l.name, l.doc);
            }
            0
        }
        Some(n) => {
            let Some(l) = builtins::lookup(n) else {
                let best = builtins::LAYERS
                    .iter()
                    .min_by_key(|l| strsim::levenshtein(l.name, n))
                    .map(|l| l.name)
                    .unwrap_or("conv");
                eprintln!("error: no built-in layer `{n}` (did you mean `{best}`?)");
                return 2;
            };
            output::say!("{}\n\n{}\n", l.signature(), l.doc);
            for p in l.params {
                let default = match p.default {
                    DefaultValue::Required => "required".to_string(),
                    DefaultValue::Absent => "optional".to_string(),
                    DefaultValue::Int(v) => format!("default {v}"),
                    DefaultValue::Float(v) => format!("default {v}"),
                    DefaultValue::Bool(v) => format!("default {v}"),
                    DefaultValue::Sym(s) => format!("default {s}"),
                    DefaultValue::SameAs(o) => format!("default: same as {o}"),
                };
                output::say!(
                    "  {:<10} {} ({}) — {}",
                    p.name,
                    p.ty.describe(),
                    default,
                    p.doc
                );
            }
            0
        }
    }
}
