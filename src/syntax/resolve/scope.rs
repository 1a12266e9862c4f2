//! Scopes: the names a body can see, in frames from the item's top level inwards, and the
//! "did you mean" suggestions offered for names that are not found.

use super::ty::Ty;
use crate::diagnostics::Span;
use crate::syntax::ast::Ident;

/// How a name was bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BindKind {
    /// A net's tensor input.
    Input,
    /// A net's compile-time parameter (with a default).
    Static,
    /// A block or cell parameter.
    Param,
    /// A block's input, `in`.
    In,
    /// A cell's state variable.
    State,
    /// A cell step's input.
    StepInput,
    /// `name = …`.
    Let,
    /// The index of `repeat … as i`.
    Index,
}

/// One bound name.
#[derive(Clone, Debug)]
pub(super) struct Binding<'p> {
    /// The name.
    pub name: &'p str,
    /// Where it is bound.
    pub span: Span,
    /// How.
    pub kind: BindKind,
    /// What it is.
    pub ty: Ty,
    /// Whether it has been read.
    pub used: bool,
    /// For states: the statement that updated it.
    pub updated: Option<Span>,
}

/// The names of one body.
#[derive(Debug, Default)]
pub(super) struct Frame<'p> {
    /// Names bound so far, in order.
    pub bindings: Vec<Binding<'p>>,
    /// Names bound by `let`s further down the body (for use-before-definition).
    pub pending: Vec<&'p Ident>,
    /// `let`s whose name was used before them (E0211): not reported as unused.
    pub used_early: Vec<Span>,
    /// Explicit layer labels used in the body.
    pub labels: Vec<&'p Ident>,
    /// Whether this is an item's top-level frame (rather than a branch, `if` or `repeat`
    /// body).
    pub top: bool,
}

impl<'p> Frame<'p> {
    /// A frame; `top` for an item's own body.
    pub(super) fn new(top: bool) -> Frame<'p> {
        Frame {
            top,
            ..Frame::default()
        }
    }

    /// The most recent binding of `name`.
    pub(super) fn find(&self, name: &str) -> Option<usize> {
        self.bindings.iter().rposition(|b| b.name == name)
    }

    /// The `let` further down that binds `name`.
    pub(super) fn pending(&self, name: &str) -> Option<Span> {
        self.pending.iter().find(|i| i.name == name).map(|i| i.span)
    }

    /// Binds a name.
    pub(super) fn bind(&mut self, name: &'p Ident, kind: BindKind, ty: Ty) {
        let used = self.used_early.contains(&name.span);
        self.bindings.push(Binding {
            name: &name.name,
            span: name.span,
            kind,
            ty,
            used,
            updated: None,
        });
    }

    /// The `let` of `name` at `span` has been reached.
    pub(super) fn reached(&mut self, name: &Ident) {
        if let Some(i) = self.pending.iter().position(|p| p.span == name.span) {
            self.pending.remove(i);
        }
    }
}

/// The closest candidate to `name` and its edit distance, if one is close enough to be a
/// plausible typo: a case-insensitive match, or a Damerau–Levenshtein distance of at most a
/// third of the name's length (at least 1). Names of one or two characters are close to
/// everything, so for them only candidates with the same first letter count. Ties go to the
/// first candidate.
pub(super) fn best_match<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<(usize, String)> {
    let len = name.chars().count();
    let limit = (len / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == name || c.starts_with('_') {
            continue;
        }
        if len < 3 && c.chars().next() != name.chars().next() && !c.eq_ignore_ascii_case(name) {
            continue;
        }
        let d = if c.eq_ignore_ascii_case(name) {
            0
        } else {
            strsim::damerau_levenshtein(name, c)
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(d, c)| (d, c.to_string()))
}

/// The closest candidate to `name`, if any is close enough.
pub(super) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    best_match(name, candidates).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let layers = crate::syntax::builtins::LAYERS.iter().map(|l| l.name);
        assert_eq!(suggest("convv", layers.clone()), Some("conv".into()));
        assert_eq!(suggest("maxpol", layers.clone()), Some("maxpool".into()));
        assert_eq!(suggest("Dense", layers.clone()), Some("dense".into()));
        assert_eq!(suggest("xyz", layers), None);
        assert_eq!(suggest("x", ["s", "X"]), Some("X".into()));
        assert_eq!(suggest("bb", ["a", "b"]), Some("b".into()));
        assert_eq!(suggest("sme", ["same", "valid"]), Some("same".into()));
        assert_eq!(
            suggest("kernal", ["filters", "kernel", "stride"]),
            Some("kernel".into())
        );
    }
}
