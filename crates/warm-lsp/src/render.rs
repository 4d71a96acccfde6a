//! The client side of `warm lsp`: a server's answers as lines a terminal, an editor or grep
//! can use (`path:line:col: text`, 1-based, columns in characters), and workspace edits
//! applied to files.
//!
//! Positions in answers count code units of the server's encoding; turning them into
//! character columns needs the text of the line, read from disk by [`Sources`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::uri::path_from_uri;
use lsp_types::{
    Diagnostic, DiagnosticSeverity, DocumentSymbol, GotoDefinitionResponse, Hover, HoverContents,
    MarkedString, OneOf, Position, Range, SymbolInformation, SymbolKind, TextEdit, WorkspaceSymbol,
};
use serde_json::Value;

use crate::position::{Encoding, LineIndex};

/// Files read for rendering, each once.
pub struct Sources {
    cwd: PathBuf,
    encoding: Encoding,
    texts: HashMap<PathBuf, Option<String>>,
}

impl Sources {
    pub fn new(cwd: PathBuf, encoding: Encoding) -> Sources {
        Sources {
            cwd,
            encoding,
            texts: HashMap::new(),
        }
    }

    fn text(&mut self, path: &Path) -> Option<&str> {
        self.texts
            .entry(path.to_owned())
            .or_insert_with(|| {
                std::fs::read(path)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .as_deref()
    }

    /// A path as shown: relative to the working directory when inside it.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// `path:line:col: rest` for an LSP position in `path` (1-based, the column in
    /// characters), with the line's own text when `rest` is empty.
    pub fn line(&mut self, path: &Path, position: Position, rest: &str) -> String {
        let encoding = self.encoding;
        let (line, column, text) = match self.text(path) {
            Some(text) => {
                let index = LineIndex::new(text);
                let (line, column) = index.from_lsp(position, encoding);
                let text = index.line(line as usize - 1).unwrap_or_default().to_owned();
                (line, column, text)
            }
            // Unreadable: code units are the best guess at a column.
            None => (position.line + 1, position.character + 1, String::new()),
        };
        let rest = if rest.is_empty() {
            text
        } else {
            rest.to_owned()
        };
        format!("{}:{line}:{column}: {rest}", self.display(path))
    }
}

/// The text of a hover answer, or `None` when the server has nothing to say.
pub fn hover_text(result: &Value) -> Option<String> {
    let hover: Hover = serde_json::from_value(result.clone()).ok()?;
    let marked = |m: MarkedString| match m {
        MarkedString::String(s) => s,
        MarkedString::LanguageString(l) => format!("```{}\n{}\n```", l.language, l.value),
    };
    let text = match hover.contents {
        HoverContents::Scalar(m) => marked(m),
        HoverContents::Array(items) => items
            .into_iter()
            .map(marked)
            .collect::<Vec<_>>()
            .join("\n\n"),
        HoverContents::Markup(m) => m.value,
    };
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The locations of a definition, declaration, implementation or references answer.
pub fn locations(result: &Value) -> Vec<(PathBuf, Range)> {
    let Ok(Some(response)) =
        serde_json::from_value::<Option<GotoDefinitionResponse>>(result.clone())
    else {
        return Vec::new();
    };
    let pairs: Vec<(String, Range)> = match response {
        GotoDefinitionResponse::Scalar(l) => vec![(l.uri.as_str().to_owned(), l.range)],
        GotoDefinitionResponse::Array(ls) => ls
            .into_iter()
            .map(|l| (l.uri.as_str().to_owned(), l.range))
            .collect(),
        GotoDefinitionResponse::Link(links) => links
            .into_iter()
            .map(|l| (l.target_uri.as_str().to_owned(), l.target_selection_range))
            .collect(),
    };
    pairs
        .into_iter()
        .filter_map(|(uri, range)| Some((path_from_uri(&uri)?, range)))
        .collect()
}

/// One symbol of a document or workspace symbols answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Symbol {
    pub path: PathBuf,
    pub position: Position,
    pub kind: &'static str,
    /// `Outer.inner` for nested symbols.
    pub name: String,
}

/// The symbols of a `textDocument/documentSymbol` (for `file`) or `workspace/symbol` answer,
/// hierarchical answers flattened with their parents' names.
pub fn symbols(result: &Value, file: Option<&Path>) -> Vec<Symbol> {
    let mut out = Vec::new();
    let Some(items) = result.as_array() else {
        return out;
    };
    for item in items {
        if item.get("selectionRange").is_some() {
            if let (Some(file), Ok(symbol)) =
                (file, serde_json::from_value::<DocumentSymbol>(item.clone()))
            {
                flatten(file, &symbol, "", &mut out);
            }
        } else if let Ok(info) = serde_json::from_value::<SymbolInformation>(item.clone()) {
            if let Some(path) = path_from_uri(info.location.uri.as_str()) {
                out.push(Symbol {
                    path,
                    position: info.location.range.start,
                    kind: kind_name(info.kind),
                    name: qualified(info.container_name.as_deref(), &info.name),
                });
            }
        } else if let Ok(symbol) = serde_json::from_value::<WorkspaceSymbol>(item.clone()) {
            let (uri, position) = match &symbol.location {
                OneOf::Left(location) => (location.uri.as_str(), location.range.start),
                OneOf::Right(location) => (location.uri.as_str(), Position::default()),
            };
            if let Some(path) = path_from_uri(uri) {
                out.push(Symbol {
                    path,
                    position,
                    kind: kind_name(symbol.kind),
                    name: qualified(symbol.container_name.as_deref(), &symbol.name),
                });
            }
        }
    }
    out
}

fn flatten(file: &Path, symbol: &DocumentSymbol, parent: &str, out: &mut Vec<Symbol>) {
    let name = qualified(Some(parent), &symbol.name);
    out.push(Symbol {
        path: file.to_owned(),
        position: symbol.selection_range.start,
        kind: kind_name(symbol.kind),
        name: name.clone(),
    });
    for child in symbol.children.iter().flatten() {
        flatten(file, child, &name, out);
    }
}

fn qualified(container: Option<&str>, name: &str) -> String {
    match container.filter(|c| !c.is_empty()) {
        Some(container) => format!("{container}.{name}"),
        None => name.to_owned(),
    }
}

/// The name LSP gives a symbol kind.
pub fn kind_name(kind: SymbolKind) -> &'static str {
    const NAMES: [&str; 26] = [
        "file",
        "module",
        "namespace",
        "package",
        "class",
        "method",
        "property",
        "field",
        "constructor",
        "enum",
        "interface",
        "function",
        "variable",
        "constant",
        "string",
        "number",
        "boolean",
        "array",
        "object",
        "key",
        "null",
        "enum-member",
        "struct",
        "event",
        "operator",
        "type-parameter",
    ];
    let index: i32 = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_i64())
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0);
    usize::try_from(index - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("symbol")
}

