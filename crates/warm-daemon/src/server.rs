//! [`Daemon`]: the single-instance lock, the listening socket, the accept loop and the
//! graceful shutdown sequence.
//!
//! Shutdown order (never reordered): stop accepting and remove `sock` (new clients start a
//! fresh daemon instead of reaching this one), answer the connections already queued in the
//! kernel with -32003 (a socket passed by a service manager is neither removed nor emptied:
//! it is the manager's, and it starts the next daemon for what is queued), drain requests in flight within `drain_timeout`, stop the service,
//! remove `meta.json`/`health.json`, flush and close connections, and finally release the lock
//! (by dropping it, in the caller). A watchdog thread hard-exits if the drain overruns, so
//! the daemon can never linger accepting nothing and answering nothing.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use warm_protocol::PROTOCOL_VERSION;
use warm_runtime::meta::{process_start_ticks, write_atomic, Meta};
use warm_runtime::LockFile;

use crate::connection;
use crate::options::DaemonOptions;
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::state::Shared;

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("another daemon for {service} at {root} is already running (pid {pid})")]
    AlreadyRunning {
        service: String,
        root: String,
        pid: String,
    },
    #[error("a service manager listens on {socket} (socket activation): it starts this daemon on the first connection; connect instead of starting one")]
    SocketManaged { socket: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}

/// A daemon that holds its lock and listens, not yet serving.
pub struct Daemon {
    shared: Arc<Shared>,
    listener: UnixListener,
    /// Held for the daemon's whole life; the kernel releases it if the process dies.
    lock: LockFile,
    /// Device and inode of the socket file this daemon bound.
    socket_id: Option<(u64, u64)>,
}

/// How a daemon's run ended.
#[derive(Debug, Clone)]
pub struct ExitReport {
    pub reason: String,
    /// True when requests were still running at the drain deadline.
    pub drain_overran: bool,
}

impl Daemon {
    /// Takes the lock, replaces any stale socket, binds and writes `meta.json`.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`StartError::AlreadyRunning`] when another live daemon holds the lock; I/O errors
    /// creating the directory or binding.
    pub fn start(
        options: DaemonOptions,
        service: Arc<dyn Service>,
        shutdown: Shutdown,
    ) -> Result<Daemon, StartError> {
        let paths = options.paths.clone();
        paths
            .create_dir()
            .map_err(io_error(format!("cannot create {}", paths.dir.display())))?;
        let lock = LockFile::try_acquire(&paths.lock)
            .map_err(io_error(format!("cannot open {}", paths.lock.display())))?
            .ok_or_else(|| StartError::AlreadyRunning {
                service: options.identity.service.clone(),
                root: options.identity.root.display().to_string(),
                pid: Meta::read(&paths.meta)
                    .map_or_else(|| "unknown".into(), |m| m.pid.to_string()),
            })?;
        let shared = Arc::new(Shared::new(options, service, shutdown));
        let listener = match &shared.options.activated {
            Some(passed) => listen_on_passed(passed)?,
            None => bind(&shared)?,
        };
        // meta.json serves `warm list` and stale-state checks; clients reach the daemon
        // through the socket alone. A full disk must not keep a daemon from serving.
        if let Err(error) = write_meta(&shared) {
            tracing::warn!(%error, path = %paths.meta.display(), "cannot write meta.json; serving without it");
        }
        shared.events.record(
            "daemon.start",
            json!({
                "pid": shared.pid,
                "version": shared.options.version,
                "service": shared.options.identity.service,
                "root": shared.options.identity.root.display().to_string(),
                "ttl_secs": shared.options.ttl.as_secs(),
            }),
        );
        // The manager's socket is not the daemon's to guard or remove.
        let socket_id = match shared.options.activated {
            Some(_) => None,
            None => file_id(&paths.sock),
        };
        Ok(Daemon {
            shared,
            listener,
            lock,
            socket_id,
        })
    }

    /// Serves until shutdown (idle TTL, signal, `daemon/shutdown` or `shutdown.trigger`).
    ///
    /// # Cancellation safety
    /// Run it to its end: dropped, the daemon stops accepting without its shutdown sequence
    /// (no drain, the socket file left behind; the next client cleans it up).
    pub async fn run(self) -> ExitReport {
        let Daemon {
            shared,
            listener,
            lock,
            socket_id,
        } = self;
        shared.events.record(
            "daemon.ready",
            json!({ "pid": shared.pid, "activated": shared.options.activated.is_some() }),
        );
        crate::activation::notify_ready(&format!(
            "serving {} for {}",
            shared.options.identity.service,
            shared.options.identity.root.display()
        ));
        tracing::info!(
            pid = shared.pid,
            service = %shared.options.identity.service,
            root = %shared.options.identity.root.display(),
            socket = %shared.options.paths.sock.display(),
            "daemon ready"
        );
        let background = [
            tokio::spawn(idle_watcher(shared.clone())),
            tokio::spawn(health_writer(shared.clone())),
            tokio::spawn(signal_watcher(shared.clone())),
            tokio::spawn(socket_guard(shared.clone(), socket_id)),
        ];
        let listener = accept_loop(listener, &shared).await;
        let report = shut_down(listener, &shared, socket_id).await;
        for task in background {
            task.abort();
        }
        drop(lock);
        report
    }
}

