//! Hover: what the name under the cursor is — a built-in layer's signature, parameters and
//! doc; a block's, cell's, net's or constant's declaration and doc comment; a parameter's type
//! and default; a binding's definition — followed by what shape inference knows of the layer
//! or value there (output shape, parameters, MACs).

use super::analysis::Analysis;
use super::facts::LayerFact;
use super::index::{self, Occurrence, Role, Target};
use crate::diagnostics::Span;
use crate::report::table::thousands;
use crate::syntax::ast::{Item, Param, TypeAnn};
use crate::syntax::builtins::{self, DefaultValue, LayerSig};
use crate::syntax::print;
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind};
use std::fmt::Write as _;
use std::path::Path;

/// The hover for byte `offset` of the analysed document, if there is a name there.
pub fn hover(analysis: &Analysis, offset: usize) -> Option<Hover> {
    let module = analysis.module()?;
    let occs = index::occurrences(module);
    let occ = index::at(&occs, offset)?;
    let program = &analysis.program;
    let root = program.root;
    let mut md = String::new();
    match &occ.role {
        Role::Use => {
            let _ = write!(md, "imports `{}`", occ.name);
            let file = analysis.file_of(&analysis.use_target(&occ.name));
            let names: Vec<String> = file
                .and_then(|id| program.module(id))
                .map(|m| {
                    m.items
                        .iter()
                        .filter(|i| !matches!(i, Item::Use(_)))
                        .map(|i| format!("`{}`", i.name()))
                        .collect()
                })
                .unwrap_or_default();
            if !names.is_empty() {
                let _ = write!(md, ": {}", names.join(", "));
            }
        }
        Role::Arg { callee } => {
            let target = index::resolve_name(program, root, &occs, occ.item, callee, offset);
            md = argument(target, callee, &occ.name)?;
        }
        Role::Field => {
            let (_, doc) = builtins::FIELDS.iter().find(|(f, _)| *f == occ.name)?;
            let _ = write!(md, "```netc\n.{}\n```\n{doc}", occ.name);
        }
        Role::Item => {
            let item = module.items.get(occ.item)?;
            md = item_hover(analysis, item, true, analysis.path(root));
        }
        Role::Label { layer } => {
            let _ = write!(md, "layer `{}`", occ.name);
            push_facts(&mut md, &analysis.facts.at(*layer));
            if analysis.facts.at(*layer).is_empty() {
                push_facts(&mut md, &analysis.facts.result_of(*layer));
            }
        }
        Role::Param | Role::Bind { .. } => md = local(analysis, module, occ),
        Role::Ref | Role::Call | Role::Branch => {
            match index::resolve(program, root, &occs, occ)? {
                Target::Local(l) => md = local(analysis, module, l),
                Target::Item(file, item) => {
                    let path = Path::new(&program.sources.get(file).name);
                    md = item_hover(analysis, item, file == root, path);
                }
                Target::Builtin(sig) => md = layer(sig),
                Target::Input => md = "```netc\nin\n```\nthe value flowing into the block".into(),
            }
            if matches!(occ.role, Role::Call | Role::Branch | Role::Ref) {
                push_facts(&mut md, &call_facts(analysis, occ));
            }
        }
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: md,
        }),
        range: Some(analysis.range(occ.span)),
    })
}

/// The facts of the layer whose name is at `occ`: a call's span runs from the callee to the
/// closing parenthesis, so the fact starting at the callee is the one.
fn call_facts<'a>(analysis: &'a Analysis, occ: &Occurrence) -> Vec<&'a LayerFact> {
    let start = analysis
        .facts
        .in_file(occ.span.file)
        .find(|f| f.span.start == occ.span.start)
        .map(|f| f.span);
    start.map(|s| analysis.facts.at(s)).unwrap_or_default()
}

/// A built-in layer: signature, doc and parameters.
pub fn layer(sig: &LayerSig) -> String {
    let mut md = format!("```netc\n{}\n```\n{}", sig.signature(), sig.doc);
    if !sig.params.is_empty() {
        md.push_str("\n\n");
        for p in sig.params {
            let _ = writeln!(
                md,
                "- `{}`: {} ({}) — {}",
                p.name,
                p.ty.describe(),
                default_words(p.default),
                p.doc
            );
        }
    }
    md.push_str("\n*built-in layer*");
    md
}

/// "required", "default 1", …
pub fn default_words(d: DefaultValue) -> String {
    match d {
        DefaultValue::Required => "required".into(),
        DefaultValue::Absent => "optional".into(),
        DefaultValue::Int(v) => format!("default {v}"),
        DefaultValue::Float(v) => format!("default {v}"),
        DefaultValue::Bool(v) => format!("default {v}"),
        DefaultValue::Sym(s) => format!("default `{s}`"),
        DefaultValue::SameAs(o) => format!("default: same as `{o}`"),
    }
}

