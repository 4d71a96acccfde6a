//! Hosting stdio worker processes: any program that reads JSON-RPC on stdin and answers on
//! stdout (newline-delimited JSON or LSP framing) becomes a warm, shared, supervised service.
//!
//! # Layout
//! - [`config`]: [`WorkerConfig`] from a service's `.warm.toml` table.
//! - [`process`]: [`WorkerProcess`] — one worker: id rewriting and timeouts; its stdio
//!   tasks (`process::io`) and its shutdown sequence (`process::stop`).
//! - [`pool`]: [`Pool`] — the workers of a service: picking, exclusive methods, restarts.
//! - [`memory`]: `max_rss`, workers replaced when their process tree holds too much.
//! - [`reload`]: noticing changed worker code: the command's files, the `watch` globs.
//! - [`fallback`]: one request on a fresh worker, when no daemon can be reached.
//! - [`dialect`]: [`Dialect`], what a protocol over JSON-RPC adds (the LSP one is
//!   `warm-lsp`'s): a handshake, answers to the worker's own requests, a goodbye.
//! - [`WorkerService`]: the pool as a daemon [`Service`].

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod dialect;
pub mod fallback;
pub mod memory;
pub mod pool;
pub mod process;
pub mod reload;

use std::sync::Arc;

use serde_json::Value;
use warm_daemon::{BoxFuture, Call, Service};
use warm_protocol::ErrorObject;
use warm_runtime::EventLog;

pub use config::{ShutdownDeadlines, WorkerConfig};
pub use dialect::{Dialect, StartError};
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
