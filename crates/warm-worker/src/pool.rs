//! [`Pool`]: a service's workers, shared by every client of the daemon.
//!
//! Each request goes to the available worker with the fewest requests in flight. Methods
//! listed as `exclusive` take the pool's lock for writing, all others for reading: an
//! exclusive request waits for running ones and holds back new ones, and because tokio's
//! `RwLock` is fair (first come, first served), a stream of reads cannot starve it.
//!
//! A worker that is gone is replaced at once, within the restart policy; past the policy the
//! service answers -32002 with the last exit and stderr lines, until the window has passed or
//! the files of the worker's command change (the user fixed it). With `watch` globs, a change
//! to a matching file replaces the workers: new ones take new requests while the old ones
//! finish theirs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, RwLock};
use warm_daemon::Call;
use warm_protocol::{ErrorCode, ErrorObject};
use warm_runtime::sync::Recover;
use warm_runtime::EventLog;

use crate::config::WorkerConfig;
use crate::process::{NotificationHook, WorkerProcess};
use crate::reload::{CommandFingerprint, Watch};

struct Slot {
    worker: Option<Arc<WorkerProcess>>,
    restarts: u64,
    /// Workers of this slot replaced for passing `max_rss`.
    memory_restarts: u64,
}

pub struct Pool {
    config: WorkerConfig,
    events: EventLog,
    slots: Mutex<Vec<Slot>>,
    /// When recent restarts happened, for the restart policy's window.
    restarts: Mutex<VecDeque<Instant>>,
    /// Why the service is unavailable, when it is.
    unavailable: Mutex<Option<ErrorObject>>,
    /// While the restart policy refuses: the command's files when it began refusing, so that
    /// a change to them (the user fixed the worker) ends the refusal at once.
    lockout: Mutex<Option<CommandFingerprint>>,
    /// The `watch` globs' watcher, while the pool lives.
    watch: Mutex<Option<Watch>>,
    /// Workers replaced by a reload that are finishing their requests: shutdown stops them
    /// too, so none outlives the daemon's drain.
    replaced: Mutex<Vec<Arc<WorkerProcess>>>,
    exclusive: RwLock<()>,
    stopping: AtomicBool,
    /// Workers report their slot here when they exit, so the supervisor replaces them.
    exited_tx: mpsc::UnboundedSender<usize>,
    hook: Option<NotificationHook>,
}

impl Pool {
    /// Creates the pool and starts its workers (inside a tokio runtime).
    pub fn start(config: WorkerConfig, events: EventLog) -> Arc<Pool> {
        Pool::start_with_hook(config, events, None)
    }

    /// Like [`Pool::start`], with every worker's notifications passed to `hook`.
    pub fn start_with_hook(
        config: WorkerConfig,
        events: EventLog,
        hook: Option<NotificationHook>,
    ) -> Arc<Pool> {
        let slots = (0..config.workers)
            .map(|_| Slot {
                worker: None,
                restarts: 0,
                memory_restarts: 0,
            })
            .collect();
        let (exited_tx, exited_rx) = mpsc::unbounded_channel();
        let pool = Arc::new(Pool {
            config,
            events,
            slots: Mutex::new(slots),
            restarts: Mutex::new(VecDeque::new()),
            unavailable: Mutex::new(None),
            lockout: Mutex::new(None),
            watch: Mutex::new(None),
            replaced: Mutex::new(Vec::new()),
            exclusive: RwLock::new(()),
            stopping: AtomicBool::new(false),
            exited_tx,
            hook,
        });
        tokio::spawn(supervise(Arc::downgrade(&pool), exited_rx));
        if let Some(cap) = pool.config.max_rss {
            tokio::spawn(crate::memory::enforce_cap(Arc::downgrade(&pool), cap));
        }
        pool.start_watch();
        // Warm from the start: that is the point.
        for slot in 0..pool.config.workers {
            if let Err(error) = pool.fill(slot, false) {
                tracing::warn!(slot, %error, "worker could not start");
            }
        }
        pool
    }

    /// Runs one request on a worker.
    ///
    /// # Cancellation safety
    /// As [`WorkerProcess::call`]: dropping it cancels the request.
    pub async fn call(&self, call: Call) -> Result<Value, ErrorObject> {
        let exclusive = self.config.exclusive.contains(&call.method);
        let _turn = if exclusive {
            Turn::Alone {
                _guard: self.exclusive.write().await,
            }
        } else {
            Turn::Shared {
                _guard: self.exclusive.read().await,
            }
        };
        let worker = self.worker()?;
        worker
            .call(
                call.method,
                call.params,
                call.progress,
                call.cancel,
                self.config.request_timeout,
            )
            .await
    }

