//! Incremental parsing of the document being edited: its text is cut into top-level items,
//! each piece is parsed on its own by [`parser::parse`] and remembered by its text, so an edit
//! re-parses only the items it touches. The result is the module — or the diagnostics — that
//! parsing the whole text would give.
//!
//! Why the pieces parse as the whole does: a file is `item*`, and an item can only start with
//! `use`, `const`, `block`, `cell` or `net` outside every bracket, comment and string. The
//! text is cut before each such keyword (or before the doc comments just above it, which
//! belong to the item), so every piece is a run of whole items, parsed from the same state
//! the whole-file parse is in when it reaches that place. Diagnostics combine as the whole
//! parse reports them:
//! - bracket nesting too deep: the first piece's (the whole parse checks nesting first);
//! - a syntax error: the first failing piece's (pest stops at the first failure) — unless it
//!   lies at the very end of its piece, where the text after the piece shapes the message
//!   (`found `net`` rather than "end of file"); then the rest of the file is parsed in one go
//!   (and the whole file, in the rare case that the text before the piece holds unbalanced
//!   brackets in comments or strings, which the message's wording also looks at);
//! - otherwise every piece's errors in order (the AST builder reports per item).
//!
//! A parity test checks the claim against [`parser::parse`] on every net, fixture and fuzz
//! seed cut at many places.

use crate::diagnostics::{Code, Diagnostic, Diagnostics, FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::parser;
use std::collections::HashMap;
use std::sync::Arc;

type Parsed = Result<Vec<Item>, Diagnostics>;

/// The pieces of the last parse of one document, by text, with spans relative to the piece.
#[derive(Debug, Default)]
pub struct ParseCache {
    pieces: HashMap<Box<str>, Arc<Parsed>>,
}

impl ParseCache {
    /// An empty cache.
    pub fn new() -> ParseCache {
        ParseCache::default()
    }

    /// How many pieces are remembered.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// Parses `text`, the contents of `file`, re-using the pieces `cache` holds; afterwards the
/// cache holds exactly the pieces of `text`.
pub fn parse(cache: &mut ParseCache, file: FileId, text: &str) -> Result<Module, Diagnostics> {
    let cuts = cuts(text);
    let mut kept: HashMap<Box<str>, Arc<Parsed>> = HashMap::with_capacity(cuts.len());
    let mut pieces: Vec<Piece> = Vec::with_capacity(cuts.len());
    for (i, &start) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).copied().unwrap_or(text.len());
        let (source, offset) = padded(text, start, end);
        let parsed = match kept.get(&*source).or_else(|| cache.pieces.get(&*source)) {
            Some(p) => Arc::clone(p),
            None => Arc::new(parser::parse(file, &source).map(|m| m.items)),
        };
        kept.insert(source.as_str().into(), Arc::clone(&parsed));
        pieces.push(Piece {
            start,
            offset,
            len: source.trim_end().len(),
            end,
            parsed,
        });
    }
    cache.pieces = kept;
    combine(file, text, &pieces)
}

/// One piece: the text from `start` to `end`, parsed from `offset` (see [`padded`]).
struct Piece {
    start: usize,
    offset: usize,
    /// The length of the parsed source without trailing whitespace.
    len: usize,
    end: usize,
    parsed: Arc<Parsed>,
}

/// The source a piece is parsed from, and the offset of that source in the text. Pest words
/// an error at the very start of its input differently from the same error after anything
/// else, so a piece that does not start the text is parsed after one space — as if the
/// previous item were still there.
fn padded(text: &str, start: usize, end: usize) -> (String, usize) {
    if start == 0 {
        (text[..end].to_string(), 0)
    } else {
        // The space stands in for the byte before the piece (whatever it is: the offset only
        // shifts spans, which start at the piece's first character or later).
        (format!(" {}", &text[start..end]), start - 1)
    }
}

