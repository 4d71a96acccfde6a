//! Running one request on a fresh worker, without a daemon: the fallback when no daemon can
//! be reached, so that a tool keeps working (slowly) rather than failing.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use warm_daemon::Progress;
use warm_protocol::{ErrorCode, ErrorObject};
use warm_runtime::EventLog;

use crate::config::WorkerConfig;
use crate::process::WorkerProcess;

/// Starts the worker, sends one request, stops the worker (the full shutdown sequence), and
/// returns the answer. Blocking: it runs its own small runtime.
///
/// A worker with a [`Dialect`](crate::Dialect) (a language server) is started with it: its
/// handshake first, then the request, then its goodbye.
///
/// # Errors
/// The worker's error answer, or -32002 when it cannot be started or fails.
pub fn run_once(
    config: &WorkerConfig,
    method: &str,
    params: Option<Value>,
) -> Result<Value, ErrorObject> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ErrorObject::new(
                ErrorCode::InternalError,
                format!("cannot start a runtime: {e}"),
            )
        })?;
    runtime.block_on(async {
        // Events of a fallback run belong to no daemon: recorded nowhere.
        let events = EventLog::new("/dev/null");
        let worker = WorkerProcess::spawn(config, 0, events, None, None).map_err(|e| {
            ErrorObject::new(
                ErrorCode::WorkerUnavailable,
                format!("cannot start {}: {e}", config.program),
            )
        })?;
        let answer = worker
            .call(
                method.to_owned(),
                params,
                Progress::none(),
                CancellationToken::new(),
                config.request_timeout,
            )
            .await;
        worker.stop().await;
        // The reader tasks end on EOF once the process is gone.
        let _ = tokio::time::timeout(Duration::from_secs(1), worker.exited()).await;
        answer
    })
}
