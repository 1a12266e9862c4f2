//! `netc init FILE -o W.safetensors [--seed S]` writes a net's initial weights;
//! `netc weights FILE` lists the tensors a weights file for the net holds. Also the
//! loading and diagnostics helpers that `netc run` shares.

use super::output::{say, Reporter};
use super::{ColorChoice, MessageFormat};
use crate::diagnostics::{Code, Diagnostic, Label, SourceMap, Span};
use crate::ir::graph::{Graph, ParamKind};
use crate::passes::{self, CompileOptions};
use crate::runtime::tensor::shape_string;
use crate::runtime::weights::{self, Expected, Init, Weights, WeightsError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `netc init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The .net file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The net (default: the last net of the file).
    #[arg(long, value_name = "NAME")]
    pub net: Option<String>,
    /// The weights file to write (safetensors).
    #[arg(short = 'o', long, value_name = "W.safetensors")]
    pub output: PathBuf,
    /// The seed: the same seed gives the same file, byte for byte, on any machine.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

/// How `netc weights` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ListFormat {
    /// An aligned table.
    #[default]
    Text,
    /// One JSON object: `{"net", "tensors": […], "fixed": […], "totals": {…}}`.
    Json,
}

/// Arguments of `netc weights`.
#[derive(clap::Args, Debug)]
pub struct WeightsArgs {
    /// The .net file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The net (default: the last net of the file).
    #[arg(long, value_name = "NAME")]
    pub net: Option<String>,
    /// How to print the list.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

/// Runs `netc init`; returns the exit code (0 written, 1 errors in the net, 2 I/O).
pub fn run_init(args: &InitArgs) -> i32 {
    let out = Reporter::new(args.message_format, args.color);
    let mut net = match load_net(&args.file, args.net.clone(), None, None, &out) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let expected = weights::expected(&net.graph);
    let w = weights::init(&expected, args.seed);
    let metadata = BTreeMap::from([
        ("net".to_string(), net.graph.name.clone()),
        ("netc".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("seed".to_string(), args.seed.to_string()),
    ]);
    let written = weights::to_bytes(&w, &metadata)
        .and_then(|bytes| weights::write_atomic(&args.output, &bytes));
    if let Err(e) = written {
        let d = file_error(
            Code::BadOutput,
            &args.output,
            &e.describe(),
            &mut net.sources,
        );
        out.emit(&d, &net.sources);
        return 2;
    }
    let values: usize = expected.iter().map(Expected::elements).sum();
    say!(
        "wrote {}: {} tensors, {} values for net `{}` (seed {})",
        args.output.display(),
        expected.len(),
        thousands(values),
        net.graph.name,
        args.seed
    );
    0
}

/// Runs `netc weights`; returns the exit code.
pub fn run_weights(args: &WeightsArgs) -> i32 {
    let out = Reporter::new(args.message_format, args.color);
    let net = match load_net(&args.file, args.net.clone(), None, None, &out) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let g = &net.graph;
    let expected = weights::expected(g);
    let kinds: BTreeMap<&str, ParamKind> =
        g.params.iter().map(|p| (p.name.as_str(), p.kind)).collect();
    let fixed: Vec<(&str, Vec<usize>)> = g
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Fixed)
        .map(|p| {
            let shape =
                p.ty.shape
                    .dims()
                    .iter()
                    .map(|d| d.known().unwrap_or(0) as usize)
                    .collect();
            (p.name.as_str(), shape)
        })
        .collect();
    let count = |k: ParamKind| -> usize {
        expected
            .iter()
            .filter(|e| kinds.get(e.name.as_str()) == Some(&k))
            .map(Expected::elements)
            .sum()
    };
    let (trainable, buffers) = (count(ParamKind::Trainable), count(ParamKind::Buffer));
    let fixed_values: usize = fixed.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    let kind_of = |e: &Expected| {
        kinds
            .get(e.name.as_str())
            .map_or("trainable", |k| k.as_str())
    };
    match args.format {
        ListFormat::Json => {
            let tensors: Vec<serde_json::Value> = expected
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "name": e.name,
                        "shape": e.shape,
                        "elements": e.elements(),
                        "kind": kind_of(e),
                        "init": init_name(&e.init),
                    })
                })
                .collect();
            let fixed_json: Vec<serde_json::Value> = fixed
                .iter()
                .map(|(n, s)| {
                    serde_json::json!({
                        "name": n, "shape": s, "elements": s.iter().product::<usize>(),
                        "kind": "fixed",
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "net": g.name,
                "tensors": tensors,
                "fixed": fixed_json,
                "totals": {
                    "tensors": expected.len(),
                    "elements": trainable + buffers,
                    "trainable": trainable,
                    "buffers": buffers,
                    "fixed": fixed_values,
                    "bytes": 4 * (trainable + buffers),
                },
            });
            say!("{doc}");
        }
        ListFormat::Text => {
            let rows: Vec<[String; 5]> = expected
                .iter()
                .map(|e| {
                    [
                        e.name.clone(),
                        shape_string(&e.shape),
                        thousands(e.elements()),
                        kind_of(e).to_string(),
                        init_name(&e.init),
                    ]
                })
                .collect();
            let head = ["name", "shape", "elements", "kind", "init"].map(String::from);
            let mut widths = head.clone().map(|h| h.chars().count());
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            say!("net `{}`: the tensors of its weights file", g.name);
            for r in std::iter::once(&head).chain(&rows) {
                say!(
                    "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                );
            }
            say!(
                "{} tensors, {} values ({} trainable, {} in buffers), {} bytes as f32",
                expected.len(),
                thousands(trainable + buffers),
                thousands(trainable),
                thousands(buffers),
                thousands(4 * (trainable + buffers))
            );
            if !fixed.is_empty() {
                let names: Vec<String> = fixed
                    .iter()
                    .map(|(n, s)| format!("{n} {}", shape_string(s)))
                    .collect();
                say!(
                    "fixed kernels, written in the source and not stored: {}",
                    names.join(", ")
                );
            }
        }
    }
    0
}

/// `he_uniform(fan_in=25)`, `zeros`, …
fn init_name(init: &Init) -> String {
    match init {
        Init::HeUniform { fan_in } => format!("he_uniform(fan_in={fan_in})"),
        Init::XavierUniform { fan_in, fan_out } => {
            format!("xavier_uniform(fan_in={fan_in}, fan_out={fan_out})")
        }
        Init::Zeros => "zeros".into(),
        Init::Ones => "ones".into(),
    }
}

/// `1,234,567`, for element counts.
pub(super) fn thousands(n: usize) -> String {
    crate::report::table::thousands(n as u64)
}

/// A compiled net with the sources its diagnostics point into (a copy the caller may add
/// files to: weights, inputs, outputs).
pub(super) struct LoadedNet {
    pub(super) sources: SourceMap,
    pub(super) graph: Graph,
}

/// Loads, checks and compiles `file` as `netc compile` does, printing its diagnostics;
/// `Err` holds the exit code (1 errors in the net, 2 the file cannot be read).
pub(super) fn load_net(
    file: &Path,
    net: Option<String>,
    batch: Option<u64>,
    passes: Option<&passes::pipeline::PassOptions>,
    out: &Reporter,
) -> Result<LoadedNet, i32> {
    let (program, diags) = crate::check_program(crate::syntax::loader::load(file));
    out.emit_all(&diags, &program.sources);
    if diags.iter().any(|d| d.code == Code::Io) {
        return Err(2);
    }
    if diags.has_errors() {
        return Err(1);
    }
    let opts = CompileOptions { net, batch };
    let graph = match passes {
        Some(p) => passes::compile_with(&program, &opts, p).map(|o| o.compiled.graph),
        None => passes::compile(&program, &opts).map(|c| c.graph),
    };
    match graph {
        Ok(graph) => Ok(LoadedNet {
            sources: program.sources.clone(),
            graph,
        }),
        Err(errors) => {
            out.emit_all(&errors, &program.sources);
            Err(1)
        }
    }
}

/// A command's failure: the diagnostic to print and the exit code.
pub(super) struct Failure {
    /// What went wrong.
    pub(super) diag: Diagnostic,
    /// The exit code.
    pub(super) code: i32,
}

/// A boxed [`Failure`] (diagnostics are large; results stay small).
pub(super) type Fail = Box<Failure>;

/// A [`Fail`] from its parts.
pub(super) fn failure(diag: Diagnostic, code: i32) -> Fail {
    Box::new(Failure { diag, code })
}

/// The span of the net's name in its declaration (`lenet5` in `net lenet5(…)`), so that a
/// diagnostic about the whole net shows one line; the whole declaration if not found.
pub(super) fn net_span(graph: &Graph, sources: &SourceMap) -> Span {
    let file = sources.get(graph.span.file);
    let Some(text) = file.text.get(graph.span.range()) else {
        return graph.span;
    };
    let needle = format!("net {}", graph.name);
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let at = from + i;
        let after = text[at + needle.len()..].chars().next();
        let starts_word = at == 0 || text[..at].ends_with(char::is_whitespace);
        if starts_word && !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            let start = graph.span.start as usize + at + 4;
            return Span::new(graph.span.file, start, start + graph.name.len());
        }
        from = at + needle.len();
    }
    graph.span
}

/// A diagnostic about a whole file (no source to show): `path` is added to `sources`
/// with empty text, which renders as one line.
pub(super) fn file_error(
    code: Code,
    path: &Path,
    message: &str,
    sources: &mut SourceMap,
) -> Diagnostic {
    let name = path.display().to_string();
    let file = sources.find(&name).unwrap_or_else(|| sources.add(name, ""));
    Diagnostic::error(code, message, Label::new(Span::new(file, 0, 0), ""))
}

/// Reads and checks the weights file `path` for `graph`; `Err` holds the diagnostic and
/// the exit code.
pub(super) fn load_weights(
    path: &Path,
    graph: &Graph,
    sources: &mut SourceMap,
) -> Result<Weights, Fail> {
    let expected = weights::expected(graph);
    let bytes = std::fs::read(path).map_err(|e| {
        let msg = format!("cannot read `{}`: {e}", path.display());
        failure(file_error(Code::Io, path, &msg, sources), 2)
    })?;
    match weights::from_bytes(&bytes, &expected) {
        Ok(w) => Ok(w),
        Err(WeightsError::Corrupt(e)) => {
            let msg = format!(
                "`{}` is not a valid safetensors weights file (truncated or corrupt?): {e}",
                path.display()
            );
            let d = file_error(Code::CorruptWeights, path, &msg, sources).with_help(format!(
                "write a fresh one with `netc init FILE -o {}`",
                path.display()
            ));
            Err(failure(d, 1))
        }
        Err(WeightsError::Io(e)) => Err(failure(file_error(Code::Io, path, &e, sources), 2)),
        Err(e @ WeightsError::Mismatch { .. }) => Err(failure(
            mismatch_diagnostic(&e, path, graph, &bytes, expected.len(), sources),
            1,
        )),
    }
}

fn mismatch_diagnostic(
    e: &WeightsError,
    path: &Path,
    graph: &Graph,
    bytes: &[u8],
    expected: usize,
    sources: &SourceMap,
) -> Diagnostic {
    let WeightsError::Mismatch {
        missing,
        wrong_shape,
        wrong_dtype,
        ..
    } = e
    else {
        return Diagnostic::error(
            Code::WeightsMismatch,
            e.describe(),
            Label::new(graph.span, ""),
        );
    };
    let maker = weights::read_metadata(bytes).and_then(|m| m.get("net").cloned());
    let differ = missing.len();
    let mut message = format!(
        "the weights in `{}` do not match net `{}`",
        path.display(),
        graph.name
    );
    if e.is_other_net() {
        message.push_str(&format!(
            ": made for another net? {differ} of {expected} names differ"
        ));
    } else {
        let bad = missing.len() + wrong_shape.len() + wrong_dtype.len();
        message.push_str(&format!(": {bad} of {expected} tensors do not fit"));
    }
    let label = match &maker {
        Some(m) if m != &graph.name => format!("the file says it was made for net `{m}`"),
        _ => "this net".to_string(),
    };
    let d = Diagnostic::error(
        Code::WeightsMismatch,
        message,
        Label::new(net_span(graph, sources), label),
    )
    .with_note(e.describe());
    d.with_help(format!(
        "list the tensors this net expects with `netc weights {net}`, or write matching ones with `netc init {net} -o {}`",
        path.display(),
        net = sources.get(graph.span.file).name
    ))
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(61_706), "61,706");
        assert_eq!(thousands(138_357_544), "138,357,544");
    }
}
