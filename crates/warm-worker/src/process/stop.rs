//! The shutdown sequence of a worker, never reordered: (LSP) `shutdown` then `exit`; close
//! stdin; wait; SIGTERM; wait; SIGKILL; reap. Each stage has a deadline and records an event
//! when it escalates.

use std::time::Duration;

use serde_json::json;
use warm_daemon::Progress;
use warm_protocol::{Framing, Message, Notification, Request, RequestId};

use super::WorkerProcess;

impl WorkerProcess {
    /// The shutdown sequence, never reordered: (LSP) `shutdown` then `exit`; close stdin;
    /// wait; SIGTERM; wait; SIGKILL; reap. Each stage has a deadline and records an event
    /// when it escalates. Returns once the process is reaped.
    pub async fn stop(&self) {
        let deadlines = &self.deadlines;
        self.retired.cancel();
        if self.exited.is_cancelled() {
            return;
        }
        if self.framing == Framing::Lsp {
            self.lsp_goodbye(deadlines.after_close).await;
        }
        // Closing stdin: the writer task ends once the sender is gone, dropping the pipe.
        if let Ok(mut tx) = self.stdin_tx.lock() {
            tx.take();
        }
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

    async fn lsp_goodbye(&self, deadline: Duration) {
        let (id, answer_rx) = self.register(Progress::none());
        let shutdown = Message::Request(Request {
            id: RequestId::Number(id),
            method: "shutdown".into(),
            params: None,
        });
        if self.send(shutdown).await {
            let _ = tokio::time::timeout(deadline, answer_rx).await;
        }
        self.take_pending(id);
        self.send(Message::Notification(Notification {
            method: "exit".into(),
            params: None,
        }))
        .await;
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
    pub async fn exited(&self) {
        self.exited.cancelled().await;
    }
}
