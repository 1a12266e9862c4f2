//! `netc run FILE --weights W --input X [--output Y]`: runs a net in the reference
//! interpreter on `.npy` arrays, images or text, prints a summary of each output (the top
//! classes of a classifier), and writes outputs as `.npy` or PNG.
//!
//! Everything that can be checked before the run is: the inputs are read and matched
//! against the declarations, the weights file against the net, the output paths against
//! the outputs. Outputs are written only after the whole run succeeded, through temporary
//! files renamed into place. Docs: `docs/running.md`.

use super::output::{say, Reporter};
use super::weights::{
    failure, file_error, load_net, load_weights, net_span, thousands, Fail, Failure, LoadedNet,
};
use super::{ColorChoice, MessageFormat};
use crate::diagnostics::{Code, Diagnostic, Label, SourceMap};
use crate::ir::graph::Graph;
use crate::ir::op::Op;
use crate::ir::shape::{Dim, TensorType};
use crate::model::Backend;
use crate::runtime::bind::{self, InputSpec};
use crate::runtime::io::{self, InputKind, IoError, Normalize, PngScale, Vocab};
use crate::runtime::kernels::reduce::softmax_vec;
use crate::runtime::tensor::Tensor;
use crate::runtime::weights::{self, Weights};
use crate::runtime::{interp, RunError};
use ndarray::{ArrayD, Axis};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `netc run`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    netc init nets/lenet5.net -o lenet5.safetensors\n  \
    netc run nets/lenet5.net --weights lenet5.safetensors --input digit.png\n  \
    netc run nets/lenet5.net --weights lenet5.safetensors --input batch.npy --output logits.npy\n  \
    netc run nets/filters.net --input photo.png --output out.png\n  \
    netc run nets/lstm.net --weights lstm.safetensors --input prompt.txt")]
pub struct RunArgs {
    /// The .net file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The net (default: the last net of the file).
    #[arg(long, value_name = "NAME")]
    pub net: Option<String>,
    /// The weights (safetensors, from `netc init` or converted); not needed for nets
    /// whose only parameters are fixed kernels.
    #[arg(long, value_name = "W.safetensors")]
    pub weights: Option<PathBuf>,
    /// An input: `[NAME=]PATH` (.npy, .png, .jpg, .txt). Unnamed inputs fill the net's
    /// inputs in declaration order; several files for one input are stacked into a batch
    /// (a net with one input takes every unnamed file).
    #[arg(
        long = "input",
        short = 'i',
        value_name = "[NAME=]PATH",
        required = true
    )]
    pub inputs: Vec<String>,
    /// An output file: `[NAME=]PATH.npy` or `.png`. One unnamed path for a net with several
    /// outputs writes each to `PATH_<name>.ext`; a batch of images to `PATH_<i>.png`.
    #[arg(long = "output", short = 'o', value_name = "[NAME=]PATH")]
    pub outputs: Vec<String>,
    /// Compile with this batch size instead of a symbolic `N` (the inputs must have it).
    #[arg(long, value_name = "N")]
    pub batch: Option<u64>,
    /// How many top classes to print per example for classifier outputs (0: none).
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub top: usize,
    /// Class names, one per line (line i names class i), for the top classes.
    #[arg(long, value_name = "labels.txt")]
    pub labels: Option<PathBuf>,
    /// Normalisation of image inputs after scaling to [0, 1].
    #[arg(long, value_enum, default_value_t)]
    pub normalize: Normalize,
    /// How float values map to pixels in PNG outputs.
    #[arg(long, value_enum, default_value_t)]
    pub png_scale: PngScale,
    /// For text inputs: a corpus whose sorted distinct characters are the vocabulary
    /// (default: the 65 characters of tiny Shakespeare).
    #[arg(long, value_name = "corpus.txt")]
    pub vocab: Option<PathBuf>,
    /// Which optimisation passes run before the interpreter: `all`, `none`, `cse,dce`
    /// (only those) or `-cse,-dce` (all but those), for bisecting a wrong result.
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub passes: String,
    /// How to execute: `jit` runs native code compiled by Cranelift; `arena` runs the IR
    /// with every activation at its place in the planned arena; `interp` is the reference
    /// interpreter, value by value.
    #[arg(long, alias = "executor", value_enum, default_value_t)]
    pub backend: Backend,
    /// With `--backend jit`: check every memory access of the compiled code against its
    /// buffer, stopping with an error that names the layer (slower; for debugging netc).
    #[arg(long)]
    pub debug_bounds: bool,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

