//! How long `netc compile` takes from the file to the layer table (target for
//! `nets/resnet152.net`: under 50 ms). Run with `cargo bench --bench compile` (the bench
//! has `harness = false`: it is a plain program timing with `std::time::Instant`).
//!
//! Each figure is the median (and worst) of 30 runs of: reading and parsing the file and
//! its imports, name resolution, lowering with shape inference (and the verifier, in
//! debug builds), and building and printing the layer table. Every other net of `nets/`
//! is timed once through the whole pipeline.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures and may stop on a broken set-up"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TARGET: Duration = Duration::from_millis(50);
const RUNS: usize = 30;

/// Times of one full compile, by stage.
#[derive(Clone, Copy, Default)]
struct Stages {
    parse: Duration,
    resolve: Duration,
    lower: Duration,
    table: Duration,
}

impl Stages {
    fn total(&self) -> Duration {
        self.parse + self.resolve + self.lower + self.table
    }
}

fn compile_once(path: &Path) -> Stages {
    let t0 = Instant::now();
    let loaded = netc::syntax::loader::load(path);
    let t1 = Instant::now();
    let (program, diags) = netc::check_program(loaded);
    assert!(!diags.has_errors(), "{} does not check", path.display());
    let t2 = Instant::now();
    let compiled = netc::passes::compile(&program, &netc::passes::CompileOptions::default())
        .unwrap_or_else(|_| panic!("{} does not compile", path.display()));
    let t3 = Instant::now();
    let text = netc::report::table::text(&compiled.report);
    assert!(!text.is_empty());
    let t4 = Instant::now();
    Stages {
        parse: t1 - t0,
        resolve: t2 - t1,
        lower: t3 - t2,
        table: t4 - t3,
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let resnet = root.join("nets/resnet152.net");
    compile_once(&resnet); // warm the file cache
    let runs: Vec<Stages> = (0..RUNS).map(|_| compile_once(&resnet)).collect();
    let stage = |f: fn(&Stages) -> Duration| median(runs.iter().map(f).collect());
    let total = stage(Stages::total);
    let worst = runs.iter().map(Stages::total).max().unwrap();
    println!("nets/resnet152.net, median of {RUNS} runs:");
    println!("  read + parse   {}", ms(stage(|s| s.parse)));
    println!("  resolve        {}", ms(stage(|s| s.resolve)));
    println!("  lower + shapes {}", ms(stage(|s| s.lower)));
    println!("  layer table    {}", ms(stage(|s| s.table)));
    println!(
        "  total          {} (worst {}; target {})",
        ms(total),
        ms(worst),
        ms(TARGET)
    );
    let mut nets: Vec<PathBuf> = std::fs::read_dir(root.join("nets"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "net"))
        .collect();
    nets.sort();
    println!("every net, one run each:");
    for p in nets {
        let s = compile_once(&p);
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("  {name:<24} {}", ms(s.total()));
    }
    if total > TARGET {
        println!("SLOW: resnet152 took {} (target {})", ms(total), ms(TARGET));
        std::process::exit(1);
    }
}
