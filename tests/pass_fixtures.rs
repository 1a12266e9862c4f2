//! Snapshot tests of the optimisation passes, one insta snapshot per fixture file (found
//! by glob):
//!
//! - `fixtures/fuse/*.net`: the IR after lowering, then after each pass of the pipeline in
//!   order, with the rewrites it applied (`(unchanged)` when it applied none);
//! - `fixtures/memory/*.net`: the memory plan of the optimised net at batch 1
//!   (`netc compile --emit plan`) and at batch 2, whose figures must satisfy
//!   `lower_bound <= planned <= unplanned`, with every value's place inside the arena.
//!
//! Review every change (`cargo insta review`, or `INSTA_UPDATE=always cargo test` and a
//! look at the diff); CI fails on any difference.

mod common;

use common::{assert_spans_valid, rel, render_all};
use netc::diagnostics::SourceMap;
use netc::ir::graph::Graph;
use netc::passes::pipeline::{pipeline, PassOptions, RewriteLog};
use netc::passes::{compile, compile_with, plan_memory, CompileOptions};
use netc::syntax::loader::Program;
use std::fmt::Write as _;
use std::path::Path;

fn load(path: &Path) -> Program {
    let name = rel(path);
    let bytes = std::fs::read(path).expect("fixture is readable");
    let (program, diags) = netc::check_program(netc::syntax::loader::load_source_with(
        &name,
        &bytes,
        &netc::syntax::loader::DiskReader,
    ));
    assert!(
        !diags.has_errors(),
        "{name}:\n{}",
        render_all(&diags, &program.sources)
    );
    assert_spans_valid(&diags, &program.sources);
    program
}

fn dump(g: &Graph, sources: &SourceMap) -> String {
    netc::ir::print::graph(g, Some(sources))
}

#[test]
fn fuse() {
    insta::glob!("fixtures/fuse/*.net", |path| {
        let program = load(path);
        let mut graph = compile(&program, &CompileOptions::default())
            .expect("compiles")
            .graph;
        let mut out = format!("== lower ==\n{}", dump(&graph, &program.sources));
        let mut log = RewriteLog::new(None);
        for pass in pipeline() {
            let before = log.entries.len();
            let was = dump(&graph, &program.sources);
            pass.run(&mut graph, &mut log).expect("the pass runs");
            netc::passes::verify_after(&graph, pass.name());
            let now = dump(&graph, &program.sources);
            let applied = &log.entries[before..];
            if applied.is_empty() {
                assert_eq!(
                    was,
                    now,
                    "{}: `{}` changed the IR silently",
                    rel(path),
                    pass.name()
                );
                let _ = writeln!(out, "\n== {} == (unchanged)", pass.name());
            } else {
                let _ = writeln!(out, "\n== {} == {}\n{now}", pass.name(), applied.join(", "));
            }
        }
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(out);
        });
    });
}

#[test]
fn memory() {
    insta::glob!("fixtures/memory/*.net", |path| {
        let program = load(path);
        let mut out = String::new();
        for batch in [1, 2] {
            let opts = CompileOptions {
                net: None,
                batch: Some(batch),
            };
            let g = compile_with(&program, &opts, &PassOptions::default())
                .expect("compiles")
                .compiled
                .graph;
            let plan = plan_memory::plan(&g.body, batch).expect("sizes are known");
            assert!(
                plan.lower_bound_bytes <= plan.planned_peak_bytes
                    && plan.planned_peak_bytes
                        <= plan.unplanned_bytes + plan_memory::ALIGN * plan.values as u64,
                "{}: {plan:?}",
                rel(path)
            );
            for loc in plan.locations.values() {
                assert!(
                    loc.offset % plan_memory::ALIGN == 0
                        && loc.offset + loc.bytes <= plan.planned_peak_bytes,
                    "{}: {loc:?}",
                    rel(path)
                );
            }
            let _ = writeln!(
                out,
                "== batch {batch} ==\n{}",
                plan_memory::dump(&g.body, &plan)
            );
        }
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(out);
        });
    });
}

