//! One client connection: framing detection, reading frames, writing answers.
//!
//! One task does both directions. Answers that are ready at once (built-in methods, service
//! calls that complete on their first poll) are encoded straight into the write buffer and
//! flushed once per read, with no hop through another task; answers of requests that had to
//! wait arrive on a bounded channel the same task also listens to. Closing the connection
//! cancels its requests in flight and releases its leases: a dead client can hold nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use warm_protocol::{
    encode, ErrorCode, ErrorObject, FrameDecoder, Framing, Message, RequestId, Response,
};
use warm_runtime::sync::Recover;

use crate::dispatch::{handle_payload, Dispatcher};
use crate::session::{ConnectionState, Outgoing};
use crate::state::Shared;

/// Messages queued for one connection by requests that finished later. Bounded so that a
/// client that stops reading stalls only its own requests.
const OUTGOING_CAPACITY: usize = 256;

/// Bytes gathered before a write: one syscall for many answers under load.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// How long the last answers of a closing connection may take to write.
const FINAL_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the connection loop ended.
enum Closed {
    /// The peer closed, reset, or we were told to close: nothing more to write.
    Done,
    /// A corrupt frame: its error answer is in the write buffer; flush it, then close.
    AfterFlush,
}

/// Serves one accepted connection until it closes.
///
/// # Cancellation safety
/// Spawn it as a task of its own (the drain tracks it): dropped midway, the connection's
/// requests in flight are not cancelled nor its leases released.
pub async fn serve(stream: UnixStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    if !peer_is_same_user(&stream, &shared) {
        return;
    }
    let (reader, writer) = stream.into_split();
    serve_stream(reader, writer, shared).await;
}

