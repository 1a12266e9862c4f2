//! `netc bench FILE`: compiles a net to native code and times it on random inputs of its
//! declared types — compile time, latency per run (median, min, max over `--iters` after
//! `--warmup`), GFLOP/s (2 × MACs / time) and the arena's size; with `--compare BACKEND`,
//! the same inputs run on the other backend too, iterations interleaved with the JIT's
//! (this machine is noisy), and the ratio of medians is printed.

use super::output::say;
use crate::codegen::CodegenOptions;
use crate::model::{Backend, Model, ModelOptions};
use crate::passes::pipeline::{PassOptions, PassSelection};
use crate::runtime::Tensor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// How `netc bench` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum BenchFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object.
    Json,
}

/// Arguments of `netc bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The .net file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The net (default: the last net of the file).
    #[arg(long, value_name = "NAME")]
    pub net: Option<String>,
    /// The batch size `N`.
    #[arg(long, value_name = "B", default_value_t = 1)]
    pub batch: u64,
    /// Another symbolic size, as `NAME=VALUE` (`--size T=35`); repeatable.
    #[arg(long = "size", value_name = "NAME=VALUE")]
    pub sizes: Vec<String>,
    /// Timed iterations.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub iters: usize,
    /// Untimed iterations first.
    #[arg(long, value_name = "W", default_value_t = 3)]
    pub warmup: usize,
    /// Also time this backend on the same inputs, interleaved with the JIT.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub compare: Option<Backend>,
    /// Which optimisation passes run (as `netc compile --passes`).
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub passes: String,
    /// Seed of the random weights and inputs.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Also time every kernel (a second, instrumented compile): time per run, share and
    /// GFLOP/s by kernel, slowest first.
    #[arg(long)]
    pub profile: bool,
    /// How to print.
    #[arg(long, value_enum, default_value_t)]
    pub format: BenchFormat,
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Runs the benchmark; returns the exit code (0, 1 errors in the net or its run, 2 usage).
pub fn run(args: &BenchArgs) -> i32 {
    let selection = match PassSelection::parse(&args.passes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --passes: {e}");
            return 2;
        }
    };
    let mut sizes = BTreeMap::from([("N".to_string(), args.batch)]);
    for s in &args.sizes {
        match s
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim().parse::<u64>()))
        {
            Some((k, Ok(v))) if !k.is_empty() => {
                sizes.insert(k.to_string(), v);
            }
            _ => {
                eprintln!("error: --size `{s}`: expected NAME=VALUE with a whole number");
                return 2;
            }
        }
    }
    let opts = ModelOptions {
        net: args.net.clone(),
        batch: None,
        passes: Some(PassOptions {
            selection,
            ..PassOptions::default()
        }),
    };
    let model = match Model::load(&args.file, &opts) {
        Ok(m) => m,
        Err(e) => {
            eprint!("{}", e.render());
            return if e.is_io() { 2 } else { 1 };
        }
    };
    let fail = |d: &crate::diagnostics::Diagnostic| {
        eprint!("{}", model.render(d));
        1
    };
    let inputs = match model.random_inputs(&sizes, args.seed) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let w = model.init_weights(args.seed);
    let compiled = match model.compile(&CodegenOptions::default()) {
        Ok(c) => c,
        Err(d) => return fail(&d),
    };
    let mut exe = match compiled.bind(&w) {
        Ok(x) => x,
        Err(e) => return fail(&e.diagnostic()),
    };
    let mut out: BTreeMap<String, Tensor> = BTreeMap::new();
    let other = |inputs: &BTreeMap<String, Tensor>| -> Result<(), crate::runtime::RunError> {
        match args.compare {
            Some(Backend::Interp) => {
                crate::runtime::interp::run(&model.graph, &w, inputs).map(drop)
            }
            Some(Backend::Arena) => crate::runtime::arena::run(&model.graph, &w, inputs).map(drop),
            Some(Backend::Jit) | None => Ok(()),
        }
    };
    for _ in 0..args.warmup.max(1) {
        if let Err(e) = exe.run_into(&inputs, &mut out) {
            return fail(&e.diagnostic());
        }
        if let Err(e) = other(&inputs) {
            return fail(&e.diagnostic());
        }
    }
    let mut jit = Vec::with_capacity(args.iters);
    let mut cmp = Vec::with_capacity(args.iters);
    for _ in 0..args.iters.max(1) {
        let t = Instant::now();
        if let Err(e) = exe.run_into(&inputs, &mut out) {
            return fail(&e.diagnostic());
        }
        jit.push(t.elapsed().as_secs_f64() * 1e3);
        if args.compare.is_some_and(|b| b != Backend::Jit) {
            let t = Instant::now();
            if let Err(e) = other(&inputs) {
                return fail(&e.diagnostic());
            }
            cmp.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let profile = if args.profile {
        match profile_rows(&model, &w, &inputs, &sizes, args.iters.max(1)) {
            Ok(p) => Some(p),
            Err(d) => return fail(&d),
        }
    } else {
        None
    };
    let min = jit.iter().copied().fold(f64::INFINITY, f64::min);
    let max = jit.iter().copied().fold(0.0, f64::max);
    let med = median(&mut jit);
    let macs = model.macs_at(&sizes);
    let gflops = macs.map(|m| 2.0 * m as f64 / (med * 1e-3) / 1e9);
    let arena = exe.arena_bytes().unwrap_or(0);
    let cmed = (!cmp.is_empty()).then(|| median(&mut cmp));
    let stats = compiled.stats;
    match args.format {
        BenchFormat::Json => {
            let mut j = serde_json::json!({
                "net": model.graph.name,
                "batch": args.batch,
                "sizes": sizes,
                "threads": 1,
                "compile_ms": stats.compile_ms,
                "functions": stats.functions,
                "code_bytes": stats.code_bytes,
                "median_ms": med,
                "min_ms": min,
                "max_ms": max,
                "iters": args.iters,
                "gflops": gflops,
                "arena_bytes": arena,
            });
            if let Some(p) = &profile {
                j["profile"] = serde_json::Value::Array(
                    p.iter()
                        .map(|r| {
                            serde_json::json!({"kernel": r.kernel, "layer": r.layer,
                                "algorithm": r.algorithm, "ms": r.ms, "gflops": r.gflops})
                        })
                        .collect(),
                );
            }
            if let (Some(b), Some(c)) = (args.compare, cmed) {
                j["compare"] = serde_json::json!({
                    "backend": format!("{b:?}").to_lowercase(),
                    "median_ms": c,
                    "speedup": c / med,
                });
            }
            say!("{j}");
        }
        BenchFormat::Text => {
            say!("net {}  batch {}  threads 1", model.graph.name, args.batch);
            say!(
                "compile     {:.1} ms ({} functions, {} bytes of machine code)",
                stats.compile_ms,
                stats.functions,
                stats.code_bytes
            );
            say!(
                "latency     median {:.4} ms  min {:.4}  max {:.4}  ({} iterations)",
                med,
                min,
                max,
                args.iters
            );
            if let Some(g) = gflops {
                say!("throughput  {g:.2} GFLOP/s");
            }
            say!("arena       {arena} bytes");
            if let Some(p) = &profile {
                let total: f64 = p.iter().map(|r| r.ms).sum();
                say!("profile (per run, slowest first; instrumented compile):");
                say!(
                    "  {:>9} {:>6} {:>8}  {:<24} {:<32} algorithm",
                    "ms",
                    "%",
                    "GFLOP/s",
                    "kernel",
                    "layer"
                );
                for r in p {
                    let g = r.gflops.map_or("–".to_string(), |g| format!("{g:.1}"));
                    say!(
                        "  {:>9.4} {:>5.1}% {:>8}  {:<24} {:<32} {}",
                        r.ms,
                        100.0 * r.ms / total.max(1e-12),
                        g,
                        r.kernel,
                        r.layer,
                        r.algorithm
                    );
                }
            }
            if let (Some(b), Some(c)) = (args.compare, cmed) {
                say!(
                    "{:<11} median {c:.4} ms: the JIT is {:.1}x faster",
                    format!("{b:?}").to_lowercase(),
                    c / med
                );
            }
        }
    }
    0
}

/// One kernel's share of a profiled run.
struct ProfileRow {
    kernel: String,
    layer: String,
    algorithm: String,
    /// Milliseconds per run.
    ms: f64,
    gflops: Option<f64>,
}

/// Compiles the net with every kernel timed, runs it `iters` times, and returns the
/// kernels slowest first.
fn profile_rows(
    model: &Model,
    w: &crate::runtime::weights::Weights,
    inputs: &BTreeMap<String, Tensor>,
    sizes: &BTreeMap<String, u64>,
    iters: usize,
) -> Result<Vec<ProfileRow>, Box<crate::diagnostics::Diagnostic>> {
    let compiled = model.compile(&CodegenOptions {
        profile: true,
        ..CodegenOptions::default()
    })?;
    let diag = |e: crate::runtime::RunError| Box::new(e.diagnostic());
    let mut exe = compiled.bind(w).map_err(diag)?;
    let mut out = BTreeMap::new();
    exe.run_into(inputs, &mut out).map_err(diag)?;
    exe.reset_profile();
    for _ in 0..iters {
        exe.run_into(inputs, &mut out).map_err(diag)?;
    }
    let mut rows: Vec<ProfileRow> = compiled
        .kernels
        .iter()
        .zip(exe.profile())
        .map(|(k, ns)| {
            let ms = *ns as f64 / 1e6 / iters as f64;
            let macs = k.macs.as_ref().and_then(|m| {
                let mut q = m.checked_mul(&crate::ir::shape::Poly::symbol("N"))?;
                for s in q.symbols() {
                    q = q.substitute(&s, i64::try_from(*sizes.get(&s)?).ok()?)?;
                }
                q.as_const().filter(|v| *v > 0)
            });
            ProfileRow {
                kernel: k.name.clone(),
                layer: k.layer.clone(),
                algorithm: k.algorithm.clone(),
                ms,
                gflops: macs.map(|m| 2.0 * m as f64 / (ms * 1e-3) / 1e9),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    Ok(rows)
}