/// Parsed diagnostics of one file.
pub fn diagnostics(value: &Value) -> Vec<Diagnostic> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// `error`, `warning`, `info` or `hint` (servers that give no severity mean an error).
pub fn severity_name(diagnostic: &Diagnostic) -> &'static str {
    match diagnostic.severity {
        Some(DiagnosticSeverity::WARNING) => "warning",
        Some(DiagnosticSeverity::INFORMATION) => "info",
        Some(DiagnosticSeverity::HINT) => "hint",
        _ => "error",
    }
}

/// `message [source/code]` of a diagnostic.
pub fn diagnostic_text(diagnostic: &Diagnostic) -> String {
    let code = diagnostic.code.as_ref().map(|c| match c {
        lsp_types::NumberOrString::Number(n) => n.to_string(),
        lsp_types::NumberOrString::String(s) => s.clone(),
    });
    let origin = match (&diagnostic.source, code) {
        (Some(source), Some(code)) => format!(" [{source}/{code}]"),
        (Some(source), None) => format!(" [{source}]"),
        (None, Some(code)) => format!(" [{code}]"),
        (None, None) => String::new(),
    };
    let message = diagnostic.message.lines().collect::<Vec<_>>().join(" ");
    format!("{}: {message}{origin}", severity_name(diagnostic))
}

