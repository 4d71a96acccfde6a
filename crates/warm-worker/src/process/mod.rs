//! [`WorkerProcess`]: one running worker — its stdio framing, the requests written to it,
//! and the shutdown sequence.
//!
//! Four tasks serve a worker, none of them blocked in a read that nothing can interrupt:
//! a writer (messages to stdin), a reader (frames from stdout), a stderr reader (lines to the
//! daemon log, the last few kept for error reports), and a reaper that alone owns the child:
//! it waits for the exit and is the only one to send signals, so a signal can never reach a
//! reaped pid that the system has given to another process.
//!
//! - `requests`: what warm sends the worker (a client's requests, the host's own).
//! - `incoming`: what the worker sends back, matched to where it belongs.
//! - `outstanding`: a request from registration to its end, however it ends.
//! - `io`: the four tasks; `stop`: the shutdown sequence.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use warm_daemon::Progress;
use warm_protocol::{ErrorCode, ErrorObject, Framing, Limits, Message, Notification};
use warm_runtime::sync::Recover;
use warm_runtime::EventLog;

use crate::config::{ShutdownDeadlines, WorkerConfig};
use crate::dialect::Dialect;

mod incoming;
mod io;
mod outstanding;
mod requests;
mod stop;

use io::{read_loop, reap, stderr_loop, write_loop};

/// Lines of a worker's stderr kept for error reports.
const STDERR_TAIL_LINES: usize = 20;

/// How a worker process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {signal}"),
            _ => f.write_str("unknown exit"),
        }
    }
}

/// Called with each notification from a worker that the host itself does not handle
/// (e.g. an LSP server's `textDocument/publishDiagnostics` or work-done `$/progress`). It runs
/// on the worker's reader, so it must not block.
pub type NotificationHook = Arc<dyn Fn(&WorkerProcess, Notification) + Send + Sync>;

struct Pending {
    answer_tx: oneshot::Sender<Result<Value, ErrorObject>>,
    progress: Progress,
}

/// One worker process.
pub struct WorkerProcess {
    pub slot: usize,
    pub pid: u32,
    service: String,
    framing: Framing,
    started: Instant,
    /// Requests written to the worker and not answered yet, by the id the worker sees.
    pending: Mutex<HashMap<i64, Pending>>,
    next_id: AtomicI64,
    /// Messages to the worker's stdin; taken (closing stdin) by the shutdown sequence.
    stdin_tx: Mutex<Option<mpsc::Sender<Message>>>,
    /// Signals for the reaper to deliver while the child is still unreaped.
    signal_tx: mpsc::Sender<rustix::process::Signal>,
    /// Cancelled once the worker can take no more requests (stdout closed, a bad frame, a
    /// timeout, or shutdown begun).
    retired: CancellationToken,
    /// Cancelled once the process has exited and been reaped.
    exited: CancellationToken,
    /// Cancelled when a reload replaced the worker: it finishes its requests, takes no more.
    draining: CancellationToken,
    exit: Mutex<Option<ExitInfo>>,
    retire_reason: Mutex<Option<String>>,
    stderr_tail: Mutex<VecDeque<String>>,
    /// Cancelled once the worker's stderr reached its end: an exit's error report waits for
    /// it (briefly), so that it carries the worker's last words.
    stderr_closed: CancellationToken,
    /// Requests cancelled by their client that the worker has not answered yet, with the
    /// time after which they are forgotten: the worker may still be busy with them, so they
    /// count as in flight (the pool prefers another worker) and a request queued behind them
    /// is told why it waits.
    abandoned: Mutex<HashMap<i64, Instant>>,
    served: AtomicU64,
    /// Answers counted in `served` when the worker became ready (its dialect's start).
    served_at_ready: AtomicU64,
    /// Cancelled once the worker may take requests: at once, or after its dialect's start.
    ready: CancellationToken,
    /// What the worker's protocol adds to plain JSON-RPC (see [`Dialect`]).
    dialect: Option<Arc<dyn Dialect>>,
    /// What the dialect's start answered (a language server's capabilities).
    handshake_answer: std::sync::OnceLock<Value>,
    request_timeout: Duration,
    hook: Option<NotificationHook>,
    root: PathBuf,
    deadlines: ShutdownDeadlines,
    events: EventLog,
}

/// Makes the kernel kill the worker if the daemon dies without stopping it (`kill -9`, a
/// crash): a worker that ignores the end of its stdin would otherwise live on, serving
/// nobody. The signal follows the *thread* that spawned the worker, so workers are spawned
/// only from the runtime's own threads (which live as long as the daemon), never from the
/// blocking pool, whose threads come and go.
fn die_with_daemon(command: &mut tokio::process::Command) {
    let daemon = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec and makes only raw system
    // calls (prctl, getppid), which are async-signal-safe; it allocates nothing and takes no
    // lock.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The daemon may have died before the prctl: then nothing would ever signal us.
            if rustix::process::getppid() != Some(daemon) {
                return Err(std::io::Error::other(
                    "the daemon exited while starting a worker",
                ));
            }
            Ok(())
        });
    }
}

