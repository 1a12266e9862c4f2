//! The optimisation passes keep every net's outputs: for each net that the reference
//! interpreter runs quickly in debug builds (big inputs shrunk in the source text, as
//! `tests/onnx.rs` does), the outputs with all passes, and with each pass switched off in
//! turn, equal the outputs with none within 1e-5 relative (with random batch-norm
//! statistics, so that folding them is tested). Unit tests on small hand-built IR show that
//! `dce`, `cse` and `drop_dropout` rewrite what they should, that the rewrite log and its
//! limit work, and that `--passes` strings parse; `fold_batchnorm` and `fold` have theirs
//! in their modules. Batch norms are all folded away in the ResNets and Inception-v3, and
//! constants in recurrent cells fold without changing a bit of the outputs.

use ndarray::{ArrayD, IxDyn};
use netc::diagnostics::Span;
use netc::ir::graph::{Graph, Node, Output, ParamKind, Region, ScopeId};
use netc::ir::op::Op;
use netc::ir::shape::{DType, Dim, TensorType};
use netc::passes::pipeline::{self, PassOptions, PassSelection, RewriteLog};
use netc::passes::{compile, CompileOptions};
use netc::runtime::weights;
use netc::runtime::{interp, Tensor};
use netc::syntax::loader::{load_source_with, DiskReader};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The largest relative difference accepted.
const TOLERANCE: f64 = 1e-5;

/// Source substitutions: `(text, replacement)`.
type Subs = &'static [(&'static str, &'static str)];

/// `(file, net, substitutions)`: the nets checked, with their size substitutions.
const NETS: &[(&str, &str, Subs)] = &[
    ("lenet5", "lenet5", &[]),
    ("rnn", "rnn", &[]),
    ("lstm", "lstm", &[]),
    ("lstm_cell", "lstm_cell", &[]),
    ("gru", "gru", &[]),
    ("gru", "gru_cell_lm", &[]),
    ("seq2seq", "seq2seq", &[("vocab = 8000", "vocab = 100")]),
    (
        "word2vec_cbow",
        "word2vec_cbow",
        &[("vocab = 10000", "vocab = 1000")],
    ),
    ("filters", "filters", &[]),
    (
        "inception_naive",
        "inception_naive",
        &[("f32[N, 256, 28, 28]", "f32[N, 256, 8, 8]")],
    ),
    (
        "inception_reduced",
        "inception_reduced",
        &[("f32[N, 256, 28, 28]", "f32[N, 256, 8, 8]")],
    ),
    // Batch norms everywhere: `fold_batchnorm` at work.
    (
        "resnet18",
        "resnet18",
        &[("f32[N, 3, 224, 224]", "f32[N, 3, 32, 32]")],
    ),
    // 75x75 is the smallest input Inception-v3's grid reductions accept.
    (
        "inception_v3",
        "inception_v3",
        &[("f32[N, 3, 299, 299]", "f32[N, 3, 75, 75]")],
    ),
];

/// The value a symbolic size gets at run time (besides the batch `N`).
fn symbol_value(name: &str) -> u64 {
    match name {
        "T" => 4,
        "U" => 3,
        "H" => 12,
        "W" => 10,
        _ => 4,
    }
}

fn compile_net(file: &str, net: &str, subs: &[(&str, &str)]) -> Graph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("nets/{file}.net"));
    let mut source = std::fs::read_to_string(&path).expect("readable net");
    for (from, to) in subs {
        assert!(
            source.contains(from),
            "{file}.net no longer contains `{from}`"
        );
        source = source.replace(from, to);
    }
    let loaded = load_source_with(&path.to_string_lossy(), source.as_bytes(), &DiskReader);
    let (program, diags) = netc::check_program(loaded);
    assert!(!diags.has_errors(), "{file}: {diags:?}");
    let opts = CompileOptions {
        net: Some(net.to_string()),
        batch: None,
    };
    compile(&program, &opts).expect("compiles").graph
}

/// A deterministic generator for inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }
}

