//! [`LspService`]: a hosted language server as a daemon service.
//!
//! Besides any LSP request forwarded as is (`warm call -s SERVICE textDocument/hover ...`),
//! it answers two methods of its own that `warm lsp` uses, which take files and 1-based
//! `LINE:COL` positions instead of URIs and code units:
//!
//! - [`REQUEST`]: syncs the file, adds `textDocument` and the converted position to the
//!   params, sends the method; answers the server's answer untouched.
//! - [`DIAGNOSTICS`]: syncs the file and answers its diagnostics for that content, pulled
//!   when the server supports it, else waiting for what it publishes.
//!
//! Their params and answers are typed in [`crate::protocol`].
//!
//! A query that finds the server crashed is retried once on its replacement, which the
//! worker pool has started and initialised; documents are opened again there.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use warm_daemon::{BoxFuture, Call, Service};
use warm_protocol::{ErrorCode, ErrorObject, Notification};
use warm_runtime::EventLog;
use warm_worker::{Pool, WorkerConfig, WorkerProcess};

use crate::dialect::{LspDialect, LspInit};

use crate::diagnostics::{Published, Wanted};
use crate::documents::{Documents, Synced};
use crate::position::{Encoding, LineIndex};
use crate::protocol::{
    DiagnosticsAnswer, DiagnosticsParams, QueryAnswer, QueryParams, DIAGNOSTICS, REQUEST,
};
use crate::readiness::ServerWork;
use crate::watched::WatchedFiles;

/// Documents untouched this long are closed.
const IDLE_DOCUMENT: Duration = Duration::from_secs(600);
/// How long a query waits for a server still reading the project before it asks anyway
/// (and says the answer may be partial).
const READY_WAIT: Duration = Duration::from_secs(10);
/// How long `lsp/diagnostics` waits for published diagnostics by default.
const DIAGNOSTICS_WAIT: Duration = Duration::from_secs(10);
/// From a server that publishes without versions: how long more diagnostics may follow the
/// first list for a content, and how long silence after a change means "unchanged".
const SETTLE: Duration = Duration::from_millis(150);
const QUIET: Duration = Duration::from_millis(750);

/// Changed files opened in a server that registered no file watchers, at most, per query.
const MAX_OPENED_PER_QUERY: usize = 64;

/// The document a diagnostics query is about, as synced, and whether this query changed it.
struct Checked<'a> {
    path: &'a std::path::Path,
    synced: Synced,
    changed: bool,
}

/// State shared by the service and the hook that sees the server's notifications.
struct Shared {
    service: String,
    watched: Arc<WatchedFiles>,
    documents: Documents,
    published: Published,
    /// The server's work in progress, and whether it has read the project.
    work: Arc<ServerWork>,
    events: EventLog,
}

pub struct LspService {
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    timeout: Duration,
    stop: CancellationToken,
}

impl LspService {
    /// Starts the server (inside the daemon's runtime), speaking LSP to it: the handshake
    /// with `init`, answers to its requests, `shutdown` and `exit` when it stops.
    pub fn start(mut config: WorkerConfig, init: LspInit, events: EventLog) -> LspService {
        // Watching starts before the server does: no file it reads can change unseen.
        let watched = Arc::new(WatchedFiles::start(
            &config.cwd,
            &init.languages,
            &init.files,
        ));
        let ready_message = init.ready_message.clone();
        config.dialect = Some(Arc::new(LspDialect::watching(init, watched.clone())));
        let shared = Arc::new(Shared {
            service: config.service.clone(),
            watched,
            documents: Documents::default(),
            published: Published::default(),
            work: Arc::new(ServerWork::new(ready_message)),
            events: events.clone(),
        });
        let hook_shared = Arc::downgrade(&shared);
        let hook = Arc::new(move |worker: &WorkerProcess, notification: Notification| {
            if let Some(shared) = hook_shared.upgrade() {
                shared.on_notification(worker, notification);
            }
        });
        let timeout = config.request_timeout;
        let pool = Pool::start_with_hook(config, events, Some(hook));
        let stop = CancellationToken::new();
        tokio::spawn(close_idle_documents(
            Arc::downgrade(&pool),
            Arc::downgrade(&shared),
            stop.clone(),
        ));
        LspService {
            pool,
            shared,
            timeout,
            stop,
        }
    }
}

impl Service for LspService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        let query = Query {
            pool: self.pool.clone(),
            shared: self.shared.clone(),
            timeout: self.timeout,
        };
        Box::pin(async move {
            let _watching = query.shared.work.watch(&call.progress);
            match call.method.as_str() {
                REQUEST => query.request(call).await,
                DIAGNOSTICS => query.diagnostics(call).await,
                _ => query.forward(call).await,
            }
        })
    }

    fn workers(&self) -> Vec<Value> {
        self.pool.status()
    }

    fn shutdown(&self) -> BoxFuture<()> {
        self.stop.cancel();
        let pool = self.pool.clone();
        Box::pin(async move { pool.shutdown().await })
    }
}