/// Puts the pieces together: their items shifted into place, or the diagnostics the whole
/// parse would report.
fn combine(file: FileId, text: &str, pieces: &[Piece]) -> Result<Module, Diagnostics> {
    let failed = |code: Code| {
        pieces.iter().find(|p| {
            p.parsed
                .as_ref()
                .as_ref()
                .is_err_and(|ds| ds.iter().any(|d| d.code == code))
        })
    };
    if let Some(p) = failed(Code::NestingTooDeep) {
        return Err(shifted_diags(
            &p.parsed,
            p.offset,
            Some(Code::NestingTooDeep),
        ));
    }
    if let Some(p) = failed(Code::Syntax) {
        let at_end = match p.parsed.as_ref() {
            Err(ds) => ds
                .iter()
                .any(|d| d.code == Code::Syntax && d.primary.span.end as usize >= p.len),
            Ok(_) => false,
        };
        // The parser's message can depend on a naive bracket count of all the text before
        // the error; when the text before the piece does not balance, ask the whole parse.
        let prefix = &text[..p.start];
        let opens = prefix.matches(['{', '(', '[']).count();
        if opens != prefix.matches(['}', ')', ']']).count() {
            return parser::parse(file, text);
        }
        if at_end && p.end < text.len() {
            // The text after the piece shapes this message: parse the rest in one go.
            let (rest, offset) = padded(text, p.start, text.len());
            return match parser::parse(file, &rest) {
                Ok(_) => parser::parse(file, text),
                Err(ds) => Err(shift_all(ds, offset)),
            };
        }
        return Err(shifted_diags(&p.parsed, p.offset, Some(Code::Syntax)));
    }
    let mut items = Vec::new();
    let mut errors = Diagnostics::new();
    for p in pieces {
        match p.parsed.as_ref() {
            Ok(its) => items.extend(its.iter().cloned().map(|mut it| {
                shift_item(&mut it, p.offset as u32);
                it
            })),
            Err(ds) => errors.extend(shift_all(ds.clone(), p.offset)),
        }
    }
    if errors.is_empty() {
        Ok(Module { file, items })
    } else {
        Err(errors)
    }
}

/// The diagnostics of a failed piece, shifted; with `only`, just those with that code.
fn shifted_diags(p: &Parsed, start: usize, only: Option<Code>) -> Diagnostics {
    let mut out = Diagnostics::new();
    if let Err(ds) = p {
        for d in ds.iter().filter(|d| only.is_none_or(|c| d.code == c)) {
            out.push(shift_diag(d.clone(), start as u32));
        }
    }
    out
}

fn shift_all(ds: Diagnostics, start: usize) -> Diagnostics {
    let mut out = Diagnostics::new();
    for d in ds {
        out.push(shift_diag(d, start as u32));
    }
    out
}

fn shift_diag(mut d: Diagnostic, by: u32) -> Diagnostic {
    shift(&mut d.primary.span, by);
    for l in &mut d.secondary {
        shift(&mut l.span, by);
    }
    d
}

