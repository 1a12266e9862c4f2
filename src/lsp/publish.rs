//! netc diagnostics → LSP diagnostics for one document.
//!
//! - The primary label gives the range; secondary labels become related information with
//!   their own locations (both branches of a bad add, the `(` that is never closed).
//! - The `help:` line and notes follow the message on lines of their own, as `netc check`
//!   prints them.
//! - A problem inside an imported file is shown on the `use` that brings the file in, with
//!   the real place as related information: editors only show a document's own diagnostics.

use super::analysis::Analysis;
use super::uri;
use crate::diagnostics::{Code, Diagnostic, FileId, Severity, Span};
use crate::syntax::ast::Item;
use lsp_types::{
    DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location, NumberOrString, Uri,
};
use std::path::Path;

/// The diagnostics of `analysis` to publish for the document `doc`.
pub fn diagnostics(analysis: &Analysis, doc: &Uri) -> Vec<lsp_types::Diagnostic> {
    analysis
        .diagnostics
        .iter()
        .map(|d| convert(analysis, doc, d))
        .collect()
}

fn convert(analysis: &Analysis, doc: &Uri, d: &Diagnostic) -> lsp_types::Diagnostic {
    let root = analysis.program.root;
    let mut related: Vec<DiagnosticRelatedInformation> = Vec::new();
    let (span, message) = if d.primary.span.file == root {
        (d.primary.span, d.message.clone())
    } else {
        let file = &analysis.program.sources.get(d.primary.span.file).name;
        related.push(info(
            analysis,
            doc,
            d.primary.span,
            &d.primary.message,
            &d.message,
        ));
        let at = import_site(analysis, d.primary.span.file).unwrap_or(Span::new(root, 0, 0));
        (at, format!("in imported file `{file}`: {}", d.message))
    };
    related.extend(
        d.secondary
            .iter()
            .map(|l| info(analysis, doc, l.span, &l.message, "related")),
    );
    let mut message = message;
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    for note in &d.notes {
        message.push_str("\nnote: ");
        message.push_str(note);
    }
    lsp_types::Diagnostic {
        range: analysis.range(span),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        code_description: None,
        source: Some("netc".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: matches!(d.code, Code::UnusedValue | Code::UnusedParameter)
            .then(|| vec![DiagnosticTag::UNNECESSARY]),
        data: None,
    }
}

/// Related information at `span`, saying `message` (or `fallback` when it is empty).
fn info(
    analysis: &Analysis,
    doc: &Uri,
    span: Span,
    message: &str,
    fallback: &str,
) -> DiagnosticRelatedInformation {
    DiagnosticRelatedInformation {
        location: Location::new(file_uri(analysis, doc, span.file), analysis.range(span)),
        message: if message.is_empty() {
            fallback.to_string()
        } else {
            message.to_string()
        },
    }
}

/// The URI of a file of the analysis: the document's own for its root, else from the path.
pub fn file_uri(analysis: &Analysis, doc: &Uri, file: FileId) -> Uri {
    if file == analysis.program.root {
        return doc.clone();
    }
    let name = &analysis.program.sources.get(file).name;
    uri::from_path(Path::new(name)).unwrap_or_else(|| doc.clone())
}

/// The path span of the root's first `use` through which `file` is imported.
fn import_site(analysis: &Analysis, file: FileId) -> Option<Span> {
    let module = analysis.module()?;
    module.items.iter().find_map(|item| {
        let Item::Use(u) = item else { return None };
        let id = analysis.file_of(&analysis.use_target(&u.path))?;
        reaches(&analysis.program, id, file).then_some(u.path_span)
    })
}

/// Whether `to` is `from` or imported from it, directly or not.
fn reaches(program: &crate::syntax::loader::Program, from: FileId, to: FileId) -> bool {
    let mut seen = vec![false; program.imports.len()];
    let mut stack = vec![from];
    while let Some(f) = stack.pop() {
        if f == to {
            return true;
        }
        let i = f.0 as usize;
        if i >= seen.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        stack.extend(program.imports[i].iter().copied());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::analysis::{analyse, OpenFiles};
    use super::super::incremental::ParseCache;
    use super::*;
    use std::str::FromStr;
    use std::sync::Arc;

    #[test]
    fn secondary_labels_become_related_information() {
        let doc = Uri::from_str("file:///m/a.net").expect("valid");
        let text = "net a(x: f32[N, 4]) -> y {\n    y = x -> dense(3\n";
        let a = analyse(
            "/m/a.net",
            1,
            text,
            &OpenFiles::new(),
            &mut ParseCache::new(),
        );
        let ds = diagnostics(&a, &doc);
        assert_eq!(ds.len(), 1, "{ds:?}");
        let d = &ds[0];
        assert_eq!(d.code, Some(NumberOrString::String("E0100".into())));
        assert!(d.message.contains("is not closed"), "{}", d.message);
        assert!(d.message.contains("\nhelp: "), "{}", d.message);
        let rel = d.related_information.as_ref().expect("related");
        assert_eq!(rel[0].location.uri, doc);
        assert_eq!(rel[0].location.range.start, lsp_types::Position::new(1, 18));
    }

    #[test]
    fn errors_in_imports_show_on_the_use() {
        let mut open = OpenFiles::new();
        open.insert(
            "/m/lib.net".into(),
            Arc::from("block b(c) { conv(c, kernel = 3) }"),
        );
        let doc = Uri::from_str("file:///m/a.net").expect("valid");
        let text = "// lib\nuse \"lib.net\"\nnet n(x: f32[N, 3, 8, 8]) -> y { y = x -> b(4) }";
        let a = analyse("/m/a.net", 1, text, &open, &mut ParseCache::new());
        let ds = diagnostics(&a, &doc);
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].range.start, lsp_types::Position::new(1, 4));
        assert!(
            ds[0].message.starts_with("in imported file `/m/lib.net`"),
            "{}",
            ds[0].message
        );
        let rel = ds[0].related_information.as_ref().expect("related");
        assert_eq!(rel[0].location.uri.as_str(), "file:///m/lib.net");
    }
}
