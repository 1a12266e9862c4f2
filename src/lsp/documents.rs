//! The open documents: their text as the editor has it, kept in step with incremental edits.
//!
//! The store lives on the server's reader loop, which applies every `didChange` in order (the
//! protocol's edits are relative to the text after the previous edit, so they must be applied
//! one by one and never reordered) and hands the checker a shared snapshot of the result.

use super::position::text_offset;
use lsp_types::{TextDocumentContentChangeEvent, Uri};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One open document.
#[derive(Clone, Debug)]
pub struct Document {
    /// The version the editor gave with the last change.
    pub version: i32,
    /// The current text.
    pub text: Arc<str>,
}

/// Every open document, by URI.
#[derive(Debug, Default)]
pub struct Documents {
    docs: BTreeMap<Uri, Document>,
}

impl Documents {
    /// An empty store.
    pub fn new() -> Documents {
        Documents::default()
    }

    /// Records a newly opened document (replacing any earlier one under the same URI).
    pub fn open(&mut self, uri: Uri, version: i32, text: String) -> &Document {
        let doc = self.docs.entry(uri).or_insert_with(|| Document {
            version,
            text: Arc::from(""),
        });
        doc.version = version;
        doc.text = Arc::from(text);
        doc
    }

    /// Applies `changes` in order to an open document; `None` when it is not open.
    pub fn change(
        &mut self,
        uri: &Uri,
        version: i32,
        changes: Vec<TextDocumentContentChangeEvent>,
    ) -> Option<&Document> {
        let doc = self.docs.get_mut(uri)?;
        let mut text = String::from(&*doc.text);
        for change in changes {
            apply(&mut text, change);
        }
        doc.version = version;
        doc.text = Arc::from(text);
        Some(doc)
    }

    /// Forgets a closed document.
    pub fn close(&mut self, uri: &Uri) {
        self.docs.remove(uri);
    }

    /// The document at `uri`, if open.
    pub fn get(&self, uri: &Uri) -> Option<&Document> {
        self.docs.get(uri)
    }
}

/// Applies one change: a full replacement when it has no range, else a splice of the range.
pub fn apply(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        None => *text = change.text,
        Some(range) => {
            let start = text_offset(text, range.start);
            let end = text_offset(text, range.end).max(start);
            text.replace_range(start..end, &change.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::{Position, Range};
    use std::str::FromStr;

    fn edit(l0: u32, c0: u32, l1: u32, c1: u32, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(l0, c0), Position::new(l1, c1))),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn incremental_edits_apply_in_order() {
        let uri = Uri::from_str("file:///t.net").expect("valid");
        let mut docs = Documents::new();
        docs.open(uri.clone(), 1, "y = x -> 😀conv(6)\nnext".into());
        let changes = vec![
            // Replace the emoji (two UTF-16 units) with nothing, then insert after `conv(6`.
            edit(0, 9, 0, 11, ""),
            edit(0, 15, 0, 15, ", kernel: 5"),
            edit(1, 0, 1, 4, "done"),
        ];
        let doc = docs.change(&uri, 2, changes).expect("open");
        assert_eq!(&*doc.text, "y = x -> conv(6, kernel: 5)\ndone");
        assert_eq!(doc.version, 2);
        let full = TextDocumentContentChangeEvent {
            range: None,
            range_length: None,
            text: "new".into(),
        };
        assert_eq!(
            docs.change(&uri, 3, vec![full]).map(|d| &*d.text),
            Some("new")
        );
        docs.close(&uri);
        assert!(docs.get(&uri).is_none());
        assert!(docs.change(&uri, 4, Vec::new()).is_none());
    }

    #[test]
    fn edits_past_the_end_append() {
        let mut text = String::from("ab");
        apply(&mut text, edit(5, 0, 6, 0, "c"));
        assert_eq!(text, "abc");
    }
}
