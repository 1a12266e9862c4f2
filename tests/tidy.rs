//! Habits the tests enforce (STYLE.md rule 14): every source file opens with a `//!` doc
//! saying what it is for, and no file grows past the size at which it should be split.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable folder").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_has_a_module_doc_and_a_sane_size() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("utf-8 source");
        let name = f.strip_prefix(root).unwrap_or(f).display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!("{name}: does not start with a `//!` module doc"));
        }
        let lines = text.lines().count();
        if lines > 1200 {
            problems.push(format!("{name}: {lines} lines; split it (STYLE.md: ~800)"));
        }
        if text.contains("dbg!(") {
            problems.push(format!("{name}: contains dbg!"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
