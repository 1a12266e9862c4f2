//! The JIT against the reference interpreter on every net of `nets/` at full size, in one
//! run: compile time, latency per inference (median of interleaved runs: JIT, interpreter,
//! JIT, …; excluding process start and weight loading) and the largest difference of the
//! outputs relative to the largest reference magnitude.
//!
//! `cargo bench --bench jit` (all nets), `cargo bench --bench jit -- lenet5 lstm` (some).
//! Batch 1; sequence nets at T = 35 (and U = 35), `filters` at 224x224. Weights and inputs
//! are random and deterministic (`--seed 0`).

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use netc::codegen::CodegenOptions;
use netc::model::{Model, ModelOptions};
use netc::passes::pipeline::PassOptions;
use netc::runtime::{interp, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn max_rel(want: &BTreeMap<String, Tensor>, got: &BTreeMap<String, Tensor>) -> f64 {
    let mut worst: f64 = 0.0;
    for (k, w) in want {
        if let (Tensor::F32(a), Some(Tensor::F32(b))) = (w, got.get(k)) {
            let scale = a
                .iter()
                .fold(0f64, |m, x| m.max(f64::from(x.abs())))
                .max(1e-30);
            let d = a
                .iter()
                .zip(b.iter())
                .fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs())));
            worst = worst.max(d / scale);
        }
    }
    worst
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(root.join("nets"))
        .expect("nets/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .collect();
    files.sort();
    println!(
        "| net | compile ms | functions | JIT ms | interpreter ms | speed-up | max rel diff |"
    );
    println!("|---|---|---|---|---|---|---|");
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !filter.is_empty() && !filter.contains(&stem) {
            continue;
        }
        let optimised = Model::load(
            &path,
            &ModelOptions {
                passes: Some(PassOptions::default()),
                ..ModelOptions::default()
            },
        )
        .expect("loads");
        let lowered = Model::load(&path, &ModelOptions::default()).expect("loads");
        let sizes = BTreeMap::from([
            ("N".to_string(), 1),
            ("T".to_string(), 35),
            ("U".to_string(), 35),
            ("H".to_string(), 224),
            ("W".to_string(), 224),
        ]);
        let inputs = match optimised.random_inputs(&sizes, 0) {
            Ok(i) => i,
            Err(e) => {
                println!("| {stem} | – | – | – | – | – | {e} |");
                continue;
            }
        };
        let w = optimised.init_weights(0);
        let t = Instant::now();
        let compiled = optimised
            .compile(&CodegenOptions::default())
            .expect("compiles");
        let compile_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut exe = compiled.bind(&w).expect("binds");
        let mut out = BTreeMap::new();
        exe.run_into(&inputs, &mut out).expect("runs");
        let want = interp::run(&lowered.graph, &w, &inputs).expect("the interpreter runs");
        let diff = max_rel(&want, &out);
        // Interleaved: enough iterations for about a second of interpreter time.
        let t = Instant::now();
        let _ = interp::run(&lowered.graph, &w, &inputs);
        let one = t.elapsed().as_secs_f64();
        let iters = ((1.0 / one) as usize).clamp(3, 50);
        let (mut jit, mut reference) = (Vec::new(), Vec::new());
        for _ in 0..iters {
            let t = Instant::now();
            exe.run_into(&inputs, &mut out).expect("runs");
            jit.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let _ = interp::run(&lowered.graph, &w, &inputs);
            reference.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (j, r) = (median(jit), median(reference));
        println!(
            "| {stem} | {compile_ms:.1} | {} | {j:.3} | {r:.3} | {:.1}x | {diff:.1e} |",
            compiled.stats.functions,
            r / j
        );
    }
}
