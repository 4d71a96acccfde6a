//! Bytes to payloads and back, for each [`Framing`], under [`Limits`].
//!
//! The decoder follows tokio-util's `Decoder` contract without depending on it: `Ok(None)` means
//! "need more bytes", `Err` means the stream is corrupt and the connection must be closed. It is
//! used both by the async daemon and by the blocking client.
//!
//! Framing is kept apart from meaning: a frame whose body is not valid JSON is still a frame
//! ([`Payload::parse`] answers it with -32700 and the connection goes on), whereas bytes that
//! cannot be split into frames at all end the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ErrorCode, ErrorObject};
use crate::framing::{Framing, BINARY_HEADER_LEN, BINARY_MAGIC_0, BINARY_MAGIC_1, BINARY_VERSION};
use crate::limits::Limits;
use crate::message::Incoming;

/// A corrupt or over-limit stream. Every variant ends the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("LSP header block exceeds the limit of {limit} bytes")]
    HeaderTooLarge { limit: usize },
    #[error("malformed LSP header: {0}")]
    BadHeader(String),
    #[error("bad binary frame magic {0:#04x} {1:#04x} (expected 0xeb 0x57)")]
    BadMagic(u8, u8),
    #[error("unsupported binary frame version {0} (this side speaks {BINARY_VERSION})")]
    UnsupportedVersion(u8),
}

impl DecodeError {
    /// The error response a peer is sent before its connection is closed.
    pub fn to_error_object(&self) -> ErrorObject {
        let code = match self {
            DecodeError::TooLarge { .. } | DecodeError::HeaderTooLarge { .. } => {
                ErrorCode::TooLarge
            }
            _ => ErrorCode::ParseError,
        };
        ErrorObject::new(code, self.to_string())
    }
}

/// One frame's body, not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub framing: Framing,
    pub body: Bytes,
}

impl Payload {
    /// Parses the body as JSON (or MessagePack for binary frames).
    ///
    /// # Errors
    /// A -32700 parse error object, to be sent back with a `null` id.
    pub fn parse(&self) -> Result<Incoming, ErrorObject> {
        self.parse_limited(usize::MAX)
    }

    /// Like [`Payload::parse`], refusing a batch of more than `max_batch` messages (-32004)
    /// before the rest of it is parsed.
    ///
    /// # Errors
    /// -32700 for a body that is not JSON (MessagePack), -32004 for a batch over the limit.
    pub fn parse_limited(&self, max_batch: usize) -> Result<Incoming, ErrorObject> {
        if self.framing != Framing::Binary {
            if let Some(message) = crate::fast::parse_json(&self.body) {
                return Ok(Incoming::Single(Ok(message)));
            }
        }
        let batch_too_long = |max: usize| {
            ErrorObject::new(
                ErrorCode::TooLarge,
                format!("a batch of more than {max} messages is over the limit; none was run: send smaller batches"),
            )
        };
        let value: Value = match self.framing {
            Framing::Ndjson | Framing::Lsp => {
                crate::strict::from_slice_limited(&self.body, max_batch).map_err(|e| match e {
                    crate::strict::StrictError::Json(e) => {
                        ErrorObject::new(ErrorCode::ParseError, format!("parse error: {e}"))
                    }
                    crate::strict::StrictError::BatchTooLong { max } => batch_too_long(max),
                })?
            }
            Framing::Binary => {
                // A MessagePack array states its length up front: refuse before decoding.
                if crate::msgpack::array_len(&self.body).is_some_and(|n| n > max_batch) {
                    return Err(batch_too_long(max_batch));
                }
                crate::msgpack::to_json(&self.body).map_err(|e| {
                    ErrorObject::new(
                        ErrorCode::ParseError,
                        format!("parse error (MessagePack): {e}"),
                    )
                })?
            }
        };
        Ok(Incoming::from_value(value))
    }
}

/// Splits a byte stream into frames of one framing.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    framing: Framing,
    max_frame_bytes: usize,
    max_header_bytes: usize,
    /// Bytes of the buffer already searched for a newline, so a large ndjson frame arriving in
    /// many reads is scanned once, not once per read.
    ndjson_scanned: usize,
}