fn fail<T>(d: Diagnostic) -> Result<T, Fail> {
    Err(failure(d, 1))
}

/// Runs the command; returns the exit code: 0 success, 1 bad inputs, weights or net,
/// 2 files that cannot be read or written, 101 an internal error of the interpreter.
pub fn run(args: &RunArgs) -> i32 {
    let out = Reporter::new(args.message_format, args.color);
    let selection = match crate::passes::pipeline::PassSelection::parse(&args.passes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --passes: {e}; `all` and `none` select every pass or none");
            return 2;
        }
    };
    let popts = crate::passes::pipeline::PassOptions {
        selection,
        ..Default::default()
    };
    let LoadedNet { mut sources, graph } =
        match load_net(&args.file, args.net.clone(), args.batch, Some(&popts), &out) {
            Ok(n) => n,
            Err(code) => return code,
        };
    match run_loaded(args, &graph, &mut sources, &out) {
        Ok(()) => 0,
        Err(f) => {
            out.emit(&f.diag, &sources);
            f.code
        }
    }
}

fn run_loaded(
    args: &RunArgs,
    graph: &Graph,
    sources: &mut SourceMap,
    out: &Reporter,
) -> Result<(), Fail> {
    let specs = bind::inputs(graph);
    let vocab = match &args.vocab {
        Some(p) => {
            let bytes = io::read_file(p).map_err(|e| io_fail(&e, sources))?;
            let text = String::from_utf8_lossy(&bytes);
            Vocab::from_corpus(&text)
        }
        None => Vocab::shakespeare(),
    };
    // Inputs: read, stacked into batches, checked for non-finite values.
    let files = assign_inputs(&args.inputs, &specs, graph, sources)?;
    let mut inputs = BTreeMap::new();
    let mut text_input = false;
    for spec in &specs {
        let Some(paths) = files.get(&spec.name) else {
            continue;
        };
        let mut parts = Vec::with_capacity(paths.len());
        for p in paths {
            let (t, kind) = read_input(p, spec, args.normalize, &vocab, sources)?;
            text_input |= kind == InputKind::Text;
            parts.push(t);
        }
        let t = stack_batch(parts, spec, paths, sources)?;
        let bad = t.non_finite();
        if bad > 0 {
            let d = Diagnostic::warning(
                Code::NonFiniteInput,
                format!(
                    "input `{}` has {bad} NaN or infinite value{} (of {})",
                    spec.name,
                    if bad == 1 { "" } else { "s" },
                    t.len()
                ),
                Label::new(spec.span, "this input"),
            )
            .with_note("the net runs anyway; its outputs will likely be NaN too");
            out.emit(&d, sources);
        }
        inputs.insert(spec.name.clone(), t);
    }
    // The inputs fit their declarations (checked again by the run; early here, before
    // the weights are read).
    if let Err(e) = bind::bind_inputs(graph, &inputs) {
        return Err(with_files(run_fail(&e), &e, &files));
    }
    // Weights.
    let expected = weights::expected(graph);
    let w = match &args.weights {
        Some(p) => load_weights(p, graph, sources)?,
        None if expected.is_empty() => Weights::default(),
        None => {
            let values: usize = expected.iter().map(weights::Expected::elements).sum();
            return fail(
                Diagnostic::error(
                    Code::MissingWeights,
                    format!(
                        "net `{}` has {} learned tensors ({} values) and no --weights was given",
                        graph.name,
                        expected.len(),
                        thousands(values)
                    ),
                    Label::new(net_span(graph, sources), "this net"),
                )
                .with_help(format!(
                    "write initial weights with `netc init {} -o W.safetensors`, then pass `--weights W.safetensors`",
                    args.file.display()
                )),
            );
        }
    };
    // Outputs: where each goes, checked before the run.
    let targets = plan_outputs(&args.outputs, graph, sources)?;
    let labels = match &args.labels {
        Some(p) => {
            let bytes = io::read_file(p).map_err(|e| io_fail(&e, sources))?;
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_string)
                .collect()
        }
        None => Vec::new(),
    };
    // The run.
    let results = match args.backend {
        Backend::Arena => crate::runtime::arena::run(graph, &w, &inputs),
        Backend::Interp => interp::run(graph, &w, &inputs),
        Backend::Jit => {
            let opts = crate::codegen::CodegenOptions {
                debug_bounds: args.debug_bounds,
                keep_clif: false,
                ..Default::default()
            };
            let compiled = crate::codegen::compile(graph, &opts)
                .map_err(|e| failure(e.diagnostic(net_span(graph, sources)), 101))?;
            let mut exe = compiled.bind(&w).map_err(|e| run_fail(&e))?;
            exe.run(&inputs)
        }
    }
    .map_err(|e| run_fail(&e))?;
    // Encode everything, then write everything atomically.
    let mut files = Vec::new();
    for t in &targets {
        let Some(value) = results.get(&t.output) else {
            continue;
        };
        match t.format {
            OutFormat::Npy => {
                let bytes = io::npy_bytes(value).map_err(|e| io_fail(&e, sources))?;
                files.push((t.path.clone(), bytes));
            }
            OutFormat::Png => {
                let pngs =
                    io::png_bytes(value, args.png_scale).map_err(|e| io_fail(&e, sources))?;
                let many = pngs.len() > 1;
                for (i, png) in pngs.into_iter().enumerate() {
                    let path = if many {
                        suffixed(&t.path, &i.to_string())
                    } else {
                        t.path.clone()
                    };
                    files.push((path, png));
                }
            }
        }
    }
    io::write_all_atomic(&files).map_err(|e| io_fail(&e, sources))?;
    // The summary.
    let vocab_for_text = text_input.then_some(&vocab);
    for o in &graph.body.outputs {
        if let Some(t) = results.get(&o.name) {
            print_summary(
                &o.name,
                t,
                score_kind(graph, &o.name),
                args.top,
                &labels,
                vocab_for_text,
            );
        }
    }
    for (p, _) in &files {
        say!("wrote {}", p.display());
    }
    Ok(())
}

