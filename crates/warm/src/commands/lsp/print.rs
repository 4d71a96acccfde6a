//! Output of each `warm lsp` command: lines a terminal, an editor or grep can use, or the
//! server's LSP JSON with `--json`. Exit codes: 0 with an answer, 1 with none (or, for
//! diagnostics, when any error is reported).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use warm_lsp::probe::Probe;
use warm_lsp::render;
use warm_lsp::servers::{self, Target};

use super::{Answer, At, Session};
use crate::commands::print_json;
use crate::failure::Failure;

const FOUND: Result<u8, Failure> = Ok(0);
const NOTHING: Result<u8, Failure> = Ok(1);

pub fn hover(session: &Session<'_>, at: &At) -> Result<u8, Failure> {
    let answer = position_request(session, at, "textDocument/hover", None)?;
    if session.json() {
        print_json(&answer.result);
        return if answer.result.is_null() {
            NOTHING
        } else {
            FOUND
        };
    }
    match render::hover_text(&answer.result) {
        Some(text) => {
            outln!("{text}");
            FOUND
        }
        None => {
            errln!("warm: no hover information at {}", place(session, at));
            NOTHING
        }
    }
}

pub fn locations(
    session: &Session<'_>,
    at: &At,
    method: &str,
    params: Option<Value>,
) -> Result<u8, Failure> {
    let answer = position_request(session, at, method, params)?;
    let found = render::locations(&answer.result);
    if session.json() {
        print_json(&answer.result);
    } else {
        let mut sources = session.sources(answer.encoding);
        for (path, range) in &found {
            outln!("{}", sources.line(path, range.start, ""));
        }
        if found.is_empty() {
            let what = method.trim_start_matches("textDocument/");
            errln!("warm: no {what} found at {}", place(session, at));
        }
    }
    if found.is_empty() {
        NOTHING
    } else {
        FOUND
    }
}

pub fn symbols(session: &Session<'_>, file: &Path) -> Result<u8, Failure> {
    let answer = session.request(
        Target::File(file),
        "textDocument/documentSymbol",
        None,
        None,
    )?;
    print_symbols(session, &answer, Some(file))
}

pub fn workspace_symbols(
    session: &Session<'_>,
    query: &str,
    language: Option<&str>,
) -> Result<u8, Failure> {
    let target = language.map_or(Target::Any, |language| {
        Target::Language(warm_lsp::servers::language_id(language))
    });
    let params = json!({ "query": query });
    let answer = session.request(target, "workspace/symbol", None, Some(params))?;
    print_symbols(session, &answer, None)
}

fn print_symbols(
    session: &Session<'_>,
    answer: &Answer,
    file: Option<&Path>,
) -> Result<u8, Failure> {
    let found = render::symbols(&answer.result, file);
    if session.json() {
        print_json(&answer.result);
    } else {
        let mut sources = session.sources(answer.encoding);
        for symbol in &found {
            let text = format!("{} {}", symbol.kind, symbol.name);
            outln!("{}", sources.line(&symbol.path, symbol.position, &text));
        }
    }
    if found.is_empty() {
        NOTHING
    } else {
        FOUND
    }
}

pub fn diagnostics(
    session: &Session<'_>,
    files: &[PathBuf],
    wait: Duration,
) -> Result<u8, Failure> {
    let (mut any_error, mut incomplete) = (false, false);
    let mut reports = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let others: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .filter(|(m, _)| *m != n)
            .map(|(_, f)| f.clone())
            .collect();
        let answer = session.diagnostics(file, &others, wait)?;
        incomplete |= !answer.complete;
        let parsed = render::diagnostics(&answer.diagnostics);
        any_error |= parsed.iter().any(|d| render::severity_name(d) == "error");
        if !answer.complete {
            errln!(
                "warm: {}: the server published no diagnostics for the current content within {:.1}s (or was still at work); showing its last ones, which may be stale (exit code 4)",
                session.sources(answer.encoding).display(file),
                wait.as_secs_f64()
            );
        }
        if session.json() {
            reports.push(
                json!({ "file": file, "diagnostics": answer.diagnostics, "complete": answer.complete }),
            );
        } else {
            let mut sources = session.sources(answer.encoding);
            for diagnostic in &parsed {
                let text = render::diagnostic_text(diagnostic);
                outln!("{}", sources.line(file, diagnostic.range.start, &text));
            }
        }
    }
    if session.json() {
        print_json(&reports);
    }
    // Never "clean" for diagnostics that may not be current: the timeout's code.
    Ok(if incomplete {
        crate::failure::code::TIMEOUT
    } else {
        u8::from(any_error)
    })
}

