//! Dispatch: what each incoming message becomes — an immediate answer, a service request, a
//! cancellation, or nothing.
//!
//! Service calls are polled once in place: one that completes at once (most do, for
//! in-process services) is answered without spawning a task; one that has to wait is moved
//! to its own task, tracked so that graceful shutdown can drain it.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use warm_protocol::methods::{self, CancelParams};
use warm_protocol::{
    ErrorCode, ErrorObject, Incoming, Message, Payload, Request, RequestId, Response,
};
use warm_runtime::sync::Recover;

use crate::builtin;
use crate::service::{Call, Progress};
use crate::session::{ConnectionState, Outgoing};
use crate::state::Shared;

/// What one connection dispatches with.
pub struct Dispatcher {
    pub shared: Arc<Shared>,
    pub state: Arc<ConnectionState>,
    /// Where answers that come later (and progress) go; the connection task writes them.
    pub out_tx: mpsc::Sender<Outgoing>,
}

/// An answer available at once, or one a request task will deliver (batches only: single
/// requests that wait deliver through `out_tx`).
enum Answer {
    Now(Response),
    Later(oneshot::Receiver<Response>),
}

/// Where a waiting service request's response goes.
#[derive(Clone, Copy)]
enum Delivery {
    Direct,
    Batch,
}

/// Handles one frame; returns what must be written at once.
pub fn handle_payload(payload: Payload, dispatcher: &Dispatcher) -> Option<Outgoing> {
    match payload.parse_limited(dispatcher.shared.options.limits.max_batch) {
        Err(error) => {
            tracing::debug!(%error, "unparseable message");
            Some(Outgoing::One(
                Response::error(RequestId::Null, error).into(),
            ))
        }
        Ok(Incoming::Single(Err(invalid))) => Some(Outgoing::One(invalid.into_response().into())),
        Ok(Incoming::Single(Ok(message))) => {
            match dispatch(message, dispatcher, Delivery::Direct) {
                Some(Answer::Now(response)) => Some(Outgoing::One(response.into())),
                Some(Answer::Later(_)) | None => None,
            }
        }
        Ok(Incoming::Batch(items)) => handle_batch(items, dispatcher),
    }
}

fn handle_batch(
    items: Vec<Result<Message, warm_protocol::message::InvalidMessage>>,
    dispatcher: &Dispatcher,
) -> Option<Outgoing> {
    let answers: Vec<Answer> = items
        .into_iter()
        .filter_map(|item| match item {
            Err(invalid) => Some(Answer::Now(invalid.into_response())),
            Ok(message) => dispatch(message, dispatcher, Delivery::Batch),
        })
        .collect();
    if answers.is_empty() {
        return None;
    }
    if answers.iter().all(|a| matches!(a, Answer::Now(_))) {
        let responses = answers
            .into_iter()
            .filter_map(|a| match a {
                Answer::Now(response) => Some(Message::Response(response)),
                Answer::Later(_) => None,
            })
            .collect();
        return Some(Outgoing::Batch(responses));
    }
    // Some answers are still coming: gather them off the connection task, in order.
    let out_tx = dispatcher.out_tx.clone();
    tokio::spawn(async move {
        let mut responses = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer {
                Answer::Now(response) => responses.push(Message::Response(response)),
                Answer::Later(rx) => {
                    if let Ok(response) = rx.await {
                        responses.push(Message::Response(response));
                    }
                }
            }
        }
        let _ = out_tx.send(Outgoing::Batch(responses)).await;
    });
    None
}

