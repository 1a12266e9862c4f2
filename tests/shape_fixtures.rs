//! Snapshot tests of lowering and shape inference, one insta snapshot per fixture file
//! (found by glob, never listed by hand):
//!
//! - `fixtures/shape_err/*.net`: must pass name resolution and then fail to compile with
//!   at least one error; the snapshot holds the rendered diagnostics (no colour) and their
//!   JSON lines. Every span must lie inside its file on character boundaries.
//! - `fixtures/ir/*.net`: must compile with no errors (the verifier runs inside
//!   `compile` in test builds); the snapshot holds the IR dump and the layer table.
//!
//! Accept reviewed changes with `cargo insta review` (or `INSTA_UPDATE=always cargo test`
//! and a look at the diff); CI fails on any difference.

mod common;

use common::{assert_spans_valid, rel, render_all};
use netc::diagnostics::{Diagnostics, SourceMap};
use netc::passes::{compile, CompileOptions, Compiled};
use std::path::Path;

/// Loads, checks and compiles a fixture. `Err` holds the diagnostics of whichever stage
/// failed.
fn run(path: &Path) -> (SourceMap, Result<Compiled, Diagnostics>) {
    let name = rel(path);
    let bytes = std::fs::read(path).expect("fixture is readable");
    let (program, diags) = netc::check_program(netc::syntax::loader::load_source_with(
        &name,
        &bytes,
        &netc::syntax::loader::DiskReader,
    ));
    if diags.has_errors() {
        let text = render_all(&diags, &program.sources);
        panic!("{name} must pass name resolution (shape fixtures test lowering):\n{text}");
    }
    let result = compile(&program, &CompileOptions::default());
    (program.sources, result)
}

#[test]
fn shape_err() {
    insta::glob!("fixtures/shape_err/*.net", |path| {
        let (sources, result) = run(path);
        let diags = match result {
            Ok(_) => panic!("{} should fail to compile", rel(path)),
            Err(d) => d,
        };
        assert!(diags.has_errors(), "{}: no error reported", rel(path));
        assert_spans_valid(&diags, &sources);
        for d in &diags {
            assert!(
                d.help.is_some() || !d.notes.is_empty(),
                "{}: `{}` has no help",
                rel(path),
                d.message
            );
        }
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(render_all(&diags, &sources));
        });
    });
}

#[test]
fn ir() {
    insta::glob!("fixtures/ir/*.net", |path| {
        let (sources, result) = run(path);
        let compiled = match result {
            Ok(c) => c,
            Err(d) => panic!(
                "{} should compile:\n{}",
                rel(path),
                render_all(&d, &sources)
            ),
        };
        let mut out = String::from("## IR\n");
        out.push_str(&netc::ir::print::graph(&compiled.graph, Some(&sources)));
        out.push_str("\n## Layer table\n");
        out.push_str(&netc::report::table::text(&compiled.report));
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(out);
        });
    });
}