/// Where the pieces of `text` start: 0, then before each item keyword outside brackets,
/// comments and strings — or before the doc comments that document the item. (An item's
/// span ends where the next item's doc comment or keyword starts, so the cut falls exactly
/// where the whole parse moves from one item to the next.)
pub fn cuts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut cuts = vec![0];
    let mut depth = 0usize;
    // Where the doc comments just before the current place start, if any.
    let mut docs: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let is_doc = bytes.get(i + 2) == Some(&b'/') && bytes.get(i + 3) != Some(&b'/');
                if is_doc && depth == 0 && docs.is_none() {
                    docs = Some(i);
                }
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                docs = None;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if bytes.get(i) == Some(&b'\n') {
                    continue; // an unterminated string ends at the line's end
                }
            }
            b => {
                if depth == 0
                    && (i == 0 || !is_ident_byte(bytes[i - 1]))
                    && item_keyword(&bytes[i..])
                {
                    let cut = docs.unwrap_or(i);
                    if cut > *cuts.last().unwrap_or(&0) {
                        cuts.push(cut);
                    }
                }
                docs = None;
                match b {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        i += 1;
    }
    cuts
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `rest` starts with an item keyword as a whole word.
fn item_keyword(rest: &[u8]) -> bool {
    ["use", "const", "block", "cell", "net"].iter().any(|k| {
        rest.starts_with(k.as_bytes()) && rest.get(k.len()).is_none_or(|b| !is_ident_byte(*b))
    })
}

fn shift(span: &mut Span, by: u32) {
    span.start = span.start.saturating_add(by);
    span.end = span.end.saturating_add(by);
}

/// Moves every span of `item` `by` bytes. The patterns name every field, so a field added to
/// the AST is a compile error here until it is shifted too.
fn shift_item(item: &mut Item, by: u32) {
    match item {
        Item::Use(UseDecl {
            path: _,
            path_span,
            span,
        }) => {
            shift(path_span, by);
            shift(span, by);
        }
        Item::Const(ConstDecl {
            doc,
            name,
            value,
            span,
        }) => {
            shift_doc(doc, by);
            shift(&mut name.span, by);
            shift_expr(value, by);
            shift(span, by);
        }
        Item::Block(BlockDecl {
            doc,
            name,
            params,
            body,
            span,
        }) => {
            shift_doc(doc, by);
            shift(&mut name.span, by);
            shift_params(params, by);
            shift_body(body, by);
            shift(span, by);
        }
        Item::Cell(CellDecl {
            doc,
            name,
            params,
            states,
            step,
            span,
        }) => {
            shift_doc(doc, by);
            shift(&mut name.span, by);
            shift_params(params, by);
            for StateVar { name, init, span } in states {
                shift(&mut name.span, by);
                shift_expr(init, by);
                shift(span, by);
            }
            let Step {
                inputs,
                body,
                span: step_span,
            } = step;
            for i in inputs {
                shift(&mut i.span, by);
            }
            shift_body(body, by);
            shift(step_span, by);
            shift(span, by);
        }
        Item::Net(NetDecl {
            doc,
            name,
            params,
            outputs,
            body,
            span,
        }) => {
            shift_doc(doc, by);
            shift(&mut name.span, by);
            shift_params(params, by);
            for o in outputs {
                shift(&mut o.span, by);
            }
            shift_body(body, by);
            shift(span, by);
        }
    }
}

fn shift_doc(doc: &mut Option<Doc>, by: u32) {
    if let Some(Doc { text: _, span }) = doc {
        shift(span, by);
    }
}

fn shift_params(params: &mut [Param], by: u32) {
    for Param {
        name,
        ty,
        default,
        span,
    } in params
    {
        shift(&mut name.span, by);
        match ty {
            Some(TypeAnn::Tensor(TensorType {
                dtype: _,
                dtype_span,
                dims,
                span,
            })) => {
                shift(dtype_span, by);
                for d in dims {
                    shift_expr(d, by);
                }
                shift(span, by);
            }
            Some(TypeAnn::Scalar(_, span)) => shift(span, by),
            None => {}
        }
        if let Some(d) = default {
            shift_expr(d, by);
        }
        shift(span, by);
    }
}

fn shift_body(body: &mut Body, by: u32) {
    let Body { stmts, span } = body;
    for stmt in stmts {
        match stmt {
            Stmt::Let { name, value, span } => {
                shift(&mut name.span, by);
                shift_expr(value, by);
                shift(span, by);
            }
            Stmt::Emit { value, span } => {
                shift_expr(value, by);
                shift(span, by);
            }
            Stmt::Expr(e) => shift_expr(e, by),
        }
    }
    shift(span, by);
}

fn shift_args(args: &mut [Arg], by: u32) {
    for Arg { name, value, span } in args {
        if let Some(n) = name {
            shift(&mut n.span, by);
        }
        shift_expr(value, by);
        shift(span, by);
    }
}

fn shift_expr(e: &mut Expr, by: u32) {
    let Expr { kind, span } = e;
    shift(span, by);
    match kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Str(_) => {}
        ExprKind::Name(id) => shift(&mut id.span, by),
        ExprKind::Call {
            callee,
            args,
            args_span,
        } => {
            shift(&mut callee.span, by);
            shift_args(args, by);
            shift(args_span, by);
        }
        ExprKind::Field { base, field } => {
            shift_expr(base, by);
            shift(&mut field.span, by);
        }
        ExprKind::Unary { op: _, operand } => shift_expr(operand, by),
        ExprKind::Binary {
            op: _,
            op_span,
            lhs,
            rhs,
        } => {
            shift(op_span, by);
            shift_expr(lhs, by);
            shift_expr(rhs, by);
        }
        ExprKind::Array(items)
        | ExprKind::Fill {
            kind: _,
            dims: items,
        } => {
            for x in items {
                shift_expr(x, by);
            }
        }
        ExprKind::Chain(steps) => {
            for ChainStep { label, expr } in steps {
                if let Some(l) = label {
                    shift(&mut l.span, by);
                }
                shift_expr(expr, by);
            }
        }
        ExprKind::Branch {
            kind: _,
            kind_span,
            args,
            branches,
        } => {
            shift(kind_span, by);
            shift_args(args, by);
            for b in branches {
                shift_body(b, by);
            }
        }
        ExprKind::If { cond, then, els } => {
            shift_expr(cond, by);
            shift_body(then, by);
            if let Some(b) = els {
                shift_body(b, by);
            }
        }
        ExprKind::Repeat { count, index, body } => {
            shift_expr(count, by);
            if let Some(i) = index {
                shift(&mut i.span, by);
            }
            shift_body(body, by);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn corpus() -> Vec<(PathBuf, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in [
            "nets",
            "nets/blocks",
            "tests/fixtures/ok",
            "tests/fixtures/err",
            "tests/fixtures/support",
            "fuzz/seeds",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for f in files {
                if let Ok(bytes) = std::fs::read(&f) {
                    out.push((f, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
        out
    }

    fn assert_same(cache: &mut ParseCache, text: &str, what: &str) {
        let whole = parser::parse(FileId(3), text);
        let pieces = parse(cache, FileId(3), text);
        assert_eq!(pieces, whole, "{what}:\n{text}");
    }

    #[test]
    fn pieces_parse_as_the_whole_text_does() {
        let files = corpus();
        assert!(files.len() > 40, "{}", files.len());
        let mut checked = 0;
        for (path, text) in &files {
            let what = path.display().to_string();
            // A fresh cache, then the text cut at many places with one cache (as while typing
            // at the end), then with a character deleted at many places (as while editing).
            assert_same(&mut ParseCache::new(), text, &what);
            let mut cache = ParseCache::new();
            let step = (text.len() / 40).max(1);
            for cut in (0..text.len())
                .step_by(step)
                .filter(|c| text.is_char_boundary(*c))
            {
                assert_same(&mut cache, &text[..cut], &what);
                let mut edited = text.clone();
                if let Some(ch) = text[cut..].chars().next() {
                    edited.replace_range(cut..cut + ch.len_utf8(), "");
                    assert_same(&mut cache, &edited, &what);
                }
                checked += 2;
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn cuts_fall_before_items_and_their_docs() {
        let text = "use \"a.net\"\n// x\n/// Doc.\n// note\n/// More.\nblock b() { x }\n//// not a doc\nnet n() -> y { y = \"net\" /* block */ }\nconst c = 1 const d = 2 } /// doc\ncell q";
        let cuts = cuts(text);
        let at: Vec<&str> = cuts.iter().map(|&c| &text[c..c + 6]).collect();
        assert_eq!(
            at,
            ["use \"a", "/// Do", "net n(", "const ", "const ", "/// do"]
        );
    }

    #[test]
    fn cuts_after_multibyte_characters() {
        for text in [
            "/* é */net a() -> y { y = 1 }",
            "const a = 1 /*é*/const b = ",
            "é net",
        ] {
            assert_same(&mut ParseCache::new(), text, text);
        }
    }

    #[test]
    fn unchanged_pieces_are_reused() {
        let text = "block a() { relu }\nblock b() { relu }\n";
        let mut cache = ParseCache::new();
        assert!(parse(&mut cache, FileId(0), text).is_ok());
        assert_eq!(cache.len(), 2);
        let edited = text.replace("block b() { relu }", "block b() { tanh }");
        let m = parse(&mut cache, FileId(0), &edited).expect("parses");
        assert_eq!(m, parser::parse(FileId(0), &edited).expect("parses"));
        assert_eq!(cache.len(), 2);
    }
}