/// The text edits of a `WorkspaceEdit`, by file.
///
/// # Errors
/// When the edit creates, renames or deletes files (not applied by warm), or names a
/// non-file URI.
pub fn workspace_edit(result: &Value) -> Result<Vec<(PathBuf, Vec<TextEdit>)>, EditError> {
    let edit: lsp_types::WorkspaceEdit =
        serde_json::from_value(result.clone()).map_err(EditError::NotAnEdit)?;
    let mut files: Vec<(PathBuf, Vec<TextEdit>)> = Vec::new();
    let mut add = |uri: &str, edits: Vec<TextEdit>| -> Result<(), EditError> {
        let path = path_from_uri(uri).ok_or_else(|| EditError::NotAFile(uri.to_owned()))?;
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => existing.extend(edits),
            None => files.push((path, edits)),
        }
        Ok(())
    };
    match edit.document_changes {
        Some(lsp_types::DocumentChanges::Edits(edits)) => {
            for edit in edits {
                let text_edits = edit.edits.into_iter().map(plain_edit).collect();
                add(edit.text_document.uri.as_str(), text_edits)?;
            }
        }
        Some(lsp_types::DocumentChanges::Operations(operations)) => {
            for operation in operations {
                match operation {
                    lsp_types::DocumentChangeOperation::Edit(edit) => {
                        let text_edits = edit.edits.into_iter().map(plain_edit).collect();
                        add(edit.text_document.uri.as_str(), text_edits)?;
                    }
                    lsp_types::DocumentChangeOperation::Op(_) => {
                        return Err(EditError::FileOperations);
                    }
                }
            }
        }
        None => {
            let mut changes: Vec<_> = edit.changes.unwrap_or_default().into_iter().collect();
            changes.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            for (uri, edits) in changes {
                add(uri.as_str(), edits)?;
            }
        }
    }
    Ok(files)
}

fn plain_edit(edit: OneOf<TextEdit, lsp_types::AnnotatedTextEdit>) -> TextEdit {
    match edit {
        OneOf::Left(edit) => edit,
        OneOf::Right(annotated) => annotated.text_edit,
    }
}

/// `text` with `edits` applied (LSP ranges refer to the text before any edit).
///
/// # Errors
/// When two edits overlap.
pub fn apply_edits(
    text: &str,
    edits: &[TextEdit],
    encoding: Encoding,
) -> Result<String, EditError> {
    let index = LineIndex::new(text);
    let mut spans: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            let start = index.offset(e.range.start, encoding);
            let end = index.offset(e.range.end, encoding).max(start);
            (start, end, e.new_text.as_str())
        })
        .collect();
    // Stable: edits at one position keep the order the server gave them.
    spans.sort_by_key(|(start, end, _)| (*start, *end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, new_text) in spans {
        if start < at {
            return Err(EditError::Overlapping);
        }
        out.push_str(&text[at..start]);
        out.push_str(new_text);
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// A server's edit that warm cannot apply.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("not a workspace edit: {0}")]
    NotAnEdit(#[source] serde_json::Error),
    #[error("cannot edit {0}: not a file")]
    NotAFile(String),
    #[error(
        "the edit creates, renames or deletes files, which warm does not apply; see it with --json"
    )]
    FileOperations,
    #[error("the server sent overlapping edits")]
    Overlapping,
}

