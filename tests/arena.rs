//! The optimised IR, run in its planned arena, computes what the lowered IR computes: for
//! every net of `nets/` (shrunk as in `tests/onnx.rs`), with random weights (batch-norm
//! statistics included) and inputs, the arena executor's outputs after all passes, and
//! after all passes but one (each pass switched off in turn), equal the reference
//! interpreter's outputs on the lowered net within 1e-5 relative.

#[path = "shared/nets.rs"]
mod nets;

use netc::passes::pipeline::{pass_names, PassOptions, PassSelection};
use netc::passes::{compile, compile_with, CompileOptions};
use netc::runtime::{arena, interp};
use nets::{max_rel_diff, random_inputs, random_weights, shrunk_nets};

/// The largest relative difference accepted.
const TOLERANCE: f64 = 1e-5;

/// `(label, worst relative difference)` of every net under `selection`, at `batches`.
fn check(selection: &PassSelection, batches: &[u64], what: &str) -> Vec<String> {
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
        let w = random_weights(&lowered, 7);
        for &batch in batches {
            let inputs = random_inputs(&lowered, batch, 11 + batch);
            let want = interp::run(&lowered, &w, &inputs).expect("the interpreter runs");
            let got = match arena::run(&optimised, &w, &inputs) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{} [{what}] b{batch}: {e:?}", n.label));
                    continue;
                }
            };
            let d = max_rel_diff(&want, &got, &n.label);
            if d > TOLERANCE {
                failures.push(format!("{} [{what}] b{batch}: rel diff {d:e}", n.label));
            }
        }
    }
    failures
}

#[test]
fn every_net_runs_identically_with_all_passes_in_the_arena() {
    let failures = check(&PassSelection::all(), &[1, 3], "all passes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_net_runs_identically_with_each_pass_switched_off() {
    let mut failures = Vec::new();
    for pass in pass_names() {
        failures.extend(check(
            &PassSelection::all_but(pass),
            &[2],
            &format!("-{pass}"),
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_net_runs_identically_in_the_arena_without_passes() {
    let failures = check(&PassSelection::none(), &[2], "no passes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