impl FrameDecoder {
    pub fn new(framing: Framing, limits: &Limits) -> FrameDecoder {
        FrameDecoder {
            framing,
            max_frame_bytes: limits.max_frame_bytes,
            max_header_bytes: limits.max_header_bytes,
            ndjson_scanned: 0,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Takes the next complete frame off the front of `buf`.
    ///
    /// # Errors
    /// [`DecodeError`] when the stream is corrupt or a frame is over the limits; the caller
    /// must close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Payload>, DecodeError> {
        let body = match self.framing {
            Framing::Ndjson => self.decode_ndjson(buf)?,
            Framing::Lsp => self.decode_lsp(buf)?,
            Framing::Binary => self.decode_binary(buf)?,
        };
        Ok(body.map(|body| Payload {
            framing: self.framing,
            body,
        }))
    }

    fn decode_ndjson(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        loop {
            let Some(offset) = buf[self.ndjson_scanned..].iter().position(|&b| b == b'\n') else {
                self.ndjson_scanned = buf.len();
                if buf.len() > self.max_frame_bytes {
                    return Err(DecodeError::TooLarge {
                        len: buf.len(),
                        limit: self.max_frame_bytes,
                    });
                }
                return Ok(None);
            };
            let end = self.ndjson_scanned + offset;
            self.ndjson_scanned = 0;
            if end > self.max_frame_bytes {
                return Err(DecodeError::TooLarge {
                    len: end,
                    limit: self.max_frame_bytes,
                });
            }
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            // Blank lines between messages are allowed and skipped.
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(line.freeze()));
        }
    }

    fn decode_lsp(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let search_len = buf.len().min(self.max_header_bytes + 4);
        let Some(header_end) = find_subslice(&buf[..search_len], b"\r\n\r\n") else {
            // Only once the terminator could no longer fit: a header block of exactly the
            // limit is accepted however it is split across reads (found by fuzzing).
            if buf.len() >= self.max_header_bytes + 4 {
                return Err(DecodeError::HeaderTooLarge {
                    limit: self.max_header_bytes,
                });
            }
            return Ok(None);
        };
        let content_length = parse_content_length(&buf[..header_end])?;
        if content_length > self.max_frame_bytes {
            return Err(DecodeError::TooLarge {
                len: content_length,
                limit: self.max_frame_bytes,
            });
        }
        let body_start = header_end + 4;
        if buf.len() < body_start + content_length {
            buf.reserve(body_start + content_length - buf.len());
            return Ok(None);
        }
        buf.advance(body_start);
        Ok(Some(buf.split_to(content_length).freeze()))
    }

