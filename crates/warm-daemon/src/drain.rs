//! [`Drain`]: what a stopping daemon waits for, and in which order. First the service requests
//! that are running (until the drain deadline; past it they are cancelled and answered
//! -32005, never dropped), then the connections, which write their last answers and close.
//! Each connection and each service request is spawned through it, so none is forgotten.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

/// How long requests cancelled at the deadline, and connections flushing their last answers,
/// are given before the daemon exits without them.
const GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Drain {
    requests: TaskTracker,
    /// Cancelled when the drain deadline passes.
    expired: CancellationToken,
    connections: TaskTracker,
    /// Cancelled once the requests are drained: idle connections stop reading.
    close_connections: CancellationToken,
}

impl Drain {
    pub fn new() -> Drain {
        Drain::default()
    }

    /// Runs a service request; the drain waits for it.
    pub fn spawn_request<F>(&self, request: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.requests.spawn(request);
    }

    /// Runs a connection; the daemon exits only after it has flushed its answers.
    pub fn spawn_connection<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.connections.spawn(connection);
    }

    /// Completes when the drain deadline has passed: a request still running must answer
    /// now.
    ///
    /// # Cancellation safety
    /// Safe to use in `select!`: dropping it loses nothing.
    pub async fn deadline_passed(&self) {
        self.expired.cancelled().await;
    }

    /// Completes when connections are told to close.
    ///
    /// # Cancellation safety
    /// Safe to use in `select!`: dropping it loses nothing.
    pub async fn close_requested(&self) {
        self.close_connections.cancelled().await;
    }

    /// [`Drain::close_requested`] as an owned future, created once for a loop that polls it
    /// on every turn (a fresh one per turn would register with the token each time).
    pub fn close_requested_owned(&self) -> WaitForCancellationFutureOwned {
        self.close_connections.clone().cancelled_owned()
    }

    /// Waits for the running requests, at most `deadline`; past it they are cancelled and
    /// given a moment to answer. True when the deadline passed.
    ///
    /// # Cancellation safety
    /// Run it to its end, once: dropped midway, the requests are neither waited for nor
    /// cancelled.
    pub async fn requests(&self, deadline: Duration, overran: impl FnOnce()) -> bool {
        self.requests.close();
        if tokio::time::timeout(deadline, self.requests.wait())
            .await
            .is_ok()
        {
            return false;
        }
        overran();
        self.expired.cancel();
        let _ = tokio::time::timeout(GRACE, self.requests.wait()).await;
        true
    }

    /// Tells every connection to close once its queued answers are written, and waits for
    /// them (briefly).
    ///
    /// # Cancellation safety
    /// Safe to drop: connections already told to close keep closing on their own.
    pub async fn connections(&self) {
        self.close_connections.cancel();
        self.connections.close();
        let _ = tokio::time::timeout(GRACE, self.connections.wait()).await;
    }
}
