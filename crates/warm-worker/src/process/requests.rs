//! The requests warm sends a worker: a client's ([`WorkerProcess::call`], cancellable, with
//! progress), the host's own ([`WorkerProcess::request_raw`]), and notifications.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use warm_daemon::Progress;
use warm_protocol::methods::CANCEL_REQUEST;
use warm_protocol::{ErrorCode, ErrorObject, Message, Notification, Request, RequestId};
use warm_runtime::sync::Recover;

use super::outstanding::Outstanding;
use super::{unavailable, WorkerProcess};

/// Where the answer to a request written to a worker arrives.
type Answer = tokio::sync::oneshot::Receiver<Result<Value, ErrorObject>>;

impl WorkerProcess {
    /// Sends a request to the worker and waits for its answer, forwarding its progress and
    /// its cancellation.
    ///
    /// # Cancellation safety
    /// Dropping the future is the same as cancelling `cancel`: a request not yet written is
    /// forgotten; one written is forgotten too, the worker is sent `$/cancelRequest`, and its
    /// late answer is expected (it counts as abandoned, so later requests are told why they
    /// wait). Nothing stays registered for an answer nobody awaits.
    pub async fn call(
        self: &Arc<Self>,
        method: String,
        params: Option<Value>,
        progress: Progress,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<Value, ErrorObject> {
        self.wait_ready(timeout).await?;
        let abandoned = self.abandoned_count();
        if abandoned > 0 {
            // A worker serves its input in order: this request starts once the cancelled
            // ones are done. Say so, rather than wait in silence.
            progress.try_report(
                Some(format!(
                    "waiting for worker {} of {} to finish {abandoned} cancelled request{}",
                    self.pid,
                    self.service,
                    if abandoned == 1 { "" } else { "s" }
                )),
                None,
                None,
            );
        }
        let Some((mut outstanding, answer_rx)) =
            self.write_request(method, params, progress, timeout).await
        else {
            return Err(unavailable(&format!(
                "worker {} is not accepting requests",
                self.pid
            )));
        };
        tokio::select! {
            answer = answer_rx => {
                outstanding.answered();
                answer.unwrap_or_else(|_| Err(unavailable("the worker went away")))
            }
            _ = tokio::time::sleep(timeout) => {
                outstanding.forget();
                self.retire(&format!("no answer within {:.1}s", timeout.as_secs_f64()));
                Err(ErrorObject::new(
                    ErrorCode::Timeout,
                    format!("timeout: the worker did not answer within {:.1}s; it is being replaced", timeout.as_secs_f64()),
                ))
            }
            // `outstanding`, dropped on return, abandons the request.
            _ = cancel.cancelled() => Err(ErrorObject::new(ErrorCode::Cancelled, "request cancelled")),
        }
    }

    /// Registers a request and writes it to the worker: the guard that forgets it however
    /// its wait ends, and where its answer arrives; `None` when the worker takes no more
    /// input (the request is forgotten at once).
    async fn write_request(
        &self,
        method: String,
        params: Option<Value>,
        progress: Progress,
        forget_after: Duration,
    ) -> Option<(Outstanding<'_>, Answer)> {
        let (id, answer_rx) = self.register(progress);
        let mut outstanding = Outstanding::registered(self, id, forget_after);
        let request = Message::Request(Request {
            id: RequestId::Number(id),
            method,
            params,
        });
        if !self.send(request).await {
            return None;
        }
        outstanding.written();
        Some((outstanding, answer_rx))
    }

    /// Forgets a request written to the worker that nobody awaits any more, and asks the
    /// worker to cancel it. Its answer may still come: it is expected until `forget_after`.
    pub(super) fn abandon(&self, id: i64, forget_after: Duration) {
        self.take_pending(id);
        self.abandoned
            .recover()
            .insert(id, Instant::now() + forget_after);
        // Queued without waiting: this runs on a drop, or just before one.
        let cancel = Message::Notification(Notification {
            method: CANCEL_REQUEST.into(),
            params: Some(json!({ "id": id })),
        });
        if let Some(tx) = self.stdin_tx.recover().clone() {
            let _ = tx.try_send(cancel);
        }
    }

    /// Waits until the worker takes requests: at once, or when its LSP handshake is done.
    ///
    /// # Errors
    /// -32002 when the worker failed to start, a timeout when it was not ready in time.
    ///
    /// # Cancellation safety
    /// Safe to drop: it only watches.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ErrorObject> {
        tokio::select! {
            _ = self.ready.cancelled() => Ok(()),
            _ = self.retired.cancelled() => {
                Err(self.failure(&format!("worker {} did not start: {}", self.pid,
                    self.retire_reason().unwrap_or_default())))
            }
            _ = tokio::time::sleep(timeout) => {
                Err(ErrorObject::new(ErrorCode::Timeout, "timeout: the worker was not ready in time"))
            }
        }
    }

    /// Sends a request of the host's own (not a client's) and waits for its answer.
    ///
    /// # Cancellation safety
    /// As [`WorkerProcess::call`]: dropped, or past its timeout, the request is forgotten
    /// and the worker sent `$/cancelRequest`.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, ErrorObject> {
        let Some((mut outstanding, answer_rx)) = self
            .write_request(method.into(), params, Progress::none(), timeout)
            .await
        else {
            return Err(unavailable("the worker is not accepting requests"));
        };
        let answer = tokio::time::timeout(timeout, answer_rx).await;
        if answer.is_ok() {
            outstanding.answered();
        }
        // Past the timeout, `outstanding` abandons the request as it is dropped.
        match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(unavailable("the worker went away")),
            Err(_) => Err(ErrorObject::new(
                ErrorCode::Timeout,
                format!("no answer to {method}"),
            )),
        }
    }

    /// Sends a notification of the host's own; false when the worker takes no more input.
    ///
    /// # Cancellation safety
    /// Safe to drop: the notification is then not sent.
    pub async fn notify_raw(&self, message: Message) -> bool {
        self.send(message).await
    }

    /// Sends a notification of the host's own, by method and params.
    ///
    /// # Cancellation safety
    /// Safe to drop: the notification is then not sent.
    pub async fn notify(&self, method: &str, params: Value) -> bool {
        self.send(Message::Notification(Notification {
            method: method.into(),
            params: Some(params),
        }))
        .await
    }
}