/// Serves one connection over any byte stream until it closes: a socket's two halves, or an
/// in-memory pipe (see [`crate::memory`]).
///
/// # Cancellation safety
/// As [`serve`].
pub async fn serve_stream<R, W>(mut reader: R, mut writer: W, shared: Arc<Shared>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let _count = ConnectionCount(shared.clone());
    let mut read_buf = BytesMut::with_capacity(4096);

    // The first byte decides the framing; a client that connects and says nothing is
    // allowed to wait (a persistent connection opened early), so no deadline here.
    let first = tokio::select! {
        read = reader.read_buf(&mut read_buf) => read,
        _ = shared.drain.close_requested() => return,
    };
    match first {
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    let Some(framing) = Framing::detect(read_buf[0]) else {
        let shown: Vec<String> = read_buf
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        tracing::warn!(first_bytes = %shown.join(" "), "unknown framing; closing connection");
        shared.events.record(
            "connection.rejected",
            json!({ "reason": "unknown framing", "first_bytes": shown.join(" ") }),
        );
        return;
    };

    let (out_tx, mut out_rx) = mpsc::channel(OUTGOING_CAPACITY);
    let state = Arc::new(ConnectionState::default());
    let dispatcher = Dispatcher {
        shared: shared.clone(),
        state: state.clone(),
        out_tx,
    };
    let limits = shared.options.limits.clone();
    let mut decoder = FrameDecoder::new(framing, &limits);
    let mut write_buf = BytesMut::with_capacity(4096);
    let mut partial_since: Option<Instant> = None;
    // Created once: a fresh `cancelled()` per loop turn would register and unregister with the
    // token's waiter list on every request.
    let close_requested = shared.drain.close_requested_owned();
    tokio::pin!(close_requested);

    let closed = loop {
        // Everything complete in the read buffer is dispatched before the next read.
        if let Err(error) = decode_all(&mut decoder, &mut read_buf, &dispatcher, &mut write_buf) {
            tracing::warn!(%framing, %error, "bad frame; closing connection");
            shared.events.record(
                "connection.bad_frame",
                json!({ "framing": framing.name(), "error": error.to_string() }),
            );
            let answer = Response::error(RequestId::Null, error.to_error_object());
            encode(framing, &Message::Response(answer), &mut write_buf);
            break Closed::AfterFlush;
        }
        if !write_buf.is_empty() && flush(&mut writer, &mut write_buf, &shared).await.is_err() {
            break Closed::Done;
        }
        // A partial frame must complete within the limit, however slowly it trickles in.
        partial_since = match (read_buf.is_empty(), partial_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
        let partial_deadline =
            partial_since.and_then(|since| since.checked_add(limits.partial_frame_timeout));
        tokio::select! {
            // In a fixed order, not at random: answers that are ready go out first (they
            // come only from requests already read, so they cannot starve reading), then
            // the read, which is what is ready almost every time.
            biased;
            Some(outgoing) = out_rx.recv() => {
                encode_outgoing(framing, &outgoing, &mut write_buf, limits.max_frame_bytes);
                while write_buf.len() < WRITE_BATCH_BYTES {
                    match out_rx.try_recv() {
                        Ok(more) => encode_outgoing(framing, &more, &mut write_buf, limits.max_frame_bytes),
                        Err(_) => break,
                    }
                }
            }
            read = reader.read_buf(&mut read_buf) => match read {
                Ok(0) | Err(_) => break Closed::Done,
                Ok(_) => {}
            },
            _ = sleep_until_some(partial_deadline) => {
                tracing::warn!(%framing, buffered = read_buf.len(), "partial frame not completed in time; closing connection");
                shared.events.record(
                    "connection.partial_timeout",
                    json!({ "framing": framing.name(), "buffered": read_buf.len() }),
                );
                break Closed::Done;
            }
            // Shutdown has drained the requests: flush what they answered, then close.
            _ = &mut close_requested => {
                while let Ok(outgoing) = out_rx.try_recv() {
                    encode_outgoing(framing, &outgoing, &mut write_buf, limits.max_frame_bytes);
                }
                break Closed::AfterFlush;
            }
        }
    };
    if let Closed::AfterFlush = closed {
        final_flush(&mut writer, &write_buf).await;
    }
    close(&shared, &state);
}

fn decode_all(
    decoder: &mut FrameDecoder,
    read_buf: &mut BytesMut,
    dispatcher: &Dispatcher,
    write_buf: &mut BytesMut,
) -> Result<(), warm_protocol::DecodeError> {
    while let Some(payload) = decoder.decode(read_buf)? {
        if let Some(outgoing) = handle_payload(payload, dispatcher) {
            let limit = dispatcher.shared.options.limits.max_frame_bytes;
            encode_outgoing(decoder.framing(), &outgoing, write_buf, limit);
        }
    }
    Ok(())
}

/// Writes the buffer out. A client that stops reading blocks only its own connection, and
/// not past shutdown: the write is tried first (`biased`), so an answer is never dropped
/// merely because shutdown began; only a write that cannot proceed is abandoned then.
async fn flush(
    writer: &mut (impl AsyncWrite + Unpin),
    write_buf: &mut BytesMut,
    shared: &Shared,
) -> std::io::Result<()> {
    let result = tokio::select! {
        biased;
        result = writer.write_all(write_buf) => result,
        _ = shared.drain.close_requested() => Err(std::io::ErrorKind::TimedOut.into()),
    };
    write_buf.clear();
    result
}

/// The last write before closing, bounded in time rather than by the shutdown signal (which
/// has usually fired by then).
async fn final_flush(writer: &mut (impl AsyncWrite + Unpin), write_buf: &BytesMut) {
    let _ = tokio::time::timeout(FINAL_FLUSH_TIMEOUT, writer.write_all(write_buf)).await;
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Cancels what the connection still has running and releases its leases.
fn close(shared: &Shared, state: &ConnectionState) {
    let tokens: Vec<CancellationToken> = state
        .in_flight
        .recover()
        .drain()
        .map(|(_, token)| token)
        .collect();
    for token in tokens {
        token.cancel();
    }
    let leases: Vec<u64> = state.leases.recover().drain(..).collect();
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

/// Encodes `outgoing` into `buf`. An answer larger than `max_frame_bytes` (which the client
/// could not accept) is replaced by a -32004 error for its request; a notification that
/// large is dropped.
pub fn encode_outgoing(
    framing: Framing,
    outgoing: &Outgoing,
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) {
    let start = buf.len();
    match outgoing {
        Outgoing::One(message) => encode(framing, message, buf),
        Outgoing::Batch(messages) => encode(framing, messages, buf),
    }
    // Framing adds a header of a few dozen bytes at most to the body the limit is about.
    let size = buf.len().saturating_sub(start);
    if size <= max_frame_bytes.saturating_add(64) {
        return;
    }
    buf.truncate(start);
    let too_large = || {
        ErrorObject::new(
            ErrorCode::TooLarge,
            format!("the answer is {size} bytes, over the frame limit of {max_frame_bytes}"),
        )
    };
    let replace = |message: &Message| match message {
        Message::Response(response) => Some(Message::Response(Response::error(
            response.id.clone(),
            too_large(),
        ))),
        _ => None,
    };
    tracing::warn!(
        size,
        max_frame_bytes,
        "answer over the frame limit; replaced by -32004"
    );
    match outgoing {
        Outgoing::One(message) => {
            if let Some(error) = replace(message) {
                encode(framing, &error, buf);
            }
        }
        Outgoing::Batch(messages) => {
            let errors: Vec<Message> = messages.iter().filter_map(replace).collect();
            encode(framing, &errors, buf);
        }
    }
}
