//! The LSP side of hosting a language server: the handshake once per process, and answers to
//! the requests a server sends its client.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use warm_protocol::{ErrorObject, Message, Notification, Request};

use crate::config::LspInit;
use crate::process::WorkerProcess;

/// `file://` URI of an absolute path, percent-encoding what a URI path may not hold.
pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(char::from(*byte))
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
}

/// The path of a `file://` URI, percent-decoded; `None` for other schemes.
pub fn path_from_uri(uri: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let encoded = uri.strip_prefix("file://")?;
    // `file://host/path` names another machine; only the local form is a path here.
    let encoded = encoded.strip_prefix("localhost").unwrap_or(encoded);
    if !encoded.starts_with('/') {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    Some(std::ffi::OsString::from_vec(decoded).into())
}

/// `initialize`, then `initialized`, then `workspace/didChangeConfiguration` when settings are
/// given.
///
/// Returns the server's `capabilities`.
///
/// # Errors
/// The server's error, or a timeout, as a message for the worker's retirement.
pub async fn handshake(
    worker: &Arc<WorkerProcess>,
    root: &Path,
    init: &LspInit,
    timeout: Duration,
) -> Result<Value, String> {
    let root_uri = file_uri(root);
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let mut params = json!({
        "processId": std::process::id(),
        "clientInfo": { "name": "warm", "version": env!("CARGO_PKG_VERSION") },
        "rootUri": root_uri,
        "rootPath": root.display().to_string(),
        "workspaceFolders": [{ "uri": root_uri, "name": name }],
        "capabilities": client_capabilities(),
    });
    if let Some(options) = &init.initialization_options {
        params["initializationOptions"] = options.clone();
    }
    let answer = worker
        .request_raw("initialize", Some(params), timeout)
        .await
        .map_err(|e| format!("initialize failed: {e}"))?;
    worker
        .notify_raw(Message::Notification(Notification {
            method: "initialized".into(),
            params: Some(json!({})),
        }))
        .await;
    if let Some(settings) = &init.settings {
        worker
            .notify_raw(Message::Notification(Notification {
                method: "workspace/didChangeConfiguration".into(),
                params: Some(json!({ "settings": settings })),
            }))
            .await;
    }
    Ok(answer.get("capabilities").cloned().unwrap_or(Value::Null))
}

/// What warm, as an LSP client, says it supports: enough for servers to offer hover,
/// definitions, references, symbols, diagnostics, rename and formatting, with UTF-16
/// positions (the LSP default) and work-done progress.
fn client_capabilities() -> Value {
    json!({
        // Any of these: warm converts columns for whichever the server picks.
        "general": { "positionEncodings": ["utf-8", "utf-32", "utf-16"] },
        "window": { "workDoneProgress": true },
        "workspace": {
            "configuration": true,
            "workspaceFolders": true,
            "didChangeConfiguration": { "dynamicRegistration": false },
            "symbol": { "dynamicRegistration": false },
        },
        "textDocument": {
            "synchronization": { "didSave": true, "dynamicRegistration": false },
            "hover": { "contentFormat": ["plaintext", "markdown"] },
            "definition": { "linkSupport": false },
            "typeDefinition": { "linkSupport": false },
            "implementation": { "linkSupport": false },
            "references": {},
            "documentSymbol": { "hierarchicalDocumentSymbolSupport": true },
            "publishDiagnostics": { "relatedInformation": false },
            "diagnostic": { "dynamicRegistration": false },
            "rename": { "prepareSupport": false },
            "formatting": {},
        },
    })
}

/// The answer to a request the server sent its client.
pub fn answer_server_request(
    request: &Request,
    init: Option<&LspInit>,
    root: &Path,
) -> Result<Value, ErrorObject> {
    match request.method.as_str() {
        "workspace/configuration" => {
            let settings = init.and_then(|i| i.settings.as_ref());
            let items = request
                .params
                .as_ref()
                .and_then(|p| p.get("items"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(Value::Array(
                items
                    .iter()
                    .map(|item| section(settings, item.get("section").and_then(Value::as_str)))
                    .collect(),
            ))
        }
        "client/registerCapability"
        | "client/unregisterCapability"
        | "window/workDoneProgress/create" => Ok(Value::Null),
        "workspace/workspaceFolders" => Ok(json!([{
            "uri": file_uri(root),
            "name": root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }])),
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// The part of the settings a `workspace/configuration` item asks for (`a.b.c`), or null.
fn section(settings: Option<&Value>, section: Option<&str>) -> Value {
    let Some(mut value) = settings else {
        return Value::Null;
    };
    if let Some(path) = section.filter(|s| !s.is_empty()) {
        for key in path.split('.') {
            match value.get(key) {
                Some(inner) => value = inner,
                None => return Value::Null,
            }
        }
    }
    value.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_escape_what_they_must() {
        assert_eq!(
            file_uri(Path::new("/tmp/a b/é")),
            "file:///tmp/a%20b/%C3%A9"
        );
        assert_eq!(file_uri(Path::new("/x/y_z-1.rs")), "file:///x/y_z-1.rs");
    }

    #[test]
    fn file_uris_decode_back_to_their_path() {
        for path in ["/tmp/a b/é", "/x/100%.py", "/plain"] {
            assert_eq!(
                path_from_uri(&file_uri(Path::new(path))).as_deref(),
                Some(Path::new(path))
            );
        }
        assert_eq!(path_from_uri("file:///a%2"), Some("/a%2".into()));
        assert_eq!(path_from_uri("untitled:Untitled-1"), None);
        assert_eq!(path_from_uri("file://server/share"), None);
    }

    #[test]
    fn configuration_sections_are_looked_up_by_path() {
        let settings = json!({ "pylsp": { "plugins": { "ruff": { "enabled": true } } } });
        assert_eq!(
            section(Some(&settings), Some("pylsp.plugins.ruff")),
            json!({ "enabled": true })
        );
        assert_eq!(section(Some(&settings), Some("pylsp.nope")), Value::Null);
        assert_eq!(section(Some(&settings), None), settings);
        assert_eq!(section(None, Some("x")), Value::Null);
    }
}