fn io_fail(e: &IoError, sources: &mut SourceMap) -> Fail {
    failure(
        e.diagnostic(sources),
        if e.is_file_system() { 2 } else { 1 },
    )
}

/// Adds which files an input was read from to a diagnostic about that input.
fn with_files(f: Fail, e: &RunError, files: &BTreeMap<String, Vec<PathBuf>>) -> Fail {
    let name = match e {
        RunError::InputShape { name, .. } | RunError::InputDType { name, .. } => name,
        _ => return f,
    };
    let Some(paths) = files.get(name) else {
        return f;
    };
    let list: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
    let Failure { diag, code } = *f;
    let how = if paths.len() > 1 {
        " (stacked into one batch)"
    } else {
        ""
    };
    failure(
        diag.with_note(format!("the value was read from {}{how}", list.join(", "))),
        code,
    )
}

fn run_fail(e: &RunError) -> Fail {
    failure(e.diagnostic(), if e.is_internal() { 101 } else { 1 })
}

/// Splits `NAME=PATH` when `NAME` is one of `names`; otherwise the whole argument is a
/// path.
fn split_named<'a>(arg: &'a str, names: &[&str]) -> (Option<&'a str>, &'a str) {
    match arg.split_once('=') {
        Some((n, p)) if names.contains(&n) => (Some(n), p),
        _ => (None, arg),
    }
}

