//! One client connection: framing detection, reading frames, dispatching, writing answers.
//!
//! Reading and writing are separate tasks joined by a bounded channel, so a service request
//! that finishes late, a progress notification and a built-in answer can all be written while
//! the reader waits for the next frame. Closing the connection cancels its requests in flight
//! and releases its leases: a dead client can hold nothing.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use warm_protocol::methods::{self, CancelParams};
use warm_protocol::{
    encode, ErrorCode, ErrorObject, FrameDecoder, Framing, Incoming, Message, Payload, Request,
    RequestId, Response,
};

use crate::builtin;
use crate::service::{Call, Progress};
use crate::state::Shared;

/// What the writer task sends: one message or a batch answer.
#[derive(Debug)]
pub enum Outgoing {
    One(Message),
    Batch(Vec<Message>),
}

/// Messages queued for one connection's writer. Bounded so that a client that stops reading
/// stalls only its own requests.
const OUTGOING_CAPACITY: usize = 256;

/// Per-connection state shared with the tasks running its requests.
#[derive(Debug, Default)]
pub struct ConnectionState {
    /// Cancellation handles of this connection's requests in flight, by client id.
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    /// Ids of the leases this connection holds.
    pub leases: Mutex<Vec<u64>>,
}

/// Serves one accepted connection until it closes.
pub async fn serve(stream: UnixStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let _count = ConnectionCount(shared.clone());
    if !peer_is_same_user(&stream, &shared) {
        return;
    }
    let (mut reader, writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let limits = shared.options.limits.clone();

    // The first byte decides the framing; a client that connects and says nothing is
    // allowed to wait (a persistent connection opened early), so no deadline here.
    match reader.read_buf(&mut buf).await {
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    let Some(framing) = Framing::detect(buf[0]) else {
        let shown: Vec<String> = buf.iter().take(16).map(|b| format!("{b:02x}")).collect();
        tracing::warn!(first_bytes = %shown.join(" "), "unknown framing; closing connection");
        shared.events.record(
            "connection.rejected",
            json!({ "reason": "unknown framing", "first_bytes": shown.join(" ") }),
        );
        return;
    };

    let (out_tx, out_rx) = mpsc::channel(OUTGOING_CAPACITY);
    let writer_task = tokio::spawn(write_loop(writer, framing, out_rx));
    let state = Arc::new(ConnectionState::default());
    let mut decoder = FrameDecoder::new(framing, &limits);
    let mut partial_since: Option<Instant> = None;

    'connection: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => handle_payload(payload, &shared, &state, &out_tx).await,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%framing, %error, "bad frame; closing connection");
                    shared.events.record(
                        "connection.bad_frame",
                        json!({ "framing": framing.name(), "error": error.to_string() }),
                    );
                    let response = Response::error(RequestId::Null, error.to_error_object());
                    let _ = out_tx.send(Outgoing::One(response.into())).await;
                    break 'connection;
                }
            }
        }
        // A partial frame must complete within the limit, however slowly it trickles in.
        partial_since = match (buf.is_empty(), partial_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
        let read = match partial_since {
            None => tokio::select! {
                read = reader.read_buf(&mut buf) => read,
                // Shutdown has drained the requests: stop reading, flush, close.
                _ = shared.close_connections.cancelled() => break,
            },
            Some(since) => {
                let deadline = since + limits.partial_frame_timeout;
                match tokio::time::timeout_at(deadline, reader.read_buf(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        tracing::warn!(%framing, buffered = buf.len(), "partial frame not completed in time; closing connection");
                        shared.events.record(
                            "connection.partial_timeout",
                            json!({ "framing": framing.name(), "buffered": buf.len() }),
                        );
                        break;
                    }
                }
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }

    close(&shared, &state);
    drop(out_tx);
    // Let queued answers (e.g. the error for a bad frame) go out before the socket closes.
    let _ = writer_task.await;
}

/// Cancels what the connection still has running and releases its leases.
fn close(shared: &Shared, state: &ConnectionState) {
    let tokens: Vec<CancellationToken> = match state.in_flight.lock() {
        Ok(mut map) => map.drain().map(|(_, token)| token).collect(),
        Err(_) => Vec::new(),
    };
    for token in tokens {
        token.cancel();
    }
    let leases: Vec<u64> = state
        .leases
        .lock()
        .map(|mut l| l.drain(..).collect())
        .unwrap_or_default();
    if !leases.is_empty() {
        let left = shared.activity.lease_released(leases.len() as u64);
        shared.events.record(
            "lease.released",
            json!({ "lease_ids": leases, "leases": left, "why": "connection closed" }),
        );
    }
}

struct ConnectionCount(Arc<Shared>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

fn peer_is_same_user(stream: &UnixStream, shared: &Shared) -> bool {
    let own = rustix::process::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == own => true,
        Ok(cred) => {
            tracing::warn!(
                peer_uid = cred.uid(),
                "refused a connection from another user"
            );
            shared.events.record(
                "connection.rejected",
                json!({ "reason": "peer is another user", "peer_uid": cred.uid(), "peer_pid": cred.pid() }),
            );
            false
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read peer credentials; refusing");
            false
        }
    }
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    framing: Framing,
    mut out_rx: mpsc::Receiver<Outgoing>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    while let Some(first) = out_rx.recv().await {
        encode_outgoing(framing, &first, &mut buf);
        // Coalesce whatever else is ready into the same write: one syscall for many answers
        // under load, no added latency when idle.
        while buf.len() < 64 * 1024 {
            match out_rx.try_recv() {
                Ok(next) => encode_outgoing(framing, &next, &mut buf),
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() {
            // The peer is gone; the reader side will see it and clean up.
            return;
        }
        buf.clear();
    }
}

fn encode_outgoing(framing: Framing, outgoing: &Outgoing, buf: &mut BytesMut) {
    match outgoing {
        Outgoing::One(message) => encode(framing, message, buf),
        Outgoing::Batch(messages) => encode(framing, messages, buf),
    }
}

async fn handle_payload(
    payload: Payload,
    shared: &Arc<Shared>,
    state: &Arc<ConnectionState>,
    out_tx: &mpsc::Sender<Outgoing>,
) {
    match payload.parse() {
        Err(error) => {
            tracing::debug!(%error, "unparseable message");
            let _ = out_tx
                .send(Outgoing::One(
                    Response::error(RequestId::Null, error).into(),
                ))
                .await;
        }
        Ok(Incoming::Single(Err(invalid))) => {
            let _ = out_tx
                .send(Outgoing::One(invalid.into_response().into()))
                .await;
        }
        Ok(Incoming::Single(Ok(message))) => {
            // Service requests answer through `out_tx` themselves; only immediate answers
            // come back here.
            if let Some(Answer::Now(response)) =
                dispatch(message, shared, state, out_tx, Delivery::Direct)
            {
                let _ = out_tx.send(Outgoing::One(response.into())).await;
            }
        }
        Ok(Incoming::Batch(items)) => {
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Err(invalid) => answers.push(Answer::Now(invalid.into_response())),
                    Ok(message) => {
                        if let Some(answer) =
                            dispatch(message, shared, state, out_tx, Delivery::Batch)
                        {
                            answers.push(answer);
                        }
                    }
                }
            }
            if answers.is_empty() {
                return;
            }
            let out_tx = out_tx.clone();
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
        }
    }
}

/// An answer available at once, or one a request task will deliver.
enum Answer {
    Now(Response),
    Later(oneshot::Receiver<Response>),
}

/// Where a service request's response goes: straight to the writer, or into a batch.
#[derive(Clone, Copy)]
enum Delivery {
    Direct,
    Batch,
}

fn dispatch(
    message: Message,
    shared: &Arc<Shared>,
    state: &Arc<ConnectionState>,
    out_tx: &mpsc::Sender<Outgoing>,
    delivery: Delivery,
) -> Option<Answer> {
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
                let response = builtin::handle(request, shared, state);
                shared.stats.requests.fetch_add(1, Ordering::Relaxed);
                return Some(Answer::Now(response));
            }
            start_service_request(request, shared, state, out_tx, delivery)
        }
        Message::Notification(notification) => {
            shared.activity.touch();
            if notification.method == methods::CANCEL_REQUEST {
                cancel_request(notification.params, state);
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
    if let Some(token) = state
        .in_flight
        .lock()
        .ok()
        .and_then(|m| m.get(&id).cloned())
    {
        token.cancel();
    }
}

fn start_service_request(
    request: Request,
    shared: &Arc<Shared>,
    state: &Arc<ConnectionState>,
    out_tx: &mpsc::Sender<Outgoing>,
    delivery: Delivery,
) -> Option<Answer> {
    let Ok(permit) = shared.in_flight_limit.clone().try_acquire_owned() else {
        shared.record_busy();
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let retry_after = 10 + shared.options.limits.max_in_flight as u64 / 64;
        return Some(Answer::Now(Response::error(
            request.id,
            ErrorObject::busy(retry_after),
        )));
    };
    let cancel = CancellationToken::new();
    {
        let Ok(mut in_flight) = state.in_flight.lock() else {
            return Some(Answer::Now(Response::error(
                request.id,
                ErrorObject::new(ErrorCode::InternalError, "connection state poisoned"),
            )));
        };
        if in_flight.contains_key(&request.id) {
            return Some(Answer::Now(Response::error(
                request.id,
                ErrorObject::new(
                    ErrorCode::InvalidRequest,
                    "a request with this id is already in flight",
                ),
            )));
        }
        in_flight.insert(request.id.clone(), cancel.clone());
    }
    shared.activity.begin_request();
    let call = Call {
        method: request.method,
        params: request.params,
        progress: Progress::new(request.id.clone(), out_tx.clone()),
        cancel: cancel.clone(),
    };
    let id = request.id;
    let (batch_tx, batch_rx) = match delivery {
        Delivery::Direct => (None, None),
        Delivery::Batch => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        }
    };
    let shared_task = shared.clone();
    let state = state.clone();
    let out_tx = out_tx.clone();
    shared.requests.spawn(async move {
        let shared = shared_task;
        let future = shared.service.call(call);
        let result = tokio::select! {
            result = future => result,
            _ = cancel.cancelled() => Err(ErrorObject::new(ErrorCode::Cancelled, "request cancelled")),
            // Not -32003: that code promises the request never ran, and clients resend it.
            _ = shared.drain_expired.cancelled() => Err(ErrorObject::new(
                ErrorCode::Cancelled,
                "cancelled: the daemon shut down before the request finished (drain deadline passed)",
            )),
        };
        if let Ok(mut in_flight) = state.in_flight.lock() {
            in_flight.remove(&id);
        }
        drop(permit);
        shared.activity.end_request();
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let response = Response { id, result };
        match batch_tx {
            Some(tx) => {
                let _ = tx.send(response);
            }
            None => {
                let _ = out_tx.send(Outgoing::One(response.into())).await;
            }
        }
    });
    batch_rx.map(Answer::Later)
}
