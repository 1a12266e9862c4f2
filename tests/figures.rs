//! The published figures of the nets in `nets/`, asserted from the JSON of the layer table
//! (`netc compile --format json`, through the library; one test runs the binary). Counts
//! that the papers do not print are derived here by hand from the layer formulas, so that
//! a mistake in netc's counting and a mistake in a net cannot cancel out.
#![allow(clippy::print_stderr, reason = "a skipped check says why on stderr")]

use netc::passes::{compile, CompileOptions, Compiled};
use serde_json::Value;
use std::path::Path;

/// Compiles net `name` (or the last net) of `nets/{file}.net`.
fn compiled(file: &str, name: Option<&str>) -> Compiled {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("nets")
        .join(format!("{file}.net"));
    let (program, diags) = netc::check_program(netc::syntax::loader::load(&path));
    let show = |d: &netc::diagnostics::Diagnostics| -> String {
        d.iter()
            .map(|x| netc::diagnostics::render::plain(x, &program.sources))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        !diags.has_errors(),
        "nets/{file}.net does not check:\n{}",
        show(&diags)
    );
    let opts = CompileOptions {
        net: name.map(str::to_string),
        batch: None,
    };
    match compile(&program, &opts) {
        Ok(c) => c,
        Err(d) => panic!("nets/{file}.net does not compile:\n{}", show(&d)),
    }
}

fn json(file: &str, name: Option<&str>) -> Value {
    netc::report::table::json(&compiled(file, name).report)
}

fn totals(j: &Value) -> &Value {
    &j["totals"]
}

/// The layer called `name`.
fn layer<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["layers"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no layer `{name}` in {}", j["net"]))
}

/// The output shape of the last layer.
fn output_shape(j: &Value) -> Value {
    j["layers"]
        .as_array()
        .and_then(|l| l.last())
        .map(|l| l["output_shape"].clone())
        .unwrap_or(Value::Null)
}

fn shape(dims: &[&str]) -> Value {
    Value::Array(
        dims.iter()
            .map(|d| match d.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(*d),
            })
            .collect(),
    )
}

#[test]
fn lenet5() {
    let j = json("lenet5", None);
    assert_eq!(totals(&j)["params"], 61_706);
    assert_eq!(totals(&j)["trainable_params"], 61_706);
    assert_eq!(totals(&j)["macs"], 416_520);
    // C1 (5x5x1x6 + 6), C3 (5x5x6x16 + 16), C5 (400x120 + 120), F6 (120x84 + 84), output.
    assert_eq!(layer(&j, "c1")["params"], 156);
    assert_eq!(layer(&j, "c3")["params"], 2_416);
    assert_eq!(layer(&j, "c5")["params"], 48_120);
    assert_eq!(layer(&j, "f6")["params"], 10_164);
    assert_eq!(layer(&j, "output")["params"], 850);
    assert_eq!(
        layer(&j, "c1")["output_shape"],
        shape(&["N", "6", "28", "28"])
    );
}

#[test]
fn alexnet_matches_the_lecture_listing() {
    let j = json("alexnet", None);
    for (name, c, hw) in [
        ("conv1", 96, 55),
        ("pool1", 96, 27),
        ("norm1", 96, 27),
        ("conv2", 256, 27),
        ("pool2", 256, 13),
        ("norm2", 256, 13),
        ("conv3", 384, 13),
        ("conv4", 384, 13),
        ("conv5", 256, 13),
        ("pool3", 256, 6),
    ] {
        let want = Value::Array(vec!["N".into(), c.into(), hw.into(), hw.into()]);
        assert_eq!(layer(&j, name)["output_shape"], want, "{name}");
    }
    assert_eq!(layer(&j, "fc6")["output_shape"], shape(&["N", "4096"]));
    assert_eq!(layer(&j, "fc8")["output_shape"], shape(&["N", "1000"]));
    assert_eq!(totals(&j)["params"], 62_378_344);
}

