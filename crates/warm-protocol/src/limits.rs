//! Bounds on everything a peer controls.

use std::time::Duration;

/// Limits applied to every connection. The defaults are those of DESIGN section 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Largest LSP header block accepted, in bytes.
    pub max_header_bytes: usize,
    /// How long a frame may stay partially received before the connection is closed.
    pub partial_frame_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Service requests in flight at once; past it, requests are answered busy.
    pub max_in_flight: usize,
    /// Requests in one JSON-RPC batch; a longer batch is refused whole (its answers alone
    /// could be many times the frame that carried it).
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 16 * 1024 * 1024,
            max_header_bytes: 8 * 1024,
            partial_frame_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_in_flight: 1024,
            max_batch: 1000,
        }
    }
}
