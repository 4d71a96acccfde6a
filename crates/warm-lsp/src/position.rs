//! Positions in two dialects: the 1-based `LINE:COL` that people, compilers and grep write
//! (columns count characters), and LSP's 0-based positions, whose columns count code units
//! of the encoding negotiated with the server (UTF-16 unless it chose otherwise).
//!
//! A column past a multi-byte character (`é`, an emoji) differs between the two, which is
//! why every conversion goes through the text of the line.

use lsp_types::Position;
use serde_json::Value;

/// The unit of an LSP column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "utf-16")]
    Utf16,
    #[serde(rename = "utf-32")]
    Utf32,
}

impl Encoding {
    /// The encoding a server chose in its `initialize` capabilities (`positionEncoding`);
    /// UTF-16 when it says nothing, as the protocol prescribes.
    pub fn from_capabilities(capabilities: Option<&Value>) -> Encoding {
        capabilities
            .and_then(|c| c.get("positionEncoding"))
            .and_then(Value::as_str)
            .and_then(Encoding::parse)
            .unwrap_or(Encoding::Utf16)
    }

    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "utf-8" => Some(Encoding::Utf8),
            "utf-16" => Some(Encoding::Utf16),
            "utf-32" => Some(Encoding::Utf32),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf32 => "utf-32",
        }
    }

    fn units(self, c: char) -> u32 {
        match self {
            Encoding::Utf8 => c.len_utf8() as u32,
            Encoding::Utf16 => c.len_utf16() as u32,
            Encoding::Utf32 => 1,
        }
    }
}

/// A text split into lines, for converting positions within it.
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// Number of lines (a final line without a newline counts; an empty text has one).
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Line `line0` (0-based) without its line ending.
    pub fn line(&self, line0: usize) -> Option<&'a str> {
        let start = *self.starts.get(line0)?;
        let end = self
            .starts
            .get(line0 + 1)
            .map_or(self.text.len(), |e| e - 1);
        let line = &self.text[start..end.max(start)];
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The LSP position of 1-based `line`, `column` (in characters).
    ///
    /// # Errors
    /// When the line is not in the text or the column past the line's end (one past the last
    /// character is allowed: the end of the line).
    pub fn to_lsp(
        &self,
        line: u32,
        column: u32,
        encoding: Encoding,
    ) -> Result<Position, LocationError> {
        let (Some(line0), Some(column0)) = (line.checked_sub(1), column.checked_sub(1)) else {
            return Err(LocationError::Zero);
        };
        let text = self
            .line(line0 as usize)
            .ok_or(LocationError::PastLastLine {
                line,
                lines: self.len(),
            })?;
        let chars = text.chars().count();
        if column0 as usize > chars {
            return Err(LocationError::PastLineEnd {
                line,
                column,
                chars,
            });
        }
        let character = text
            .chars()
            .take(column0 as usize)
            .map(|c| encoding.units(c))
            .sum();
        Ok(Position {
            line: line0,
            character,
        })
    }

    /// 1-based line and column (in characters) of an LSP position, clamped to the text.
    pub fn from_lsp(&self, position: Position, encoding: Encoding) -> (u32, u32) {
        let line0 = (position.line as usize).min(self.len().saturating_sub(1));
        let text = self.line(line0).unwrap_or_default();
        let mut units = 0;
        let mut column0 = 0;
        for c in text.chars() {
            if units >= position.character {
                break;
            }
            units += encoding.units(c);
            column0 += 1;
        }
        (line0 as u32 + 1, column0 + 1)
    }

    /// Byte offset in the text of an LSP position, clamped to the text (for applying edits).
    pub fn offset(&self, position: Position, encoding: Encoding) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else {
            return self.text.len();
        };
        let text = self.line(position.line as usize).unwrap_or_default();
        let mut units = 0;
        for (i, c) in text.char_indices() {
            if units >= position.character {
                return start + i;
            }
            units += encoding.units(c);
        }
        start + text.len()
    }
}

/// A `FILE:LINE:COL` location that is not in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("lines and columns start at 1")]
    Zero,
    #[error("line {line} is past the end of the file ({lines} lines)")]
    PastLastLine { line: u32, lines: usize },
    #[error("column {column} is past the end of line {line} ({chars} characters)")]
    PastLineEnd {
        line: u32,
        column: u32,
        chars: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn columns_after_multibyte_characters_count_code_units() {
        // `é` is 1 UTF-16 unit and 2 UTF-8 bytes; `😀` is 2 UTF-16 units and 4 bytes.
        let text = "x = 'é😀'; name\n";
        let index = LineIndex::new(text);
        let column = text.chars().position(|c| c == 'n').expect("n") as u32 + 1;
        assert_eq!(index.to_lsp(1, column, Encoding::Utf16), Ok(pos(0, 11)));
        assert_eq!(index.to_lsp(1, column, Encoding::Utf8), Ok(pos(0, 14)));
        assert_eq!(index.to_lsp(1, column, Encoding::Utf32), Ok(pos(0, 10)));
        for encoding in [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32] {
            let lsp = index.to_lsp(1, column, encoding).expect("in the line");
            assert_eq!(index.from_lsp(lsp, encoding), (1, column));
            assert_eq!(&text[index.offset(lsp, encoding)..][..4], "name");
        }
    }

    #[test]
    fn lines_and_columns_are_checked() {
        let index = LineIndex::new("ab\r\ncd");
        assert_eq!(index.line(0), Some("ab"));
        assert_eq!(index.line(1), Some("cd"));
        assert_eq!(index.to_lsp(2, 3, Encoding::Utf16), Ok(pos(1, 2)));
        assert!(index.to_lsp(2, 4, Encoding::Utf16).is_err());
        assert!(index.to_lsp(3, 1, Encoding::Utf16).is_err());
        assert!(index.to_lsp(0, 1, Encoding::Utf16).is_err());
        assert_eq!(index.from_lsp(pos(9, 9), Encoding::Utf16), (2, 3));
        assert_eq!(index.offset(pos(9, 0), Encoding::Utf16), 6);
    }

    #[test]
    fn the_encoding_comes_from_the_capabilities() {
        let caps = serde_json::json!({ "positionEncoding": "utf-8" });
        assert_eq!(Encoding::from_capabilities(Some(&caps)), Encoding::Utf8);
        assert_eq!(Encoding::from_capabilities(None), Encoding::Utf16);
    }
}