/// What one query needs.
struct Query {
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl Query {
    async fn request(&self, call: Call) -> Result<Value, ErrorObject> {
        let params: QueryParams = parse_params(call.params.clone())?;
        let lsp_params = params.params.clone().unwrap_or_else(|| json!({}));
        if !lsp_params.is_object() {
            return Err(ErrorObject::invalid_params("params must be an object"));
        }
        self.with_retry(|worker| {
            let (mut lsp_params, call) = (lsp_params.clone(), &call);
            let params = &params;
            async move {
                check_supported(&worker, &self.shared.service, &params.method)?;
                let encoding = Encoding::from_capabilities(worker.handshake_answer());
                let elsewhere = self.shared.bring_up_to_date(&worker).await?;
                if let Some(file) = &params.file {
                    let synced = self.shared.sync_for_query(&worker, file, elsewhere).await?;
                    lsp_params["textDocument"] = json!({ "uri": synced.uri });
                    if let Some(at) = params.position {
                        let position = LineIndex::new(&synced.text)
                            .to_lsp(at.line, at.column, encoding)
                            .map_err(|e| {
                                ErrorObject::invalid_params(format!("{}: {e}", file.display()))
                            })?;
                        lsp_params["position"] = json!(position);
                    }
                }
                let ready = self
                    .shared
                    .work
                    .wait_ready(
                        worker.pid,
                        params.file.is_some(),
                        tokio::time::Instant::now() + READY_WAIT,
                    )
                    .await;
                let result = self.send(&worker, &params.method, lsp_params, call).await?;
                to_value(QueryAnswer {
                    result,
                    encoding,
                    partial: !ready,
                })
            }
        })
        .await
    }

    async fn diagnostics(&self, call: Call) -> Result<Value, ErrorObject> {
        let params: DiagnosticsParams = parse_params(call.params.clone())?;
        let wait = params
            .timeout_ms
            .map_or(DIAGNOSTICS_WAIT, Duration::from_millis);
        let deadline = tokio::time::Instant::now() + wait;
        self.with_retry(|worker| {
            let (call, params) = (&call, &params);
            async move {
                let encoding = Encoding::from_capabilities(worker.handshake_answer());
                let before = self.shared.documents.sync_counter();
                self.shared.bring_up_to_date(&worker).await?;
                // Every file named is synced before any is checked: an error in one can come
                // from another.
                for other in &params.also {
                    self.shared.documents.sync(&worker, other).await?;
                }
                let synced = self.shared.documents.sync(&worker, &params.file).await?;
                let ready = self
                    .shared
                    .work
                    .wait_ready(worker.pid, true, deadline)
                    .await;
                let pull = worker
                    .handshake_answer()
                    .is_some_and(|c| c.get("diagnosticProvider").is_some_and(|d| !d.is_null()));
                let (diagnostics, complete) = if pull {
                    let params = json!({ "textDocument": { "uri": synced.uri } });
                    let report = self
                        .send(&worker, "textDocument/diagnostic", params, call)
                        .await?;
                    (report.get("items").cloned().unwrap_or(json!([])), true)
                } else {
                    let changed = synced.synced_at > before;
                    let checked = Checked {
                        path: &params.file,
                        synced,
                        changed,
                    };
                    self.published(&worker, checked, deadline, &call.cancel)
                        .await?
                };
                to_value(DiagnosticsAnswer {
                    diagnostics,
                    encoding,
                    complete: complete && ready,
                })
            }
        })
        .await
    }

    /// Any other method: forwarded as is, after syncing the document it names, if any.
    async fn forward(&self, call: Call) -> Result<Value, ErrorObject> {
        let document = call
            .params
            .as_ref()
            .and_then(|p| p.pointer("/textDocument/uri"))
            .and_then(Value::as_str)
            .and_then(crate::uri::path_from_uri)
            .filter(|path| path.is_file());
        let method = call.method.clone();
        self.with_retry(|worker| {
            let (call, document, method) = (&call, &document, &method);
            async move {
                self.shared.bring_up_to_date(&worker).await?;
                if let Some(path) = document {
                    self.shared.documents.sync(&worker, path).await?;
                }
                let params = call.params.clone().unwrap_or(Value::Null);
                self.send(&worker, method, params, call).await
            }
        })
        .await
    }

    /// Diagnostics the server publishes for the synced content, after the last change it was
    /// told of, or what it last published (`complete` false) when none came by `deadline`.
    ///
    /// Servers publish in one of two ways, and each is waited for as it needs:
    /// - with the document's version (pyright, pylsp, clangd, bash-language-server): the
    ///   diagnostics of that version, published after the last change. A document whose own
    ///   content did not change (a file it depends on did) is opened again to make the server
    ///   check it: clangd skips a `didChange` that changes nothing.
    /// - without one (typescript-language-server): the first list published after the change,
    ///   then any that follow within `SETTLE` (it publishes syntax errors, then type errors).
    ///   Such a server says nothing when a list stays empty, so silence for `QUIET` after a
    ///   change means the last list stands.
    async fn published(
        &self,
        worker: &WorkerProcess,
        checked: Checked<'_>,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<(Value, bool), ErrorObject> {
        let published = &self.shared.published;
        let versioned = published.versioned(worker.pid);
        let uri = checked.synced.uri.clone();
        let mut version = checked.synced.version;
        let mut wanted = Wanted {
            pid: worker.pid,
            uri: &uri,
            version,
            fresh_after: self.shared.documents.sync_counter(),
            versioned,
        };
        let mut changed = checked.changed;
        if published.current(&wanted).is_none() && !changed {
            let rechecked = self
                .shared
                .documents
                .recheck(worker, checked.path, versioned)
                .await?;
            changed = true;
            version = rechecked.version;
            wanted = Wanted {
                version,
                fresh_after: rechecked.synced_at,
                ..wanted
            };
        }
        let quiet = (!versioned && changed && published.has(worker.pid, &uri))
            .then(|| tokio::time::Instant::now() + QUIET);
        let first_wait = quiet.map_or(deadline, |q| q.min(deadline));
        let found = tokio::select! {
            found = published.wait(&wanted, first_wait.saturating_duration_since(tokio::time::Instant::now())) => found,
            _ = cancel.cancelled() => return Err(ErrorObject::new(ErrorCode::Cancelled, "request cancelled")),
        };
        Ok(match found {
            // Nothing changed since the list was known current, or a server that names the
            // version its list is for: nothing more can follow for this content.
            Some(diagnostics) if versioned || !changed => (diagnostics, true),
            Some(_) => {
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let settled = published.settle(&uri, SETTLE, remaining).await;
                (settled.unwrap_or(json!([])), true)
            }
            // Silence from a server that publishes only changed lists: the last one stands,
            // and is known current from now on (the next query with nothing changed takes it
            // at once).
            None if quiet.is_some() && tokio::time::Instant::now() < deadline => {
                published.confirm(worker.pid, &uri, self.shared.documents.sync_counter());
                (published.last(&uri).unwrap_or(json!([])), true)
            }
            None => (published.last(&uri).unwrap_or(json!([])), false),
        })
    }

    async fn send(
        &self,
        worker: &Arc<WorkerProcess>,
        method: &str,
        params: Value,
        call: &Call,
    ) -> Result<Value, ErrorObject> {
        worker
            .call(
                method.to_owned(),
                Some(params),
                call.progress.clone(),
                call.cancel.clone(),
                self.timeout,
            )
            .await
    }

    /// Runs `attempt` on the server; when the server turns out to have died under it, once
    /// more on its replacement.
    async fn with_retry<'a, F, Fut>(&'a self, attempt: F) -> Result<Value, ErrorObject>
    where
        F: Fn(Arc<WorkerProcess>) -> Fut,
        Fut: std::future::Future<Output = Result<Value, ErrorObject>> + 'a,
    {
        let mut retried = false;
        loop {
            let worker = self.pool.worker()?;
            worker.wait_ready(self.timeout).await?;
            match attempt(worker.clone()).await {
                Err(error)
                    if !retried
                        && error.kind() == ErrorCode::WorkerUnavailable
                        && !worker.is_available() =>
                {
                    retried = true;
                    self.shared.events.record(
                        "lsp.retry",
                        json!({ "service": self.shared.service, "pid": worker.pid, "error": error.message }),
                    );
                    tracing::warn!(
                        pid = worker.pid,
                        "language server died under a query; retrying once"
                    );
                }
                other => return other,
            }
        }
    }
}

