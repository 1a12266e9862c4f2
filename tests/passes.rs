//! The optimisation passes keep every net's outputs in the reference interpreter (the arena
//! executor is checked on every net in `tests/arena.rs`): for each net that runs quickly in
//! debug builds (big inputs shrunk in the source text, as `tests/onnx.rs` does), the
//! outputs with all passes, and with each pass switched off in turn, equal the outputs with
//! none within 1e-5 relative (with random batch-norm statistics, so that folding them is
//! tested). Unit tests on small hand-built IR show that
//! `dce`, `cse` and `drop_dropout` rewrite what they should, that the rewrite log and its
//! limit work, and that `--passes` strings parse; `fold_batchnorm` and `fold` have theirs
//! in their modules. Batch norms are all folded away in the ResNets and Inception-v3, and
//! constants in recurrent cells fold without changing a bit of the outputs.

#[path = "shared/nets.rs"]
mod nets;

use netc::diagnostics::Span;
use netc::ir::graph::{Graph, Node, Output, ParamKind, Region, ScopeId};
use netc::ir::op::Op;
use netc::ir::shape::{DType, Dim, TensorType};
use netc::passes::pipeline::{self, PassOptions, PassSelection, RewriteLog};
use netc::passes::{compile, CompileOptions};
use netc::runtime::interp;
use netc::runtime::weights;
use netc::syntax::loader::{load_source_with, DiskReader};
use nets::{max_rel_diff, random_inputs, random_weights};
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
        // Random batch-norm statistics too: `netc init` makes every batch norm the
        // identity, which a wrong fold would survive.
        let w = random_weights(&graph, 11);
        let x = random_inputs(&graph, 2, 13);
        let reference = interp::run(&graph, &w, &x).expect("runs without passes");
        for (label, sel) in &selections {
            let g = optimized(&graph, sel.clone());
            // Weights files are the lowered net's, whatever the passes derive from them.
            assert_eq!(
                weights::expected(&g),
                weights::expected(&graph),
                "{net} [{label}]: expected weights"
            );
            let outs = interp::run(&g, &w, &x).expect("runs with passes");
            let e = max_rel_diff(&reference, &outs, &format!("{net} [{label}]"));
            assert!(e <= TOLERANCE, "{net} [{label}]: relative error {e}");
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
        let x = random_inputs(&graph, 2, 13);
        let want = interp::run(&graph, &w, &x).expect("runs");
        let got = interp::run(&g, &w, &x).expect("runs with passes");
        assert_eq!(want, got, "{}", graph.name);
    }
}

/// The built-in GRU's step reads its gate blocks as derived parameters cut once at binding,
/// not as slices of its fused weight copied at every step: 5 kernels a step, not 9.
#[test]
fn gru_weight_slices_become_derived_parameters() {
    let graph = compile_net("gru", "gru", &[]);
    let g = optimized(&graph, PassSelection::all());
    let Some(Op::Loop(l)) = g
        .body
        .node_ids()
        .into_iter()
        .map(|id| g.body.node(id).op.clone())
        .find(|op| matches!(op, Op::Loop(_)))
    else {
        panic!("the GRU is a loop");
    };
    // No slice of a parameter is left (the slices of the gate activations are loads of
    // the fused groups).
    let weight_slices = l
        .body
        .node_ids()
        .into_iter()
        .filter(|id| {
            matches!(l.body.node(*id).op, Op::Slice { .. })
                && l.body
                    .inputs_of(*id)
                    .iter()
                    .any(|v| matches!(l.body.node(v.node).op, Op::Param(_)))
        })
        .count();
    assert_eq!(weight_slices, 0);
    assert_eq!(netc::passes::fuse::kernels(&l.body), 5);
    let derived: Vec<&str> = g
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Derived)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        derived,
        [
            "gru/weight/slice0.0-512",
            "gru/bias/slice0.0-512",
            "gru/weight/slice0.512-768",
            "gru/bias/slice0.512-768"
        ]
    );
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