/// Which files feed which input: named ones by name, then unnamed ones in declaration
/// order of the inputs not named (all of them to a net's only input).
fn assign_inputs(
    args: &[String],
    specs: &[InputSpec],
    graph: &Graph,
    sources: &SourceMap,
) -> Result<BTreeMap<String, Vec<PathBuf>>, Fail> {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut unnamed = Vec::new();
    for a in args {
        match split_named(a, &names) {
            (Some(n), p) => files
                .entry(n.to_string())
                .or_default()
                .push(PathBuf::from(p)),
            (None, p) => unnamed.push(PathBuf::from(p)),
        }
    }
    if specs.len() == 1 {
        if !unnamed.is_empty() {
            files
                .entry(specs[0].name.clone())
                .or_default()
                .extend(unnamed);
        }
    } else {
        let free: Vec<&InputSpec> = specs
            .iter()
            .filter(|s| !files.contains_key(&s.name))
            .collect();
        if unnamed.len() > free.len() {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            return fail(
                Diagnostic::error(
                    Code::MissingInput,
                    format!(
                        "{} unnamed inputs given, but only {} of the net's inputs are left to fill",
                        unnamed.len(),
                        free.len()
                    ),
                    Label::new(
                        net_span(graph, sources),
                        format!("its inputs are {}", list.join(", ")),
                    ),
                )
                .with_help("name each input: `--input NAME=PATH`"),
            );
        }
        for (s, p) in free.into_iter().zip(unnamed) {
            files.entry(s.name.clone()).or_default().push(p);
        }
    }
    for s in specs {
        if !files.contains_key(&s.name) {
            return fail(
                Diagnostic::error(
                    Code::MissingInput,
                    format!("no file given for input `{}`", s.name),
                    Label::new(s.span, format!("declared {} here", s.ty)),
                )
                .with_help(format!("pass it with `--input {}=PATH`", s.name)),
            );
        }
    }
    Ok(files)
}

/// Reads one input file for `spec` as its kind says.
fn read_input(
    path: &Path,
    spec: &InputSpec,
    normalize: Normalize,
    vocab: &Vocab,
    sources: &mut SourceMap,
) -> Result<(Tensor, InputKind), Fail> {
    let bytes = io::read_file(path).map_err(|e| io_fail(&e, sources))?;
    let head = bytes.get(..8).unwrap_or(&bytes);
    let Some(kind) = io::input_kind(path, head) else {
        let msg = format!(
            "`{}` is not a .npy array, a PNG or JPEG image, or a .txt file",
            path.display()
        );
        return fail(file_error(Code::BadInputFile, path, &msg, sources));
    };
    let wrong = |what: &str| {
        Diagnostic::error(
            Code::InputShape,
            format!(
                "`{}` is {what}, which cannot feed input `{}` (declared {})",
                path.display(),
                spec.name,
                spec.ty
            ),
            Label::new(spec.span, "declared here"),
        )
    };
    let t = match kind {
        InputKind::Npy => io::read_npy(path, &bytes).map_err(|e| io_fail(&e, sources))?,
        InputKind::Image => {
            let dims = spec.ty.shape.dims();
            let channels = match dims {
                [_, Dim::Known(c), _, _] if spec.ty.dtype.is_float() => *c as usize,
                _ => {
                    return fail(wrong("an image").with_help(
                        "images feed float inputs [N, C, H, W] with C = 1 (grey) or 3 (RGB)",
                    ))
                }
            };
            let size = match (dims[2].known(), dims[3].known()) {
                (Some(h), Some(w)) => Some((h as usize, w as usize)),
                _ => None,
            };
            let opts = io::ImageOptions {
                channels,
                size,
                normalize,
            };
            let img = io::read_image(path, &bytes, &opts).map_err(|e| io_fail(&e, sources))?;
            Tensor::F32(img.into_dyn())
        }
        InputKind::Text => {
            if !spec.ty.dtype.is_int() || spec.ty.shape.rank() != 2 {
                return fail(wrong("text").with_help("text feeds integer token inputs [N, T]"));
            }
            Tensor::I64(io::read_text(path, &bytes, vocab).map_err(|e| io_fail(&e, sources))?)
        }
    };
    Ok((t, kind))
}