impl Shared {
    /// Tells the server of every change on disk before the query: files it watches, then
    /// the documents it has open. True when anything in the project changed since the last
    /// query.
    async fn bring_up_to_date(&self, worker: &WorkerProcess) -> Result<bool, ErrorObject> {
        let flushed = self.watched.flush(worker).await?;
        if flushed.any {
            // The server may read what changed: diagnostics published before it are not
            // current.
            self.documents.next_sync();
        }
        let changed_open = self.documents.refresh_open(worker).await?;
        // A server that may not read `didChangeWatchedFiles` learns of a changed file by
        // having it opened (and kept in sync from then on, until idle). Bounded: after a
        // checkout of thousands of files, the first are opened and the rest logged.
        let count = flushed.unwatched.len();
        for path in flushed.unwatched.into_iter().take(MAX_OPENED_PER_QUERY) {
            self.documents.sync(worker, &path).await?;
        }
        if count > MAX_OPENED_PER_QUERY {
            tracing::warn!(
                count,
                opened = MAX_OPENED_PER_QUERY,
                "too many changed files to open for a server that watches none"
            );
        }
        Ok(changed_open || flushed.any)
    }

    /// Syncs the file a query names; when it did not change but something it may depend on
    /// did, has a server that sends document versions check it again from scratch. clangd
    /// otherwise answers from the headers as it last parsed them (its preamble); a server
    /// that sends no versions (typescript-language-server) tracks dependencies itself.
    async fn sync_for_query(
        &self,
        worker: &WorkerProcess,
        file: &std::path::Path,
        elsewhere_changed: bool,
    ) -> Result<Synced, ErrorObject> {
        let before = self.documents.sync_counter();
        let synced = self.documents.sync(worker, file).await?;
        if elsewhere_changed && synced.synced_at <= before && self.published.versioned(worker.pid) {
            return self.documents.recheck(worker, file, true).await;
        }
        Ok(synced)
    }

