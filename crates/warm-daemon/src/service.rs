//! [`Service`]: what a daemon serves besides its built-in `daemon/*` methods.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warm_protocol::methods::{ProgressParams, PROGRESS};
use warm_protocol::{ErrorObject, Message, Notification, RequestId};

use crate::session::Outgoing;

/// A boxed future, as [`Service`] methods return (the trait must stay object-safe).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// In-process request handlers of a daemon.
///
/// The daemon counts, limits, times and cancels requests around these calls; a service only
/// answers them. Unknown methods should return [`ErrorObject::method_not_found`].
pub trait Service: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>>;

    /// Handles a notification from a client (no answer is possible). Default: ignored.
    fn notify(&self, _method: &str, _params: Option<Value>) {}

    /// One JSON object per worker, for `daemon/status`. Default: none.
    fn workers(&self) -> Vec<Value> {
        Vec::new()
    }

    /// Releases the service's resources (workers, watchers) during graceful shutdown.
    fn shutdown(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

/// One request as a service sees it.
#[derive(Debug)]
pub struct Call {
    pub method: String,
    pub params: Option<Value>,
    /// Reports progress to the client that sent the request.
    pub progress: Progress,
    /// Cancelled when the client cancels the request or disconnects; the daemon answers
    /// -32005 for the service, which may simply stop working.
    pub cancel: CancellationToken,
}

/// Sends `$/progress` notifications for one request to the connection that sent it.
#[derive(Debug, Clone)]
pub struct Progress {
    id: RequestId,
    /// `None` for requests no client waits on (e.g. ones the daemon sends itself).
    out_tx: Option<mpsc::Sender<Outgoing>>,
}

impl Progress {
    pub(crate) fn new(id: RequestId, out_tx: mpsc::Sender<Outgoing>) -> Progress {
        Progress {
            id,
            out_tx: Some(out_tx),
        }
    }

    /// A reporter that reports nowhere.
    pub fn none() -> Progress {
        Progress {
            id: RequestId::Null,
            out_tx: None,
        }
    }

    /// Reports progress: `done` of `total` units, with a message. Waits while the client's
    /// outgoing queue is full (a slow reader slows its own requests, nobody else's).
    ///
    /// # Cancellation safety
    /// Safe to drop: the notification is then not sent, and nothing else changes.
    pub async fn report(&self, message: Option<String>, done: Option<u64>, total: Option<u64>) {
        if let Some(out_tx) = &self.out_tx {
            let _ = out_tx.send(self.notification(message, done, total)).await;
        }
    }

    /// Reports progress without waiting: queued at once, in order with what follows it, or
    /// dropped if the client's queue is full (progress is advisory). For code that must not
    /// stall, such as a worker's reader serving many clients.
    pub fn try_report(&self, message: Option<String>, done: Option<u64>, total: Option<u64>) {
        if let Some(out_tx) = &self.out_tx {
            let _ = out_tx.try_send(self.notification(message, done, total));
        }
    }

    fn notification(
        &self,
        message: Option<String>,
        done: Option<u64>,
        total: Option<u64>,
    ) -> Outgoing {
        let params = ProgressParams {
            id: self.id.clone(),
            message,
            done,
            total,
        };
        Outgoing::One(Message::Notification(Notification {
            method: PROGRESS.into(),
            params: serde_json::to_value(params).ok(),
        }))
    }
}

/// A service with no methods: a daemon that only answers `daemon/*`.
#[derive(Debug, Default)]
pub struct NoService;

impl Service for NoService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        Box::pin(async move { Err(ErrorObject::method_not_found(&call.method)) })
    }
}
