//! A blocking connection to a daemon socket, in one framing.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use serde_json::Value;
use warm_protocol::methods::{ProgressParams, PROGRESS};
use warm_protocol::{
    encode, ErrorObject, FrameDecoder, Framing, Incoming, Limits, Message, RequestId, RequestRef,
};

/// How a request failed to produce a response.
#[derive(Debug)]
pub enum RequestFailure {
    /// The request could not be written: it never reached the daemon, so resending is safe.
    NotSent(io::Error),
    /// The request was written but the connection broke before the response came; it may or
    /// may not have run.
    Lost(io::Error),
    /// No response before the read timeout.
    TimedOut,
    /// The daemon sent bytes this client cannot read.
    Protocol(String),
}

/// One open connection to a daemon.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    framing: Framing,
    decoder: FrameDecoder,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Read target reused across reads, so a read costs no allocation.
    scratch: Box<[u8]>,
    next_id: i64,
}

impl Connection {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    /// The connect error: `NotFound` or `ConnectionRefused` mean no daemon listens there.
    pub fn connect(path: &Path, framing: Framing) -> io::Result<Connection> {
        let stream = UnixStream::connect(path)?;
        Ok(Connection::from_stream(stream, framing))
    }

    pub fn from_stream(stream: UnixStream, framing: Framing) -> Connection {
        Connection {
            stream,
            framing,
            decoder: FrameDecoder::new(framing, &Limits::default()),
            read_buf: BytesMut::with_capacity(8 * 1024),
            write_buf: BytesMut::with_capacity(1024),
            scratch: vec![0; 8 * 1024].into_boxed_slice(),
            next_id: 1,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Sets how long a read may wait (`None`: forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Writes one message.
    pub fn send(&mut self, message: &Message) -> io::Result<()> {
        self.write_buf.clear();
        encode(self.framing, message, &mut self.write_buf);
        self.stream.write_all(&self.write_buf)
    }

    /// Reads the next message. `Ok(None)` on a clean end of stream.
    pub fn recv(&mut self) -> Result<Option<Incoming>, RequestFailure> {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(payload)) => {
                    return payload
                        .parse()
                        .map(Some)
                        .map_err(|e| RequestFailure::Protocol(e.message));
                }
                Ok(None) => {}
                Err(e) => return Err(RequestFailure::Protocol(e.to_string())),
            }
            let read = self.stream.read(&mut self.scratch);
            match read {
                Ok(0) => return Ok(None),
                Ok(n) => self.read_buf.extend_from_slice(&self.scratch[..n]),
                Err(e) => {
                    return Err(match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            RequestFailure::TimedOut
                        }
                        io::ErrorKind::Interrupted => continue,
                        _ => RequestFailure::Lost(e),
                    });
                }
            }
        }
    }

    /// Sends a request and waits for its response, passing `$/progress` notifications for it
    /// to `on_progress` as they arrive.
    ///
    /// # Errors
    /// [`RequestFailure`] when no response could be had; a JSON-RPC error response is
    /// `Ok(Err(..))`.
    pub fn request(
        &mut self,
        method: &str,
        params: Option<&Value>,
        on_progress: &mut dyn FnMut(ProgressParams),
    ) -> Result<Result<Value, ErrorObject>, RequestFailure> {
        let id = self
            .send_request(method, params)
            .map_err(RequestFailure::NotSent)?;
        self.read_response(&id, on_progress)
    }

    /// Writes a request without waiting, returning its id (for pipelining several requests
    /// in one round trip).
    ///
    /// # Errors
    /// The write error: the request did not reach the daemon.
    pub fn send_request(&mut self, method: &str, params: Option<&Value>) -> io::Result<RequestId> {
        let id = RequestId::Number(self.next_id);
        self.next_id += 1;
        self.write_buf.clear();
        encode(
            self.framing,
            &RequestRef::new(&id, method, params),
            &mut self.write_buf,
        );
        self.stream.write_all(&self.write_buf)?;
        Ok(id)
    }

    /// Reads until the response to `id` arrives; progress for it goes to `on_progress`, and
    /// responses to other requests are skipped.
    ///
    /// # Errors
    /// [`RequestFailure::Lost`] when the connection ends first.
    pub fn read_response(
        &mut self,
        id: &RequestId,
        on_progress: &mut dyn FnMut(ProgressParams),
    ) -> Result<Result<Value, ErrorObject>, RequestFailure> {
        loop {
            let incoming = self.recv()?.ok_or_else(|| {
                RequestFailure::Lost(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                ))
            })?;
            match incoming {
                Incoming::Single(Ok(Message::Response(response))) if response.id == *id => {
                    return Ok(response.result)
                }
                Incoming::Single(Ok(Message::Response(response)))
                    if response.id == RequestId::Null =>
                {
                    // The daemon could not read our frame at all.
                    return Ok(response.result);
                }
                Incoming::Single(Ok(Message::Notification(n))) if n.method == PROGRESS => {
                    if let Some(progress) = n
                        .params
                        .and_then(|p| serde_json::from_value::<ProgressParams>(p).ok())
                        .filter(|p| p.id == *id)
                    {
                        on_progress(progress);
                    }
                }
                // Other notifications and stray responses are not ours to handle.
                _ => {}
            }
        }
    }
}
