//! One frame body, parsed as JSON (ndjson, LSP) or MessagePack (binary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warm_protocol::Payload;

fuzz_target!(|data: &[u8]| {
    if let Some((framing, body)) = warm_fuzz::pick_framing(data) {
        warm_fuzz::check_payload(&Payload {
            framing,
            body: bytes::Bytes::copy_from_slice(body),
        });
    }
});