#[test]
fn vgg16_matches_the_lecture_table() {
    let c = compiled("vgg16", None);
    let j = netc::report::table::json(&c.report);
    assert_eq!(totals(&j)["params"], 138_357_544);
    assert_eq!(totals(&j)["macs"], 15_470_264_320_u64);
    assert_eq!(totals(&j)["activation_elements"], 15_237_608);
    assert_eq!(totals(&j)["activation_bytes"], 4 * 15_237_608);
    // Weights and biases apart, as the table's "138M" counts weights.
    let sum = |suffix: &str| -> u64 {
        c.graph
            .params
            .iter()
            .filter(|p| p.name.ends_with(suffix))
            .filter_map(|p| p.ty.shape.elements().and_then(|e| e.as_const()))
            .map(i64::unsigned_abs)
            .sum()
    };
    assert_eq!(sum("/weight"), 138_344_128);
    assert_eq!(sum("/bias"), 13_416);
    assert_eq!(layer(&j, "fc6")["params"], 102_764_544);
    assert_eq!(layer(&j, "fc7")["params"], 16_781_312);
    assert_eq!(layer(&j, "fc8")["params"], 4_097_000);
}

#[test]
fn vgg19() {
    assert_eq!(totals(&json("vgg19", None))["params"], 143_667_240);
}

#[test]
fn googlenet_table_1() {
    let j = json("googlenet", None);
    assert_eq!(totals(&j)["params"], 6_998_552);
    for (name, c, hw) in [
        ("pool1", 64, 56),
        ("pool2", 192, 28),
        ("inception3a/concat", 256, 28),
        ("inception3b/concat", 480, 28),
        ("pool3", 480, 14),
        ("inception4e/concat", 832, 14),
        ("pool4", 832, 7),
        ("inception5b/concat", 1024, 7),
        ("pool5", 1024, 1),
    ] {
        let want = Value::Array(vec!["N".into(), c.into(), hw.into(), hw.into()]);
        assert_eq!(layer(&j, name)["output_shape"], want, "{name}");
    }
}

#[test]
fn resnets() {
    let r18 = json("resnet18", None);
    assert_eq!(totals(&r18)["params"], 11_689_512);
    assert_eq!(totals(&r18)["macs"], 1_814_073_344_u64);
    assert_eq!(totals(&json("resnet34", None))["params"], 21_797_672);
    let r50 = json("resnet50", None);
    assert_eq!(totals(&r50)["params"], 25_557_032);
    assert_eq!(totals(&r50)["macs"], 4_089_184_256_u64);
    assert_eq!(totals(&json("resnet152", None))["params"], 60_192_808);
    // The stage outputs of ResNet-50.
    assert_eq!(output_shape(&r50), shape(&["N", "1000"]));
    assert_eq!(
        layer(&r50, "layer4/bottleneck.2/relu")["output_shape"],
        shape(&["N", "2048", "7", "7"])
    );
}

#[test]
fn resnet_batch_norm_statistics_are_buffers() {
    let c = compiled("resnet18", None);
    // Every batch norm has 2 trainable parameters and 2 running statistics per channel.
    let scale: u64 = c
        .graph
        .params
        .iter()
        .filter(|p| p.name.ends_with("/scale"))
        .filter_map(|p| p.ty.shape.elements().and_then(|e| e.as_const()))
        .map(i64::unsigned_abs)
        .sum();
    assert_eq!(c.report.totals.buffers, 2 * scale);
    assert!(!c
        .graph
        .params
        .iter()
        .any(|p| p.name.ends_with("/bias") && p.name.contains("conv")));
}

#[test]
fn inception_modules() {
    let naive = json("inception_naive", None);
    assert_eq!(output_shape(&naive), shape(&["N", "672", "28", "28"]));
    // 1x1x256 -> 128, 3x3x256 -> 192, 5x5x256 -> 96, each at 28x28.
    let naive_macs: u64 = 28 * 28 * (256 * 128 + 3 * 3 * 256 * 192 + 5 * 5 * 256 * 96);
    assert_eq!(naive_macs, 854_196_224);
    assert_eq!(totals(&naive)["macs"], naive_macs);

    let reduced = json("inception_reduced", None);
    assert_eq!(output_shape(&reduced), shape(&["N", "480", "28", "28"]));
    // The six convolutions the lecture lists; they add up to 271M, not its "358M".
    let reduced_macs: u64 =
        28 * 28 * (256 * 128 + 256 * 64 + 3 * 3 * 64 * 192 + 256 * 64 + 5 * 5 * 64 * 96 + 256 * 64);
    assert_eq!(reduced_macs, 271_351_808);
    assert_eq!(totals(&reduced)["macs"], reduced_macs);
}

#[test]
fn inception_v3() {
    let j = json("inception_v3", None);
    assert_eq!(totals(&j)["params"], 23_834_568);
    assert_eq!(
        layer(&j, "Mixed_7c/concat")["output_shape"],
        shape(&["N", "2048", "8", "8"])
    );
}

