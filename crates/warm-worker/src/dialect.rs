//! [`Dialect`]: what a protocol spoken over JSON-RPC adds to hosting a worker.
//!
//! The host itself speaks plain JSON-RPC: it writes requests, matches answers by id, forwards
//! progress and cancellation. Some workers expect more of their client: a language server
//! wants `initialize` before anything else, sends requests of its own
//! (`workspace/configuration`), and wants `shutdown` and `exit` before its input closes. A
//! dialect (the LSP one lives in `warm-lsp`) supplies those; a worker without one is answered
//! `method not found` for any request it sends.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use warm_daemon::BoxFuture;
use warm_protocol::{ErrorObject, Request};

use crate::process::WorkerProcess;

pub trait Dialect: Send + Sync + std::fmt::Debug + 'static {
    /// Runs once the worker is spawned, before it takes requests. Its answer is kept (see
    /// [`WorkerProcess::handshake_answer`]); an error retires the worker with that reason.
    fn start(&self, worker: Arc<WorkerProcess>) -> BoxFuture<Result<Value, StartError>>;

    /// The answer to a request the worker sent its host. Called on the worker's reader, so it
    /// must not wait.
    fn answer(&self, worker: &WorkerProcess, request: &Request) -> Result<Value, ErrorObject>;

    /// Runs as the worker stops, before its input is closed, within `deadline`.
    fn goodbye(&self, worker: Arc<WorkerProcess>, deadline: Duration) -> BoxFuture<()>;
}

/// Why a worker's start failed: the request of the dialect's opening exchange that failed
/// (e.g. `initialize`), and the worker's error or the timeout.
#[derive(Debug, thiserror::Error)]
#[error("{request} failed: {error}")]
pub struct StartError {
    pub request: &'static str,
    #[source]
    pub error: ErrorObject,
}
