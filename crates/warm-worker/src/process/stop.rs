//! The shutdown sequence of a worker, never reordered: (LSP) `shutdown` then `exit`; close
//! stdin; wait; SIGTERM; wait; SIGKILL; reap. Each stage has a deadline and records an event
//! when it escalates.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use warm_runtime::sync::Recover;

use super::WorkerProcess;

impl WorkerProcess {
    /// The shutdown sequence, never reordered: (LSP) `shutdown` then `exit`; close stdin;
    /// wait; SIGTERM; wait; SIGKILL; reap. Each stage has a deadline and records an event
    /// when it escalates. Returns once the process is reaped.
    ///
    /// # Cancellation safety
    /// Run it to its end: dropped midway, the process may be left running (retired, so it
    /// gets no requests) until the pool stops.
    pub async fn stop(self: &Arc<Self>) {
        let deadlines = &self.deadlines;
        self.retired.cancel();
        if self.exited.is_cancelled() {
            return;
        }
        if let Some(dialect) = &self.dialect {
            dialect.goodbye(self.clone(), deadlines.after_close).await;
        }
        // Closing stdin: the writer task ends once the sender is gone, dropping the pipe.
        self.stdin_tx.recover().take();
        if self.wait_exit(deadlines.after_close).await {
            return;
        }
        self.escalate("sigterm", rustix::process::Signal::TERM)
            .await;
        if self.wait_exit(deadlines.after_term).await {
            return;
        }
        self.escalate("sigkill", rustix::process::Signal::KILL)
            .await;
        // SIGKILL cannot be ignored; the bound only guards against a process stuck in the
        // kernel.
        self.wait_exit(Duration::from_secs(10)).await;
    }

    async fn escalate(&self, stage: &str, signal: rustix::process::Signal) {
        tracing::warn!(service = %self.service, pid = self.pid, stage, "worker did not exit; escalating");
        self.events.record(
            "worker.shutdown_escalated",
            json!({ "service": self.service, "pid": self.pid, "stage": stage }),
        );
        let _ = self.signal_tx.send(signal).await;
    }

    async fn wait_exit(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.exited.cancelled())
            .await
            .is_ok()
    }

    /// Waits until the process has been reaped.
    ///
    /// # Cancellation safety
    /// Safe to drop: it only watches.
    pub async fn exited(&self) {
        self.exited.cancelled().await;
    }
}
