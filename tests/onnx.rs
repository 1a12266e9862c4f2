//! ONNX export, checked against ONNX Runtime.
//!
//! For every net of every file in `nets/` (and of `tests/fixtures/ir/` and
//! `tests/fixtures/onnx/`, which add `emit: last`, `steps:`, reshapes, matrix products,
//! losses, ceil-mode pools with padding, grouped and dilated convolutions, symbolic
//! sequence lengths), found by glob: compile it,
//! export it with random weights, check the model with `onnx.checker` (full check) and
//! strict shape inference, run it with ONNX Runtime on random inputs at batch 1 and 3, and
//! compare with netc's reference interpreter on the same inputs. The built-in recurrences
//! are checked in both export forms (ONNX `RNN`/`LSTM`/`GRU`, and `Scan`).
//!
//! **Agreement**: for each output, `max |ort − netc| / max(max |netc|, 1e-6)`, the largest
//! difference relative to the largest magnitude of the reference; every output of every
//! case must be within 1e-4.
//!
//! **Sizes**: the interpreter runs unoptimised under `cargo test`, so the big image nets
//! are compiled from a copy of their source with a smaller input (the substitutions of
//! [`OVERRIDES`], each checked to apply; docs/onnx.md lists them), and the symbolic sizes
//! get small values ([`symbol_value`]: `T` = 4, …).
//!
//! **ONNX Runtime** runs in one Python process for all models (`tests/ort/run_ort.py
//! --jobs`), from the virtual environment `.venv` that `.ci/run` creates (or
//! `$NETC_PYTHON`). Without it the test fails when `CI` is set and is skipped, with a
//! message, otherwise. `NETC_ONNX_FILTER=lstm` restricts the run to the cases whose label
//! contains `lstm`; `cargo test --test onnx -- --nocapture` prints the agreement table.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the test prints its agreement table, and says why it skips"
)]

use ndarray::ArrayD;
use netc::export::onnx::{self, ExportOptions, Recurrent};
use netc::passes::{compile, CompileOptions};
use netc::runtime::{interp, Tensor};
use netc::syntax::ast::Item;
use netc::syntax::loader::{load_source_with, DiskReader};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

#[path = "shared/nets.rs"]
mod nets;
use nets::{random_inputs, random_weights, OVERRIDES};

/// The largest relative difference accepted.
const TOLERANCE: f64 = 1e-4;

/// The batch sizes every model runs at.
const BATCHES: [u64; 2] = [1, 3];

/// One net to check.
struct Case {
    /// `file.net` or `file.net:net`, and the export form.
    label: String,
    /// The (possibly shrunk) source.
    source: String,
    /// The path it is loaded as (imports resolve from it).
    path: PathBuf,
    /// The net.
    net: String,
    /// The export options.
    opts: ExportOptions,
    /// The substitutions applied, for the report.
    note: String,
}

/// One batch of one case: the batch size, the input files by input name, and netc's
/// outputs with the files ONNX Runtime writes its own to.
type Run = (
    u64,
    BTreeMap<String, PathBuf>,
    Vec<(String, ArrayD<f32>, PathBuf)>,
);

