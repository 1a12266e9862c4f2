//! The JIT computes what the reference interpreter computes: for every net of `nets/`
//! (shrunk as in `tests/onnx.rs`), with random weights and inputs, the native code's
//! outputs equal the interpreter's on the lowered net within 1e-4 relative (max |Δ| /
//! max |ref|), with all passes and with none, at batch 1 and 3 (sequence nets at T = 1
//! and 7: `tests/jit_runtime.rs`), with the host GEMM engine and with the portable
//! Cranelift contractions.

#[path = "shared/nets.rs"]
mod nets;

use netc::codegen::{self, CodegenOptions};
use netc::passes::pipeline::{PassOptions, PassSelection};
use netc::passes::{compile, compile_with, CompileOptions};
use netc::runtime::interp;
use nets::{max_rel_diff, random_inputs, random_weights, shrunk_nets};

/// The largest relative difference accepted.
const TOLERANCE: f64 = 1e-4;

fn check(selection: &PassSelection, what: &str, portable: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for n in shrunk_nets() {
        let opts = CompileOptions {
            net: Some(n.net.clone()),
            batch: None,
        };
        let lowered = compile(&n.program, &opts).expect("compiles").graph;
        let popts = PassOptions {
            selection: selection.clone(),
            ..PassOptions::default()
        };
        let optimised = compile_with(&n.program, &opts, &popts)
            .expect("compiles")
            .compiled
            .graph;
        let cg = CodegenOptions {
            portable_contractions: portable,
            ..Default::default()
        };
        let compiled = match codegen::compile(&optimised, &cg) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{} [{what}]: compile: {e}", n.label));
                continue;
            }
        };
        let w = random_weights(&lowered, 7);
        let mut exe = match compiled.bind(&w) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{} [{what}]: bind: {e:?}", n.label));
                continue;
            }
        };
        for &batch in &[1u64, 3] {
            let inputs = random_inputs(&lowered, batch, 11 + batch);
            let want = interp::run(&lowered, &w, &inputs).expect("the interpreter runs");
            let got = match exe.run(&inputs) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{} [{what}] b{batch}: {e:?}", n.label));
                    continue;
                }
            };
            let d = max_rel_diff(&want, &got, &n.label);
            if d > TOLERANCE || d.is_nan() {
                failures.push(format!("{} [{what}] b{batch}: rel diff {d:e}", n.label));
            }
        }
    }
    failures
}

#[test]
fn every_net_runs_natively_as_the_interpreter_with_all_passes() {
    let failures = check(&PassSelection::all(), "all passes", false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_net_runs_natively_as_the_interpreter_without_passes() {
    let failures = check(&PassSelection::none(), "no passes", false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The portable Cranelift loop nest for contractions (the fallback of the host GEMM
/// engine, and its cross-check) on every net.
#[test]
fn every_net_runs_natively_as_the_interpreter_with_portable_contractions() {
    let failures = check(&PassSelection::all(), "portable contractions", true);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
