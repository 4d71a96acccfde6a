//! [`Documents`]: the files the language server has open, kept equal to their content on disk.
//!
//! A query names a file; before the query is sent, the file is read and, if the server does
//! not have that content yet, opened (`didOpen`) or updated (`didChange`, full text), and so
//! is every other document the server has open (`didChange`, or `didClose` for a file that
//! is gone): a server answers from all of them. All of it is queued on the server's stdin
//! ahead of the query, so the server answers for what is on disk when the query started. Reading and comparing costs microseconds for a
//! source file, far less than trusting modification times that can tie.
//!
//! A restarted server has nothing open: documents are tied to the server process they were
//! opened in, and opened again in a new one. Documents no query touched for a while are
//! closed, so that a long-lived daemon does not keep the whole project open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::uri::file_uri;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use warm_protocol::{ErrorCode, ErrorObject};
use warm_worker::WorkerProcess;

use crate::servers::language_of;

/// A document as the server has it.
struct Document {
    /// The server process it was opened in.
    pid: u32,
    uri: String,
    version: i32,
    text: Arc<str>,
    /// The sync counter just after this document's last `didOpen`/`didChange` was queued.
    synced_at: u64,
    last_used: Instant,
}

/// A document's state once synced, for the query about to be sent.
#[derive(Debug, Clone)]
pub struct Synced {
    pub uri: String,
    pub version: i32,
    pub text: Arc<str>,
    pub synced_at: u64,
}

#[derive(Default)]
pub struct Documents {
    /// Held across reading a file and queueing its sync, so that concurrent queries on one
    /// file send one `didOpen`, and versions go up in the order the server sees them.
    open: Mutex<HashMap<PathBuf, Document>>,
    /// Counts sync messages queued, to order them against diagnostics that arrive.
    sync_counter: AtomicU64,
}

impl Documents {
    /// The sync counter now: a diagnostics notification that arrives later than a document's
    /// `synced_at` was sent after the server received that document's content.
    pub fn sync_counter(&self) -> u64 {
        self.sync_counter.load(Ordering::SeqCst)
    }