/// Binds `sock`, replacing a stale socket file (we hold the lock, so no daemon serves it),
/// unless a service manager listens on it: that socket starts daemons of its own.
fn bind(shared: &Shared) -> Result<UnixListener, StartError> {
    let paths = &shared.options.paths;
    if warm_runtime::paths::socket_is_listening(&paths.sock) {
        return Err(StartError::SocketManaged {
            socket: paths.sock.display().to_string(),
        });
    }
    match std::fs::remove_file(&paths.sock) {
        Ok(()) => shared.events.record(
            "stale.cleaned",
            json!({ "files": ["sock"], "by": "daemon" }),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StartError::Io {
                context: format!("cannot remove stale socket {}", paths.sock.display()),
                source: e,
            })
        }
    }
    let std_listener = StdUnixListener::bind(&paths.sock).map_err(io_error(format!(
        "cannot listen on {}",
        paths.sock.display()
    )))?;
    std::fs::set_permissions(&paths.sock, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error("cannot restrict the socket's permissions"))?;
    register(std_listener)
}

/// Serves the socket a service manager passed (a duplicate of it: the manager keeps its own).
fn listen_on_passed(passed: &StdUnixListener) -> Result<UnixListener, StartError> {
    let std_listener = passed.try_clone().map_err(io_error(
        "cannot take the socket passed by the service manager",
    ))?;
    register(std_listener)
}

fn register(std_listener: StdUnixListener) -> Result<UnixListener, StartError> {
    std_listener
        .set_nonblocking(true)
        .map_err(io_error("cannot make the socket non-blocking"))?;
    UnixListener::from_std(std_listener).map_err(io_error("cannot register the socket"))
}

fn write_meta(shared: &Shared) -> io::Result<()> {
    let options = &shared.options;
    let meta = Meta {
        pid: shared.pid,
        version: options.version.clone(),
        protocol: PROTOCOL_VERSION,
        service: options.identity.service.clone(),
        root: options.identity.root.display().to_string(),
        started_at: shared.started_at,
        ttl_secs: options.ttl.as_secs(),
        start_ticks: process_start_ticks(shared.pid),
    };
    let text = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
    write_atomic(&options.paths.meta, &text)
}

