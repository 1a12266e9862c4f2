//! `netc export FILE -o model.onnx`: compiles a net and writes it with its weights as an
//! ONNX model (docs/onnx.md).
//!
//! Weights come from `--weights W.safetensors` (checked against the net), or are made with
//! `--seed S` exactly as `netc init --seed S` makes them (for trying a model out); a net
//! without weights (only fixed kernels) needs neither. The model is written to a temporary
//! file renamed into place, so a failed export never leaves a half-written file.

use super::{ColorChoice, MessageFormat};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Label, SourceMap, Span};
use crate::export::onnx::{self, ExportOptions, Recurrent};
use crate::passes::{self, CompileOptions};
use crate::runtime::weights::{self, Weights, WeightsError};
use std::path::PathBuf;

/// How the built-in recurrences are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum RecurrentArg {
    /// ONNX's `RNN`, `LSTM` and `GRU` operators.
    #[default]
    Native,
    /// A `Scan` over the step, as user cells are.
    Scan,
}

/// Arguments of `netc export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The .net file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The net to export (default: the last net of the file).
    #[arg(long, value_name = "NAME")]
    pub net: Option<String>,
    /// The weights (a safetensors file from `netc init` or training).
    #[arg(long, value_name = "W.safetensors", conflicts_with = "seed")]
    pub weights: Option<PathBuf>,
    /// Export with the random initial weights `netc init --seed S` would write.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// The ONNX file to write.
    #[arg(short = 'o', long, value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// A fixed batch size instead of the symbolic `N`.
    #[arg(long, value_name = "N")]
    pub batch: Option<u64>,
    /// How to write `rnn`, `lstm` and `gru`.
    #[arg(long, value_enum, default_value_t)]
    pub recurrent: RecurrentArg,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

/// Runs the export; returns the exit code: 0 success, 1 errors in the net or its weights,
/// 2 I/O errors.
pub fn run(args: &ExportArgs) -> i32 {
    let reporter = super::output::Reporter::new(args.message_format, args.color);
    let emit = |diags: &Diagnostics, sources: &SourceMap| reporter.emit_all(diags, sources);
    let fail = |d: Diagnostic, sources: &SourceMap, code: i32| {
        let mut ds = Diagnostics::new();
        ds.push(d);
        emit(&ds, sources);
        code
    };
    let (program, diags) = crate::check_program(crate::syntax::loader::load(&args.file));
    emit(&diags, &program.sources);
    if diags.iter().any(|d| d.code == Code::Io) {
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
            emit(&errors, &program.sources);
            return 1;
        }
    };
    let graph = &compiled.graph;
    let net_span = net_name_span(&program, &graph.name).unwrap_or(graph.span);
    let expected = weights::expected(graph);
    let w = match (&args.weights, args.seed) {
        (Some(path), _) => match weights::load(path, &expected) {
            Ok(w) => w,
            Err(e) => {
                let code = if matches!(e, WeightsError::Io(_)) {
                    2
                } else {
                    1
                };
                let mut sources = program.sources.clone();
                let d = weights_diagnostic(&e, path, net_span, &mut sources);
                return fail(d, &sources, code);
            }
        },
        (None, Some(seed)) => weights::init(&expected, seed),
        (None, None) if expected.is_empty() => Weights::default(),
        (None, None) => {
            let d = Diagnostic::error(
                Code::MissingWeights,
                format!(
                    "net `{}` has {} weight tensor{} and no weights were given",
                    graph.name,
                    expected.len(),
                    if expected.len() == 1 { "" } else { "s" }
                ),
                Label::new(net_span, "this net has weights"),
            )
            .with_help("pass `--weights W.safetensors` (from `netc init` or training), or `--seed S` for random weights");
            return fail(d, &program.sources, 1);
        }
    };
    let eopts = ExportOptions {
        recurrent: match args.recurrent {
            RecurrentArg::Native => Recurrent::Native,
            RecurrentArg::Scan => Recurrent::Scan,
        },
    };
    let model = match onnx::export(graph, &w, &eopts) {
        Ok(m) => m,
        Err(e) => return fail(e.to_diagnostic(), &program.sources, 1),
    };
    let params: usize = expected.iter().map(weights::Expected::elements).sum();
    // The model holds its own copy of every weight.
    drop(w);
    let bytes = onnx::encode(&model);
    if let Err(e) = weights::write_atomic(&args.output, &bytes) {
        // Reported against the output file (a one-line diagnostic naming it).
        let mut sources = program.sources.clone();
        let name = args.output.display().to_string();
        let file = sources.add(name, "");
        let d = Diagnostic::error(
            Code::BadOutput,
            format!("cannot write the ONNX model: {}", e.describe()),
            Label::new(Span::new(file, 0, 0), ""),
        );
        return fail(d, &sources, 2);
    }
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    eprintln!(
        "wrote `{}`: net `{}`, ONNX opset {}, {nodes} nodes, {params} weights ({} bytes)",
        args.output.display(),
        graph.name,
        onnx::OPSET,
        bytes.len()
    );
    0
}

/// The span of the name of net `name` in the root file, for labels that point at the net.
fn net_name_span(program: &crate::syntax::loader::Program, name: &str) -> Option<Span> {
    program
        .root_module()?
        .items
        .iter()
        .find_map(|item| match item {
            crate::syntax::ast::Item::Net(n) if n.name.name == name => Some(n.name.span),
            crate::syntax::ast::Item::Net(_)
            | crate::syntax::ast::Item::Use(_)
            | crate::syntax::ast::Item::Const(_)
            | crate::syntax::ast::Item::Block(_)
            | crate::syntax::ast::Item::Cell(_) => None,
        })
}

/// The diagnostic for a weights file that cannot be used for the net named at `net`: an
/// unreadable or corrupt file is reported against the file itself (added to `sources`
/// without text, so it renders as one line naming it), a mismatch against the net, with
/// every problem in a note.
fn weights_diagnostic(
    e: &WeightsError,
    path: &std::path::Path,
    net: Span,
    sources: &mut SourceMap,
) -> Diagnostic {
    let file = path.display().to_string();
    let mut at_file = || {
        let id = sources
            .find(&file)
            .unwrap_or_else(|| sources.add(file.clone(), ""));
        Label::new(Span::new(id, 0, 0), "")
    };
    match e {
        WeightsError::Io(msg) => Diagnostic::error(Code::Io, msg.clone(), at_file()),
        WeightsError::Corrupt(_) => Diagnostic::error(
            Code::CorruptWeights,
            format!("`{file}` is {}", e.describe()),
            at_file(),
        ),
        WeightsError::Mismatch { .. } => {
            let message = if e.is_other_net() {
                format!("`{file}` looks made for another net")
            } else {
                format!("`{file}` does not match this net")
            };
            Diagnostic::error(
                Code::WeightsMismatch,
                message,
                Label::new(net, "the weights are for this net"),
            )
            .with_note(e.describe())
            .with_help("`netc weights FILE` lists the tensors the net expects")
        }
    }
}