fn netc(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("netc runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `netc compile nets/googlenet.net --emit ir`: each of the nine inception modules is four
/// fused groups (one per branch, each ending in a conv with its relu) computed straight
/// into their slices of one in-place concat buffer, which copies nothing.
#[test]
fn googlenet_modules_are_fused_groups_writing_into_one_concat_buffer() {
    let ir = netc(&["compile", "nets/googlenet.net", "--emit", "ir"]);
    let top: Vec<&str> = ir.lines().filter(|l| l.starts_with('%')).collect();
    let modules = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"];
    for m in modules {
        let concat = format!("inception{m}/concat");
        let writers: Vec<&&str> = top
            .iter()
            .filter(|l| l.contains(&format!(" into {concat}[axis=1, ")))
            .collect();
        assert_eq!(writers.len(), 4, "{concat}: {writers:#?}");
        assert!(
            writers
                .iter()
                .all(|l| l.contains("= group ") && l.contains("{kind=contraction}")),
            "{concat}: {writers:#?}"
        );
        let line = top
            .iter()
            .find(|l| l.contains(&format!("// {concat} @")))
            .unwrap_or_else(|| panic!("no {concat} in\n{ir}"));
        assert!(line.contains("in_place=true"), "{line}");
    }
    // The first module's slices tile its 256 channels.
    for slice in ["0..64", "64..192", "192..224", "224..256"] {
        assert!(
            ir.contains(&format!("into inception3a/concat[axis=1, {slice}]")),
            "{slice}"
        );
    }
}

/// Kernels launched and arena bytes at batch 1, with no passes and with all of them:
/// the figures of `docs/passes.md` (the LSTM at `T = 16`).
#[test]
fn kernels_and_arena_bytes_before_and_after_the_passes() {
    let lstm16 =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("nets/lstm.net"))
            .expect("readable")
            .replace("i64[N, T]", "i64[N, 16]");
    let dir = std::env::temp_dir().join(format!("netc-kernels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let lstm_path = dir.join("lstm16.net");
    std::fs::write(&lstm_path, lstm16).expect("writable");
    let lstm = lstm_path.to_string_lossy().into_owned();
    let figures = |file: &str, passes: &str| -> (u64, u64, u64) {
        let j: serde_json::Value = serde_json::from_str(&netc(&[
            "compile", file, "--format", "json", "--passes", passes,
        ]))
        .expect("JSON");
        let t = &j["totals"];
        let n = |k: &str| {
            t[k].as_u64()
                .unwrap_or_else(|| panic!("{file}: {k} in {t}"))
        };
        (
            n("kernels"),
            n("planned_peak_bytes"),
            n("lower_bound_bytes"),
        )
    };
    let expected = [
        ("nets/googlenet.net", (140, 75), (4_816_896, 4_816_896)),
        ("nets/resnet50.net", (174, 57), (7_225_344, 5_218_304)),
        ("nets/vgg16.net", (36, 22), (25_690_112, 25_690_112)),
        (lstm.as_str(), (17, 5), (26_624, 26_624)),
    ];
    for (file, kernels, arena) in expected {
        let before = figures(file, "none");
        let after = figures(file, "all");
        assert_eq!((before.0, after.0), kernels, "{file}: kernels");
        assert_eq!((before.1, after.1), arena, "{file}: arena bytes");
        // Within 10% of the schedule-independent lower bound (at it for VGG-16).
        assert!(after.1 as f64 <= 1.1 * after.2 as f64, "{file}: {after:?}");
        if file.ends_with("vgg16.net") {
            assert_eq!(after.1, after.2, "VGG-16 is planned at its lower bound");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The built-in GRU (whose sizes stay symbolic): 18 kernels a step before, 5 after.
    for (passes, kernels) in [("none", 20), ("all", 7)] {
        let j: serde_json::Value = serde_json::from_str(&netc(&[
            "compile",
            "nets/gru.net",
            "--net",
            "gru",
            "--format",
            "json",
            "--passes",
            passes,
        ]))
        .expect("JSON");
        assert_eq!(j["totals"]["kernels"], kernels, "gru --passes {passes}");
    }
}

/// `netc compile --emit plan` lists values with their concat slices, and refuses a net
/// whose sizes are not all known; `netc run --executor interp|arena` give the same outputs.
#[test]
fn cli_plan_and_executors() {
    let plan = netc(&["compile", "nets/googlenet.net", "--emit", "plan"]);
    assert!(plan.starts_with("arena 4,816,896 bytes"), "{plan}");
    assert!(
        plan.contains("inception3a/b1/conv  nhwc  slice [axis 1, 0..64] of inception3a/concat"),
        "{plan}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["compile", "nets/lstm.net", "--emit", "plan"])
        .output()
        .expect("netc runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("executors");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let weights = dir.join("lenet5.safetensors");
    let weights = weights.to_string_lossy();
    netc(&["init", "nets/lenet5.net", "--output", &weights]);
    for executor in ["arena", "interp"] {
        let out = dir.join(format!("{executor}.npy"));
        netc(&[
            "run",
            "nets/lenet5.net",
            "--weights",
            &weights,
            "--input",
            "tests/data/camera.png",
            "--executor",
            executor,
            "--output",
            &out.to_string_lossy(),
        ]);
    }
    let read = |name: &str| -> ndarray::ArrayD<f32> {
        ndarray_npy::read_npy(dir.join(name)).expect("an f32 .npy output")
    };
    let (a, b) = (read("arena.npy"), read("interp.npy"));
    assert_eq!(a.shape(), b.shape());
    let worst = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-6, "arena and interp differ by {worst}");
}