/// A unified diff of a file's old and new text.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(l1: u32, c1: u32, l2: u32, c2: u32) -> Range {
        Range::new(Position::new(l1, c1), Position::new(l2, c2))
    }

    #[test]
    fn hover_answers_of_every_shape_become_text() {
        let markup = json!({ "contents": { "kind": "markdown", "value": "```python\nf()\n```" } });
        assert_eq!(hover_text(&markup).as_deref(), Some("```python\nf()\n```"));
        let marked = json!({ "contents": ["doc", { "language": "python", "value": "x: int" }] });
        assert_eq!(
            hover_text(&marked).as_deref(),
            Some("doc\n\n```python\nx: int\n```")
        );
        assert_eq!(hover_text(&json!({ "contents": "" })), None);
        assert_eq!(hover_text(&Value::Null), None);
    }

    #[test]
    fn locations_of_every_shape_become_paths() {
        let location = json!({ "uri": "file:///a%20b.py", "range": range(1, 2, 1, 3) });
        assert_eq!(
            locations(&location),
            vec![(PathBuf::from("/a b.py"), range(1, 2, 1, 3))]
        );
        assert_eq!(locations(&json!([location])).len(), 1);
        let link = json!([{ "targetUri": "file:///c.py", "targetRange": range(0, 0, 9, 0),
            "targetSelectionRange": range(4, 4, 4, 8) }]);
        assert_eq!(
            locations(&link),
            vec![(PathBuf::from("/c.py"), range(4, 4, 4, 8))]
        );
        assert!(locations(&Value::Null).is_empty());
    }

    #[test]
    fn nested_symbols_are_flattened_with_their_parents() {
        let answer = json!([{ "name": "Greeter", "kind": 5, "range": range(0, 0, 5, 0),
            "selectionRange": range(0, 6, 0, 13),
            "children": [{ "name": "hello", "kind": 6, "range": range(1, 4, 2, 0),
                "selectionRange": range(1, 8, 1, 13) }] }]);
        let found = symbols(&answer, Some(Path::new("/p/a.py")));
        let names: Vec<_> = found.iter().map(|s| (s.kind, s.name.as_str())).collect();
        assert_eq!(names, [("class", "Greeter"), ("method", "Greeter.hello")]);
    }

    #[test]
    fn edits_apply_against_the_original_text() {
        let text = "def old():\n    return old\n";
        let edits = [
            TextEdit::new(range(1, 11, 1, 14), "new".into()),
            TextEdit::new(range(0, 4, 0, 7), "new".into()),
        ];
        assert_eq!(
            apply_edits(text, &edits, Encoding::Utf16).ok().as_deref(),
            Some("def new():\n    return new\n")
        );
        let overlapping = [
            TextEdit::new(range(0, 0, 0, 5), "x".into()),
            TextEdit::new(range(0, 3, 0, 6), "y".into()),
        ];
        assert!(apply_edits(text, &overlapping, Encoding::Utf16).is_err());
    }

    #[test]
    fn workspace_edits_are_grouped_by_file() {
        let edit = json!({ "changes": { "file:///b.py": [{ "range": range(0, 0, 0, 1), "newText": "x" }],
            "file:///a.py": [{ "range": range(0, 0, 0, 1), "newText": "y" }] } });
        let files = workspace_edit(&edit).expect("valid edit");
        let paths: Vec<_> = files.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, [PathBuf::from("/a.py"), PathBuf::from("/b.py")]);
        let create = json!({ "documentChanges": [{ "kind": "create", "uri": "file:///n.py" }] });
        assert!(workspace_edit(&create).is_err());
    }

    #[test]
    fn diagnostics_read_like_compiler_messages() {
        let diagnostic: Diagnostic = serde_json::from_value(json!({
            "range": range(0, 0, 0, 1), "severity": 1, "source": "pyflakes",
            "code": "F821", "message": "undefined name 'x'" }))
        .expect("diagnostic");
        assert_eq!(
            diagnostic_text(&diagnostic),
            "error: undefined name 'x' [pyflakes/F821]"
        );
    }
}
