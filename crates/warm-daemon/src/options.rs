//! [`DaemonOptions`]: everything a daemon is told before it starts.

use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::Duration;

use warm_protocol::Limits;
use warm_runtime::{DaemonPaths, Identity};

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub identity: Identity,
    pub paths: DaemonPaths,
    /// Idle TTL; zero means never exit for idleness.
    pub ttl: Duration,
    pub limits: Limits,
    /// Version reported in `daemon/hello` (clients replace a daemon of another version).
    pub version: String,
    /// Hash of the resolved service configuration (clients replace a daemon whose hash
    /// differs from theirs).
    pub config_hash: Option<String>,
    /// How long graceful shutdown waits for requests in flight before cancelling them.
    pub drain_timeout: Duration,
    /// How long the service may take to stop (workers run their own staged shutdown,
    /// bounded by its deadlines); the watchdog allows for both.
    pub service_stop_timeout: Duration,
    /// How often `health.json` is rewritten.
    pub health_interval: Duration,
    /// A listening socket passed by a service manager ([`activation`](crate::activation)):
    /// served instead of binding `sock`, and left to the manager when the daemon exits.
    pub activated: Option<Arc<UnixListener>>,
}

impl DaemonOptions {
    /// Options with the defaults of DESIGN (10 min TTL, default limits).
    pub fn new(
        identity: Identity,
        paths: DaemonPaths,
        version: impl Into<String>,
    ) -> DaemonOptions {
        DaemonOptions {
            identity,
            paths,
            ttl: Duration::from_secs(600),
            limits: Limits::default(),
            version: version.into(),
            config_hash: None,
            drain_timeout: Duration::from_secs(10),
            service_stop_timeout: Duration::from_secs(20),
            health_interval: Duration::from_secs(2),
            activated: None,
        }
    }
}
