//! Helpers shared by the fixture harnesses (`tests/fixtures.rs`, `tests/shape_fixtures.rs`).

use netc::diagnostics::{render, Diagnostics, SourceMap};
use std::path::Path;

/// The path of a fixture relative to the crate root, with forward slashes.
pub fn rel(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

pub fn assert_spans_valid(diags: &Diagnostics, sources: &SourceMap) {
    for d in diags {
        for l in std::iter::once(&d.primary).chain(&d.secondary) {
            let text = &sources.get(l.span.file).text;
            assert!(l.span.start <= l.span.end, "{d:?}");
            assert!(
                (l.span.end as usize) <= text.len(),
                "span past the end: {d:?}"
            );
            assert!(text.is_char_boundary(l.span.start as usize), "{d:?}");
            assert!(text.is_char_boundary(l.span.end as usize), "{d:?}");
        }
    }
}

pub fn render_all(diags: &Diagnostics, sources: &SourceMap) -> String {
    let mut out = String::from("## Diagnostics\n");
    for d in diags {
        out.push_str(&render::human(
            d,
            sources,
            render::RenderOptions { color: false },
        ));
    }
    out.push_str("\n## JSON\n");
    for d in diags {
        let line = render::json_line(d, sources);
        let _: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        out.push_str(&line);
        out.push('\n');
    }
    out
}
