//! Document symbols: the outline of a file — its nets, blocks, cells and constants, each with
//! the values it binds and the layers it names as children.

use super::analysis::Analysis;
use super::hover::declaration;
use super::index::{self, Role};
use crate::syntax::ast::Item;
use lsp_types::{DocumentSymbol, SymbolKind};

/// The outline of the analysed document.
pub fn symbols(analysis: &Analysis) -> Vec<DocumentSymbol> {
    let Some(module) = analysis.module() else {
        return Vec::new();
    };
    let occs = index::occurrences(module);
    let mut out = Vec::new();
    for (i, item) in module.items.iter().enumerate() {
        let (name, kind) = match item {
            Item::Use(_) => continue,
            Item::Const(c) => (&c.name, SymbolKind::CONSTANT),
            Item::Block(b) => (&b.name, SymbolKind::FUNCTION),
            Item::Cell(c) => (&c.name, SymbolKind::STRUCT),
            Item::Net(n) => (&n.name, SymbolKind::MODULE),
        };
        let children: Vec<DocumentSymbol> = occs
            .iter()
            .filter(|o| o.item == i)
            .filter_map(|o| {
                let (kind, range) = match o.role {
                    Role::Bind { value: Some(v) } => (SymbolKind::VARIABLE, o.span.to(v)),
                    Role::Label { layer } => (SymbolKind::FIELD, o.span.to(layer)),
                    _ => return None,
                };
                Some(symbol(
                    analysis,
                    o.name.clone(),
                    None,
                    kind,
                    range,
                    o.span,
                    None,
                ))
            })
            .collect();
        let detail = Some(declaration(analysis, item));
        let children = (!children.is_empty()).then_some(children);
        out.push(symbol(
            analysis,
            name.name.clone(),
            detail,
            kind,
            item.span(),
            name.span,
            children,
        ));
    }
    out
}

fn symbol(
    analysis: &Analysis,
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    range: crate::diagnostics::Span,
    selection: crate::diagnostics::Span,
    children: Option<Vec<DocumentSymbol>>,
) -> DocumentSymbol {
    #[allow(
        deprecated,
        reason = "the protocol's struct still has the deprecated field"
    )]
    DocumentSymbol {
        name,
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: analysis.range(range),
        selection_range: analysis.range(selection),
        children,
    }
}
