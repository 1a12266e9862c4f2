//! What the optimisation pipeline costs at compile time: for a few big nets, the median of
//! 15 runs of lowering alone (`passes::compile`) against lowering plus every pass and the
//! memory plan (`passes::compile_with`), both from a checked program, and their ratio
//! (the ratio is the figure to compare across machines). Run with
//! `cargo bench --bench passes`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures and may stop on a broken set-up"
)]

use netc::passes::pipeline::PassOptions;
use netc::passes::{compile, compile_with, CompileOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!(
        "{:<16} {:>10} {:>14} {:>7} {:>9} {:>9}",
        "net", "lower", "lower+passes", "ratio", "kernels", "rewrites"
    );
    for net in ["googlenet", "inception_v3", "resnet152", "vgg16", "lstm"] {
        let path = root.join(format!("nets/{net}.net"));
        let (program, diags) = netc::check_program(netc::syntax::loader::load(&path));
        assert!(!diags.has_errors(), "{net} does not check");
        let opts = CompileOptions::default();
        let time = |f: &dyn Fn()| {
            f();
            median(
                (0..RUNS)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed()
                    })
                    .collect(),
            )
        };
        let lower = time(&|| {
            compile(&program, &opts).unwrap();
        });
        let all = time(&|| {
            compile_with(&program, &opts, &PassOptions::default()).unwrap();
        });
        let o = compile_with(&program, &opts, &PassOptions::default()).unwrap();
        println!(
            "{:<16} {:>7.2} ms {:>11.2} ms {:>6.2}x {:>9} {:>9}",
            net,
            lower.as_secs_f64() * 1e3,
            all.as_secs_f64() * 1e3,
            all.as_secs_f64() / lower.as_secs_f64(),
            o.compiled.report.totals.kernels,
            o.pipeline.log.entries.len()
        );
    }
}