fn concrete(ty: &TensorType, batch: u64) -> Vec<usize> {
    ty.shape
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Known(k) => *k as usize,
            Dim::Sym(p) => {
                let mut q = p.clone();
                for s in p.symbols() {
                    let v = if s == "N" { batch } else { symbol_value(&s) };
                    q = q.substitute(&s, v as i64).expect("small sizes");
                }
                q.as_const().expect("every symbol substituted") as usize
            }
        })
        .collect()
}

/// Random inputs: floats in [-1, 1), integer ids below the smallest embedding table or
/// class count they could index (16 is below every vocabulary here).
fn inputs(graph: &Graph, batch: u64) -> BTreeMap<String, Tensor> {
    let mut rng = Rng(batch * 7919 + 13);
    let mut out = BTreeMap::new();
    for &id in &graph.body.inputs {
        let Op::Input { name, ty, .. } = &graph.body.node(id).op else {
            continue;
        };
        let shape = concrete(ty, batch);
        let n: usize = shape.iter().product();
        let t = if ty.dtype.is_int() {
            let v: Vec<i64> = (0..n).map(|_| (rng.next() >> 33) as i64 % 16).collect();
            Tensor::I64(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape"))
        } else {
            let v: Vec<f32> = (0..n)
                .map(|_| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
                .collect();
            Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape"))
        };
        out.insert(name.clone(), t);
    }
    out
}

fn floats(t: &Tensor) -> Vec<f64> {
    match t {
        Tensor::F32(a) => a.iter().map(|x| f64::from(*x)).collect(),
        Tensor::I64(a) => a.iter().map(|x| *x as f64).collect(),
    }
}

/// The largest difference relative to the largest magnitude of the reference.
fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-30_f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs() / scale))
}

fn optimized(graph: &Graph, selection: PassSelection) -> Graph {
    let mut g = graph.clone();
    let opts = PassOptions {
        selection,
        max_rewrites: None,
        after: None,
    };
    pipeline::run(&mut g, &opts).expect("passes run");
    g
}

/// A value in `[lo, hi)` from `rng`.
fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * ((rng.next() >> 40) as f32 / (1u64 << 24) as f32)
}

/// `netc init`'s weights with random batch-norm statistics: init makes every batch norm
/// the identity (scale 1, shift 0, mean 0, variance 1), which a wrong fold would survive.
fn weights_for(graph: &Graph) -> weights::Weights {
    let mut w = weights::init(&weights::expected(graph), 11);
    let mut rng = Rng(97);
    let mut stats = Vec::new();
    collect_bn_params(graph, &graph.body, &mut stats);
    for (name, lo, hi) in stats {
        if let Some((_, data)) = w.tensors.get_mut(&name) {
            for x in data.iter_mut() {
                *x = uniform(&mut rng, lo, hi);
            }
        }
    }
    w
}

