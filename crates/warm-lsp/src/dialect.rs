//! [`LspDialect`]: what hosting a language server adds to hosting a worker: the handshake
//! once per process, answers to the requests a server sends its client, and `shutdown` then
//! `exit` before its input closes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use warm_daemon::BoxFuture;
use warm_protocol::{ErrorObject, Message, Notification, Request};
use warm_runtime::config::ResolvedService;
use warm_worker::{Dialect, StartError, WorkerProcess};

use crate::uri::file_uri;
use crate::watched::WatchedFiles;

/// What a language server is told when it starts: `[services.NAME]`'s
/// `initialization_options` and `settings`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LspInit {
    pub initialization_options: Option<Value>,
    pub settings: Option<Value>,
    /// The languages and file globs the server is for (told of changes to those files when
    /// it registers no watchers of its own).
    pub languages: Vec<String>,
    pub files: Vec<String>,
    /// The log message that says the server has read the project.
    pub ready_message: Option<String>,
}

impl LspInit {
    pub fn from_service(service: &ResolvedService) -> LspInit {
        let config = &service.config;
        LspInit {
            initialization_options: config
                .initialization_options
                .as_ref()
                .and_then(|v| serde_json::to_value(v).ok()),
            settings: config
                .settings
                .as_ref()
                .and_then(|v| serde_json::to_value(v).ok()),
            languages: config.languages.clone(),
            files: config.files.clone(),
            ready_message: config.ready_message.clone(),
        }
    }
}

/// The language server protocol as a [`Dialect`] of the worker host.
#[derive(Clone, Default)]
pub struct LspDialect {
    init: LspInit,
    /// Where the server's file-watcher registrations go; without it (a one-off call) they
    /// are accepted and ignored.
    watched: Option<Arc<WatchedFiles>>,
}

impl std::fmt::Debug for LspDialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LspDialect")
            .field("init", &self.init)
            .field("watched", &self.watched.is_some())
            .finish()
    }
}

impl LspDialect {
    pub fn new(init: LspInit) -> LspDialect {
        LspDialect {
            init,
            watched: None,
        }
    }

    /// A dialect that records the server's `workspace/didChangeWatchedFiles` registrations
    /// in `watched`.
    pub fn watching(init: LspInit, watched: Arc<WatchedFiles>) -> LspDialect {
        LspDialect {
            init,
            watched: Some(watched),
        }
    }
}

impl Dialect for LspDialect {
    fn start(&self, worker: Arc<WorkerProcess>) -> BoxFuture<Result<Value, StartError>> {
        let init = self.init.clone();
        Box::pin(async move {
            let timeout = worker.request_timeout();
            let root = worker.root().to_owned();
            handshake(&worker, &root, &init, timeout).await
        })
    }

    fn answer(&self, worker: &WorkerProcess, request: &Request) -> Result<Value, ErrorObject> {
        if let Some(watched) = &self.watched {
            match request.method.as_str() {
                "client/registerCapability" => {
                    watched.register(worker.pid, request.params.as_ref())
                }
                "client/unregisterCapability" => {
                    watched.unregister(worker.pid, request.params.as_ref())
                }
                _ => {}
            }
        }
        answer_server_request(request, &self.init, worker.root())
    }

    fn goodbye(&self, worker: Arc<WorkerProcess>, deadline: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            let _ = worker.request_raw("shutdown", None, deadline).await;
            worker
                .notify_raw(Message::Notification(Notification {
                    method: "exit".into(),
                    params: None,
                }))
                .await;
        })
    }
}

/// `initialize`, then `initialized`, then `workspace/didChangeConfiguration` when settings are
/// given.
///
/// Returns the server's `capabilities`.
///
/// # Errors
/// The server's error, or a timeout, as a message for the worker's retirement.
///
/// # Cancellation safety
/// Run it to its end (the host spawns it as a task of its own): dropped midway, the worker
/// is never marked ready, and requests waiting for it time out.
async fn handshake(
    worker: &Arc<WorkerProcess>,
    root: &Path,
    init: &LspInit,
    timeout: Duration,
) -> Result<Value, StartError> {
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
        .map_err(|error| StartError {
            request: "initialize",
            error,
        })?;
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
            // Honoured: see `watched`.
            "didChangeWatchedFiles": { "dynamicRegistration": true, "relativePatternSupport": true },
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
fn answer_server_request(
    request: &Request,
    init: &LspInit,
    root: &Path,
) -> Result<Value, ErrorObject> {
    match request.method.as_str() {
        "workspace/configuration" => {
            let settings = init.settings.as_ref();
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
