//! LSP positions ↔ byte offsets.
//!
//! The protocol counts a position as a 0-based line and a 0-based column in UTF-16 code units
//! (the encoding this server announces); netc's spans are byte offsets. Spans of an analysed
//! program convert through its [`SourceMap`] (whose files keep a line index); raw document
//! text (while applying edits, or reading the cursor's surroundings) converts here. Positions
//! past the end of a line clamp to the line's end, and lines past the end of the text clamp to
//! the end of the text, as the protocol asks.

use crate::diagnostics::{SourceFile, SourceMap, Span};
use lsp_types::{Position, Range};

/// The LSP range of `span`.
pub fn span_range(sources: &SourceMap, span: Span) -> Range {
    let file = sources.get(span.file);
    Range::new(
        file_position(file, span.start as usize),
        file_position(file, span.end as usize),
    )
}

/// The LSP position of byte `offset` of `file`.
pub fn file_position(file: &SourceFile, offset: usize) -> Position {
    let (line, col) = file.utf16_position(offset);
    Position::new(to_u32(line), to_u32(col))
}

/// The byte offset in `file` of an LSP position.
pub fn file_offset(file: &SourceFile, pos: Position) -> usize {
    file.offset_of_utf16(pos.line as usize, pos.character as usize)
}

/// The byte offset in `text` of an LSP position (for raw text without a line index).
pub fn text_offset(text: &str, pos: Position) -> usize {
    let mut start = 0;
    for _ in 0..pos.line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let mut units = 0usize;
    for (i, ch) in text[start..].char_indices() {
        if units >= pos.character as usize || ch == '\n' {
            return start + i;
        }
        units += ch.len_utf16();
    }
    text.len()
}

/// The LSP position of byte `offset` of `text` (clamped to a character boundary).
pub fn text_position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col: usize = before[line_start..].chars().map(char::len_utf16).sum();
    Position::new(to_u32(line), to_u32(col))
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ab\n😀x é\n\nlast";

    #[test]
    fn utf16_columns_count_surrogate_pairs() {
        // `x` follows an emoji: byte 7, UTF-16 column 2.
        assert_eq!(text_offset(TEXT, Position::new(1, 2)), 7);
        assert_eq!(text_position(TEXT, 7), Position::new(1, 2));
        // `é` at byte 9, column 4; the line ends at byte 11.
        assert_eq!(text_offset(TEXT, Position::new(1, 4)), 9);
        assert_eq!(text_position(TEXT, 11), Position::new(1, 5));
    }

    #[test]
    fn out_of_range_positions_clamp() {
        assert_eq!(text_offset(TEXT, Position::new(0, 99)), 2);
        assert_eq!(text_offset(TEXT, Position::new(9, 0)), TEXT.len());
        assert_eq!(text_offset(TEXT, Position::new(3, 99)), TEXT.len());
        // Inside a surrogate pair rounds to the character's end.
        assert_eq!(text_offset(TEXT, Position::new(1, 1)), 7);
    }

    #[test]
    fn raw_text_and_source_files_agree() {
        let mut map = SourceMap::new();
        let id = map.add("t.net", TEXT);
        for offset in 0..=TEXT.len() {
            if !TEXT.is_char_boundary(offset) {
                continue;
            }
            let p = text_position(TEXT, offset);
            assert_eq!(file_position(map.get(id), offset), p, "offset {offset}");
            assert_eq!(file_offset(map.get(id), p), text_offset(TEXT, p));
            assert_eq!(text_offset(TEXT, p), offset);
        }
    }
}
