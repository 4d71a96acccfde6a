//! [`Client`]: find or start the daemon of one identity, say hello, call, and recover.
//!
//! Recovery, in order of what can go wrong:
//! - no daemon listening: take `spawn.lock`, look again, start one, wait for `ready`;
//! - a daemon of another version or configuration: ask it to stop, wait until its lock is
//!   released, start ours;
//! - busy (-32000): wait (the daemon's `retry_after_ms`, at least the next retry delay) and
//!   resend on the same connection;
//! - shutting down (-32003) or a request that could not be written: the request never ran, so
//!   reconnect (starting a new daemon if needed) and resend;
//! - connection lost after the request was written: report [`Error::ConnectionLost`], since
//!   resending could run it twice.
//!
//! A call starts a daemon at most `1 + max_restarts` times, then reports
//! [`Error::Unavailable`] so the caller can fall back.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warm_protocol::methods::{self, HelloParams, HelloResult, ProgressParams};
use warm_protocol::{ErrorCode, ErrorObject, Framing, PROTOCOL_VERSION};

use crate::connection::{Connection, RequestFailure};
use crate::error::Error;
use crate::spawn::{spawn_daemon, SpawnCommand};
use warm_runtime::{ensure_runtime_dir, ClientSettings, DaemonPaths, EventLog, Identity, LockFile};

/// Everything a client needs to know to reach (or start) one daemon.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    pub identity: Identity,
    pub runtime_dir: PathBuf,
    /// How to start the daemon when none runs.
    pub spawn: SpawnCommand,
    /// The version this client expects the daemon to run; another version is replaced.
    pub version: String,
    /// Hash of the resolved service configuration; a daemon with another one is replaced.
    pub config_hash: Option<String>,
    pub settings: ClientSettings,
    pub framing: Framing,
}

/// How a stop request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped { pid: u32 },
    NotRunning,
}

/// A connection to one daemon that starts it on demand and reconnects after it restarts.
#[derive(Debug)]
pub struct Client {
    spec: DaemonSpec,
    paths: DaemonPaths,
    events: EventLog,
    connection: Option<Connection>,
    daemon: Option<HelloResult>,
    timeout: Option<Duration>,
}

impl Client {
    /// Prepares a client; connects lazily.
    ///
    /// # Errors
    /// An unsafe runtime directory or a socket path that is too long.
    pub fn new(spec: DaemonSpec) -> Result<Client, Error> {
        ensure_runtime_dir(&spec.runtime_dir)?;
        let paths = DaemonPaths::new(&spec.runtime_dir, &spec.identity)?;
        Ok(Client {
            events: EventLog::new(&paths.events),
            paths,
            spec,
            connection: None,
            daemon: None,
            timeout: None,
        })
    }

    pub fn paths(&self) -> &DaemonPaths {
        &self.paths
    }

    pub fn spec(&self) -> &DaemonSpec {
        &self.spec
    }

    /// What the daemon said in `daemon/hello`, once connected.
    pub fn daemon(&self) -> Option<&HelloResult> {
        self.daemon.as_ref()
    }

