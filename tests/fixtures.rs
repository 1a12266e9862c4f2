//! Snapshot tests over fixture files: one insta snapshot per `.net` file, found by glob.
//!
//! - `ok/*.net`: must check with no errors; the snapshot is the canonical pretty-print of the
//!   AST, which must itself parse back to the same print.
//! - `err/*.net`: must give at least one diagnostic; the snapshot holds the rendered
//!   diagnostics (no colour) and their JSON lines. Every span must lie inside its file on
//!   character boundaries.
//!
//! Accept reviewed changes with `cargo insta review`; CI fails on any difference.

mod common;

use common::{assert_spans_valid, rel, render_all};
use netc::diagnostics::{Code, Diagnostics, SourceMap};
use std::collections::BTreeSet;
use std::path::Path;

fn check(path: &Path) -> (SourceMap, Diagnostics) {
    let name = rel(path);
    let bytes = std::fs::read(path).expect("fixture is readable");
    let (program, diags) = netc::check_program(netc::syntax::loader::load_source_with(
        &name,
        &bytes,
        &netc::syntax::loader::DiskReader,
    ));
    (program.sources, diags)
}

#[test]
fn ok() {
    insta::glob!("fixtures/ok/*.net", |path| {
        let (sources, diags) = check(path);
        assert_spans_valid(&diags, &sources);
        assert!(
            !diags.has_errors(),
            "{} should check cleanly:\n{}",
            rel(path),
            render_all(&diags, &sources)
        );
        let text = std::fs::read_to_string(path).expect("utf-8 fixture");
        let mut sm = SourceMap::new();
        let f = sm.add(rel(path), text.clone());
        let module = netc::syntax::parser::parse(f, &text).expect("parses");
        let printed = netc::syntax::print::module(&module);
        let g = sm.add("printed", printed.clone());
        let again = netc::syntax::parser::parse(g, &printed).expect("the print parses back");
        assert_eq!(
            printed,
            netc::syntax::print::module(&again),
            "print is not a fixpoint"
        );
        let mut snap = format!("## AST\n{printed}");
        if !diags.is_empty() {
            snap.push('\n');
            snap.push_str(&render_all(&diags, &sources));
        }
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(snap);
        });
    });
}

#[test]
fn err() {
    insta::glob!("fixtures/err/*.net", |path| {
        let (sources, diags) = check(path);
        assert!(!diags.is_empty(), "{} should give a diagnostic", rel(path));
        assert_spans_valid(&diags, &sources);
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(render_all(&diags, &sources));
        });
    });
}

/// Every code is explained in docs/errors.md, in numeric order within its range; every
/// front-end code but `E0001` (an unreadable file, tested in tests/cli.rs) is produced by an
/// `err/` fixture, and every shape code by a `shape_err/` fixture, except the three that no
/// source text can produce on purpose: `E0316` (`--net` names no net: tests/figures.rs),
/// `E0317` (a net too large to expand) and `E0318` (an internal error). Runtime codes
/// (`E04xx`, `W04xx`) are exercised by tests/run.rs.
#[test]
fn every_code_is_documented_and_exercised() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md");
    let mut seen = BTreeSet::new();
    for suite in ["err", "shape_err"] {
        let dir = root.join("tests/fixtures").join(suite);
        for e in std::fs::read_dir(&dir).expect("fixture folder").flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "net") {
                continue;
            }
            let name = rel(&p);
            let bytes = std::fs::read(&p).expect("fixture is readable");
            let (program, diags) = netc::check_program(netc::syntax::loader::load_source_with(
                &name,
                &bytes,
                &netc::syntax::loader::DiskReader,
            ));
            seen.extend(diags.iter().map(|d| d.code));
            if !diags.has_errors() {
                if let Err(ds) = netc::passes::compile(&program, &Default::default()) {
                    seen.extend(ds.iter().map(|d| d.code));
                }
            }
        }
    }
    let documented: Vec<&str> = docs.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let mut missing_docs = Vec::new();
    let mut missing_fixture = Vec::new();
    for &code in Code::ALL {
        if !documented.contains(&code.as_str()) {
            missing_docs.push(code.as_str());
        }
        let c = code.as_str();
        let runtime = c.starts_with("E04") || c.starts_with("W04");
        let unreachable = matches!(
            code,
            Code::Io | Code::NetNotFound | Code::NetTooLarge | Code::InternalShapeError
        );
        if !runtime && !unreachable && !seen.contains(&code) {
            missing_fixture.push(c);
        }
    }
    assert!(
        missing_docs.is_empty(),
        "undocumented codes: {missing_docs:?}"
    );
    assert!(
        missing_fixture.is_empty(),
        "codes without a fixture: {missing_fixture:?}"
    );
    let mut sorted = documented.clone();
    sorted.sort_by_key(|c| (c.starts_with('W'), c.to_string()));
    assert_eq!(documented, sorted, "docs/errors.md lists codes in order");
}
