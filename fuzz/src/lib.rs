//! What must hold for any bytes a peer can send, shared by the fuzz targets.
//!
//! Each target feeds libFuzzer's input to one of these checks. Beyond "no panic, no hang, no
//! unbounded allocation" (which libFuzzer watches for itself), they assert properties that a
//! crash-only fuzzer would miss:
//! - a decoder yields the same frames however the stream is split across reads;
//! - no frame is larger than the limit;
//! - the fast message parser agrees with the general one on everything it accepts;
//! - a parsed message, encoded again, decodes to the same message.

use bytes::{Bytes, BytesMut};
use warm_protocol::{
    encode, DecodeError, FrameDecoder, Framing, Incoming, Limits, Message, Payload,
};

/// Small limits, so that inputs of a few kilobytes reach the over-limit paths.
pub fn limits() -> Limits {
    Limits {
        max_frame_bytes: 4096,
        max_header_bytes: 256,
        ..Limits::default()
    }
}

/// How a stream decoded: its frames, and the error that ended it or the bytes left over.
#[derive(Debug, PartialEq)]
struct Decoded {
    frames: Vec<Bytes>,
    ended_by: Option<std::mem::Discriminant<DecodeError>>,
    left_over: Option<BytesMut>,
}

/// Decodes `data` as a stream in `framing`, once in one read and once in the reads its first
/// byte chooses, checks both agree, and checks every frame it yields.
pub fn check_decoder(framing: Framing, data: &[u8]) {
    let Some((&split_seed, stream)) = data.split_first() else {
        return;
    };
    let whole = decode(framing, [stream]);
    let chunked = decode(framing, chunks(stream, split_seed));
    assert_eq!(whole, chunked, "splitting the stream changed what it decodes to");
    for body in &whole.frames {
        assert!(body.len() <= limits().max_frame_bytes, "frame over the limit");
        check_payload(&Payload {
            framing,
            body: body.clone(),
        });
    }
}

/// Splits `stream` into reads of 1 to 16 bytes, their lengths drawn from `seed` and the
/// stream itself, so that every framing boundary gets to fall inside a read.
fn chunks(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    let mut state = u32::from(seed) | 1;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = (((state >> 16) % 16) as usize + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        out.push(chunk);
        rest = tail;
    }
    out
}

fn decode<'a>(framing: Framing, reads: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut decoder = FrameDecoder::new(framing, &limits());
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => frames.push(payload.body),
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        frames,
                        ended_by: Some(std::mem::discriminant(&error)),
                        left_over: None,
                    }
                }
            }
        }
    }
    Decoded {
        frames,
        ended_by: None,
        left_over: Some(buf),
    }
}

/// Parses one frame body; what parses must survive an encode/decode round trip unchanged.
pub fn check_payload(payload: &Payload) {
    let parsed = payload.parse();
    check_fast_path(payload);
    let Ok(Incoming::Single(Ok(message))) = parsed else {
        return;
    };
    let mut encoded = BytesMut::new();
    encode(payload.framing, &message, &mut encoded);
    let mut decoder = FrameDecoder::new(payload.framing, &Limits::default());
    let again = decoder
        .decode(&mut encoded)
        .expect("our own encoding decodes")
        .expect("our own encoding is one whole frame");
    assert!(encoded.is_empty(), "our own encoding is exactly one frame");
    match again.parse() {
        Ok(Incoming::Single(Ok(reparsed))) => {
            assert_eq!(message, reparsed, "the message changed in a round trip")
        }
        other => panic!("{message:?} encoded to something that parses as {other:?}"),
    }
}

/// The fast parser may decline (the general path then answers), but what it accepts must be
/// exactly what the general path makes of the same bytes.
fn check_fast_path(payload: &Payload) {
    use warm_protocol::fast;
    if payload.framing == Framing::Binary {
        return;
    }
    let Some(fast) = fast::parse_json(&payload.body) else {
        return;
    };
    let general = serde_json::from_slice(&payload.body)
        .ok()
        .map(Incoming::from_value);
    let Some(Incoming::Single(Ok(general))) = general else {
        panic!("the fast path accepted {fast:?}; the general path made {general:?}");
    };
    assert_eq!(fast, general, "the fast and general parsers disagree");
}

/// The framing the fuzz input's first byte selects, and the rest of the input.
pub fn pick_framing(data: &[u8]) -> Option<(Framing, &[u8])> {
    let (&selector, rest) = data.split_first()?;
    let framing = [Framing::Ndjson, Framing::Lsp, Framing::Binary][usize::from(selector % 3)];
    Some((framing, rest))
}

/// Every byte a daemon writes back must be well-formed frames of messages, whatever it was sent.
pub fn check_answers(framing: Framing, written: &[u8]) {
    let mut decoder = FrameDecoder::new(framing, &Limits::default());
    let mut buf = BytesMut::from(written);
    while let Some(payload) = decoder.decode(&mut buf).expect("the daemon writes valid frames") {
        match payload.parse() {
            Ok(Incoming::Single(Ok(Message::Response(_) | Message::Notification(_)))) => {}
            Ok(Incoming::Batch(items)) => {
                assert!(items.iter().all(|item| matches!(item, Ok(Message::Response(_)))))
            }
            other => panic!("the daemon wrote {other:?}"),
        }
    }
    assert!(buf.is_empty(), "the daemon's output ends inside a frame");
}