    /// Counts one more change the server was told of (or, for a change it was not told of,
    /// one it may read for itself): its number, which diagnostics that arrive after it are
    /// compared with.
    pub fn next_sync(&self) -> u64 {
        self.sync_counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Makes the server's copy of `path` equal to the file on disk.
    ///
    /// # Errors
    /// -32602 when the file cannot be read; -32002 when the server takes no more input.
    ///
    /// # Cancellation safety
    /// Safe to drop: the server is told of the new content and the document recorded at it in
    /// one step after the last await, so a dropped sync leaves both as they were.
    pub async fn sync(&self, worker: &WorkerProcess, path: &Path) -> Result<Synced, ErrorObject> {
        let bytes = std::fs::read(path).map_err(|e| {
            ErrorObject::new(
                ErrorCode::InvalidParams,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let text: Arc<str> = String::from_utf8_lossy(&bytes).into();
        let mut open = self.open.lock().await;
        let existing = open.get_mut(path).filter(|d| d.pid == worker.pid);
        let (params, uri) = match existing {
            Some(doc) if doc.text == text => {
                doc.last_used = Instant::now();
                return Ok(Synced {
                    uri: doc.uri.clone(),
                    version: doc.version,
                    text: doc.text.clone(),
                    synced_at: doc.synced_at,
                });
            }
            Some(doc) => {
                let version = doc.version + 1;
                if !change(worker, &doc.uri, version, &text).await {
                    return Err(server_gone());
                }
                let synced_at = self.next_sync();
                doc.version = version;
                doc.text = text.clone();
                doc.synced_at = synced_at;
                doc.last_used = Instant::now();
                return Ok(Synced {
                    uri: doc.uri.clone(),
                    version,
                    text,
                    synced_at,
                });
            }
            None => {
                let uri = file_uri(path);
                let params = json!({
                    "textDocument": {
                        "uri": uri,
                        "languageId": language_of(path).unwrap_or("plaintext"),
                        "version": 1,
                        "text": &*text,
                    },
                });
                (params, uri)
            }
        };
        if !worker.notify("textDocument/didOpen", params).await {
            return Err(server_gone());
        }
        let synced_at = self.next_sync();
        open.insert(
            path.to_owned(),
            Document {
                pid: worker.pid,
                uri: uri.clone(),
                version: 1,
                text: text.clone(),
                synced_at,
                last_used: Instant::now(),
            },
        );
        Ok(Synced {
            uri,
            version: 1,
            text,
            synced_at,
        })
    }

    /// Makes the server check a document again though its content did not change, after a
    /// change elsewhere it may depend on: a `didChange` of the same text (for servers that
    /// lint every version), or, with `reopen`, `didClose` then `didOpen` (for a server that
    /// skips content it has already checked, as clangd does). The document's new state.
    ///
    /// # Errors
    /// -32002 when the server takes no more input.
    ///
    /// # Cancellation safety
    /// As [`Documents::sync`].
    pub async fn recheck(
        &self,
        worker: &WorkerProcess,
        path: &Path,
        reopen: bool,
    ) -> Result<Synced, ErrorObject> {
        let mut open = self.open.lock().await;
        let Some(doc) = open.get_mut(path).filter(|d| d.pid == worker.pid) else {
            drop(open);
            return self.sync(worker, path).await;
        };
        let version = doc.version + 1;
        let told = if reopen {
            worker
                .notify(
                    "textDocument/didClose",
                    json!({ "textDocument": { "uri": doc.uri } }),
                )
                .await
                && worker
                    .notify(
                        "textDocument/didOpen",
                        json!({ "textDocument": {
                            "uri": doc.uri,
                            "languageId": language_of(path).unwrap_or("plaintext"),
                            "version": version,
                            "text": &*doc.text,
                        } }),
                    )
                    .await
        } else {
            change(worker, &doc.uri, version, &doc.text).await
        };
        if !told {
            return Err(server_gone());
        }
        doc.version = version;
        doc.synced_at = self.next_sync();
        doc.last_used = Instant::now();
        Ok(Synced {
            uri: doc.uri.clone(),
            version,
            text: doc.text.clone(),
            synced_at: doc.synced_at,
        })
    }

    /// Brings every document `worker` has open up to date with the disk, before a query: a
    /// server answers from all its open documents (a definition in another file, an error
    /// from an import), not only from the one the query names. A changed file gets
    /// `didChange`, a file that is gone (or unreadable) `didClose`. True when any did.
    ///
    /// # Errors
    /// -32002 when the server takes no more input.
    ///
    /// # Cancellation safety
    /// As [`Documents::sync`]: each document is recorded at its new content only once the
    /// server was told.
    pub async fn refresh_open(&self, worker: &WorkerProcess) -> Result<bool, ErrorObject> {
        let mut changed = false;
        let mut open = self.open.lock().await;
        let paths: Vec<PathBuf> = open
            .iter()
            .filter(|(_, d)| d.pid == worker.pid)
            .map(|(path, _)| path.clone())
            .collect();
        for path in paths {
            let Some(doc) = open.get_mut(&path) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&path) else {
                let params = json!({ "textDocument": { "uri": doc.uri } });
                if !worker.notify("textDocument/didClose", params).await {
                    return Err(server_gone());
                }
                open.remove(&path);
                changed = true;
                continue;
            };
            let text: Arc<str> = String::from_utf8_lossy(&bytes).into();
            if doc.text == text {
                continue;
            }
            let version = doc.version + 1;
            if !change(worker, &doc.uri, version, &text).await {
                return Err(server_gone());
            }
            doc.version = version;
            doc.text = text;
            doc.synced_at = self.next_sync();
            changed = true;
        }
        Ok(changed)
    }

    /// Closes (`didClose`) the documents of `worker` no query has used for `idle`, and
    /// forgets those of servers that are gone. Returns how many were closed.
    ///
    /// # Cancellation safety
    /// Dropped midway, a document may be forgotten here before its `didClose` was sent: the
    /// next query about it opens it again, which servers accept.
    pub async fn close_idle(&self, worker: Option<&WorkerProcess>, idle: Duration) -> usize {
        let mut open = self.open.lock().await;
        let pid = worker.map(|w| w.pid);
        let stale: Vec<PathBuf> = open
            .iter()
            .filter(|(_, d)| Some(d.pid) != pid || d.last_used.elapsed() >= idle)
            .map(|(path, _)| path.clone())
            .collect();
        let mut closed = 0;
        for path in stale {
            let Some(doc) = open.remove(&path) else {
                continue;
            };
            if let Some(worker) = worker.filter(|w| w.pid == doc.pid) {
                worker
                    .notify(
                        "textDocument/didClose",
                        json!({ "textDocument": { "uri": doc.uri } }),
                    )
                    .await;
                closed += 1;
            }
        }
        closed
    }
}

/// Queues a document's new content (`didChange`, the full text), then `didSave` when the
/// server asked for it: the file was saved, and some servers re-check what depends on a
/// file only then (clangd, the files that include a header). False when the server takes no
/// more input.
async fn change(worker: &WorkerProcess, uri: &str, version: i32, text: &str) -> bool {
    let params = json!({
        "textDocument": { "uri": uri, "version": version },
        "contentChanges": [{ "text": text }],
    });
    if !worker.notify("textDocument/didChange", params).await {
        return false;
    }
    let Some(include_text) = save_wanted(worker.handshake_answer()) else {
        return true;
    };
    let mut params = json!({ "textDocument": { "uri": uri } });
    if include_text {
        params["text"] = json!(text);
    }
    worker.notify("textDocument/didSave", params).await
}

/// Whether the server wants `didSave` (its `textDocumentSync.save`), and then whether with
/// the text.
fn save_wanted(capabilities: Option<&Value>) -> Option<bool> {
    match capabilities?.pointer("/textDocumentSync/save")? {
        Value::Bool(true) => Some(false),
        Value::Object(options) => Some(options.get("includeText") == Some(&Value::Bool(true))),
        _ => None,
    }
}

fn server_gone() -> ErrorObject {
    ErrorObject::new(
        ErrorCode::WorkerUnavailable,
        "worker unavailable: the language server takes no more input",
    )
}