/// What was computed for one case before ONNX Runtime runs.
struct Prepared {
    label: String,
    note: String,
    model: PathBuf,
    /// Per batch.
    runs: Vec<Run>,
    seconds: f64,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every net of `dir/*.net`, sorted by path, with overrides applied.
fn cases_in(dir: &Path, prefix: &str) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut source = std::fs::read_to_string(&path).expect("readable net");
        let mut notes = Vec::new();
        if prefix.is_empty() {
            for (s, subs) in OVERRIDES.iter().filter(|(s, _)| *s == stem) {
                for (from, to) in subs.iter() {
                    assert!(source.contains(from), "{s}.net no longer contains `{from}`");
                    source = source.replace(from, to);
                    notes.push(format!("`{from}` → `{to}`"));
                }
            }
        }
        let (program, diags) =
            load_source_with(&path.to_string_lossy(), source.as_bytes(), &DiskReader);
        assert!(!diags.has_errors(), "{}: {:?}", path.display(), diags);
        let nets: Vec<String> = program
            .root_module()
            .map(|m| {
                m.items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Net(n) => Some(n.name.name.clone()),
                        Item::Use(_) | Item::Const(_) | Item::Block(_) | Item::Cell(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let file = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for net in &nets {
            let base = if nets.len() > 1 {
                format!("{prefix}{file}:{net}")
            } else {
                format!("{prefix}{file}")
            };
            let mut forms = vec![(base.clone(), Recurrent::Native)];
            if has_builtin_recurrence(&source) {
                forms.push((format!("{base} [scan]"), Recurrent::Scan));
            }
            for (label, recurrent) in forms {
                out.push(Case {
                    label,
                    source: source.clone(),
                    path: path.clone(),
                    net: net.clone(),
                    opts: ExportOptions { recurrent },
                    note: notes.join(", "),
                });
            }
        }
    }
    out
}

/// Whether a source uses `rnn`, `lstm` or `gru` (whose two export forms are both checked).
fn has_builtin_recurrence(source: &str) -> bool {
    ["rnn(", "lstm(", "gru("].iter().any(|k| {
        source
            .match_indices(k)
            .any(|(i, _)| !source[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
    })
}

fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Compiles, exports and runs the reference interpreter for one case.
fn prepare(case: &Case, dir: &Path) -> Result<Prepared, String> {
    let start = Instant::now();
    let (program, diags) = load_source_with(
        &case.path.to_string_lossy(),
        case.source.as_bytes(),
        &DiskReader,
    );
    let (program, diags) = netc::check_program((program, diags));
    if diags.has_errors() {
        return Err(format!("does not check: {diags:?}"));
    }
    let opts = CompileOptions {
        net: Some(case.net.clone()),
        batch: None,
    };
    let graph = compile(&program, &opts)
        .map_err(|d| format!("does not compile: {d:?}"))?
        .graph;
    let w = random_weights(&graph, 7);
    let model = onnx::export(&graph, &w, &case.opts).map_err(|e| format!("export: {e:?}"))?;
    let stem = file_name(&case.label);
    let model_path = dir.join(format!("{stem}.onnx"));
    std::fs::write(&model_path, onnx::encode(&model)).map_err(|e| e.to_string())?;
    drop(model);
    let mut runs = Vec::new();
    for batch in BATCHES {
        let inputs = random_inputs(&graph, batch, 100 + batch);
        let mut files = BTreeMap::new();
        for (name, t) in &inputs {
            let p = dir.join(format!("{stem}.b{batch}.in.{}.npy", file_name(name)));
            let bytes = netc::runtime::io::npy_bytes(t).map_err(|e| format!("{e:?}"))?;
            std::fs::write(&p, bytes).map_err(|e| e.to_string())?;
            files.insert(name.clone(), p);
        }
        let outs = interp::run(&graph, &w, &inputs)
            .map_err(|e| format!("netc run (batch {batch}): {e:?}"))?;
        let mut expected = Vec::new();
        for (name, t) in outs {
            let Tensor::F32(a) = t else {
                return Err(format!("output `{name}` is not a float tensor"));
            };
            let p = dir.join(format!("{stem}.b{batch}.out.{}.npy", file_name(&name)));
            expected.push((name, a, p));
        }
        runs.push((batch, files, expected));
    }
    Ok(Prepared {
        label: case.label.clone(),
        note: case.note.clone(),
        model: model_path,
        runs,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `max |a − b| / max(max |b|, 1e-6)`.
fn relative_error(ours: &ArrayD<f32>, theirs: &ArrayD<f32>) -> f64 {
    let scale = ours.iter().fold(0f64, |m, x| m.max(f64::from(x.abs())));
    let diff = ours
        .iter()
        .zip(theirs.iter())
        .fold(0f64, |m, (a, b)| m.max(f64::from((a - b).abs())));
    let nan = ours.iter().chain(theirs.iter()).any(|x| !x.is_finite());
    if nan {
        f64::INFINITY
    } else {
        diff / scale.max(1e-6)
    }
}

/// The Python of the virtual environment, or `None` (with the reason) when there is none.
fn python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NETC_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let p = root().join(".venv/bin/python");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "no Python environment at {} (`.ci/run` creates it: python3 -m venv .venv && .venv/bin/pip install onnxruntime==1.32.0 onnx==1.23.2 numpy==2.4.6)",
            p.display()
        ))
    }
}

/// Runs `work` on every item with `threads` workers; results in item order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().expect("lock");
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(item) = items.get(i) else { break };
                let r = work(item);
                results.lock().expect("lock")[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|r| r.expect("every item done"))
        .collect()
}

#[test]
fn every_net_agrees_with_onnx_runtime() {
    let start = Instant::now();
    let python = match python() {
        Ok(p) => Some(p),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("ONNX Runtime is needed under CI: {why}")
        }
        Err(why) => {
            eprintln!("skipping the comparison with ONNX Runtime: {why}");
            None
        }
    };
    let dir = std::env::temp_dir().join(format!("netc-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let mut cases = cases_in(&root().join("nets"), "");
    let nets = cases.len();
    cases.extend(cases_in(&root().join("tests/fixtures/ir"), "fixtures/"));
    cases.extend(cases_in(
        &root().join("tests/fixtures/onnx"),
        "fixtures/onnx/",
    ));
    assert!(nets >= 19, "expected the nets of nets/, found {nets} cases");
    // While working on one net: NETC_ONNX_FILTER=lstm checks only the cases naming it.
    if let Some(f) = std::env::var_os("NETC_ONNX_FILTER") {
        let f = f.to_string_lossy().into_owned();
        cases.retain(|c| c.label.contains(&f));
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let prepared = parallel(&cases, threads, |c| prepare(c, &dir));
    let t_prepare = start.elapsed().as_secs_f64();
    let mut failures = Vec::new();
    let mut ok = Vec::new();
    for (case, p) in cases.iter().zip(prepared) {
        match p {
            Ok(p) => ok.push(p),
            Err(e) => failures.push(format!("{}: {e}", case.label)),
        }
    }
    let Some(python) = python else {
        let _ = std::fs::remove_dir_all(&dir);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        return;
    };
    // One Python process checks and runs every model.
    let jobs: Vec<serde_json::Value> = ok
        .iter()
        .map(|p| {
            let runs: Vec<serde_json::Value> = p
                .runs
                .iter()
                .map(|(_, inputs, outs)| {
                    let outputs: serde_json::Map<String, serde_json::Value> = outs
                        .iter()
                        .map(|(n, _, path)| (n.clone(), path.to_string_lossy().into()))
                        .collect();
                    let inputs: serde_json::Map<String, serde_json::Value> = inputs
                        .iter()
                        .map(|(n, path)| (n.clone(), path.to_string_lossy().into()))
                        .collect();
                    serde_json::json!({"inputs": inputs, "outputs": outputs})
                })
                .collect();
            serde_json::json!({"model": p.model.to_string_lossy(), "runs": runs})
        })
        .collect();
    let jobs_path = dir.join("jobs.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).expect("json")).expect("jobs file");
    let t_ort = Instant::now();
    let status = std::process::Command::new(&python)
        .arg(root().join("tests/ort/run_ort.py"))
        .arg("--jobs")
        .arg(&jobs_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let t_ort = t_ort.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&status.stderr);
    if !status.status.success() {
        failures.push(format!("ONNX checks or ONNX Runtime failed:\n{stderr}"));
    }
    // Compare.
    println!("| net | batch | max rel. error | netc s | substitutions |");
    println!("|---|---|---|---|---|");
    for p in &ok {
        for (batch, _, outs) in &p.runs {
            let mut worst = 0f64;
            for (name, ours, path) in outs {
                let theirs: Result<ArrayD<f32>, String> = std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        netc::runtime::io::read_npy(path, &b).map_err(|e| format!("{e:?}"))
                    })
                    .and_then(|t| match t {
                        Tensor::F32(a) => Ok(a),
                        Tensor::I64(_) => Err("integer output".into()),
                    });
                match theirs {
                    Err(e) => {
                        failures.push(format!(
                            "{} batch {batch}: no ONNX Runtime output `{name}`: {e}",
                            p.label
                        ));
                        worst = f64::INFINITY;
                    }
                    Ok(t) if t.shape() != ours.shape() => {
                        failures.push(format!(
                            "{} batch {batch}: `{name}` has shape {:?} in ONNX Runtime, {:?} in netc",
                            p.label,
                            t.shape(),
                            ours.shape()
                        ));
                        worst = f64::INFINITY;
                    }
                    Ok(t) => {
                        let e = relative_error(ours, &t);
                        if e > TOLERANCE {
                            failures.push(format!(
                                "{} batch {batch}: `{name}` differs by {e:.3e}",
                                p.label
                            ));
                        }
                        worst = worst.max(e);
                    }
                }
            }
            println!(
                "| {} | {batch} | {worst:.2e} | {:.1} | {} |",
                p.label, p.seconds, p.note
            );
        }
    }
    println!(
        "{} cases; netc (export + interpreter, {threads} threads) {t_prepare:.1} s, ONNX checks + Runtime {t_ort:.1} s, total {:.1} s",
        ok.len(),
        start.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs the `netc` binary.
fn netc(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_netc"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("netc runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netc-onnx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temporary folder");
    d
}

/// `--seed S` exports exactly the weights `netc init --seed S` writes, under the IR's
/// parameter names, fixed kernels included.
#[test]
fn seed_export_matches_init_weights() {
    use prost::Message as _;
    let dir = temp_dir("seed");
    let w = dir.join("w.safetensors");
    let (a, b) = (dir.join("a.onnx"), dir.join("b.onnx"));
    let s = |p: &Path| p.as_os_str().to_owned();
    let init = netc(&[
        "init".as_ref(),
        "nets/lenet5.net".as_ref(),
        "--seed".as_ref(),
        "5".as_ref(),
        "-o".as_ref(),
        &s(&w),
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let from_file = netc(&[
        "export".as_ref(),
        "nets/lenet5.net".as_ref(),
        "--weights".as_ref(),
        &s(&w),
        "-o".as_ref(),
        &s(&a),
    ]);
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let seeded = netc(&[
        "export".as_ref(),
        "nets/lenet5.net".as_ref(),
        "--seed".as_ref(),
        "5".as_ref(),
        "-o".as_ref(),
        &s(&b),
    ]);
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let bytes = std::fs::read(&a).expect("model written");
    assert_eq!(bytes, std::fs::read(&b).expect("model written"));

    let model = netc::export::onnx_proto::ModelProto::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(
        model.opset_import.first().map(|o| o.version),
        Some(onnx::OPSET)
    );
    let g = model.graph.expect("graph");
    let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "c1/weight",
            "c1/bias",
            "c3/weight",
            "c3/bias",
            "c5/weight",
            "c5/bias",
            "f6/weight",
            "f6/bias",
            "output/weight",
            "output/bias"
        ]
    );
    let nodes: Vec<(&str, &str)> = g
        .node
        .iter()
        .map(|n| (n.name.as_str(), n.op_type.as_str()))
        .collect();
    assert_eq!(nodes.first(), Some(&("c1", "Conv")));
    assert!(
        nodes.contains(&("s2", "AveragePool")) && nodes.contains(&("output", "Gemm")),
        "{nodes:?}"
    );

    // A net of fixed kernels needs no weights; its kernels are initializers.
    let f = dir.join("filters.onnx");
    let out = netc(&[
        "export".as_ref(),
        "nets/filters.net".as_ref(),
        "-o".as_ref(),
        &s(&f),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = netc::export::onnx_proto::ModelProto::decode(
        std::fs::read(&f).expect("written").as_slice(),
    )
    .expect("decodes");
    assert_eq!(model.graph.map(|g| g.initializer.len()), Some(6));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Missing weights, weights of another net and an unwritable output are diagnostics with
/// a non-zero exit, and leave no file behind.
#[test]
fn export_errors_are_diagnostics() {
    let dir = temp_dir("errors");
    let out = dir.join("m.onnx");
    let s = |p: &Path| p.as_os_str().to_owned();
    let run = |args: &[&std::ffi::OsStr]| {
        let o = netc(args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "export".as_ref(),
        "nets/lenet5.net".as_ref(),
        "-o".as_ref(),
        &s(&out),
        "--color".as_ref(),
        "never".as_ref(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("E0406") && err.contains("--weights"), "{err}");

    let w = dir.join("lstm.safetensors");
    let init = netc(&[
        "init".as_ref(),
        "nets/lstm.net".as_ref(),
        "-o".as_ref(),
        &s(&w),
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let (code, err) = run(&[
        "export".as_ref(),
        "nets/lenet5.net".as_ref(),
        "--weights".as_ref(),
        &s(&w),
        "-o".as_ref(),
        &s(&out),
        "--color".as_ref(),
        "never".as_ref(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("E0404") && err.contains("another net") && err.contains("missing `c1/weight`"),
        "{err}"
    );

    let nowhere = dir.join("no/such/folder/m.onnx");
    let (code, err) = run(&[
        "export".as_ref(),
        "nets/lenet5.net".as_ref(),
        "--seed".as_ref(),
        "1".as_ref(),
        "-o".as_ref(),
        &s(&nowhere),
        "--color".as_ref(),
        "never".as_ref(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("E0408"), "{err}");

    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("listable")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["lstm.safetensors"],
        "no model or temporary file is left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