impl WorkerProcess {
    /// Starts a worker and its tasks.
    ///
    /// # Errors
    /// The spawn error (program not found, not executable, ...).
    pub fn spawn(
        config: &WorkerConfig,
        slot: usize,
        events: EventLog,
        exited_tx: Option<mpsc::UnboundedSender<usize>>,
        hook: Option<NotificationHook>,
    ) -> std::io::Result<Arc<WorkerProcess>> {
        let mut command = tokio::process::Command::new(&config.program);
        command
            .args(&config.args)
            .envs(&config.env)
            // The daemon's notes to its service manager are its own, not its workers'.
            .env_remove("NOTIFY_SOCKET")
            .current_dir(&config.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A last resort only: the reaper normally ends the process in order.
            .kill_on_drop(true);
        die_with_daemon(&mut command);
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => return Err(std::io::Error::other("worker stdio was not captured")),
            };
        let (stdin_tx, stdin_rx) = mpsc::channel(256);
        let (signal_tx, signal_rx) = mpsc::channel(4);
        let worker = Arc::new(WorkerProcess {
            slot,
            pid,
            service: config.service.clone(),
            framing: config.framing,
            started: Instant::now(),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            stdin_tx: Mutex::new(Some(stdin_tx)),
            signal_tx,
            retired: CancellationToken::new(),
            exited: CancellationToken::new(),
            draining: CancellationToken::new(),
            exit: Mutex::new(None),
            retire_reason: Mutex::new(None),
            stderr_tail: Mutex::new(VecDeque::new()),
            stderr_closed: CancellationToken::new(),
            abandoned: Mutex::new(HashMap::new()),
            served: AtomicU64::new(0),
            served_at_ready: AtomicU64::new(0),
            ready: CancellationToken::new(),
            dialect: config.dialect.clone(),
            handshake_answer: std::sync::OnceLock::new(),
            request_timeout: config.request_timeout,
            hook,
            root: config.cwd.clone(),
            deadlines: config.shutdown.clone(),
            events,
        });
        let limits = Limits {
            max_frame_bytes: config.max_frame_bytes,
            ..Limits::default()
        };
        tokio::spawn(write_loop(stdin, config.framing, stdin_rx));
        tokio::spawn(read_loop(worker.clone(), stdout, limits));
        tokio::spawn(stderr_loop(worker.clone(), stderr));
        tokio::spawn(reap(worker.clone(), child, signal_rx, exited_tx));
        match worker.dialect.clone() {
            Some(dialect) => {
                let starting = worker.clone();
                tokio::spawn(async move {
                    match dialect.start(starting.clone()).await {
                        Ok(answer) => {
                            let _ = starting.handshake_answer.set(answer);
                            starting
                                .served_at_ready
                                .store(starting.served(), Ordering::Relaxed);
                            starting.ready.cancel();
                        }
                        Err(error) => starting.retire(&error.to_string()),
                    }
                });
            }
            None => worker.ready.cancel(),
        }
        worker.events.record(
            "worker.spawn",
            json!({ "service": worker.service, "slot": slot, "pid": pid }),
        );
        tracing::info!(service = %worker.service, slot, pid, "worker started");
        Ok(worker)
    }

    /// True while the worker takes requests.
    pub fn is_available(&self) -> bool {
        !self.retired.is_cancelled() && !self.draining.is_cancelled()
    }

    /// True once the process has exited and been reaped.
    pub fn has_exited(&self) -> bool {
        self.exited.is_cancelled()
    }

    /// Takes no new requests from now on, and retires once those in flight are answered
    /// (or `deadline` has passed): a reload that loses nothing.
    pub fn retire_when_idle(self: &Arc<Self>, deadline: Duration, why: &str) {
        self.draining.cancel();
        let worker = self.clone();
        let why = why.to_owned();
        tokio::spawn(async move {
            let give_up = Instant::now() + deadline;
            // Polled: answers arrive on the reader, and a reload is rare.
            while !worker.pending.recover().is_empty()
                && Instant::now() < give_up
                && !worker.retired.is_cancelled()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            worker.retire(&why);
        });
    }

    /// Requests the worker is working on: those waiting for an answer, and those cancelled
    /// that it has not answered yet.
    pub fn in_flight(&self) -> usize {
        self.pending.recover().len() + self.abandoned_count()
    }