/// Several files for one input, stacked on the batch axis (each must have one).
fn stack_batch(
    parts: Vec<Tensor>,
    spec: &InputSpec,
    paths: &[PathBuf],
    sources: &mut SourceMap,
) -> Result<Tensor, Fail> {
    if parts.len() == 1 {
        if let Some(t) = parts.into_iter().next() {
            return Ok(t);
        }
        return fail(Diagnostic::error(
            Code::MissingInput,
            "no input",
            Label::new(spec.span, ""),
        ));
    }
    let shapes: Vec<String> = parts.iter().map(|t| t.describe()).collect();
    let mismatch = |sources: &mut SourceMap| {
        let list: Vec<String> = paths
            .iter()
            .zip(&shapes)
            .map(|(p, s)| format!("{} is {s}", p.display()))
            .collect();
        let msg = format!(
            "the files for input `{}` cannot form one batch: {}",
            spec.name,
            list.join(", ")
        );
        failure(
            file_error(Code::BadInputFile, &paths[0], &msg, sources).with_help(
                "the files of one batch must have the same type and shape after the batch axis",
            ),
            1,
        )
    };
    let f: Option<Vec<ArrayD<f32>>> = parts.iter().map(|t| t.as_f32().cloned()).collect();
    if let Some(f) = f {
        let views: Vec<_> = f.iter().map(|a| a.view()).collect();
        if views.iter().any(|v| v.ndim() == 0) {
            return Err(mismatch(sources));
        }
        return ndarray::concatenate(Axis(0), &views)
            .map(Tensor::F32)
            .map_err(|_| mismatch(sources));
    }
    let i: Option<Vec<ArrayD<i64>>> = parts.iter().map(|t| t.as_i64().cloned()).collect();
    if let Some(i) = i {
        let views: Vec<_> = i.iter().map(|a| a.view()).collect();
        if views.iter().any(|v| v.ndim() == 0) {
            return Err(mismatch(sources));
        }
        return ndarray::concatenate(Axis(0), &views)
            .map(Tensor::I64)
            .map_err(|_| mismatch(sources));
    }
    Err(mismatch(sources))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutFormat {
    Npy,
    Png,
}

/// Where one output goes.
struct Target {
    output: String,
    path: PathBuf,
    format: OutFormat,
}

/// `dir/out.png` + `box` → `dir/out_box.png`.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(e) => format!("{stem}_{suffix}.{}", e.to_string_lossy()),
        None => format!("{stem}_{suffix}"),
    };
    path.with_file_name(name)
}

/// Maps `--output` arguments to outputs and checks each format against the output's
/// declared type.
fn plan_outputs(
    args: &[String],
    graph: &Graph,
    sources: &mut SourceMap,
) -> Result<Vec<Target>, Fail> {
    let outs: Vec<(&str, &TensorType)> = graph
        .body
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), graph.body.ty(o.value)))
        .collect();
    let names: Vec<&str> = outs.iter().map(|(n, _)| *n).collect();
    let mut targets: Vec<(String, PathBuf)> = Vec::new();
    let mut unnamed = Vec::new();
    for a in args {
        match split_named(a, &names) {
            (Some(n), p) => targets.push((n.to_string(), PathBuf::from(p))),
            (None, p) => unnamed.push(PathBuf::from(p)),
        }
    }
    match unnamed.as_slice() {
        [] => {}
        [p] if outs.len() == 1 => targets.push((names[0].to_string(), p.clone())),
        [p] => {
            for n in &names {
                if !targets.iter().any(|(t, _)| t == n) {
                    targets.push((n.to_string(), suffixed(p, n)));
                }
            }
        }
        [first, ..] => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            let msg = format!(
                "{} unnamed --output paths given; name them (`--output NAME=PATH`) — the outputs are {}",
                unnamed.len(),
                list.join(", ")
            );
            return fail(file_error(Code::BadOutput, first, &msg, sources));
        }
    }
    let mut planned = Vec::new();
    for (name, path) in targets {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let format = match ext.as_deref() {
            Some("npy") => OutFormat::Npy,
            Some("png") => OutFormat::Png,
            _ => {
                let msg = format!(
                    "cannot tell how to write `{}`: outputs are written as .npy or .png",
                    path.display()
                );
                return fail(file_error(Code::BadOutput, &path, &msg, sources));
            }
        };
        if format == OutFormat::Png {
            let ty = outs.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
            let is_image = ty.is_some_and(|t| {
                t.dtype.is_float() && matches!(t.shape.dims(), [_, Dim::Known(1 | 3), _, _])
            });
            if !is_image {
                let shown = ty.map_or_else(String::new, |t| format!(" is {t}:"));
                let msg = format!(
                    "output `{name}`{shown} a PNG needs a float [N, 1 or 3, H, W] image; write it as .npy"
                );
                return fail(file_error(Code::BadOutput, &path, &msg, sources));
            }
        }
        planned.push(Target {
            output: name,
            path,
            format,
        });
    }
    Ok(planned)
}

