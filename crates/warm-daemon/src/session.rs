//! What the daemon keeps for each client connection, apart from its socket: the requests it
//! has in flight and the leases it holds ([`ConnectionState`]), and the answers queued for it
//! ([`Outgoing`]). Shared by the connection task, the dispatcher and the built-in methods;
//! depends on none of them.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use warm_protocol::{Message, RequestId};

/// An answer or notification for the client: one message or a batch answer.
#[derive(Debug)]
pub enum Outgoing {
    One(Message),
    Batch(Vec<Message>),
}

/// Per-connection state shared with the tasks running its requests.
#[derive(Debug, Default)]
pub struct ConnectionState {
    /// Cancellation handles of this connection's requests in flight, by client id.
    pub in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    /// Ids of the leases this connection holds.
    pub leases: Mutex<Vec<u64>>,
    /// Set when the client's hello named another version or configuration: the client will
    /// replace this daemon, so its service requests are refused (-32003, "did not run") rather
    /// than run by the wrong daemon. Built-in methods still answer.
    pub refuse_service: AtomicBool,
}
