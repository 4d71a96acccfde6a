//! [`MemoryDaemon`]: a daemon without a socket, a lock or a runtime directory.
//!
//! Its connections are in-memory pipes served by the very code that serves socket
//! connections (framing detection, dispatch, backpressure, cancellation, leases), and its
//! shutdown drains them as a daemon's does. What it leaves out is what only a process needs:
//! the single-instance lock, the socket file, `meta.json`, `health.json`, the idle TTL. For
//! fast tests of the runtime and of any [`Service`], in the manner of rust-analyzer's
//! `Connection::memory()`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use warm_daemon::{echo::EchoService, memory::MemoryDaemon};
//!
//! let daemon = MemoryDaemon::new(Arc::new(EchoService), MemoryDaemon::options());
//! let (reader, mut writer) = tokio::io::split(daemon.connect());
//! writer.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n").await.unwrap();
//! let mut line = String::new();
//! BufReader::new(reader).read_line(&mut line).await.unwrap();
//! assert_eq!(line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[1]}\n");
//! daemon.shut_down("done").await;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::DuplexStream;
use warm_runtime::{DaemonPaths, Identity};

use crate::connection;
use crate::options::DaemonOptions;
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::state::Shared;

/// How many bytes each direction of a connection buffers before its writer waits, as a
/// socket buffer would.
const PIPE_BYTES: usize = 64 * 1024;

pub struct MemoryDaemon {
    shared: Arc<Shared>,
}

impl MemoryDaemon {
    /// A daemon serving `service` with `options` (start from [`MemoryDaemon::options`]).
    pub fn new(service: Arc<dyn Service>, options: DaemonOptions) -> MemoryDaemon {
        MemoryDaemon {
            shared: Arc::new(Shared::new(options, service, Shutdown::new())),
        }
    }

    /// The default options of a daemon, with no files: its identity is the `memory` service
    /// of `/`, and its events go to `/dev/null`.
    pub fn options() -> DaemonOptions {
        // Constants: a plain service name, a root that exists, a short directory path.
        let identity = Identity::new("memory", Path::new("/")).expect("the identity of /");
        let mut paths =
            DaemonPaths::new(Path::new("/nonexistent"), &identity).expect("a short path");
        paths.events = PathBuf::from("/dev/null");
        DaemonOptions::new(identity, paths, env!("CARGO_PKG_VERSION"))
    }

    /// Opens a connection: the client's end of an in-memory pipe. Must be called within a
    /// tokio runtime, which runs the daemon's side.
    pub fn connect(&self) -> DuplexStream {
        let (client, daemon) = tokio::io::duplex(PIPE_BYTES);
        let (reader, writer) = tokio::io::split(daemon);
        self.shared.drain.spawn_connection(connection::serve_stream(
            reader,
            writer,
            self.shared.clone(),
        ));
        client
    }

    /// The state the connections share: `status()`, the activity, the options.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops as a daemon does: new requests are refused (-32003), running ones drained (and
    /// cancelled at the drain deadline), the service stopped, then every connection writes its
    /// last answers and closes. True when the drain deadline passed.
    pub async fn shut_down(&self, reason: &str) -> bool {
        self.shared.shutdown.trigger(reason);
        let overran = self.shared.drain_requests_and_stop_service().await;
        self.shared.drain.connections().await;
        overran
    }
}