    /// Bounds how long a call waits for its response (`None`: no bound).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
        if let Some(connection) = &self.connection {
            let _ = connection.set_timeout(timeout);
        }
    }

    /// Connects to a running daemon without starting one. `Ok(false)`: none is running.
    ///
    /// # Errors
    /// I/O or protocol failures other than "nothing listens".
    pub fn connect_existing(&mut self) -> Result<bool, Error> {
        if self.connection.is_some() {
            return Ok(true);
        }
        match self.open_and_greet(None, &mut |_| {}) {
            Ok(_) => Ok(true),
            Err(Greet::NoDaemon) => Ok(false),
            Err(Greet::Mismatch(_)) => Ok(true),
            Err(Greet::Failed(e)) => Err(e),
        }
    }

    /// Makes sure a daemon of the right version runs and this client is connected to it.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it cannot be started.
    pub fn ensure_running(&mut self) -> Result<(), Error> {
        let mut starts = 0;
        self.ensure_connected(&mut starts, None, &mut |_| {})
            .map(|_| ())
    }

    /// Calls `method` with `params` and returns its result.
    ///
    /// # Errors
    /// [`Error::Rpc`] when the method returned an error; other variants when no answer could
    /// be had (see the module docs for what is retried).
    pub fn call(&mut self, method: &str, params: Option<Value>) -> Result<Value, Error> {
        self.call_with_progress(method, params.as_ref(), &mut |_| {})
    }

    /// Like [`Client::call`], passing `$/progress` notifications to `on_progress`. The params
    /// are borrowed down to the socket write: retries and a caller's fallback cost no copy.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn call_with_progress(
        &mut self,
        method: &str,
        params: Option<&Value>,
        on_progress: &mut dyn FnMut(ProgressParams),
    ) -> Result<Value, Error> {
        let mut starts = 0;
        let mut retries = 0usize;
        let busy_deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // On a fresh connection the request rides along with the hello (one round trip).
            let first = FirstRequest { method, params };
            let outcome = match self.ensure_connected(&mut starts, Some(first), on_progress)? {
                Some(outcome) => outcome,
                None => match self.connection.as_mut() {
                    Some(connection) => connection.request(method, params, on_progress),
                    None => continue,
                },
            };
            match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if error.kind() == ErrorCode::Busy => {
                    // Busy means the request was refused, not run: waiting and resending is
                    // always safe. Keep trying until the deadline, with the configured delays
                    // (the last one repeating) or the daemon's hint, whichever is longer.
                    if Instant::now() >= busy_deadline {
                        return Err(Error::Rpc(error));
                    }
                    let delay = self.retry_delay(retries);
                    let hint = Duration::from_millis(error.retry_after_ms().unwrap_or(0));
                    retries += 1;
                    std::thread::sleep(jitter(delay.max(hint)));
                }
                Ok(Err(error)) if error.kind() == ErrorCode::ShuttingDown => {
                    self.disconnect();
                    self.wait_for_exit()?;
                }
                Ok(Err(error)) => return Err(Error::Rpc(error)),
                Err(RequestFailure::NotSent(_)) => self.disconnect(),
                Err(RequestFailure::Lost(e)) => {
                    self.disconnect();
                    return Err(Error::ConnectionLost(e.to_string()));
                }
                Err(RequestFailure::TimedOut) => {
                    self.disconnect();
                    return Err(Error::Timeout(format!(
                        "no answer to {method} within {:.1}s",
                        self.timeout.unwrap_or_default().as_secs_f64()
                    )));
                }
                Err(RequestFailure::Protocol(message)) => {
                    self.disconnect();
                    return Err(Error::Protocol(message));
                }
            }
        }
    }

    /// Asks the running daemon to stop and waits until it has exited.
    ///
    /// # Errors
    /// When it does not exit within the lock timeout.
    pub fn stop(&mut self, reason: &str) -> Result<StopOutcome, Error> {
        if !self.connect_existing()? {
            return Ok(StopOutcome::NotRunning);
        }
        let pid = self.daemon.as_ref().map(|d| d.pid).unwrap_or(0);
        let params = json!({ "reason": reason });
        if let Some(connection) = self.connection.as_mut() {
            // The daemon may close the connection right after answering; either way it stops.
            let _ = connection.request(methods::SHUTDOWN, Some(&params), &mut |_| {});
        }
        self.disconnect();
        // The process, not the lock: a client may start the next daemon, which takes the
        // lock, as soon as this one lets it go. "Stopped" means this one is gone.
        if pid == 0 {
            self.wait_for_exit()?;
        } else if !warm_runtime::meta::wait_process_exit(
            pid,
            Instant::now() + self.spec.settings.lock_timeout,
        ) {
            return Err(unavailable(format!(
                "the daemon (pid {pid}) did not exit within {}s",
                self.spec.settings.lock_timeout.as_secs()
            )));
        }
        Ok(StopOutcome::Stopped { pid })
    }

    /// Drops the connection (releasing any lease it held).
    pub fn disconnect(&mut self) {
        self.connection = None;
        self.daemon = None;
    }

    fn retry_delay(&self, attempt: usize) -> Duration {
        let delays = &self.spec.settings.retry_delays;
        delays
            .get(attempt)
            .or(delays.last())
            .copied()
            .unwrap_or(Duration::from_millis(100))
    }

    /// Connects (starting the daemon if needed) unless already connected. With `first`, a
    /// fresh connection carries that request along with its hello, and its outcome is
    /// returned; `None` means connected, request not sent.
    fn ensure_connected(
        &mut self,
        starts: &mut u32,
        first: Option<FirstRequest<'_>>,
        on_progress: &mut dyn FnMut(ProgressParams),
    ) -> Result<Option<Outcome>, Error> {
        let mut connect_failures = 0usize;
        while self.connection.is_none() {
            match self.open_and_greet(first, on_progress) {
                Ok(outcome) => return Ok(outcome),
                Err(Greet::NoDaemon) => {}
                Err(Greet::Mismatch(why)) => self.replace_daemon(&why)?,
                // Not retried: a request sent with the hello may have run (resending could
                // run it twice), and a daemon that let the hello time out is frozen, so each
                // retry would only wait out the timeout again.
                Err(Greet::Failed(e @ Error::ConnectionLost(_))) => return Err(e),
                // The caller's own deadline, shorter than a daemon's time to answer hello, ran
                // out: a timeout, as asked (a daemon that lets its full time pass is frozen).
                Err(Greet::Failed(e @ Error::Timeout(_)))
                    if self
                        .timeout
                        .is_some_and(|t| t < self.spec.settings.ready_timeout) =>
                {
                    return Err(e)
                }
                Err(Greet::Failed(e @ Error::Timeout(_))) => {
                    return Err(unavailable(format!("cannot talk to the daemon: {e}")))
                }
                Err(Greet::Failed(e)) => {
                    // A daemon that is there but failing (reset connections, a full accept
                    // queue): back off and try again, within the retry delays.
                    if connect_failures >= self.spec.settings.retry_delays.len() {
                        return Err(unavailable(format!("cannot talk to the daemon: {e}")));
                    }
                    std::thread::sleep(jitter(self.retry_delay(connect_failures)));
                    connect_failures += 1;
                    continue;
                }
            }
            if *starts > self.spec.settings.max_restarts {
                return Err(unavailable(format!(
                    "the daemon was started {starts} times during this call and is still not answering"
                )));
            }
            *starts += 1;
            self.start_daemon()?;
        }
        Ok(None)
    }

    /// Connects and sends `daemon/hello`, followed in the same write by `first` if given.
    ///
    /// Pipelining is safe because a daemon never runs a service request on a connection
    /// whose hello named another version or configuration: it answers -32003 instead, and
    /// the request is resent to the replacement daemon.
    fn open_and_greet(
        &mut self,
        first: Option<FirstRequest<'_>>,
        on_progress: &mut dyn FnMut(ProgressParams),
    ) -> Result<Option<Outcome>, Greet> {
        let mut connection = match Connection::connect(&self.paths.sock, self.spec.framing) {
            Ok(c) => c,
            Err(e) if is_nothing_listening(&e) => return Err(Greet::NoDaemon),
            Err(e) => return Err(Greet::Failed(Error::io("connecting to the daemon", e))),
        };
        // A daemon answers hello at once, from its own thread, however busy its service is;
        // one that does not is frozen (stopped, swapping) and must not hang the caller.
        let hello_timeout = self.timeout.map_or(self.spec.settings.ready_timeout, |t| {
            t.min(self.spec.settings.ready_timeout)
        });
        let _ = connection.set_timeout(Some(hello_timeout));
        let hello = HelloParams {
            version: self.spec.version.clone(),
            protocol: PROTOCOL_VERSION,
            config_hash: self.spec.config_hash.clone(),
        };
        let hello = serde_json::to_value(hello).ok();
        let hello_id = connection
            .send_request(methods::HELLO, hello.as_ref())
            .map_err(|_| Greet::NoDaemon)?;
        let first_id = match first {
            Some(first) => Some(
                connection
                    .send_request(first.method, first.params)
                    .map_err(|_| Greet::NoDaemon)?,
            ),
            None => None,
        };
        let result = match connection.read_response(&hello_id, &mut |_| {}) {
            Ok(Ok(result)) => result,
            // A daemon on its way out: treat as absent; the start path waits for it to exit.
            // (A pipelined request got -32003 too: it did not run.)
            Ok(Err(e)) if e.kind() == ErrorCode::ShuttingDown => return Err(Greet::NoDaemon),
            Ok(Err(e)) => return Err(Greet::Failed(Error::Rpc(e))),
            Err(RequestFailure::NotSent(_)) => return Err(Greet::NoDaemon),
            Err(RequestFailure::Lost(e)) if first_id.is_some() => {
                // The request went out with the hello and may have run.
                return Err(Greet::Failed(Error::ConnectionLost(e.to_string())));
            }
            Err(RequestFailure::Lost(_)) => return Err(Greet::NoDaemon),
            Err(RequestFailure::TimedOut) => {
                return Err(Greet::Failed(Error::Timeout(format!(
                    "no answer to daemon/hello within {:.1}s (is the daemon stopped or frozen? `warm status` says which pid)",
                    hello_timeout.as_secs_f64()
                ))))
            }
            Err(RequestFailure::Protocol(m)) => return Err(Greet::Failed(Error::Protocol(m))),
        };
        let _ = connection.set_timeout(self.timeout);
        let daemon: HelloResult = serde_json::from_value(result)
            .map_err(|e| Greet::Failed(Error::Protocol(format!("bad daemon/hello result: {e}"))))?;
        let mismatch = self.mismatch(&daemon);
        self.connection = Some(connection);
        self.daemon = Some(daemon);
        if let Some(why) = mismatch {
            return Err(Greet::Mismatch(why));
        }
        Ok(match (first_id, self.connection.as_mut()) {
            (Some(id), Some(connection)) => Some(connection.read_response(&id, on_progress)),
            _ => None,
        })
    }

    /// Why the daemon that said hello must be replaced, if it must.
    fn mismatch(&self, daemon: &HelloResult) -> Option<String> {
        if daemon.version != self.spec.version {
            Some(format!(
                "daemon runs warm {}, this client is {}",
                daemon.version, self.spec.version
            ))
        } else if daemon.config_hash.is_some()
            && self.spec.config_hash.is_some()
            && daemon.config_hash != self.spec.config_hash
        {
            Some("the service configuration changed".to_owned())
        } else {
            None
        }
    }

    /// Stops a daemon of the wrong version or configuration so that ours can start.
    fn replace_daemon(&mut self, why: &str) -> Result<(), Error> {
        let params = json!({ "reason": format!("replaced: {why}") });
        if let Some(connection) = self.connection.as_mut() {
            let _ = connection.request(methods::SHUTDOWN, Some(&params), &mut |_| {});
        }
        self.disconnect();
        self.wait_for_exit()
    }

    /// Waits until no daemon holds the identity's lock.
    fn wait_for_exit(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.spec.settings.lock_timeout;
        match LockFile::acquire_until(&self.paths.lock, deadline) {
            Ok(Some(_released_at_once)) => Ok(()),
            Ok(None) => Err(unavailable(format!(
                "the old daemon did not exit within {}s",
                self.spec.settings.lock_timeout.as_secs()
            ))),
            Err(e) => Err(Error::io("waiting for the daemon to exit", e)),
        }
    }

    /// Starts a daemon under `spawn.lock`, unless another client already did (in which case
    /// this client is left connected to it).
    fn start_daemon(&mut self) -> Result<(), Error> {
        self.paths
            .create_dir()
            .map_err(|e| unavailable(format!("cannot create {}: {e}", self.paths.dir.display())))?;
        let deadline = Instant::now() + self.spec.settings.lock_timeout;
        let _spawn_lock = LockFile::acquire_until(&self.paths.spawn_lock, deadline)
            .map_err(|e| Error::io("taking spawn.lock", e))?
            .ok_or_else(|| {
                unavailable("another client has been starting the daemon for too long")
            })?;
        // Another client may have started it while we waited for spawn.lock.
        match self.open_and_greet(None, &mut |_| {}) {
            Ok(_) => return Ok(()),
            Err(Greet::Mismatch(why)) => self.replace_daemon(&why)?,
            Err(Greet::NoDaemon) => {}
            Err(Greet::Failed(e)) => return Err(e),
        }
        // Nobody answers. A daemon still holding the lock is draining or being started by
        // hand; wait for it to go (or to answer) before starting ours.
        loop {
            match LockFile::try_acquire(&self.paths.lock) {
                // A service manager listens on the socket (socket activation): it starts the
                // daemon, and its socket file is no dead daemon's to clean up.
                Ok(Some(_lock)) if warm_runtime::paths::socket_is_listening(&self.paths.sock) => {}
                Ok(Some(lock)) => {
                    self.clean_stale();
                    drop(lock);
                    break;
                }
                Ok(None) => {}
                Err(e) => return Err(Error::io("checking the daemon lock", e)),
            }
            if self.open_and_greet(None, &mut |_| {}).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(unavailable(
                    "a daemon holds the lock but does not answer; see `warm logs`",
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The daemon must look for its files where we look for its socket.
        let mut spawn = self.spec.spawn.clone();
        spawn.env.push((
            "WARM_RUNTIME_DIR".into(),
            self.spec.runtime_dir.clone().into_os_string(),
        ));
        let pid = spawn_daemon(
            &spawn,
            &self.paths,
            &self.spec.identity.root,
            self.spec.settings.ready_timeout,
        )?;
        self.events.record(
            "client.spawned",
            json!({ "pid": pid, "client_pid": std::process::id() }),
        );
        // The caller connects next, sending its request along with the hello.
        Ok(())
    }

    /// Removes what a dead daemon left (we hold its lock, so nobody else owns these files).
    fn clean_stale(&self) {
        let mut cleaned = Vec::new();
        for path in [&self.paths.sock, &self.paths.meta, &self.paths.health] {
            if std::fs::remove_file(path).is_ok() {
                cleaned.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
            }
        }
        if !cleaned.is_empty() {
            self.events.record(
                "stale.cleaned",
                json!({ "files": cleaned, "by": "client", "client_pid": std::process::id() }),
            );
        }
    }
}

/// The outcome of one request: its result or error object, or why none came.
type Outcome = Result<Result<Value, ErrorObject>, RequestFailure>;

/// A request to send with the hello of a fresh connection.
#[derive(Clone, Copy)]
struct FirstRequest<'a> {
    method: &'a str,
    params: Option<&'a Value>,
}

enum Greet {
    NoDaemon,
    Mismatch(String),
    Failed(Error),
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::Unavailable {
        reason: reason.into(),
        log_tail: None,
    }
}

/// Connect errors that mean "no daemon listens here" (as opposed to a broken daemon).
fn is_nothing_listening(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Spreads `delay` by ±20% so that clients refused together do not come back together.
#[allow(clippy::disallowed_methods)] // the clock's nanoseconds seed the jitter; no timing reads it
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let seed = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    let fraction = f64::from(seed % 1000) / 1000.0;
    delay.mul_f64(0.8 + 0.4 * fraction)
}
