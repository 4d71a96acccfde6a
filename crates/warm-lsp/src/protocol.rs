//! The `lsp/*` methods, typed on both sides: [`crate::LspService`] reads the params and builds
//! the answers, `warm lsp` builds the params and reads the answers; the JSON between them is
//! what `docs/lsp.md` describes.
//!
//! - [`REQUEST`] takes [`QueryParams`] and answers [`QueryAnswer`].
//! - [`DIAGNOSTICS`] takes [`DiagnosticsParams`] and answers [`DiagnosticsAnswer`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::position::Encoding;

pub const REQUEST: &str = "lsp/request";
pub const DIAGNOSTICS: &str = "lsp/diagnostics";

/// `lsp/request`: send `method` to the server, after syncing `file`; `textDocument` and the
/// converted `position` are added to `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LineColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// 1-based line and column, the column counting characters (as compilers and `grep -n`
/// print them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineColumn {
    pub line: u32,
    pub column: u32,
}

/// The server's answer untouched, and the position encoding its columns count in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    pub result: Value,
    pub encoding: Encoding,
    /// The server was still reading the project (indexing) when the wait for it ran out:
    /// the answer may miss what it had not read yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// `lsp/diagnostics`: the diagnostics of `file` for its content on disk now, waiting at most
/// `timeout_ms` for a server that publishes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsParams {
    pub file: PathBuf,
    /// Other files to bring up to date first (the other files of one `warm lsp
    /// diagnostics A B` command): an error in `file` can come from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The server's diagnostics untouched; `complete` is false when the wait ran out before the
/// server published any for the current content, or before it finished its work in progress
/// (indexing): the last ones it published are given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticsAnswer {
    pub diagnostics: Value,
    pub encoding: Encoding,
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wire_is_what_the_docs_describe() {
        let params = QueryParams {
            method: "textDocument/hover".into(),
            file: Some("a.py".into()),
            position: Some(LineColumn { line: 3, column: 5 }),
            params: None,
        };
        assert_eq!(
            serde_json::to_value(&params).expect("serializes"),
            json!({ "method": "textDocument/hover", "file": "a.py", "position": { "line": 3, "column": 5 } })
        );
        let answer: DiagnosticsAnswer = serde_json::from_value(
            json!({ "diagnostics": [], "encoding": "utf-8", "complete": false }),
        )
        .expect("parses");
        assert_eq!(answer.encoding, Encoding::Utf8);
        assert!(!answer.complete);
        assert!(
            serde_json::from_value::<QueryParams>(json!({ "method": "x", "bogus": 1 })).is_err()
        );
    }
}
