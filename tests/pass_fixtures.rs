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

use common::{rel, render_all};
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
                assert_eq!(was, now, "{}: `{}` changed the IR silently", rel(path), pass.name());
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
            let _ = writeln!(out, "== batch {batch} ==\n{}", plan_memory::dump(&g.body, &plan));
        }
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(out);
        });
    });
}