/// Parameters of the recurrent layers, by hand.
fn rnn_params(h: u64, x: u64) -> u64 {
    h * (h + x) + h
}
fn lstm_params(h: u64, x: u64) -> u64 {
    // Four gates (i, f, g, o), each a dense layer on [h, x] with one bias.
    4 * h * (h + x) + 4 * h
}
fn gru_params(h: u64, x: u64) -> u64 {
    3 * h * (h + x) + 3 * h
}

#[test]
fn recurrent_layer_formulas() {
    // The figure REFERENCES quotes for an LSTM 128 -> 256 with two bias vectors (PyTorch,
    // ONNX) is 395,264; netc's LSTM has one bias per gate.
    assert_eq!(lstm_params(256, 128), 394_240);
    assert_eq!(lstm_params(256, 128) + 4 * 256, 395_264);
}

#[test]
fn char_models() {
    let (vocab, emb, h) = (65, 128, 256);
    let head = h * vocab + vocab;
    for (file, net, layer_params) in [
        ("rnn", None, rnn_params(h, emb)),
        ("lstm", None, lstm_params(h, emb)),
        ("lstm_cell", None, lstm_params(h, emb)),
        ("gru", Some("gru"), gru_params(h, emb)),
        ("gru", Some("gru_cell_lm"), gru_params(h, emb)),
    ] {
        let j = json(file, net);
        assert_eq!(
            totals(&j)["params"],
            vocab * emb + layer_params + head,
            "{file} {net:?}"
        );
        let rec = &j["layers"][2];
        assert_eq!(rec["params"], layer_params, "{file} {net:?}");
        assert_eq!(
            rec["output_shape"],
            shape(&["N", "T", "256"]),
            "{file} {net:?}"
        );
        // The gate matmuls once per step: per-example MACs are symbolic in T.
        let per_step = layer_params - (layer_params / (h + emb + 1));
        assert_eq!(
            rec["macs"],
            Value::from(format!("{per_step}*T")),
            "{file} {net:?}"
        );
    }
}

#[test]
fn lstm_and_lstm_cell_agree() {
    // Every figure but the kernel count: the built-in's fused gate weight is one dense
    // layer per step, the cell's four.
    let figures = |j: &Value| {
        let mut t = totals(j).clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("kernels");
        }
        t
    };
    let a = json("lstm", None);
    let b = json("lstm_cell", None);
    assert_eq!(figures(&a), figures(&b));
    let ga = json("gru", Some("gru"));
    let gb = json("gru", Some("gru_cell_lm"));
    assert_eq!(figures(&ga), figures(&gb));
}

#[test]
fn seq2seq() {
    let j = json("seq2seq", None);
    let (vocab, emb, h) = (8000, 256, 512);
    let want = 2 * vocab * emb + 2 * lstm_params(h, emb) + h * vocab + vocab;
    assert_eq!(want, 11_349_824);
    assert_eq!(totals(&j)["params"], want);
    assert_eq!(layer(&j, "encoder")["output_shape"], shape(&["N", "512"]));
    assert_eq!(
        layer(&j, "decoder")["output_shape"],
        shape(&["N", "U", "512"])
    );
    assert_eq!(
        layer(&j, "encoder")["macs"],
        Value::from(format!("{}*T", 4 * h * (h + emb)))
    );
}

#[test]
fn word2vec_cbow() {
    let j = json("word2vec_cbow", None);
    assert_eq!(totals(&j)["params"], 10_000 * 100 + 100 * 10_000);
    assert_eq!(layer(&j, "w_in")["output_shape"], shape(&["N", "4", "100"]));
    assert_eq!(output_shape(&j), shape(&["N", "10000"]));
}

#[test]
fn fixed_filters_are_not_trainable() {
    let j = json("filters", None);
    assert_eq!(totals(&j)["trainable_params"], 0);
    // Four 3x3 and two 5x5 constant kernels on one channel.
    assert_eq!(totals(&j)["params"], 4 * 9 + 2 * 25);
    for l in j["layers"].as_array().into_iter().flatten().skip(1) {
        assert_eq!(
            l["output_shape"],
            shape(&["N", "1", "H", "W"]),
            "{}",
            l["name"]
        );
    }
}