/// Accepts until shutdown, then returns the listener so its backlog can be answered.
async fn accept_loop(listener: UnixListener, shared: &Arc<Shared>) -> UnixListener {
    let connection_limit = Arc::new(Semaphore::new(shared.options.limits.max_connections));
    let mut failures = AcceptFailures::new();
    loop {
        // Past the connection limit we stop accepting; further clients wait in the kernel's
        // queue rather than being refused.
        let permit = tokio::select! {
            permit = connection_limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return listener,
            },
            _ = shared.shutdown.triggered() => return listener,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.shutdown.triggered() => return listener,
        };
        match accepted {
            Ok((stream, _)) => {
                failures.resumed(shared);
                shared
                    .drain
                    .spawn_connection(connection::serve(stream, shared.clone(), permit));
            }
            Err(error) => {
                // Out of descriptors (EMFILE/ENFILE) or a transient error: pause briefly so
                // the loop does not spin, and keep serving the connections we have. The
                // waiting clients stay queued in the kernel until a descriptor frees up.
                failures.failed(&error, shared);
                drop(permit);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A run of failed accepts, reported once when it starts and once when it ends.
///
/// The usual cause is the open-file limit, and then even the event log cannot be opened:
/// one descriptor is kept in reserve and let go just long enough to write the event.
struct AcceptFailures {
    since: Option<std::time::Instant>,
    reserve: Option<std::fs::File>,
}

impl AcceptFailures {
    fn new() -> AcceptFailures {
        AcceptFailures {
            since: None,
            reserve: std::fs::File::open("/dev/null").ok(),
        }
    }

    fn failed(&mut self, error: &io::Error, shared: &Shared) {
        if self.since.is_some() {
            return;
        }
        self.since = Some(std::time::Instant::now());
        tracing::warn!(%error, "accept failed; new clients wait until it succeeds");
        let open = shared.stats.connections.load(Ordering::Relaxed);
        self.record(
            shared,
            "daemon.accept_failed",
            json!({ "error": error.to_string(), "open_connections": open }),
        );
    }

    fn resumed(&mut self, shared: &Shared) {
        let Some(since) = self.since.take() else {
            return;
        };
        tracing::info!("accepting again");
        let failed_for_ms = since.elapsed().as_millis() as u64;
        self.record(
            shared,
            "daemon.accept_resumed",
            json!({ "failed_for_ms": failed_for_ms }),
        );
    }

    fn record(&mut self, shared: &Shared, event: &str, fields: serde_json::Value) {
        self.reserve = None;
        shared.events.record(event, fields);
        self.reserve = std::fs::File::open("/dev/null").ok();
    }
}

async fn shut_down(
    listener: UnixListener,
    shared: &Arc<Shared>,
    socket_id: Option<(u64, u64)>,
) -> ExitReport {
    let reason = shared.shutdown.reason().unwrap_or_else(|| "unknown".into());
    tracing::info!(%reason, "shutting down");
    let paths = &shared.options.paths;
    // 1. Nobody new can reach us once the socket file is gone (ours only: a file that
    //    replaced it is not ours to remove).
    if socket_id.is_some() && file_id(&paths.sock) == socket_id {
        let _ = std::fs::remove_file(&paths.sock);
    }
    crate::activation::notify_stopping(&reason);
    // 2. Connections already queued in the kernel get served, and answered -32003; those in
    //    a service manager's socket stay there for the daemon it starts next.
    if shared.options.activated.is_none() {
        answer_backlog(listener, shared);
    }
    shared.events.record(
        "daemon.shutdown",
        json!({ "reason": reason, "in_flight": shared.activity.in_flight(), "pid": shared.pid }),
    );
    // 3. A drain that overruns ends in a hard exit, never a daemon that answers nobody.
    let drain_timeout = shared.options.drain_timeout;
    let service_stop_timeout = shared.options.service_stop_timeout;
    start_watchdog(
        drain_timeout
            .saturating_add(service_stop_timeout)
            .saturating_add(Duration::from_secs(5)),
    );
    // 4. Then the service's own resources (workers).
    let drain_overran = shared.drain_requests_and_stop_service().await;
    let _ = std::fs::remove_file(&paths.meta);
    let _ = std::fs::remove_file(&paths.health);
    // 5. Flush answers and close connections.
    shared.drain.connections().await;
    tracing::info!(%reason, drain_overran, "daemon stopped");
    ExitReport {
        reason,
        drain_overran,
    }
}

fn answer_backlog(listener: UnixListener, shared: &Arc<Shared>) {
    let Ok(std_listener) = listener.into_std() else {
        return;
    };
    // Non-blocking (set at bind): stops at the first WouldBlock, i.e. an empty queue.
    while let Ok((stream, _)) = std_listener.accept() {
        let Ok(()) = stream.set_nonblocking(true) else {
            continue;
        };
        let Ok(stream) = UnixStream::from_std(stream) else {
            continue;
        };
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned();
        if let Ok(permit) = permit {
            shared
                .drain
                .spawn_connection(connection::serve(stream, shared.clone(), permit));
        }
    }
}

fn start_watchdog(after: Duration) {
    let _ = std::thread::Builder::new()
        .name("warm-watchdog".into())
        .spawn(move || {
            std::thread::sleep(after);
            // Not eprintln: it panics when stderr (daemon.log) is on a full disk.
            let _ = writeln!(
                std::io::stderr(),
                "warm: graceful shutdown overran {after:?}; exiting hard"
            );
            std::process::exit(70);
        });
}

async fn idle_watcher(shared: Arc<Shared>) {
    shared.activity.idle_expired().await;
    let ttl = shared.activity.ttl().as_secs();
    shared.shutdown.trigger(format!("idle for {ttl}s"));
}

async fn health_writer(shared: Arc<Shared>) {
    // The first write waits one interval: right after `ready` the CPU belongs to the client
    // that is connecting.
    let period = shared.options.health_interval;
    let start = tokio::time::Instant::now()
        .checked_add(period)
        .unwrap_or_else(tokio::time::Instant::now);
    let mut interval = tokio::time::interval_at(start, period);
    loop {
        interval.tick().await;
        if let Ok(text) = serde_json::to_vec_pretty(&shared.status()) {
            let _ = write_atomic(&shared.options.paths.health, &text);
        }
        shared.events.rotate_if_large();
    }
}

/// How often the daemon checks that its socket file is still the one it bound.
const SOCKET_CHECK: Duration = Duration::from_secs(1);

/// A daemon whose socket file was deleted or replaced can be reached by nobody new, yet holds
/// the lock that stops a replacement from starting: it shuts down (gracefully, answering what
/// is in flight), so that the next client starts a daemon that can be reached.
async fn socket_guard(shared: Arc<Shared>, socket_id: Option<(u64, u64)>) {
    let Some(socket_id) = socket_id else {
        return;
    };
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now()
            .checked_add(SOCKET_CHECK)
            .unwrap_or_else(tokio::time::Instant::now),
        SOCKET_CHECK,
    );
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            // Shutdown removes the socket itself: that is no loss to report.
            _ = shared.shutdown.triggered() => return,
        }
        let now = file_id(&shared.options.paths.sock);
        if now != Some(socket_id) {
            let what = if now.is_none() { "deleted" } else { "replaced" };
            tracing::error!(
                "the socket file was {what}; shutting down so that a reachable daemon can start"
            );
            shared.events.record(
                "daemon.socket_lost",
                json!({ "pid": shared.pid, "socket": what }),
            );
            shared.shutdown.trigger(format!("socket file {what}"));
            return;
        }
    }
}

/// Device and inode of a path (not following a symlink), if it exists.
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

async fn signal_watcher(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    shared.shutdown.trigger(format!("signal: {name}"));
}
