//! Go to definition: a block, cell, net or constant (in the document or in a file it imports),
//! a parameter or binding of the enclosing item, the parameter a keyword argument names, and
//! the file a `use` imports.

use super::analysis::Analysis;
use super::index::{self, Role, Target};
use super::publish::file_uri;
use super::uri;
use crate::syntax::ast::Item;
use lsp_types::{Location, Position, Range, Uri};

/// Where the name at byte `offset` of the document `doc` is defined.
pub fn definition(analysis: &Analysis, doc: &Uri, offset: usize) -> Option<Location> {
    let module = analysis.module()?;
    let occs = index::occurrences(module);
    let occ = index::at(&occs, offset)?;
    let program = &analysis.program;
    let root = program.root;
    let at = |file, span| Location::new(file_uri(analysis, doc, file), analysis.range(span));
    match &occ.role {
        Role::Use => {
            let path = analysis.use_target(&occ.name);
            let known = analysis.file_of(&path).is_some() || path.is_file();
            let target = uri::from_path(&path).filter(|_| known)?;
            let start = Position::new(0, 0);
            Some(Location::new(target, Range::new(start, start)))
        }
        Role::Arg { callee } => {
            match index::resolve_name(program, root, &occs, occ.item, callee, offset)? {
                Target::Item(file, item) => {
                    let p = index::item_param(item, &occ.name)?;
                    Some(at(file, p.name.span))
                }
                _ => None,
            }
        }
        Role::Item | Role::Param | Role::Bind { .. } | Role::Label { .. } => {
            Some(at(root, occ.span))
        }
        Role::Field => None,
        Role::Ref | Role::Call | Role::Branch => match index::resolve(program, root, &occs, occ)? {
            Target::Local(l) => Some(at(root, l.span)),
            Target::Item(file, item) => Some(at(file, item_name_span(item))),
            Target::Builtin(_) | Target::Input => None,
        },
    }
}

/// The span of an item's name (the path of a `use`).
fn item_name_span(item: &Item) -> crate::diagnostics::Span {
    match item {
        Item::Use(u) => u.path_span,
        Item::Const(c) => c.name.span,
        Item::Block(b) => b.name.span,
        Item::Cell(c) => c.name.span,
        Item::Net(n) => n.name.span,
    }
}
