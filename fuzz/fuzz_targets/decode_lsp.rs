//! The lsp frame decoder, fed arbitrary streams in arbitrary reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warm_protocol::Framing;

fuzz_target!(|data: &[u8]| warm_fuzz::check_decoder(Framing::Lsp, data));
