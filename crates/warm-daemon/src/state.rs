//! [`Shared`]: the state every connection task of one daemon reads and updates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;
use warm_protocol::methods::Status;
use warm_protocol::PROTOCOL_VERSION;
use warm_runtime::events::EventLog;
use warm_runtime::sync::Recover;

use crate::activity::Activity;
use crate::drain::Drain;
use crate::options::DaemonOptions;
use crate::service::Service;
use crate::shutdown::Shutdown;

/// Counters reported by `daemon/status` and `health.json`.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub busy: AtomicU64,
}

/// What every connection task of one daemon reads and updates. Its fields are the crate's
/// own; embedders and tests see it through the accessors below.
pub struct Shared {
    pub(crate) options: DaemonOptions,
    pub(crate) service: Arc<dyn Service>,
    pub(crate) activity: Activity,
    /// Permits for service requests in flight; a request that finds none is answered busy
    /// instead of queued, so a flood cannot grow memory without bound.
    pub(crate) in_flight_limit: Arc<Semaphore>,
    pub(crate) shutdown: Shutdown,
    /// The connections and service requests running, for the shutdown to wait on.
    pub(crate) drain: Drain,
    pub(crate) events: EventLog,
    pub(crate) stats: Stats,
    pub(crate) next_lease_id: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) started_at: u64,
    pub(crate) pid: u32,
    /// When the last `request.busy` event was written: under overload one event a second
    /// is enough, and writing one per refusal would make the overload worse.
    pub(crate) last_busy_event: Mutex<Option<Instant>>,
}

impl Shared {
    /// Idle TTL, requests in flight, leases.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The daemon's stop switch.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Connections, requests and busy answers so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The middle of every shutdown: waits for the service requests running (cancelling them
    /// at the drain deadline), then lets the service stop its own resources (workers), each
    /// within its deadline. True when the drain deadline passed.
    pub async fn drain_requests_and_stop_service(&self) -> bool {
        let overran = self
            .drain
            .requests(self.options.drain_timeout, || {
                tracing::warn!(
                    in_flight = self.activity.in_flight(),
                    "drain deadline passed; cancelling what is left"
                );
            })
            .await;
        let _ =
            tokio::time::timeout(self.options.service_stop_timeout, self.service.shutdown()).await;
        overran
    }

    pub fn new(options: DaemonOptions, service: Arc<dyn Service>, shutdown: Shutdown) -> Shared {
        Shared {
            activity: Activity::new(options.ttl),
            in_flight_limit: Arc::new(Semaphore::new(options.limits.max_in_flight)),
            drain: Drain::new(),
            events: EventLog::new(&options.paths.events),
            stats: Stats::default(),
            next_lease_id: AtomicU64::new(1),
            started: Instant::now(),
            started_at: warm_runtime::events::unix_time_secs(),
            pid: std::process::id(),
            last_busy_event: Mutex::new(None),
            options,
            service,
            shutdown,
        }
    }

    pub fn status(&self) -> Status {
        let options = &self.options;
        Status {
            service: options.identity.service.clone(),
            root: options.identity.root.display().to_string(),
            pid: self.pid,
            socket: options.paths.sock.display().to_string(),
            version: options.version.clone(),
            protocol: PROTOCOL_VERSION,
            started_at: self.started_at,
            uptime_secs: self.started.elapsed().as_secs(),
            ttl_secs: self.activity.ttl().as_secs(),
            ttl_remaining_secs: self.activity.remaining().map(|d| d.as_secs()),
            connections: self.stats.connections.load(Ordering::Relaxed),
            in_flight: self.activity.in_flight(),
            requests: self.stats.requests.load(Ordering::Relaxed),
            busy: self.stats.busy.load(Ordering::Relaxed),
            leases: self.activity.leases(),
            max_in_flight: options.limits.max_in_flight as u64,
            max_connections: options.limits.max_connections as u64,
            workers: self.service.workers(),
        }
    }

    /// Counts a busy refusal, writing at most one event a second.
    pub fn record_busy(&self) {
        let total = self
            .stats
            .busy
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let mut last = self.last_busy_event.recover();
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            drop(last);
            self.events.record(
                "request.busy",
                json!({ "busy_total": total, "max_in_flight": self.options.limits.max_in_flight }),
            );
        }
    }
}