fn dispatch(message: Message, dispatcher: &Dispatcher, delivery: Delivery) -> Option<Answer> {
    let shared = &dispatcher.shared;
    match message {
        Message::Request(request) => {
            shared.activity.touch();
            if shared.shutdown.is_triggered() {
                return Some(Answer::Now(Response::error(
                    request.id,
                    ErrorObject::shutting_down(),
                )));
            }
            if methods::is_builtin(&request.method) {
                let response = builtin::handle(request, shared, &dispatcher.state);
                shared.stats.requests.fetch_add(1, Ordering::Relaxed);
                return Some(Answer::Now(response));
            }
            if dispatcher.state.refuse_service.load(Ordering::Relaxed) {
                return Some(Answer::Now(Response::error(
                    request.id,
                    ErrorObject::new(
                        ErrorCode::ShuttingDown,
                        "not run: this daemon's version or configuration differs from the client's; the client replaces it",
                    ),
                )));
            }
            start_service_request(request, dispatcher, delivery)
        }
        Message::Notification(notification) => {
            shared.activity.touch();
            if notification.method == methods::CANCEL_REQUEST {
                cancel_request(notification.params, &dispatcher.state);
            } else {
                shared
                    .service
                    .notify(&notification.method, notification.params);
            }
            None
        }
        Message::Response(response) => {
            tracing::debug!(id = %response.id, "ignoring a response from a client");
            None
        }
    }
}

fn cancel_request(params: Option<serde_json::Value>, state: &ConnectionState) {
    let Some(CancelParams { id }) = params.and_then(|p| serde_json::from_value(p).ok()) else {
        return;
    };
    let token = state.in_flight.recover().get(&id).cloned();
    if let Some(token) = token {
        token.cancel();
    }
}

fn start_service_request(
    request: Request,
    dispatcher: &Dispatcher,
    delivery: Delivery,
) -> Option<Answer> {
    let shared = &dispatcher.shared;
    let Ok(permit) = shared.in_flight_limit.clone().try_acquire_owned() else {
        shared.record_busy();
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let retry_after = (shared.options.limits.max_in_flight as u64 / 64).saturating_add(10);
        return Some(Answer::Now(Response::error(
            request.id,
            ErrorObject::busy(retry_after),
        )));
    };
    let cancel = CancellationToken::new();
    if let Err(error) = register(&dispatcher.state, &request.id, &cancel) {
        return Some(Answer::Now(Response::error(request.id, error)));
    }
    shared.activity.begin_request();
    let call = Call {
        method: request.method,
        params: request.params,
        progress: Progress::new(request.id.clone(), dispatcher.out_tx.clone()),
        cancel: cancel.clone(),
    };
    let id = request.id;
    let shared_task = shared.clone();
    let state = dispatcher.state.clone();
    let mut running = Box::pin(async move {
        let shared = shared_task;
        let result = tokio::select! {
            // The service first: on cancellation it gets to pass the cancel on (to a worker)
            // in the same poll before the future is dropped.
            biased;
            result = crate::unwind::guarded_call(shared.service.as_ref(), call) => result,
            _ = cancel.cancelled() => Err(ErrorObject::new(ErrorCode::Cancelled, "request cancelled")),
            // Not -32003: that code promises the request never ran, and clients resend it.
            _ = shared.drain.deadline_passed() => Err(ErrorObject::new(
                ErrorCode::Cancelled,
                "cancelled: the daemon shut down before the request finished (drain deadline passed)",
            )),
        };
        state.in_flight.recover().remove(&id);
        drop(permit);
        shared.activity.end_request();
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        Response { id, result }
    });
    // One poll in place. Polling with a no-op waker is sound: if it is pending, the task it
    // moves to polls it again at once and registers the real waker.
    if let Poll::Ready(response) = running
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return Some(Answer::Now(response));
    }
    match delivery {
        Delivery::Direct => {
            let out_tx = dispatcher.out_tx.clone();
            shared.drain.spawn_request(async move {
                let response = running.await;
                let _ = out_tx.send(Outgoing::One(response.into())).await;
            });
            None
        }
        Delivery::Batch => {
            let (tx, rx) = oneshot::channel();
            shared.drain.spawn_request(async move {
                let _ = tx.send(running.await);
            });
            Some(Answer::Later(rx))
        }
    }
}

/// Records a request as in flight on its connection, so it can be cancelled.
fn register(
    state: &ConnectionState,
    id: &RequestId,
    cancel: &CancellationToken,
) -> Result<(), ErrorObject> {
    let mut in_flight = state.in_flight.recover();
    if in_flight.contains_key(id) {
        return Err(ErrorObject::new(
            ErrorCode::InvalidRequest,
            "a request with this id is already in flight",
        ));
    }
    in_flight.insert(id.clone(), cancel.clone());
    Ok(())
}
