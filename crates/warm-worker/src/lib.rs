//! Hosting stdio worker processes: any program that reads JSON-RPC on stdin and answers on
//! stdout (newline-delimited JSON or LSP framing) becomes a warm, shared, supervised service.
//!
//! # Layout
//! - [`config`]: [`WorkerConfig`] from a service's `.warm.toml` table.
//! - [`process`]: [`WorkerProcess`] — one worker: id rewriting and timeouts; its stdio
//!   tasks (`process::io`) and its shutdown sequence (`process::stop`).
//! - [`pool`]: [`Pool`] — the workers of a service: picking, exclusive methods, restarts.
//! - [`reload`]: noticing changed worker code: the command's files, the `watch` globs.
//! - [`fallback`]: one request on a fresh worker, when no daemon can be reached.
//! - [`lsp`]: the LSP handshake and answers to a language server's own requests.
//! - [`WorkerService`]: the pool as a daemon [`Service`].

pub mod config;
pub mod fallback;
pub mod lsp;
pub mod pool;
pub mod process;
pub mod reload;

use std::sync::Arc;

use serde_json::Value;
use warm_client::EventLog;
use warm_daemon::{BoxFuture, Call, Service};
use warm_protocol::ErrorObject;

pub use config::{LspInit, RestartPolicy, ShutdownDeadlines, WorkerConfig};
pub use pool::Pool;
pub use process::{ExitInfo, NotificationHook, WorkerProcess};

/// A configured worker service, served by a [`Pool`].
pub struct WorkerService {
    pool: Arc<Pool>,
}

impl WorkerService {
    /// Starts the pool's workers; call inside the daemon's runtime.
    pub fn start(config: WorkerConfig, events: EventLog) -> WorkerService {
        WorkerService {
            pool: Pool::start(config, events),
        }
    }
}

impl Service for WorkerService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        let pool = self.pool.clone();
        Box::pin(async move { pool.call(call).await })
    }

    fn workers(&self) -> Vec<Value> {
        self.pool.status()
    }

    fn shutdown(&self) -> BoxFuture<()> {
        let pool = self.pool.clone();
        Box::pin(async move { pool.shutdown().await })
    }
}