/// The names of every batch norm's scale, shift, mean and variance in `r` and the regions
/// inside it, with the range of the random values they get.
fn collect_bn_params(g: &Graph, r: &Region, out: &mut Vec<(String, f32, f32)>) {
    const RANGES: [(f32, f32); 4] = [(0.5, 1.5), (-0.5, 0.5), (-0.5, 0.5), (0.25, 2.0)];
    for id in r.node_ids() {
        match &r.node(id).op {
            Op::Loop(l) => collect_bn_params(g, &l.body, out),
            Op::Group(gr) => collect_bn_params(g, &gr.body, out),
            Op::BatchNorm { .. } => {
                for (v, (lo, hi)) in r.inputs_of(id).iter().skip(1).zip(RANGES) {
                    if let Op::Param(p) = r.node(v.node).op {
                        out.push((g.param(p).name.clone(), lo, hi));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Nodes of `r` and the regions inside it for which `pred` holds.
fn count_nodes(r: &Region, pred: &dyn Fn(&Op) -> bool) -> usize {
    r.node_ids()
        .iter()
        .map(|id| {
            let op = &r.node(*id).op;
            let inner = match op {
                Op::Loop(l) => count_nodes(&l.body, pred),
                Op::Group(g) => count_nodes(&g.body, pred),
                _ => 0,
            };
            inner + usize::from(pred(op))
        })
        .sum()
}

#[test]
fn passes_keep_every_nets_outputs() {
    let mut selections = vec![("all".to_string(), PassSelection::all())];
    for name in pipeline::pass_names() {
        selections.push((format!("-{name}"), PassSelection::all_but(name)));
    }
    for (file, net, subs) in NETS {
        let graph = compile_net(file, net, subs);
        let w = weights_for(&graph);
        let x = inputs(&graph, 2);
        let reference = interp::run(&graph, &w, &x).expect("runs without passes");
        for (label, sel) in &selections {
            let g = optimized(&graph, sel.clone());
            let outs = interp::run(&g, &w, &x).expect("runs with passes");
            assert_eq!(
                outs.keys().collect::<Vec<_>>(),
                reference.keys().collect::<Vec<_>>(),
                "{net} [{label}]: outputs differ"
            );
            for (name, t) in &outs {
                let (a, b) = (floats(t), floats(&reference[name]));
                assert_eq!(a.len(), b.len(), "{net} [{label}] {name}: sizes differ");
                let e = relative_error(&a, &b);
                assert!(e <= TOLERANCE, "{net} [{label}] {name}: relative error {e}");
            }
        }
    }
}

/// After the pipeline no batch norm is left in the ResNets and Inception-v3: every one
/// follows a convolution whose output nothing else reads.
#[test]
fn batch_norms_are_folded_away() {
    let is_bn = |op: &Op| matches!(op, Op::BatchNorm { .. });
    // The unshrunk nets: only compiled here, never run.
    for (file, count) in [("resnet18", 20), ("resnet50", 53), ("inception_v3", 94)] {
        let graph = compile_net(file, file, &[]);
        assert_eq!(count_nodes(&graph.body, &is_bn), count, "{file} before");
        let g = optimized(&graph, PassSelection::all());
        assert_eq!(count_nodes(&g.body, &is_bn), 0, "{file} after");
        let derived = g
            .params
            .iter()
            .filter(|p| p.kind == ParamKind::Derived)
            .count();
        assert_eq!(derived, 2 * count, "{file}: a weight and a bias per fold");
        // The weights file is the unoptimised net's.
        assert_eq!(weights::expected(&g), weights::expected(&graph));
    }
}

/// Nets with constants in recurrent cells (`1 - z` in the GRU cell, and a cell with
/// `x * 1`, `x / 1`, `x + 0` and `-(-x)`) give exactly the same outputs with every pass.
#[test]
fn constants_in_cells_fold_without_changing_outputs() {
    let src = "cell c(hidden) {
        state h = zeros[hidden]
        step x {
            z = sigmoid(dense(concat(h, x), hidden))
            h = -(-(((1 - z) * h * 1 + z * tanh(dense(x, hidden))) / 1 + 0))
            emit h
        }
    }
    net consts(x: f32[N, T, 5]) -> y { y = x -> unroll(c(4)) -> dense(3) }";
    let loaded = load_source_with("consts.net", src.as_bytes(), &DiskReader);
    let (program, diags) = netc::check_program(loaded);
    assert!(!diags.has_errors(), "{diags:?}");
    let consts = compile(&program, &CompileOptions::default())
        .expect("compiles")
        .graph;
    for graph in [consts, compile_net("gru", "gru_cell_lm", &[])] {
        let mut g = graph.clone();
        let log = pipeline::run(&mut g, &PassOptions::default())
            .expect("passes run")
            .log;
        if graph.name == "consts" {
            for rule in [
                "fold/mul_one",
                "fold/div_one",
                "fold/add_zero",
                "fold/neg_neg",
            ] {
                assert!(log.entries.iter().any(|e| e == rule), "{rule}: {log:?}");
            }
        }
        let w = weights::init(&weights::expected(&graph), 3);
        let x = inputs(&graph, 2);
        let want = interp::run(&graph, &w, &x).expect("runs");
        let got = interp::run(&g, &w, &x).expect("runs with passes");
        assert_eq!(want, got, "{}", graph.name);
    }
}

#[test]
fn dropout_is_removed_from_nets_that_have_it() {
    let graph = compile_net("lenet5", "lenet5", &[]);
    let g = optimized(&graph, PassSelection::all());
    let count = |r: &Region| {
        r.node_ids()
            .iter()
            .filter(|id| matches!(r.node(**id).op, Op::Dropout { .. }))
            .count()
    };
    assert_eq!(count(&g.body), 0);
    assert!(g.body.len() <= graph.body.len());
}

fn f32_ty(dims: &[u64]) -> TensorType {
    TensorType::new(DType::F32, dims.iter().map(|d| Dim::Known(*d)).collect())
}

fn node(op: Op, ty: &TensorType, name: &str) -> Node {
    Node {
        op,
        outputs: vec![ty.clone()],
        name: name.to_string(),
        span: Span::default(),
        scope: ScopeId(0),
    }
}

/// `x -> relu a, relu b (same as a), add(a, b) -> y`, plus a dead `tanh x` and a dropout.
fn fixture() -> Graph {
    let ty = f32_ty(&[1, 4]);
    let mut g = Graph::new("fixture", None, Span::default());
    let r = &mut g.body;
    let x = r.add(
        node(
            Op::Input {
                index: 0,
                name: "x".into(),
                ty: ty.clone(),
            },
            &ty,
            "x",
        ),
        &[],
    );
    r.inputs.push(x);
    let xv = Region::value(x);
    let a = r.add(node(Op::Relu, &ty, "a"), &[xv]);
    let b = r.add(node(Op::Relu, &ty, "b"), &[xv]);
    let _dead = r.add(node(Op::Tanh, &ty, "dead"), &[xv]);
    let d = r.add(
        node(Op::Dropout { rate: 0.5 }, &ty, "drop"),
        &[Region::value(a)],
    );
    let s = r.add(
        node(Op::Add, &ty, "sum"),
        &[Region::value(d), Region::value(b)],
    );
    r.outputs.push(Output {
        name: "y".into(),
        value: Region::value(s),
    });
    g
}

fn run_one(g: &mut Graph, pass: &str, max_rewrites: Option<usize>) -> RewriteLog {
    let opts = PassOptions {
        selection: PassSelection::parse(pass).expect("a pass"),
        max_rewrites,
        after: None,
    };
    pipeline::run(g, &opts).expect("runs").log
}

#[test]
fn dce_removes_dead_nodes() {
    let mut g = fixture();
    assert_eq!(g.body.len(), 6);
    let log = run_one(&mut g, "dce", None);
    assert_eq!(g.body.len(), 5);
    assert_eq!(log.entries, ["dce/remove"]);
    assert!(g
        .body
        .node_ids()
        .iter()
        .all(|id| g.body.node(*id).name != "dead"));
}

#[test]
fn cse_merges_identical_nodes() {
    let mut g = fixture();
    let log = run_one(&mut g, "cse", None);
    assert_eq!(log.entries, ["cse/merge"]);
    assert_eq!(g.body.len(), 5);
    let relus = g
        .body
        .node_ids()
        .into_iter()
        .filter(|id| matches!(g.body.node(*id).op, Op::Relu))
        .count();
    assert_eq!(relus, 1);
}

#[test]
fn drop_dropout_rewires_readers() {
    let mut g = fixture();
    let log = run_one(&mut g, "drop_dropout", None);
    assert_eq!(log.entries, ["drop_dropout/remove"]);
    assert_eq!(g.body.len(), 5);
}

#[test]
fn the_whole_pipeline_and_its_limit() {
    let mut g = fixture();
    let log = run_one(&mut g, "all", None);
    assert_eq!(
        log.entries,
        [
            "drop_dropout/remove",
            "cse/merge",
            "dce/remove",
            "fuse/elementwise"
        ]
    );
    // x and one group of relu and add (the add reads the one relu twice).
    assert_eq!(g.body.len(), 2);
    for limit in 0..3 {
        let mut g = fixture();
        let log = run_one(&mut g, "all", Some(limit));
        assert_eq!(log.entries.len(), limit);
        assert_eq!(g.body.len(), 6 - limit);
    }
}

#[test]
fn pass_selections_parse() {
    assert_eq!(
        PassSelection::parse("all").expect("all"),
        PassSelection::all()
    );
    assert_eq!(
        PassSelection::parse("none").expect("none"),
        PassSelection::none()
    );
    let s = PassSelection::parse("-cse,-dce").expect("a list");
    assert!(s.runs("drop_dropout") && !s.runs("cse") && !s.runs("dce"));
    let s = PassSelection::parse("dce").expect("a list");
    assert!(s.runs("dce") && !s.runs("cse"));
    let e = PassSelection::parse("-fusion").expect_err("no such pass");
    assert_eq!(e.name, "fusion");
    assert!(e.to_string().contains("unknown pass `fusion`"), "{e}");
    assert!(pipeline::check_after("lower").is_ok());
    assert!(pipeline::check_after("fold").is_ok());
    assert!(pipeline::check_after("fuse").is_ok());
    assert!(pipeline::check_after("fusion").is_err());
}

fn netc(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_netc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("netc runs")
}

#[test]
fn cli_passes_after_and_memory_totals() {
    let out = netc(&["compile", "--format", "json", "nets/vgg16.net"]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let t = &j["totals"];
    for key in ["planned_peak_bytes", "unplanned_bytes", "lower_bound_bytes"] {
        assert!(t[key].as_u64().is_some_and(|v| v > 0), "{key}: {t}");
    }
    assert_eq!(t["memory_batch"], 1);
    let text = netc(&["compile", "--batch", "2", "nets/vgg16.net"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("bytes planned peak"));
    let before = netc(&[
        "compile",
        "--emit",
        "ir",
        "--after",
        "lower",
        "nets/vgg16.net",
    ]);
    assert!(String::from_utf8_lossy(&before.stdout).contains("dropout"));
    let after = netc(&[
        "compile",
        "--emit",
        "ir",
        "--after",
        "drop_dropout",
        "nets/vgg16.net",
    ]);
    assert!(!String::from_utf8_lossy(&after.stdout).contains("dropout"));
    let none = netc(&["compile", "--emit", "ir", "--passes=none", "nets/vgg16.net"]);
    assert!(String::from_utf8_lossy(&none.stdout).contains("dropout"));
    let bad = netc(&["compile", "--passes=-fusion", "nets/vgg16.net"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown pass `fusion`"));
    let bad = netc(&[
        "compile",
        "--emit",
        "ir",
        "--after",
        "fusion",
        "nets/vgg16.net",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `netc run --passes`: the same outputs with every pass and with none, and an unknown pass
/// name is a usage error.
#[test]
fn run_accepts_a_pass_selection() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_passes");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |passes: &str, out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_netc"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "run",
                "nets/filters.net",
                "--input",
                "tests/data/camera.png",
            ])
            .arg("--output")
            .arg(dir.join(out))
            .arg(format!("--passes={passes}"))
            .output()
            .expect("netc runs")
    };
    let all = run("all", "all.npy");
    assert_eq!(
        all.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let none = run("none", "none.npy");
    assert_eq!(
        none.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let mut compared = 0;
    for e in std::fs::read_dir(&dir).expect("outputs").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix("all") {
            let a = std::fs::read(e.path()).expect("output");
            let b =
                std::fs::read(dir.join(format!("none{rest}"))).expect("same output without passes");
            assert_eq!(a, b, "{name} differs with and without passes");
            compared += 1;
        }
    }
    assert_eq!(compared, 6, "the six filter outputs");
    let bad = run("bogus", "x.npy");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown pass `bogus`"));
}