/// Every net of `nets/` compiles (found by listing the folder, not by hand), and its IR
/// dump and DOT are deterministic.
#[test]
fn every_net_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("nets");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("nets/ is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "net"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let (program, diags) = netc::check_program(netc::syntax::loader::load(&path));
        assert!(!diags.has_errors(), "{}", path.display());
        for net in netc::passes::lower::net_names(&program) {
            let opts = CompileOptions {
                net: Some(net.clone()),
                batch: None,
            };
            let a = compile(&program, &opts).unwrap_or_else(|_| panic!("{} {net}", path.display()));
            let b = compile(&program, &opts).unwrap_or_else(|_| panic!("{} {net}", path.display()));
            assert_eq!(
                netc::ir::print::graph(&a.graph, Some(&program.sources)),
                netc::ir::print::graph(&b.graph, Some(&program.sources))
            );
            assert_eq!(
                netc::ir::dot::graph(&a.graph),
                netc::ir::dot::graph(&b.graph)
            );
        }
    }
}

#[test]
fn batch_option_makes_the_batch_known() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("nets/lenet5.net");
    let (program, _) = netc::check_program(netc::syntax::loader::load(&path));
    let opts = CompileOptions {
        net: None,
        batch: Some(8),
    };
    let c = compile(&program, &opts).expect("compiles");
    let j = netc::report::table::json(&c.report);
    assert_eq!(
        layer(&j, "c1")["output_shape"],
        shape(&["8", "6", "28", "28"])
    );
    // Totals stay per example.
    assert_eq!(totals(&j)["macs"], 416_520);
}

#[test]
fn unknown_net_is_reported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("nets/gru.net");
    let (program, _) = netc::check_program(netc::syntax::loader::load(&path));
    let opts = CompileOptions {
        net: Some("gruu".into()),
        batch: None,
    };
    let err = compile(&program, &opts).expect_err("no such net");
    let d = err.iter().next().expect("one diagnostic");
    assert_eq!(d.code.as_str(), "E0316");
    assert!(
        d.help.as_deref().is_some_and(|h| h.contains("gru_cell_lm")),
        "{d:?}"
    );
}

/// `dot -Tsvg` renders the DOT of a net with blocks (clusters) and of a recurrent net.
/// Skips with a message when Graphviz is not installed, except in CI (`CI` set), where
/// it must be.
#[test]
fn dot_renders_with_graphviz() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let present = Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "Graphviz `dot` is required in CI"
        );
        eprintln!("skipping dot_renders_with_graphviz: Graphviz `dot` is not installed");
        return;
    }
    for (file, net) in [("googlenet", None), ("resnet18", None), ("seq2seq", None)] {
        let c = compiled(file, net);
        let dot = netc::ir::dot::graph(&c.graph);
        assert!(
            file != "googlenet" || dot.contains("subgraph cluster_"),
            "{file}: blocks are clusters"
        );
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dot starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(dot.as_bytes())
            .expect("dot reads");
        let out = child.wait_with_output().expect("dot runs");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("<svg"),
            "{file}"
        );
    }
}

/// The binary: `netc compile --format json` prints the same figures.
#[test]
fn cli_compile_json() {
    use std::process::Command;
    let exe = env!("CARGO_BIN_EXE_netc");
    let root = env!("CARGO_MANIFEST_DIR");
    // Until `compile` is wired into the command line this test cannot run; in CI it must.
    let help = Command::new(exe).arg("--help").output().expect("netc runs");
    if !String::from_utf8_lossy(&help.stdout).contains("compile") {
        assert!(
            std::env::var_os("CI").is_none(),
            "`netc compile` is not wired into the CLI"
        );
        eprintln!("skipping cli_compile_json: the `compile` subcommand is not wired in yet");
        return;
    }
    let out = Command::new(exe)
        .current_dir(root)
        .args(["compile", "--format", "json", "nets/lenet5.net"])
        .output()
        .expect("netc runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "netc compile failed: {stderr}");
    let j: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(j["net"], "lenet5");
    assert_eq!(totals(&j)["params"], 61_706);
    assert_eq!(totals(&j)["macs"], 416_520);
    let text = Command::new(exe)
        .current_dir(root)
        .args(["compile", "nets/lenet5.net"])
        .output()
        .expect("netc runs");
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("61,706") && t.contains("LeNet-5"), "{t}");
    let ir = Command::new(exe)
        .current_dir(root)
        .args(["compile", "--emit", "ir", "nets/lenet5.net"])
        .output()
        .expect("netc runs");
    // The optimised IR: c1's convolution and its sigmoid are one fused group.
    let ir = String::from_utf8_lossy(&ir.stdout);
    assert!(
        ir.contains("%1 = group %0 {kind=contraction}")
            && ir.contains("conv2d %2, @c1/weight, @c1/bias"),
        "{ir}"
    );
}