    /// The least busy available worker, replacing gone ones within the policy.
    ///
    /// # Errors
    /// -32003 while stopping; -32002 when no worker can be started.
    pub fn worker(&self) -> Result<Arc<WorkerProcess>, ErrorObject> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(ErrorObject::shutting_down());
        }
        let slots_len = self.config.workers;
        let mut last_error = None;
        for _ in 0..2 {
            let best = {
                let slots = self.lock_slots();
                slots
                    .iter()
                    .filter_map(|s| s.worker.as_ref())
                    .filter(|w| w.is_available())
                    .min_by_key(|w| w.in_flight())
                    .cloned()
            };
            if let Some(worker) = best {
                return Ok(worker);
            }
            for slot in 0..slots_len {
                match self.fill(slot, true) {
                    Ok(()) => {}
                    Err(error) => last_error = Some(error),
                }
            }
        }
        Err(last_error.unwrap_or_else(|| self.unavailable_error("no worker is available")))
    }

    /// Starts a worker in `slot` if it has none that is available. A replacement counts
    /// against the restart policy.
    fn fill(&self, slot: usize, is_restart: bool) -> Result<(), ErrorObject> {
        let mut slots = self.lock_slots();
        let Some(entry) = slots.get_mut(slot) else {
            return Ok(());
        };
        let gone = entry.worker.as_ref().filter(|w| !w.is_available()).cloned();
        if entry.worker.as_ref().is_some_and(|w| w.is_available()) {
            return Ok(());
        }
        let is_restart = is_restart && (entry.worker.is_some() || entry.restarts > 0);
        if is_restart {
            self.admit_restart(gone.as_deref())?;
        }
        match self.spawn_worker(slot) {
            Ok(worker) => {
                if is_restart {
                    entry.restarts += 1;
                    self.events.record(
                        "worker.restart",
                        json!({
                            "service": self.config.service, "slot": slot, "pid": worker.pid,
                            "previous_pid": gone.as_ref().map(|w| w.pid),
                            "previous_exit": gone.as_ref().and_then(|w| w.exit_info()).map(|e| e.to_string()),
                        }),
                    );
                }
                entry.worker = Some(worker);
                *self.unavailable.recover() = None;
                Ok(())
            }
            Err(error) => {
                let error = self
                    .unavailable_error(&format!("cannot start {}: {error}", self.config.program))
                    .with_data(json!({ "service": self.config.service }));
                self.set_unavailable(&error);
                Err(error)
            }
        }
    }

    /// A new worker process for `slot`, reporting its exit to the supervisor.
    fn spawn_worker(&self, slot: usize) -> std::io::Result<Arc<WorkerProcess>> {
        WorkerProcess::spawn(
            &self.config,
            slot,
            self.events.clone(),
            Some(self.exited_tx.clone()),
            self.hook.clone(),
        )
    }

    /// Applies the restart policy: at most `attempts` restarts within `window` of workers
    /// that died without answering a request, unless the command's files changed since the
    /// policy began refusing.
    fn admit_restart(&self, gone: Option<&WorkerProcess>) -> Result<(), ErrorObject> {
        let policy = &self.config.restart;
        let mut restarts = self.restarts.recover();
        let mut lockout = self.lockout.recover();
        if let Some(before) = lockout.as_ref() {
            if *before != CommandFingerprint::of(&self.config) {
                self.events.record(
                    "service.lockout_lifted",
                    json!({ "service": self.config.service, "reason": "the worker's command changed" }),
                );
                restarts.clear();
                *lockout = None;
            }
        }
        // A worker that answered requests before it died was not crash-looping (it was
        // killed, ran out of memory, hit a bad request): the count starts afresh.
        if gone.is_some_and(|w| w.served() > 0) {
            restarts.clear();
        }
        let now = Instant::now();
        while restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            restarts.pop_front();
        }
        if restarts.len() as u32 >= policy.attempts {
            let retry_in = restarts
                .front()
                .map(|t| policy.window.saturating_sub(now.duration_since(*t)))
                .unwrap_or_default();
            let exit = gone.and_then(|w| w.exit_info()).map(|e| e.to_string());
            let reason = gone.and_then(|w| w.retire_reason());
            let fingerprint = lockout.get_or_insert_with(|| CommandFingerprint::of(&self.config));
            // The project's own files (the worker's code), not the interpreter that runs it.
            let mut changes: Vec<String> = fingerprint
                .files()
                .filter_map(|f| f.strip_prefix(&self.config.cwd).ok())
                .map(|f| f.display().to_string())
                .collect();
            if changes.is_empty() {
                changes.push(self.config.program.clone());
            }
            changes.push(".warm.toml".into());
            let error = ErrorObject::new(
                ErrorCode::WorkerUnavailable,
                format!(
                    "service {} unavailable: its worker failed {} times within {}s (last: {}); retried in {}s, or at once when {} changes",
                    self.config.service,
                    restarts.len() + 1,
                    policy.window.as_secs(),
                    reason.clone().unwrap_or_else(|| "unknown".into()),
                    retry_in.as_secs() + 1,
                    changes.join(" or "),
                ),
            )
            .with_data(json!({
                "service": self.config.service,
                "last_exit": exit,
                "reason": reason,
                "stderr_tail": gone.map(|w| w.stderr_tail()).unwrap_or_default(),
                "retry_after_ms": retry_in.as_millis() as u64,
            }));
            self.set_unavailable(&error);
            return Err(error);
        }
        restarts.push_back(now);
        Ok(())
    }

    fn restart_backoff(&self) -> Duration {
        let recent = self.restarts.recover().len() as u32;
        Duration::from_millis(100u64 << recent.min(5)).min(Duration::from_secs(2))
    }

    fn set_unavailable(&self, error: &ErrorObject) {
        let changed = {
            let mut unavailable = self.unavailable.recover();
            let changed = unavailable.as_ref().map(|e| &e.message) != Some(&error.message);
            *unavailable = Some(error.clone());
            changed
        };
        if changed {
            tracing::error!(service = %self.config.service, "{}", error.message);
            self.events.record(
                "service.unavailable",
                json!({ "service": self.config.service, "reason": error.message, "data": error.data }),
            );
        }
    }

    fn unavailable_error(&self, reason: &str) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::WorkerUnavailable,
            format!("service {} unavailable: {reason}", self.config.service),
        )
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.recover()
    }

    /// How long the restart policy still refuses to start a worker, if it does.
    fn lockout_remaining(&self) -> Option<Duration> {
        let locked = self.lockout.recover().is_some();
        if !locked {
            return None;
        }
        let restarts = self.restarts.recover();
        let oldest = restarts.front()?;
        Some(self.config.restart.window.saturating_sub(oldest.elapsed()))
    }

    /// Replaces every worker: a new one takes the slot's new requests at once, the old one
    /// finishes what it has in flight, then stops. Not a restart in the policy's sense (the
    /// workers did not fail), and it ends a lockout.
    pub fn reload(&self, why: &str) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        self.restarts.recover().clear();
        *self.lockout.recover() = None;
        self.events.record(
            "service.reload",
            json!({ "service": self.config.service, "reason": why }),
        );
        tracing::info!(service = %self.config.service, %why, "replacing the workers");
        let mut replaced = self.replaced.recover();
        replaced.retain(|w| !w.has_exited());
        let mut slots = self.lock_slots();
        for (slot, entry) in slots.iter_mut().enumerate() {
            self.replace(slot, entry, &mut replaced, "replaced by a reload");
        }
        *self.unavailable.recover() = None;
    }

    /// Replaces `worker`, whose process tree holds `rss` bytes, more than `cap`
    /// ([`memory`](crate::memory)), unless it was replaced meanwhile.
    pub(crate) fn replace_for_memory(&self, worker: &WorkerProcess, rss: u64, cap: u64) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let mut replaced = self.replaced.recover();
        replaced.retain(|w| !w.has_exited());
        let mut slots = self.lock_slots();
        let Some(entry) = slots.get_mut(worker.slot) else {
            return;
        };
        if entry.worker.as_ref().map(|w| w.pid) != Some(worker.pid) {
            return;
        }
        entry.memory_restarts += 1;
        self.events.record(
            "worker.memory_exceeded",
            json!({
                "service": self.config.service, "slot": worker.slot, "pid": worker.pid,
                "rss_bytes": rss, "max_rss_bytes": cap,
            }),
        );
        tracing::warn!(service = %self.config.service, pid = worker.pid, rss, cap, "worker over max_rss, replacing it");
        let why = format!(
            "over max_rss: {} MiB > {}",
            rss >> 20,
            warm_runtime::size::format_size(cap)
        );
        self.replace(worker.slot, entry, &mut replaced, &why);
    }

    /// Puts a new worker in `slot`: it takes the slot's new requests at once, while the one it
    /// replaces finishes those it has in flight, then stops (kept in `replaced` meanwhile).
    fn replace(
        &self,
        slot: usize,
        entry: &mut Slot,
        replaced: &mut Vec<Arc<WorkerProcess>>,
        why: &str,
    ) {
        match self.spawn_worker(slot) {
            Ok(worker) => {
                if let Some(old) = entry.worker.replace(worker) {
                    old.retire_when_idle(self.config.request_timeout, why);
                    replaced.push(old);
                }
            }
            Err(error) => {
                tracing::warn!(slot, %error, "replacement worker could not start");
            }
        }
    }

    /// The workers taking requests now.
    pub(crate) fn running_workers(&self) -> Vec<Arc<WorkerProcess>> {
        self.lock_slots()
            .iter()
            .filter_map(|s| s.worker.clone())
            .filter(|w| w.is_available())
            .collect()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Starts the watcher of the `watch` globs, if any: a change reloads the workers. The
    /// reload runs on the runtime (workers are spawned only from its threads).
    fn start_watch(self: &Arc<Self>) {
        if self.config.watch.is_empty() {
            return;
        }
        let (changed_tx, mut changed_rx) = mpsc::unbounded_channel::<std::path::PathBuf>();
        let watch = Watch::start(&self.config.cwd, &self.config.watch, move |path| {
            let _ = changed_tx.send(path.to_path_buf());
        });
        match watch {
            Ok(watch) => {
                *self.watch.recover() = Some(watch);
            }
            Err(error) => {
                tracing::warn!(service = %self.config.service, %error, "watch globs ignored");
                self.events.record(
                    "service.watch_failed",
                    json!({ "service": self.config.service, "error": error.to_string() }),
                );
                return;
            }
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(path) = changed_rx.recv().await {
                let Some(pool) = pool.upgrade() else { return };
                let relative = path.strip_prefix(&pool.config.cwd).unwrap_or(&path);
                pool.reload(&format!("{} changed", relative.display()));
            }
        });
    }

    /// One JSON object per worker slot, plus the service's availability.
    pub fn status(&self) -> Vec<Value> {
        let unavailable = self.unavailable.recover().clone();
        let retry_in = self.lockout_remaining();
        self.lock_slots()
            .iter()
            .enumerate()
            .map(|(slot, s)| {
                let mut status = match &s.worker {
                    Some(worker) => worker.status(s.restarts),
                    None => json!({ "slot": slot, "state": "not started", "restarts": s.restarts }),
                };
                if let Some(cap) = self.config.max_rss {
                    status["max_rss_bytes"] = json!(cap);
                    status["memory_restarts"] = json!(s.memory_restarts);
                }
                if let Some(error) = &unavailable {
                    status["service_unavailable"] = json!(error.message);
                }
                if let Some(retry_in) = retry_in {
                    status["retry_in_secs"] = json!(retry_in.as_secs());
                }
                status
            })
            .collect()
    }

    /// Stops every worker with the shutdown sequence, concurrently; returns when all are
    /// reaped.
    ///
    /// # Cancellation safety
    /// Run it to its end: dropped midway, workers not yet reaped are killed when the pool is
    /// dropped (`kill_on_drop`), without their shutdown sequence.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.watch.recover().take();
        let mut workers: Vec<Arc<WorkerProcess>> = self
            .lock_slots()
            .iter()
            .filter_map(|s| s.worker.clone())
            .collect();
        workers.append(&mut self.replaced.recover());
        let stops: Vec<_> = workers
            .into_iter()
            .map(|w| tokio::spawn(async move { w.stop().await }))
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }
}

/// Replaces workers as they exit, after a backoff that grows with the restarts of the
/// current window (100 ms, 200 ms, ... up to 2 s), so that a worker crashing at start does
/// not spin. The restart policy still applies: past it the slot stays empty (and requests
/// are told why) until a later request finds the window passed.
async fn supervise(pool: Weak<Pool>, mut exited_rx: mpsc::UnboundedReceiver<usize>) {
    while let Some(slot) = exited_rx.recv().await {
        let backoff = match pool.upgrade() {
            Some(pool) if !pool.stopping.load(Ordering::Relaxed) => pool.restart_backoff(),
            _ => return,
        };
        tokio::time::sleep(backoff).await;
        match pool.upgrade() {
            Some(pool) if !pool.stopping.load(Ordering::Relaxed) => {
                let _ = pool.fill(slot, true);
            }
            _ => return,
        }
    }
}

/// Holding the pool's lock for one request (released on drop): shared, or alone for an
/// exclusive method.
enum Turn<'a> {
    Shared {
        _guard: tokio::sync::RwLockReadGuard<'a, ()>,
    },
    Alone {
        _guard: tokio::sync::RwLockWriteGuard<'a, ()>,
    },
}