    /// Cancelled requests the worker may still be busy with (expired ones are dropped).
    fn abandoned_count(&self) -> usize {
        let now = Instant::now();
        let mut abandoned = self.abandoned.recover();
        abandoned.retain(|_, forget_at| *forget_at > now);
        abandoned.len()
    }

    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.exit.recover().clone()
    }

    pub fn retire_reason(&self) -> Option<String> {
        self.retire_reason.recover().clone()
    }

    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail.recover().iter().cloned().collect()
    }

    /// A JSON object for `daemon/status`.
    pub fn status(&self, restarts: u64) -> Value {
        let state = if self.exited.is_cancelled() {
            "exited"
        } else if self.retired.is_cancelled() {
            "stopping"
        } else if self.draining.is_cancelled() {
            "draining"
        } else {
            "running"
        };
        json!({
            "slot": self.slot,
            "pid": self.pid,
            "state": state,
            "uptime_secs": self.started.elapsed().as_secs(),
            "requests": self.served.load(Ordering::Relaxed),
            "in_flight": self.in_flight(),
            "restarts": restarts,
            "last_exit": self.exit_info().map(|e| e.to_string()),
            "reason": self.retire_reason(),
            "rss_bytes": crate::memory::tree_rss(self.pid),
        })
    }

    /// Requests this worker has answered.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Requests answered since the worker became ready: its clients', not its dialect's.
    pub fn served_since_ready(&self) -> u64 {
        self.served()
            .saturating_sub(self.served_at_ready.load(Ordering::Relaxed))
    }

    /// What the worker answered its dialect's start (a language server's capabilities),
    /// once it is done; `None` for a worker without a dialect.
    pub fn handshake_answer(&self) -> Option<&Value> {
        self.handshake_answer.get()
    }

    /// The worker's working directory: the project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How long the worker may take to answer one request.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Records a request about to be written: its worker-side id, and where its answer will
    /// arrive.
    fn register(&self, progress: Progress) -> (i64, oneshot::Receiver<Result<Value, ErrorObject>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer_rx) = oneshot::channel();
        {
            let mut pending = self.pending.recover();
            pending.insert(
                id,
                Pending {
                    answer_tx,
                    progress,
                },
            );
        }
        // Retired meanwhile (it exited between being chosen and this request): `retire`
        // failed the requests it found, and may have run before this one was there, which
        // would then wait out its whole timeout. Answered here instead, at once.
        if self.retired.is_cancelled() {
            if let Some(pending) = self.take_pending(id) {
                let reason = self.retire_reason().unwrap_or_else(|| "retired".into());
                let error = self.failure(&format!("worker {} failed: {reason}", self.pid));
                let _ = pending.answer_tx.send(Err(error));
            }
        }
        (id, answer_rx)
    }

    async fn send(&self, message: Message) -> bool {
        let tx = self.stdin_tx.recover().clone();
        match tx {
            Some(tx) => tx.send(message).await.is_ok(),
            None => false,
        }
    }

    fn take_pending(&self, id: i64) -> Option<Pending> {
        self.pending.recover().remove(&id)
    }

    /// Takes the worker out of service: its requests in flight are answered -32002 and the
    /// shutdown sequence runs in the background. Idempotent.
    pub fn retire(self: &Arc<Self>, reason: &str) {
        if self.retired.is_cancelled() {
            return;
        }
        self.retire_reason
            .recover()
            .get_or_insert_with(|| reason.to_owned());
        self.retired.cancel();
        tracing::warn!(service = %self.service, pid = self.pid, %reason, "worker retired");
        self.fail_pending(reason);
        let worker = self.clone();
        tokio::spawn(async move { worker.stop().await });
    }

    fn fail_pending(&self, reason: &str) {
        let pending: Vec<Pending> = self.pending.recover().drain().map(|(_, v)| v).collect();
        if pending.is_empty() {
            return;
        }
        let error = self.failure(&format!("worker {} failed: {reason}", self.pid));
        for p in pending {
            let _ = p.answer_tx.send(Err(error.clone()));
        }
    }

    /// A -32002 error for this worker: `message`, and in `data` the service, the worker's
    /// exit and the last lines of its stderr (the CLI prints them with the `warm logs`
    /// command that shows the rest).
    pub fn failure(&self, message: &str) -> ErrorObject {
        unavailable(message).with_data(json!({
            "service": self.service,
            "pid": self.pid,
            "last_exit": self.exit_info().map(|e| e.to_string()),
            "stderr_tail": self.stderr_tail(),
        }))
    }

    fn record_exit(&self, info: ExitInfo) {
        self.events.record(
            "worker.exit",
            json!({ "service": self.service, "slot": self.slot, "pid": self.pid, "code": info.code, "signal": info.signal }),
        );
        tracing::info!(service = %self.service, pid = self.pid, exit = %info, "worker exited");
        *self.exit.recover() = Some(info);
    }
}

fn unavailable(reason: &str) -> ErrorObject {
    ErrorObject::new(
        ErrorCode::WorkerUnavailable,
        format!("worker unavailable: {reason}"),
    )
}