    fn on_notification(&self, worker: &WorkerProcess, notification: Notification) {
        match notification.method.as_str() {
            "textDocument/publishDiagnostics" => {
                if let Some(params) = notification.params {
                    self.published
                        .record(worker.pid, params, self.documents.sync_counter());
                }
            }
            "$/progress" => {
                if let Some(params) = notification.params {
                    self.work.progress(worker.pid, &params);
                }
            }
            method => {
                let message = notification
                    .params
                    .as_ref()
                    .and_then(|p| p.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if method == "window/logMessage" {
                    self.work.logged(worker.pid, message);
                }
                tracing::debug!(
                    pid = worker.pid,
                    method,
                    message,
                    "from the language server"
                );
            }
        }
    }
}

/// How long a document no query touched stays open: `IDLE_DOCUMENT`, or for tests
/// `WARM_LSP_TEST_IDLE_DOCUMENT_MS`.
fn idle_document() -> Duration {
    std::env::var("WARM_LSP_TEST_IDLE_DOCUMENT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(IDLE_DOCUMENT, Duration::from_millis)
}

async fn close_idle_documents(pool: Weak<Pool>, shared: Weak<Shared>, stop: CancellationToken) {
    let idle = idle_document();
    let mut ticks = tokio::time::interval(idle / 10);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => return,
        }
        let (Some(pool), Some(shared)) = (pool.upgrade(), shared.upgrade()) else {
            return;
        };
        let worker = pool.worker().ok();
        let closed = shared.documents.close_idle(worker.as_deref(), idle).await;
        if closed > 0 {
            tracing::info!(closed, "closed idle documents");
        }
    }
}

/// The capability a server must announce for each query `warm lsp` makes.
const CAPABILITIES: &[(&str, &str)] = &[
    ("textDocument/hover", "hoverProvider"),
    ("textDocument/definition", "definitionProvider"),
    ("textDocument/typeDefinition", "typeDefinitionProvider"),
    ("textDocument/implementation", "implementationProvider"),
    ("textDocument/references", "referencesProvider"),
    ("textDocument/documentSymbol", "documentSymbolProvider"),
    ("workspace/symbol", "workspaceSymbolProvider"),
    ("textDocument/rename", "renameProvider"),
    ("textDocument/formatting", "documentFormattingProvider"),
];

/// Refuses a query the server said it does not support, with a message that says so (a
/// server's own "method not found" names neither the server nor the reason).
fn check_supported(worker: &WorkerProcess, service: &str, method: &str) -> Result<(), ErrorObject> {
    let Some(capabilities) = worker.handshake_answer() else {
        return Ok(());
    };
    let Some((_, key)) = CAPABILITIES.iter().find(|(m, _)| *m == method) else {
        return Ok(());
    };
    match capabilities.get(*key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Err(ErrorObject::new(
            ErrorCode::MethodNotFound,
            format!("the language server of {service} does not support {method} ({key} is not in its capabilities)"),
        )),
        Some(_) => Ok(()),
    }
}

fn parse_params<T: serde::de::DeserializeOwned>(params: Option<Value>) -> Result<T, ErrorObject> {
    serde_json::from_value(params.unwrap_or(Value::Null)).map_err(ErrorObject::invalid_params)
}

fn to_value(answer: impl serde::Serialize) -> Result<Value, ErrorObject> {
    serde_json::to_value(answer)
        .map_err(|e| ErrorObject::new(ErrorCode::InternalError, e.to_string()))
}
