//! Completion of layer, block, cell, constant and value names, of argument names inside a
//! call, of symbols (`same`, `last`, …) after an argument's `:`, of top-level keywords, and
//! of file names inside `use "…"`.
//!
//! The context is read from the document's *current* text by a small scan (the text being
//! typed rarely parses), and the names come from the last analysis whose text parsed, so that
//! blocks of the file and its imports stay offered while a line is half written.

use super::analysis::Analysis;
use super::hover::{self, default_words};
use super::index::{self, Role};
use super::position::text_position;
use crate::syntax::ast::Item;
use crate::syntax::builtins::{self, ArgTy, LayerSig};
use lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind};
use std::path::Path;

/// Where the cursor is, as far as completion cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    /// In a comment, or a string other than a `use` path: nothing to offer.
    Nothing,
    /// Outside every item: keywords.
    TopLevel,
    /// Inside `use "…"`.
    UsePath,
    /// Where an argument of `callee` starts; `used` are the keywords already given.
    Argument {
        /// The layer, block or cell called.
        callee: String,
        /// Keyword arguments already written before the cursor.
        used: Vec<String>,
    },
    /// After `name:` in a call of `callee`.
    ArgumentValue {
        /// The layer, block or cell called.
        callee: String,
        /// The argument's keyword.
        arg: String,
    },
    /// Anywhere else in a body: layers, blocks, cells, constants, locals.
    Expression,
}

/// Completions at byte `offset` of `text` (the document as the editor has it), with names from
/// `analysis` (the last one that parsed, if any) and file names beside `doc_path`.
pub fn completion(
    text: &str,
    offset: usize,
    analysis: Option<&Analysis>,
    doc_path: Option<&Path>,
) -> Vec<CompletionItem> {
    let offset = floor_boundary(text, offset);
    match context(text, offset) {
        Context::Nothing => Vec::new(),
        Context::TopLevel => ["net", "block", "cell", "const", "use"]
            .iter()
            .map(|k| keyword(k))
            .collect(),
        Context::UsePath => doc_path.map(net_files).unwrap_or_default(),
        Context::Argument { callee, used } => {
            let mut items = arguments(analysis, &callee, &used);
            items.extend(expression(text, offset, analysis));
            items
        }
        Context::ArgumentValue { callee, arg } => {
            let mut items = symbols(&callee, &arg);
            items.extend(expression(text, offset, analysis));
            items
        }
        Context::Expression => expression(text, offset, analysis),
    }
}

/// The completion context at byte `offset` of `text`.
pub fn context(text: &str, offset: usize) -> Context {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut open: Vec<(usize, u8)> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => match text[i..].find('\n') {
                Some(n) if i + n < end => i += n,
                _ => return Context::Nothing,
            },
            b'/' if bytes.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                Some(n) if i + 2 + n + 2 <= end => i += 2 + n + 1,
                _ => return Context::Nothing,
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < end && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= end {
                    let before = text[..start].trim_end();
                    let is_use = before.ends_with("use")
                        && !before[..before.len() - 3].ends_with(is_ident_char);
                    return if is_use {
                        Context::UsePath
                    } else {
                        Context::Nothing
                    };
                }
            }
            c @ (b'(' | b'[' | b'{') => open.push((i, c)),
            b')' | b']' | b'}' => {
                open.pop();
            }
            _ => {}
        }
        i += 1;
    }
    let prefix_start = ident_start(&text[..end]);
    let before = text[..prefix_start].trim_end();
    let Some(&(paren, kind)) = open.last() else {
        return Context::TopLevel;
    };
    if kind != b'(' {
        return Context::Expression;
    }
    let Some(callee) = word_before(text, paren) else {
        return Context::Expression;
    };
    if matches!(callee, "if" | "repeat") {
        return Context::Expression;
    }
    let callee = callee.to_string();
    if before.ends_with('(') || before.ends_with(',') {
        let used = keywords_in(&text[paren + 1..prefix_start]);
        return Context::Argument { callee, used };
    }
    if let Some(b) = before.strip_suffix(':') {
        if let Some(arg) = word_before(b, b.len()) {
            let arg = arg.to_string();
            return Context::ArgumentValue { callee, arg };
        }
    }
    Context::Expression
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Where the identifier that ends `s` starts (`s.len()` when none does). Identifier
/// characters are ASCII, so the result is a character boundary.
fn ident_start(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = b.len();
    while i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        i -= 1;
    }
    i
}

fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// The identifier that ends just before byte `at` (spaces skipped), if any.
fn word_before(text: &str, at: usize) -> Option<&str> {
    let s = text[..at].trim_end();
    let w = &s[ident_start(s)..];
    (!w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit())).then_some(w)
}

/// The `name:` keywords written at the top level of an argument list's text.
fn keywords_in(args: &str) -> Vec<String> {
    let bytes = args.as_bytes();
    let mut depth = 0usize;
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) != Some(&b':') => {
                if let Some(w) = word_before(args, i) {
                    out.push(w.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

fn keyword(k: &str) -> CompletionItem {
    CompletionItem {
        label: k.to_string(),
        kind: Some(CompletionItemKind::KEYWORD),
        ..CompletionItem::default()
    }
}

fn markdown(value: String) -> Option<Documentation> {
    Some(Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }))
}

/// The keyword arguments of `callee` not yet given, required ones first.
fn arguments(analysis: Option<&Analysis>, callee: &str, used: &[String]) -> Vec<CompletionItem> {
    let user = analysis.and_then(|a| a.program.lookup(a.program.root, callee));
    if let Some((_, item)) = user {
        return index::item_params(item)
            .iter()
            .filter(|p| !used.contains(&p.name.name))
            .map(|p| CompletionItem {
                label: p.name.name.clone(),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(hover::param(p)),
                insert_text: Some(format!("{}: ", p.name.name)),
                sort_text: Some(format!("0{}{}", u8::from(p.default.is_some()), p.name.name)),
                ..CompletionItem::default()
            })
            .collect();
    }
    let Some(sig) = builtins::lookup(callee) else {
        return Vec::new();
    };
    sig.params
        .iter()
        .filter(|p| !used.iter().any(|u| u == p.name))
        .map(|p| {
            let required = p.default == builtins::DefaultValue::Required;
            CompletionItem {
                label: p.name.to_string(),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(format!(
                    "{} ({})",
                    p.ty.describe(),
                    default_words(p.default)
                )),
                documentation: markdown(p.doc.to_string()),
                insert_text: Some(format!("{}: ", p.name)),
                sort_text: Some(format!("0{}{}", u8::from(!required), p.name)),
                ..CompletionItem::default()
            }
        })
        .collect()
}

/// The symbols argument `arg` of built-in `callee` accepts.
fn symbols(callee: &str, arg: &str) -> Vec<CompletionItem> {
    let Some(p) = builtins::lookup(callee).and_then(|l| l.param(arg)) else {
        return Vec::new();
    };
    let syms: &[&str] = match p.ty {
        ArgTy::Sym(s) | ArgTy::IntPairOrSym(s) => s,
        ArgTy::Bool => &["true", "false"],
        _ => &[],
    };
    syms.iter()
        .map(|s| CompletionItem {
            label: s.to_string(),
            kind: Some(CompletionItemKind::ENUM_MEMBER),
            sort_text: Some(format!("0{s}")),
            ..CompletionItem::default()
        })
        .collect()
}

/// Layers, blocks, cells, constants and the locals of the enclosing item.
fn expression(text: &str, offset: usize, analysis: Option<&Analysis>) -> Vec<CompletionItem> {
    let mut items: Vec<CompletionItem> = builtins::LAYERS.iter().map(layer).collect();
    for k in [
        "repeat", "if", "else", "zeros", "ones", "true", "false", "in",
    ] {
        items.push(keyword(k));
    }
    let Some(a) = analysis else { return items };
    for (_, item) in a.program.visible_items(a.program.root) {
        let kind = match item {
            Item::Block(_) => CompletionItemKind::FUNCTION,
            Item::Cell(_) => CompletionItemKind::STRUCT,
            Item::Const(_) => CompletionItemKind::CONSTANT,
            Item::Net(_) | Item::Use(_) => continue,
        };
        items.push(CompletionItem {
            label: item.name().to_string(),
            kind: Some(kind),
            detail: Some(hover::declaration(a, item)),
            ..CompletionItem::default()
        });
    }
    let Some(module) = a.module() else {
        return items;
    };
    let here = a.offset(text_position(text, offset));
    let Some(item) = index::item_at(module, here) else {
        return items;
    };
    let mut seen: Vec<String> = Vec::new();
    for o in index::occurrences(module) {
        let is_local = matches!(o.role, Role::Param | Role::Bind { .. });
        if o.item != item || !is_local || seen.contains(&o.name) {
            continue;
        }
        seen.push(o.name.clone());
        items.push(CompletionItem {
            label: o.name.clone(),
            kind: Some(CompletionItemKind::VARIABLE),
            sort_text: Some(format!("0{}", o.name)),
            ..CompletionItem::default()
        });
    }
    items
}

fn layer(sig: &LayerSig) -> CompletionItem {
    CompletionItem {
        label: sig.name.to_string(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(sig.signature()),
        documentation: markdown(sig.doc.to_string()),
        ..CompletionItem::default()
    }
}

/// The `.net` files near `doc`, relative to its folder (a few levels deep, at most 200).
fn net_files(doc: &Path) -> Vec<CompletionItem> {
    let Some(dir) = doc.parent() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0)];
    while let Some((path, rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            let child = format!("{rel}{name}");
            let p = e.path();
            if p.is_dir() && depth < 3 {
                stack.push((p, format!("{child}/"), depth + 1));
            } else if name.ends_with(".net") && p != doc && out.len() < 200 {
                out.push(CompletionItem {
                    label: child,
                    kind: Some(CompletionItemKind::FILE),
                    ..CompletionItem::default()
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(with_cursor: &str) -> Context {
        let at = with_cursor.find('|').expect("a cursor");
        let text = with_cursor.replacen('|', "", 1);
        context(&text, at)
    }

    #[test]
    fn contexts() {
        assert_eq!(ctx("ne|"), Context::TopLevel);
        assert_eq!(ctx("use \"bl|"), Context::UsePath);
        assert_eq!(ctx("net a() -> y { // con|"), Context::Nothing);
        assert_eq!(ctx("net a() -> y { y = x -> |"), Context::Expression);
        assert_eq!(
            ctx("net a() -> y { y = x -> conv(64, kernel: [1, 3], s|"),
            Context::Argument {
                callee: "conv".into(),
                used: vec!["kernel".into()]
            }
        );
        assert_eq!(
            ctx("x -> conv(|)"),
            Context::Argument {
                callee: "conv".into(),
                used: vec![]
            }
        );
        assert_eq!(
            ctx("{ x -> conv(3, pad: |"),
            Context::ArgumentValue {
                callee: "conv".into(),
                arg: "pad".into()
            }
        );
        assert_eq!(ctx("{ x -> conv(3 + |"), Context::Expression);
        assert_eq!(ctx("{ /* ( */ x -> |"), Context::Expression);
        assert_eq!(ctx("{ a = \"x(\" |"), Context::Expression);
        assert_eq!(ctx("{ 신경망|"), Context::Expression);
        assert_eq!(ctx("{ 층(|"), Context::Expression);
    }

    #[test]
    fn argument_names_skip_given_ones() {
        let items = completion("{ x -> conv(8, kernel: 3, |", 26, None, None);
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert!(
            labels.contains(&"stride") && labels.contains(&"pad"),
            "{labels:?}"
        );
        assert!(!labels.contains(&"kernel"), "{labels:?}");
        let pad = completion("{ x -> conv(8, pad: ", 20, None, None);
        assert_eq!(pad[0].label, "same");
    }
}