    fn decode_binary(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        if buf.len() >= 2 && (buf[0] != BINARY_MAGIC_0 || buf[1] != BINARY_MAGIC_1) {
            return Err(DecodeError::BadMagic(buf[0], buf[1]));
        }
        if buf.len() < BINARY_HEADER_LEN {
            return Ok(None);
        }
        if buf[2] != BINARY_VERSION {
            return Err(DecodeError::UnsupportedVersion(buf[2]));
        }
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if len > self.max_frame_bytes {
            return Err(DecodeError::TooLarge {
                len,
                limit: self.max_frame_bytes,
            });
        }
        if buf.len() < BINARY_HEADER_LEN + len {
            buf.reserve(BINARY_HEADER_LEN + len - buf.len());
            return Ok(None);
        }
        buf.advance(BINARY_HEADER_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_content_length(headers: &[u8]) -> Result<usize, DecodeError> {
    let text = std::str::from_utf8(headers)
        .map_err(|_| DecodeError::BadHeader("headers are not ASCII".into()))?;
    let mut content_length = None;
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(DecodeError::BadHeader(format!("no ':' in {line:?}")));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            content_length = Some(value.parse::<usize>().map_err(|_| {
                DecodeError::BadHeader(format!("Content-Length {value:?} is not a number"))
            })?);
        }
    }
    content_length.ok_or_else(|| DecodeError::BadHeader("no Content-Length header".into()))
}

/// Appends one frame carrying `message` (a [`crate::Message`], a batch of them, or any
/// JSON-RPC shaped value) to `out`.
pub fn encode<T: Serialize + ?Sized>(framing: Framing, message: &T, out: &mut BytesMut) {
    // Serializing our own message types into memory cannot fail: every map key is a string
    // and no type has a fallible Serialize impl. The fallback keeps the stream well-formed.
    match framing {
        Framing::Ndjson => {
            let mut writer = out.writer();
            if serde_json::to_writer(&mut writer, message).is_err() {
                writer.get_mut().put_slice(b"null");
            }
            out.put_u8(b'\n');
        }
        Framing::Lsp => {
            let body = serde_json::to_vec(message).unwrap_or_else(|_| b"null".to_vec());
            out.put_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.put_slice(&body);
        }
        Framing::Binary => {
            let body = rmp_serde::to_vec_named(message).unwrap_or_else(|_| vec![0xc0]);
            out.reserve(BINARY_HEADER_LEN + body.len());
            out.put_slice(&[BINARY_MAGIC_0, BINARY_MAGIC_1, BINARY_VERSION, 0]);
            out.put_u32(body.len() as u32);
            out.put_slice(&body);
        }
    }
}

/// One frame carrying `message`, as a fresh buffer.
pub fn encode_message<T: Serialize + ?Sized>(framing: Framing, message: &T) -> BytesMut {
    let mut out = BytesMut::with_capacity(128);
    encode(framing, message, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, Request, RequestId};
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    fn request(id: i64, params: Value) -> Message {
        Message::Request(Request {
            id: RequestId::Number(id),
            method: "test/method".into(),
            params: Some(params),
        })
    }

    fn decode_all(
        framing: Framing,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<Vec<Message>, DecodeError> {
        let mut decoder = FrameDecoder::new(framing, limits);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Feed one byte at a time: the hardest case for a decoder.
        for &b in bytes {
            buf.put_u8(b);
            while let Some(payload) = decoder.decode(&mut buf)? {
                match payload.parse().expect("valid body") {
                    Incoming::Single(Ok(message)) => out.push(message),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(buf.is_empty(), "bytes left over");
        Ok(out)
    }

    #[test]
    fn each_framing_round_trips_byte_by_byte() {
        let messages = vec![
            request(1, json!({"a": "é😀"})),
            request(2, json!([1, 2, 3])),
        ];
        for framing in [Framing::Ndjson, Framing::Lsp, Framing::Binary] {
            let mut bytes = BytesMut::new();
            for m in &messages {
                encode(framing, m, &mut bytes);
            }
            let decoded = decode_all(framing, &bytes, &Limits::default()).expect("decodes");
            assert_eq!(decoded, messages, "{framing}");
        }
    }

    #[test]
    fn lsp_announcing_a_huge_frame_fails_before_the_body() {
        let mut buf = BytesMut::from(&b"Content-Length: 104857600\r\n\r\n"[..]);
        let mut decoder = FrameDecoder::new(Framing::Lsp, &Limits::default());
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { len: 104857600, .. })
        ));
    }

    #[test]
    fn binary_announcing_a_huge_frame_fails_before_the_body() {
        let mut buf = BytesMut::from(&[0xEB, 0x57, 1, 0, 0x06, 0x40, 0, 0][..]);
        let mut decoder = FrameDecoder::new(Framing::Binary, &Limits::default());
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn ndjson_line_without_end_over_the_limit_fails() {
        let limits = Limits {
            max_frame_bytes: 10,
            ..Limits::default()
        };
        let mut decoder = FrameDecoder::new(Framing::Ndjson, &limits);
        let mut buf = BytesMut::from(&b"{\"aaaaaaaaaaaaaa"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn lsp_header_block_over_the_limit_fails() {
        let mut decoder = FrameDecoder::new(Framing::Lsp, &Limits::default());
        let mut buf = BytesMut::from(&b"Content-Type: x"[..]);
        buf.put_slice(&vec![b'x'; 9000]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::HeaderTooLarge { .. })
        ));
    }

    #[test]
    fn lsp_headers_without_length_are_rejected() {
        let mut decoder = FrameDecoder::new(Framing::Lsp, &Limits::default());
        let mut buf = BytesMut::from(&b"Content-Type: json\r\n\r\n{}"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::BadHeader(_))
        ));
    }

    #[test]
    fn invalid_json_in_a_well_formed_frame_is_a_parse_error_not_a_stream_error() {
        let mut decoder = FrameDecoder::new(Framing::Ndjson, &Limits::default());
        let mut buf = BytesMut::from(&b"{nope\n\n  \n{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n"[..]);
        let first = decoder.decode(&mut buf).expect("frames").expect("a frame");
        assert_eq!(
            first.parse().expect_err("parse error").kind(),
            ErrorCode::ParseError
        );
        let second = decoder.decode(&mut buf).expect("frames").expect("a frame");
        assert!(second.parse().is_ok());
    }

    // Found by the decode_lsp fuzz target: trickled in, a header block of exactly the limit
    // was refused before its terminator could arrive; in one read it was accepted.
    #[test]
    fn lsp_header_block_of_exactly_the_limit_is_accepted_however_it_arrives() {
        let limits = Limits {
            max_header_bytes: 32,
            ..Limits::default()
        };
        let header = format!("Content-Length: 2\r\nX-Pad: {}", "p".repeat(32 - 26));
        assert_eq!(header.len(), 32);
        let frame = format!("{header}\r\n\r\n{{}}");
        let mut decoder = FrameDecoder::new(Framing::Lsp, &limits);
        let mut buf = BytesMut::new();
        let mut frames = 0;
        for &b in frame.as_bytes() {
            buf.put_u8(b);
            while decoder
                .decode(&mut buf)
                .expect("within the limit")
                .is_some()
            {
                frames += 1;
            }
        }
        assert_eq!(frames, 1);
        let mut buf = BytesMut::from(format!("{header}X").as_bytes());
        buf.extend_from_slice(b"\r\n\r");
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::HeaderTooLarge { limit: 32 })
        ));
    }

    // Found by the decode_ndjson fuzz target: without serde_json's float_roundtrip, this
    // number was parsed one ulp off, so a worker would have received another number.
    #[test]
    fn numbers_cross_the_daemon_unchanged() {
        let number = format!("-320{}00", "9".repeat(74));
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":[{number}]}}"#) + "\n";
        let first =
            decode_all(Framing::Ndjson, body.as_bytes(), &Limits::default()).expect("decodes");
        let again = encode_message(Framing::Ndjson, &first[0]);
        let second = decode_all(Framing::Ndjson, &again, &Limits::default()).expect("decodes");
        assert_eq!(first, second);
    }

    // Found by the parse_message fuzz target: serde's derived field matching read integer
    // MessagePack keys as field indices, so `{0: "2.0", 1: 1, 4: 5}` parsed as a response.
    #[test]
    fn binary_bodies_with_integer_keys_are_invalid_not_members() {
        let mut keys = BTreeMap::new();
        keys.insert(0, rmpv::Value::from("2.0"));
        keys.insert(1, rmpv::Value::from(1));
        keys.insert(4, rmpv::Value::from(5));
        let map = rmpv::Value::Map(
            keys.into_iter()
                .map(|(k, v)| (rmpv::Value::from(k), v))
                .collect(),
        );
        let mut body = Vec::new();
        rmpv::encode::write_value(&mut body, &map).expect("encode");
        let payload = Payload {
            framing: Framing::Binary,
            body: body.into(),
        };
        assert!(
            matches!(payload.parse(), Ok(Incoming::Single(Err(_)))),
            "{:?}",
            payload.parse()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(framing in 0..3usize, bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let framing = [Framing::Ndjson, Framing::Lsp, Framing::Binary][framing];
            let mut decoder = FrameDecoder::new(framing, &Limits { max_frame_bytes: 256, max_header_bytes: 64, ..Limits::default() });
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(payload)) = decoder.decode(&mut buf) {
                let _ = payload.parse();
            }
        }

        #[test]
        fn string_params_round_trip(text in ".*", id in any::<i64>()) {
            for framing in [Framing::Ndjson, Framing::Lsp, Framing::Binary] {
                let message = request(id, json!({ "text": text }));
                let bytes = encode_message(framing, &message);
                let decoded = decode_all(framing, &bytes, &Limits::default()).expect("decodes");
                prop_assert_eq!(&decoded, &vec![message]);
            }
        }
    }
}
