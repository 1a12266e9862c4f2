//! Rendering diagnostics: for people (through ariadne) and as JSON lines for editors and CI.
//! This is the only module that uses ariadne.

use super::{Diagnostic, Label, Severity, SourceMap, Span};
use ariadne::{Config, IndexType, Report, ReportKind};
use serde::Serialize;

/// Options for human-readable rendering.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    /// Emit ANSI colour codes.
    pub color: bool,
}

/// Renders `diag` for a terminal. Never fails: a diagnostic that cannot be drawn (which would
/// be a bug) falls back to a plain one-line form.
pub fn human(diag: &Diagnostic, sources: &SourceMap, opts: RenderOptions) -> String {
    if sources.get(diag.primary.span.file).text.is_empty() && diag.secondary.is_empty() {
        // Nothing to show (an unreadable or empty file): one line says it all.
        let mut s = format!("{}\n", plain(diag, sources));
        for note in &diag.notes {
            for (i, line) in note.lines().enumerate() {
                let lead = if i == 0 { "  note: " } else { "        " };
                s.push_str(&format!("{lead}{line}\n"));
            }
        }
        if let Some(help) = &diag.help {
            s.push_str(&format!("  help: {help}\n"));
        }
        return s;
    }
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let name = |span: Span| sources.get(span.file).name.clone();
    let primary = &diag.primary;
    let config = Config::default()
        .with_color(opts.color)
        .with_index_type(IndexType::Byte);
    let mut report = Report::build(kind, (name(primary.span), primary.span.range()))
        .with_config(config)
        .with_code(diag.code.as_str())
        .with_message(&diag.message)
        .with_label(ariadne_label(primary, &name, 0));
    for (i, label) in diag.secondary.iter().enumerate() {
        report = report.with_label(ariadne_label(label, &name, i + 1));
    }
    for note in &diag.notes {
        report = report.with_note(note);
    }
    if let Some(help) = &diag.help {
        report = report.with_help(help);
    }
    let cache = ariadne::sources(
        sources
            .iter()
            .map(|(_, f)| (f.name.clone(), f.text.clone())),
    );
    let mut out = Vec::new();
    match report.finish().write(cache, &mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => plain(diag, sources),
    }
}

fn ariadne_label(
    label: &Label,
    name: &impl Fn(Span) -> String,
    order: usize,
) -> ariadne::Label<(String, std::ops::Range<usize>)> {
    let mut l = ariadne::Label::new((name(label.span), label.span.range()))
        .with_order(order as i32)
        .with_priority(if order == 0 { 1 } else { 0 });
    if !label.message.is_empty() {
        l = l.with_message(&label.message);
    }
    l
}

/// A one-line form: `file:line:col: error[E0201]: message`.
pub fn plain(diag: &Diagnostic, sources: &SourceMap) -> String {
    let f = sources.get(diag.primary.span.file);
    let lc = f.line_col(diag.primary.span.start as usize);
    format!(
        "{}:{}:{}: {}[{}]: {}",
        f.name,
        lc.line,
        lc.column,
        diag.severity.as_str(),
        diag.code,
        diag.message
    )
}

/// A span in JSON: byte offsets plus 1-based lines and columns (columns count characters).
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct JsonSpan {
    /// File the span is in.
    pub file: String,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
    /// 1-based line of `start`.
    pub line: usize,
    /// 1-based column of `start`.
    pub column: usize,
    /// 1-based line of `end`.
    pub end_line: usize,
    /// 1-based column of `end`.
    pub end_column: usize,
}

/// A label in JSON.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct JsonLabel {
    /// Where.
    pub span: JsonSpan,
    /// What is there.
    pub message: String,
}

/// A diagnostic in JSON, one object per line in `--message-format json`.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct JsonDiagnostic {
    /// File of the primary span.
    pub file: String,
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Stable code such as `E0201`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The offending place.
    pub span: JsonSpan,
    /// The primary label's message.
    pub label: String,
    /// Related places.
    pub labels: Vec<JsonLabel>,
    /// How to fix it, or null.
    pub help: Option<String>,
    /// Further facts.
    pub notes: Vec<String>,
}

/// Converts a span for JSON output.
pub fn json_span(span: Span, sources: &SourceMap) -> JsonSpan {
    let f = sources.get(span.file);
    let a = f.line_col(span.start as usize);
    let b = f.line_col(span.end as usize);
    JsonSpan {
        file: f.name.clone(),
        start: span.start,
        end: span.end,
        line: a.line,
        column: a.column,
        end_line: b.line,
        end_column: b.column,
    }
}

/// The JSON form of `diag`.
pub fn to_json(diag: &Diagnostic, sources: &SourceMap) -> JsonDiagnostic {
    JsonDiagnostic {
        file: sources.get(diag.primary.span.file).name.clone(),
        severity: diag.severity.as_str(),
        code: diag.code.as_str(),
        message: diag.message.clone(),
        span: json_span(diag.primary.span, sources),
        label: diag.primary.message.clone(),
        labels: diag
            .secondary
            .iter()
            .map(|l| JsonLabel {
                span: json_span(l.span, sources),
                message: l.message.clone(),
            })
            .collect(),
        help: diag.help.clone(),
        notes: diag.notes.clone(),
    }
}

/// `diag` as one line of JSON (no trailing newline).
pub fn json_line(diag: &Diagnostic, sources: &SourceMap) -> String {
    // Serialising a struct of strings and integers cannot fail.
    serde_json::to_string(&to_json(diag, sources)).unwrap_or_default()
}
