//! What a worker sends its host, matched back to where it belongs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use warm_protocol::methods::{ProgressParams, PROGRESS};
use warm_protocol::{ErrorObject, Message, RequestId, Response};
use warm_runtime::sync::Recover;

use super::WorkerProcess;

impl WorkerProcess {
    /// Handles one message from the worker: an answer goes to its request (or, for a
    /// cancelled one, is forgotten), progress to its client, a notification to the hook, and
    /// a request of the worker's own is answered by its dialect at once.
    pub(super) fn handle(self: &Arc<Self>, message: Message) {
        match message {
            Message::Response(response) => {
                let RequestId::Number(id) = response.id else {
                    tracing::warn!(pid = self.pid, id = %response.id, "worker answered an id it was never sent");
                    return;
                };
                if let Some(pending) = self.take_pending(id) {
                    // Counted here, from the worker's own output: a request failed because
                    // the worker died was not served (the restart policy relies on this).
                    self.served.fetch_add(1, Ordering::Relaxed);
                    let _ = pending.answer_tx.send(response.result);
                } else {
                    self.abandoned.recover().remove(&id);
                }
            }
            Message::Notification(n) => {
                let own_progress = (n.method == PROGRESS)
                    .then(|| n.params.clone())
                    .flatten()
                    .and_then(|p| serde_json::from_value::<ProgressParams>(p).ok());
                if let Some(params) = own_progress {
                    self.forward_progress(params);
                } else if let Some(hook) = &self.hook {
                    hook(self, n);
                } else {
                    tracing::info!(pid = self.pid, method = %n.method, "notification from worker");
                }
            }
            Message::Request(request) => {
                // Requests from the worker (an LSP server asking its client) are answered at
                // once, so that the worker never waits.
                let result = match &self.dialect {
                    Some(dialect) => dialect.answer(self, &request),
                    None => Err(ErrorObject::method_not_found(&request.method)),
                };
                let answer = Response {
                    id: request.id,
                    result,
                };
                let worker = self.clone();
                tokio::spawn(async move {
                    worker.send(Message::Response(answer)).await;
                });
            }
        }
    }

    /// Progress a worker reports for one of its requests (warm's own `$/progress` shape),
    /// to the client that sent the request.
    fn forward_progress(&self, params: ProgressParams) {
        let RequestId::Number(id) = params.id else {
            return;
        };
        let progress = self.pending.recover().get(&id).map(|p| p.progress.clone());
        // Queued now, before this reader hands over the answer that follows it.
        if let Some(progress) = progress {
            progress.try_report(params.message, params.done, params.total);
        }
    }
}