pub fn rename(session: &Session<'_>, at: &At, new_name: &str, apply: bool) -> Result<u8, Failure> {
    let params = json!({ "newName": new_name });
    let answer = position_request(session, at, "textDocument/rename", Some(params))?;
    if answer.result.is_null() {
        errln!("warm: nothing to rename at {}", place(session, at));
        return NOTHING;
    }
    let edits =
        render::workspace_edit(&answer.result).map_err(|e| Failure::Other(e.to_string()))?;
    let sources = session.sources(answer.encoding);
    let mut changed = Vec::new();
    for (path, file_edits) in &edits {
        let old = read(path)?;
        let new = render::apply_edits(&old, file_edits, answer.encoding)
            .map_err(|e| Failure::Other(e.to_string()))?;
        if new != old {
            changed.push((path.clone(), old, new));
        }
    }
    if session.json() {
        print_json(&answer.result);
    } else {
        for (path, old, new) in &changed {
            out!("{}", render::unified_diff(&sources.display(path), old, new));
        }
    }
    if apply {
        // A server's edit is the server's word: refuse (before writing anything) a file it
        // names outside the project, through `..` or a symlink alike.
        for (path, _, _) in &changed {
            let inside = path
                .canonicalize()
                .is_ok_and(|real| real.starts_with(&session.root));
            if !inside {
                return Err(Failure::Usage(format!(
                    "the server's rename edits {}, outside the project root {}: nothing was written",
                    path.display(),
                    session.root.display()
                )));
            }
        }
        for (path, _, new) in &changed {
            write(path, new)?;
        }
        errln!("warm: renamed in {} file(s)", changed.len());
    }
    FOUND
}

pub fn format(session: &Session<'_>, file: &Path) -> Result<u8, Failure> {
    let params = json!({ "options": { "tabSize": 4, "insertSpaces": true } });
    let answer = session.request(
        Target::File(file),
        "textDocument/formatting",
        None,
        Some(params),
    )?;
    if session.json() {
        print_json(&answer.result);
        return FOUND;
    }
    let edits: Vec<warm_lsp::lsp_types::TextEdit> =
        serde_json::from_value(answer.result).unwrap_or_default();
    let old = read(file)?;
    let new = render::apply_edits(&old, &edits, answer.encoding)
        .map_err(|e| Failure::Other(e.to_string()))?;
    out!("{new}");
    FOUND
}

/// `warm lsp servers`: the configured servers, then the built-in table.
pub fn servers(session: &Session<'_>) -> Result<u8, Failure> {
    let mut rows = Vec::new();
    for (name, service) in servers::lsp_services(&session.config) {
        let mut serves = service.languages.clone();
        serves.extend(service.files.iter().cloned());
        rows.push(json!({
            "service": name,
            "source": ".warm.toml",
            "command": service.command,
            "serves": serves,
            "installed": service.command.as_ref().and_then(|c| c.first()).and_then(|p| servers::find_on_path(p)),
        }));
    }
    for server in servers::BUILTIN_SERVERS {
        let (installed, broken) = match server.probe() {
            Probe::Works(path) => (Some(path), None),
            Probe::Missing => (None, None),
            Probe::Broken { output, .. } => (None, Some(output)),
        };
        rows.push(json!({
            "service": server.service_name(),
            "source": "built-in",
            "command": server.command,
            "serves": server.languages,
            "installed": installed,
            "broken": broken,
            "install": server.install,
        }));
    }
    if session.json() {
        print_json(&rows);
        return FOUND;
    }
    let text = |row: &Value, key: &str| -> String {
        match &row[key] {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(if key == "command" { " " } else { "," }),
            Value::String(s) => s.clone(),
            _ => String::new(),
        }
    };
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|row| {
            let state = match row["installed"].as_str() {
                Some(path) => path.to_owned(),
                None if row["broken"].is_string() => {
                    format!("broken: {} ({})", text(row, "broken"), text(row, "install"))
                }
                None if row["source"] == "built-in" => {
                    format!("not installed ({})", text(row, "install"))
                }
                None => "not found on PATH".to_owned(),
            };
            [
                text(row, "service"),
                text(row, "source"),
                text(row, "serves"),
                state,
            ]
        })
        .collect();
    // Columns as wide as their widest cell, so that every row lines up.
    let width = |column: usize| {
        table
            .iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for [service, source, serves, state] in &table {
        outln!("{service:<w0$}  {source:<w1$}  {serves:<w2$}  {state}");
    }
    FOUND
}

fn position_request(
    session: &Session<'_>,
    at: &At,
    method: &str,
    params: Option<Value>,
) -> Result<Answer, Failure> {
    session.request(
        Target::File(&at.file),
        method,
        Some((at.line, at.column)),
        params,
    )
}

fn place(session: &Session<'_>, at: &At) -> String {
    let shown = at.file.strip_prefix(&session.cwd).unwrap_or(&at.file);
    format!("{}:{}:{}", shown.display(), at.line, at.column)
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", path.display())))
}

/// Writes through a temporary file in the same directory, so a crash never leaves half a file.
fn write(path: &Path, text: &str) -> Result<(), Failure> {
    let failed =
        |e: std::io::Error| Failure::Other(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    std::fs::write(temp.path(), text).map_err(failed)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        std::fs::set_permissions(temp.path(), metadata.permissions()).map_err(failed)?;
    }
    temp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}
