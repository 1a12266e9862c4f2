//! Inlay hints: the output shape after each layer, from shape inference.
//!
//! A layer written once but instantiated several times (a block body) shows its shape when
//! every instance agrees, and `×n shapes` otherwise.

use super::analysis::Analysis;
use super::position::file_position;
use crate::diagnostics::Span;
use lsp_types::{InlayHint, InlayHintKind, InlayHintLabel, InlayHintTooltip, Range};

/// The hints of the analysed document that lie in `range`.
pub fn hints(analysis: &Analysis, range: Range) -> Vec<InlayHint> {
    let root = analysis.program.root;
    let file = analysis.root_file();
    let mut out: Vec<InlayHint> = Vec::new();
    let mut last: Option<Span> = None;
    for fact in analysis.facts.in_file(root) {
        if last == Some(fact.span) {
            continue;
        }
        last = Some(fact.span);
        let position = file_position(file, fact.span.end as usize);
        if position < range.start || position > range.end {
            continue;
        }
        let all = analysis.facts.at(fact.span);
        let same = all.iter().all(|f| f.output_shape == fact.output_shape);
        let label = if same {
            fact.output_shape.clone()
        } else {
            format!("×{} shapes", all.len())
        };
        let tooltip: Vec<String> = all
            .iter()
            .map(|f| format!("{}: {}", f.name, f.output_shape))
            .collect();
        out.push(InlayHint {
            position,
            label: InlayHintLabel::String(label),
            kind: Some(InlayHintKind::TYPE),
            text_edits: None,
            tooltip: Some(InlayHintTooltip::String(tooltip.join("\n"))),
            padding_left: Some(true),
            padding_right: None,
            data: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::analysis::{analyse, OpenFiles};
    use super::super::facts::{Facts, LayerFact};
    use super::super::hover::hover;
    use super::super::incremental::ParseCache;
    use super::*;
    use lsp_types::{HoverContents, Position};

    /// An analysis of a small net with shape facts for its two layers, as shape inference
    /// would give them.
    fn analysed() -> (Analysis, &'static str) {
        let text = "net n(x: f32[N, 4]) -> y {\n    y = x -> dense(3) -> relu\n}\n";
        let mut a = analyse(
            "/m/n.net",
            1,
            text,
            &OpenFiles::new(),
            &mut ParseCache::new(),
        );
        let file = a.program.root;
        let at = |needle: &str| {
            let s = text.find(needle).expect("in text");
            Span::new(file, s, s + needle.len())
        };
        let fact = |span, name: &str, shape: &str, params| LayerFact {
            span,
            name: name.into(),
            op: name.into(),
            output_shape: shape.into(),
            params,
            macs: "12".into(),
        };
        a.facts = Facts::new(vec![
            fact(at("dense(3)"), "dense", "f32[N, 3]", 15),
            fact(at("relu"), "relu", "f32[N, 3]", 0),
        ]);
        (a, text)
    }

    #[test]
    fn a_hint_follows_each_layer() {
        let (a, _) = analysed();
        let all = Range::new(Position::new(0, 0), Position::new(9, 0));
        let hints = hints(&a, all);
        let at: Vec<(Position, String)> = hints
            .iter()
            .map(|h| match &h.label {
                InlayHintLabel::String(s) => (h.position, s.clone()),
                InlayHintLabel::LabelParts(_) => (h.position, String::new()),
            })
            .collect();
        assert_eq!(
            at,
            [
                (Position::new(1, 21), "f32[N, 3]".to_string()),
                (Position::new(1, 29), "f32[N, 3]".to_string())
            ]
        );
        let line0 = Range::new(Position::new(0, 0), Position::new(0, 99));
        assert!(super::hints(&a, line0).is_empty());
    }

    #[test]
    fn hover_shows_shape_params_and_macs() {
        let (a, text) = analysed();
        let value = |offset| match hover(&a, offset).map(|h| h.contents) {
            Some(HoverContents::Markup(m)) => m.value,
            other => panic!("{other:?}"),
        };
        let on_dense = value(text.find("dense").expect("dense") + 1);
        assert!(
            on_dense.contains("`dense` → `f32[N, 3]` · 15 params · 12 MACs"),
            "{on_dense}"
        );
        // A binding's hover shows its value's shape: the last layer of the chain.
        let on_y = value(text.find("y =").expect("y"));
        assert!(on_y.contains("`relu` → `f32[N, 3]`"), "{on_y}");
    }
}