/// A net, block, cell or constant: its declaration line, doc comment and file.
fn item_hover(analysis: &Analysis, item: &Item, local: bool, path: &Path) -> String {
    let mut md = format!("```netc\n{}\n```", declaration(analysis, item));
    let doc = match item {
        Item::Const(c) => c.doc.as_ref(),
        Item::Block(b) => b.doc.as_ref(),
        Item::Cell(c) => c.doc.as_ref(),
        Item::Net(n) => n.doc.as_ref(),
        Item::Use(_) => None,
    };
    if let Some(d) = doc {
        md.push('\n');
        md.push_str(d.text.trim());
    }
    if !local {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default();
        let _ = write!(md, "\n\n*from `{file}`*");
    }
    md
}

/// `block basic(c, stride = 1)`, `net lenet5(x: f32[N, 1, 32, 32]) -> logits`, …
pub fn declaration(analysis: &Analysis, item: &Item) -> String {
    let params = |ps: &[Param]| ps.iter().map(param).collect::<Vec<_>>().join(", ");
    match item {
        Item::Use(u) => format!("use \"{}\"", u.path),
        Item::Const(c) => {
            let value =
                source_line(analysis, c.value.span).unwrap_or_else(|| print::expr(&c.value));
            format!("const {} = {value}", c.name.name)
        }
        Item::Block(b) => format!("block {}({})", b.name.name, params(&b.params)),
        Item::Cell(c) => format!("cell {}({})", c.name.name, params(&c.params)),
        Item::Net(n) => {
            let outs: Vec<&str> = n.outputs.iter().map(|o| o.name.as_str()).collect();
            let outs = if outs.len() == 1 {
                outs.join("")
            } else {
                format!("({})", outs.join(", "))
            };
            format!("net {}({}) -> {outs}", n.name.name, params(&n.params))
        }
    }
}

/// A parameter as declared: `x: f32[N, 3, 224, 224]`, `stride = 1`.
pub fn param(p: &Param) -> String {
    let mut s = p.name.name.clone();
    match &p.ty {
        Some(TypeAnn::Tensor(t)) => {
            let dims: Vec<String> = t.dims.iter().map(print::expr).collect();
            let _ = write!(s, ": {}[{}]", t.dtype.as_str(), dims.join(", "));
        }
        Some(TypeAnn::Scalar(t, _)) => {
            let _ = write!(s, ": {}", t.as_str());
        }
        None => {}
    }
    if let Some(d) = &p.default {
        let _ = write!(s, " = {}", print::expr(d));
    }
    s
}

/// A local: a parameter with its type, or a binding with its definition and value facts.
fn local(analysis: &Analysis, module: &crate::syntax::ast::Module, occ: &Occurrence) -> String {
    match &occ.role {
        Role::Param => {
            let p = module
                .items
                .get(occ.item)
                .and_then(|i| index::item_param(i, &occ.name));
            let text = p.map(param).unwrap_or_else(|| occ.name.clone());
            format!("```netc\n{text}\n```\nparameter")
        }
        Role::Bind { value: Some(v) } => {
            let def = source_line(analysis, *v).unwrap_or_default();
            let mut md = format!("```netc\n{} = {def}\n```", occ.name);
            push_facts(&mut md, &analysis.facts.result_of(*v));
            md
        }
        _ => format!("```netc\n{}\n```", occ.name),
    }
}

/// The first line of the source at `span`, shortened to 80 characters.
fn source_line(analysis: &Analysis, span: Span) -> Option<String> {
    let text = &analysis.program.sources.get(span.file).text;
    let s = text.get(span.range())?;
    let first = s.lines().next()?.trim();
    let more = s.trim_end().contains('\n');
    let mut out: String = first.chars().take(80).collect();
    if more || first.chars().count() > 80 {
        out.push_str(" …");
    }
    Some(out)
}

/// Hover text for the keyword argument `name` of `callee`.
fn argument(target: Option<Target<'_>>, callee: &str, name: &str) -> Option<String> {
    let builtin = || builtins::lookup(callee).and_then(|l| l.param(name));
    match target {
        Some(Target::Item(_, item)) => {
            let p = index::item_param(item, name)?;
            Some(format!(
                "```netc\n{}\n```\nparameter of `{callee}`",
                param(p)
            ))
        }
        _ => {
            let p = builtin()?;
            Some(format!(
                "```netc\n{}\n```\n{} ({}) — {}\n\nparameter of `{callee}`",
                p.name,
                p.ty.describe(),
                default_words(p.default),
                p.doc
            ))
        }
    }
}

/// Appends what shape inference knows: one line per instance of the layer.
fn push_facts(md: &mut String, facts: &[&LayerFact]) {
    if facts.is_empty() {
        return;
    }
    md.push_str("\n\n---\n");
    for f in facts.iter().take(8) {
        let _ = writeln!(
            md,
            "`{}` → `{}` · {} params · {} MACs",
            f.name,
            f.output_shape,
            thousands(f.params),
            f.macs
                .parse::<u64>()
                .map_or_else(|_| f.macs.clone(), thousands)
        );
    }
    if facts.len() > 8 {
        let _ = writeln!(md, "… and {} more instances", facts.len() - 8);
    }
}
