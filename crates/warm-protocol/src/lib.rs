//! The warm wire protocol: JSON-RPC 2.0 messages and the framings that carry them.
//!
//! This crate knows nothing of sockets or processes. It turns bytes into [`Message`]s and back,
//! so that the daemon (async), the client (blocking std I/O) and the worker host share one
//! definition of what is on the wire.
//!
//! # Layout
//! - [`message`]: [`Message`], [`Request`], [`Notification`], [`Response`], [`RequestId`].
//! - [`error`]: [`ErrorObject`] and the [`ErrorCode`]s warm adds to JSON-RPC's own.
//! - [`framing`]: [`Framing`] (newline JSON, LSP headers, binary MessagePack) and its detection
//!   from the first byte of a connection.
//! - [`codec`]: [`FrameDecoder`] / [`encode`]: bytes to payloads and back, under [`Limits`].
//! - [`limits`]: [`Limits`], the bounds on everything a peer controls.
//! - [`methods`]: names and parameter shapes of the built-in `daemon/*` methods.
//! - [`msgpack`]: MessagePack bodies to JSON values (raw bytes become base64 strings).
//! - [`strict`]: JSON text to a value, refusing duplicate keys.

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod codec;
pub mod error;
// Public only to the fuzz targets, which check it against the general parser.
#[cfg(fuzzing)]
pub mod fast;
#[cfg(not(fuzzing))]
mod fast;
pub mod framing;
pub mod limits;
pub mod message;
pub mod methods;
pub mod msgpack;
pub mod strict;

pub use codec::{encode, encode_message, DecodeError, FrameDecoder, Payload};
pub use error::{ErrorCode, ErrorObject};
pub use framing::Framing;
pub use limits::Limits;
pub use message::{Incoming, Message, Notification, Request, RequestId, RequestRef, Response};

/// The protocol revision spoken by this crate, exchanged in `daemon/hello`.
pub const PROTOCOL_VERSION: u32 = 1;