/// What the values of a classifier-like output are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scores {
    /// The net ends in `softmax`: the values are probabilities.
    Probabilities,
    /// The net ends in `log_softmax`: probabilities are their exponentials.
    LogProbabilities,
    /// Anything else: logits, turned into probabilities by a softmax.
    Logits,
}

fn score_kind(graph: &Graph, output: &str) -> Scores {
    let Some(o) = graph.body.outputs.iter().find(|o| o.name == output) else {
        return Scores::Logits;
    };
    match &graph.body.node(o.value.node).op {
        Op::Softmax { .. } => Scores::Probabilities,
        Op::LogSoftmax { .. } => Scores::LogProbabilities,
        _ => Scores::Logits,
    }
}

/// Prints one output: its type, then for `[N, K]` (classifiers) or `[N, T, K]` (language
/// models, at the last step) the top classes of each example; otherwise value statistics.
fn print_summary(
    name: &str,
    t: &Tensor,
    scores: Scores,
    top: usize,
    labels: &[String],
    vocab: Option<&Vocab>,
) {
    let Some(a) = t.as_f32() else {
        say!("{name}: {}", t.describe());
        return;
    };
    let shape = a.shape();
    let classes = match shape {
        [_, k] | [_, _, k] if *k >= 2 && top > 0 => Some(*k),
        _ => None,
    };
    let Some(k) = classes else {
        let finite: Vec<f32> = a.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            say!("{name}: {}", t.describe());
        } else {
            let min = finite.iter().copied().fold(f32::INFINITY, f32::min);
            let max = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mean = finite.iter().map(|v| f64::from(*v)).sum::<f64>() / finite.len() as f64;
            let nonfinite = a.len() - finite.len();
            let extra = if nonfinite > 0 {
                format!(", {nonfinite} NaN or infinite")
            } else {
                String::new()
            };
            say!(
                "{name}: {}  min {min:.6}  mean {mean:.6}  max {max:.6}{extra}",
                t.describe()
            );
        }
        return;
    };
    let what = match scores {
        Scores::Probabilities => "probabilities (the net ends in softmax)",
        Scores::LogProbabilities => "probabilities (exp of the net's log_softmax)",
        Scores::Logits => "softmax probabilities of the logits",
    };
    let at = if shape.len() == 3 {
        " at the last step"
    } else {
        ""
    };
    say!(
        "{name}: {}  top {} of {k} classes{at}, {what}",
        t.describe(),
        top.min(k)
    );
    for (n, ex) in a.axis_iter(Axis(0)).enumerate() {
        let row = if ex.ndim() == 2 {
            let steps = ex.shape()[0];
            if steps == 0 {
                continue;
            }
            ex.index_axis(Axis(0), steps - 1).to_owned()
        } else {
            ex.to_owned()
        };
        let Ok(row) = row.into_dimensionality::<ndarray::Ix1>() else {
            continue;
        };
        let p = match scores {
            Scores::Probabilities => row.clone(),
            Scores::LogProbabilities => row.mapv(f32::exp),
            Scores::Logits => softmax_vec(&row.view()),
        };
        let mut idx: Vec<usize> = (0..k).collect();
        idx.sort_by(|&x, &y| p[y].total_cmp(&p[x]).then(x.cmp(&y)));
        let parts: Vec<String> = idx
            .iter()
            .take(top)
            .map(|&c| {
                let label = labels
                    .get(c)
                    .map(|l| format!(" {l}"))
                    .or_else(|| vocab.and_then(|v| v.char(c)).map(|ch| format!(" {ch:?}")))
                    .unwrap_or_default();
                format!("{c}{label} {:.4}", p[c])
            })
            .collect();
        say!("  [{n}] {}", parts.join(" | "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_suffixed_paths() {
        assert_eq!(split_named("x=a.npy", &["x"]), (Some("x"), "a.npy"));
        assert_eq!(split_named("odd=name.npy", &["x"]), (None, "odd=name.npy"));
        assert_eq!(
            suffixed(Path::new("d/out.png"), "box"),
            PathBuf::from("d/out_box.png")
        );
        assert_eq!(suffixed(Path::new("out"), "0"), PathBuf::from("out_0"));
    }
}
