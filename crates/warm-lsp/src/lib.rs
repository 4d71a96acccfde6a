//! The `lsp` service of warm: a real language server kept warm in a per-project daemon, and
//! the shell-friendly side of its answers.
//!
//! # Layout
//! - [`servers`]: which server answers for a file (`.warm.toml`, else a built-in table).
//! - [`probe`]: whether an installed server actually runs (its version flag, cached).
//! - [`position`]: 1-based `LINE:COL` in characters versus LSP positions in code units.
//! - [`documents`]: keeping the server's open documents equal to the files on disk.
//! - [`diagnostics`]: published diagnostics, and waiting for those of a given content.
//! - [`dialect`]: [`dialect::LspDialect`], the LSP handshake, answers to a server's own
//!   requests, and its goodbye, plugged into the worker host.
//! - [`watched`]: files the server reads itself, and `workspace/didChangeWatchedFiles`.
//! - [`uri`]: `file://` URIs and paths.
//! - [`readiness`]: the server's work-done progress, and whether it has read the project.
//! - [`protocol`]: the `lsp/*` requests and answers, typed for both sides.
//! - [`service`]: [`LspService`], the daemon side: sync, queries, crash retry, progress.
//! - [`render`]: the client side: answers as `path:line:col: text` lines, edits applied.

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod diagnostics;
pub mod dialect;
pub mod documents;
pub mod position;
pub mod probe;
pub mod protocol;
pub mod readiness;
pub mod render;
pub mod servers;
pub mod service;
pub mod uri;
pub mod watched;

pub use lsp_types;
pub use position::{Encoding, LineIndex};
pub use service::LspService;
