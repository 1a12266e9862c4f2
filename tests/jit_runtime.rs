//! The JIT's run time: one compile serves every sequence length (the sequence nets at
//! T = 1 and 7 equal the interpreter, from one `Compiled`), `--debug-bounds` code agrees
//! with plain code and reports nothing on correct nets, and bad token ids are errors that
//! name the layer. (Allocations and memory per call: `tests/jit_memory.rs`.)

#[path = "shared/nets.rs"]
mod nets;

use ndarray::{ArrayD, IxDyn};
use netc::codegen::{self, CodegenOptions};
use netc::ir::graph::Graph;
use netc::ir::op::Op;
use netc::ir::shape::Dim;
use netc::model::{Model, ModelOptions};
use netc::passes::pipeline::PassOptions;
use netc::passes::{compile, compile_with, CompileOptions};
use netc::runtime::{interp, Tensor};
use nets::{max_rel_diff, random_inputs_with, random_weights, shrunk_nets};
use std::collections::BTreeMap;

fn has_sequence(graph: &Graph) -> bool {
    graph
        .body
        .inputs
        .iter()
        .any(|id| match &graph.body.node(*id).op {
            Op::Input { ty, .. } => ty
                .shape
                .dims()
                .iter()
                .any(|d| matches!(d, Dim::Sym(p) if p.symbols().iter().any(|s| s != "N"))),
            _ => false,
        })
}

#[test]
fn sequence_nets_at_t1_and_t7_from_one_compile_with_and_without_bounds_checks() {
    let mut failures = Vec::new();
    let mut seen = 0;
    for n in shrunk_nets() {
        let opts = CompileOptions {
            net: Some(n.net.clone()),
            batch: None,
        };
        let lowered = compile(&n.program, &opts).expect("compiles").graph;
        if !has_sequence(&lowered) {
            continue;
        }
        seen += 1;
        let optimised = compile_with(&n.program, &opts, &PassOptions::default())
            .expect("compiles")
            .compiled
            .graph;
        let w = random_weights(&lowered, 3);
        for debug_bounds in [false, true] {
            let cg = CodegenOptions {
                debug_bounds,
                keep_clif: false,
                ..Default::default()
            };
            let compiled = codegen::compile(&optimised, &cg).expect("the JIT compiles it");
            let mut exe = compiled.bind(&w).expect("binds");
            for (batch, t) in [(1, 1), (3, 7), (2, 1), (1, 7)] {
                let inputs =
                    random_inputs_with(&lowered, &|s| if s == "N" { batch } else { t }, 5 + t);
                let want = interp::run(&lowered, &w, &inputs).expect("the interpreter runs");
                match exe.run(&inputs) {
                    Ok(got) => {
                        let d = max_rel_diff(&want, &got, &n.label);
                        if d > 1e-4 || d.is_nan() {
                            failures.push(format!(
                                "{} b{batch} T={t} bounds={debug_bounds}: rel diff {d:e}",
                                n.label
                            ));
                        }
                    }
                    Err(e) => failures.push(format!(
                        "{} b{batch} T={t} bounds={debug_bounds}: {e:?}",
                        n.label
                    )),
                }
            }
        }
    }
    assert!(seen >= 5, "only {seen} sequence nets found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_out_of_range_token_id_is_an_error_naming_the_layer() {
    let root = env!("CARGO_MANIFEST_DIR");
    let model = Model::load(
        &std::path::Path::new(root).join("nets/lstm.net"),
        &ModelOptions {
            passes: Some(PassOptions::default()),
            ..ModelOptions::default()
        },
    )
    .expect("loads");
    let w = model.init_weights(1);
    let compiled = model.compile(&CodegenOptions::default()).expect("compiles");
    let mut exe = compiled.bind(&w).expect("binds");
    let ids = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1i64, 65, 2]).expect("shape");
    let inputs = BTreeMap::from([("tokens".to_string(), Tensor::I64(ids))]);
    let e = exe.run(&inputs).expect_err("65 is past the 65-row table");
    let text = model.render(&e.diagnostic());
    assert!(text.contains("E0407") && text.contains("65"), "{text}");
    // The same executable still runs good ids afterwards.
    let ids = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1i64, 64, 2]).expect("shape");
    let inputs = BTreeMap::from([("tokens".to_string(), Tensor::I64(ids))]);
    assert!(exe.run(&inputs).is_ok());
}

/// A contraction whose fused epilogue reads both its output and a slice of it from index 0
/// (found by the random-net soak: it failed to compile with E0410).
#[test]
fn an_epilogue_reading_a_slice_of_its_contraction_compiles_and_agrees() {
    let src = "net random(x: f32[N, 2]) -> o1 {\n    v1 = x -> dense(3)\n    v2 = v1 -> slice(axis: 1, start: 0, end: 3)\n    o1 = add(v2, v1)\n}\n\nnet conv_case(x: f32[N, 3, 5, 5]) -> o1 {\n    v1 = x -> conv(4, kernel: 3)\n    v2 = v1 -> slice(axis: 1, start: 0, end: 2)\n    v3 = v1 -> slice(axis: 1, start: 0, end: 4)\n    o1 = add(v3, v1)\n    o2 = v2\n}\n";
    for net in ["random", "conv_case"] {
        let opts = |passes| ModelOptions {
            net: Some(net.to_string()),
            passes,
            ..ModelOptions::default()
        };
        let optimised = Model::from_source("slice.net", src, &opts(Some(PassOptions::default())))
            .expect("loads");
        let lowered = Model::from_source("slice.net", src, &opts(None)).expect("loads");
        let w = lowered.init_weights(3);
        let compiled = optimised
            .compile(&CodegenOptions::default())
            .expect("the JIT compiles it");
        let mut exe = compiled.bind(&w).expect("binds");
        for batch in [1, 3] {
            let inputs = random_inputs_with(&lowered.graph, &|_| batch, 9);
            let want = interp::run(&lowered.graph, &w, &inputs).expect("the interpreter runs");
            let got = exe.run(&inputs).expect("runs");
            let d = max_rel_diff(&want, &got, net);
            assert!(d <= 1e-4, "{net} b{batch}: rel diff {d:e}");
        }
    }
}
