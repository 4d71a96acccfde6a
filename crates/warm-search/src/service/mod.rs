//! [`SearchService`]: the daemon side of `warm search`: builds the index when the daemon
//! starts, keeps it fresh from a file watcher, and answers which files may match.
//!
//! Methods:
//! - [`CANDIDATES`] `{patterns, fixed_strings?}` → `{root, files, all}`: the files (relative
//!   to `root`, in path order) that may match, for the file system as it was when the request
//!   arrived; `all` when the patterns have no usable trigram. Instead, `{building: {files,
//!   bytes}}` while the first build runs, or `{unwatched: reason}` when no watcher could be
//!   set up: the client then scans.
//! - [`STATUS`] → files, bytes, index size, last update, build progress; `refused` with the
//!   reason when the root is never indexed (`/`); the user's inotify usage; `queries`: how
//!   many were answered from the index, told to scan (`building`, `unwatched`), and how many
//!   barriers timed out.
//!
//! Freshness uses a sync barrier in the manner of watchman's cookies: the request creates a
//! file in the root and waits until the indexer has seen its event. Watch events arrive in
//! order, so every change made before the request has been applied by then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use notify::Watcher;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use warm_client::EventLog;
use warm_daemon::{BoxFuture, Call, Service};
use warm_protocol::{ErrorCode, ErrorObject};

use crate::budget::{self, Peers};
use crate::index::{Index, Refresh};
use crate::query::Query;

pub const CANDIDATES: &str = "search/candidates";
pub const STATUS: &str = "search/status";

/// Names of the barrier files created in the root (hidden, so never indexed or searched).
const COOKIE_PREFIX: &str = ".warm-cookie-";
/// How long a query waits for its barrier before answering from the index as it is.
const COOKIE_WAIT: Duration = Duration::from_secs(2);
/// How long a new directory is rescanned at each barrier.
const RECENT_DIR: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidatesParams {
    patterns: Vec<String>,
    #[serde(default)]
    fixed_strings: bool,
    /// Directories (relative to the root) the search walks: those the index does not hold
    /// (ignored or hidden, which ripgrep still walks when they are named) are answered in
    /// `unindexed`, and the client scans.
    #[serde(default)]
    scopes: Vec<Value>,
}

struct Shared {
    root: PathBuf,
    /// `None` until the first build is done.
    index: RwLock<Option<Index>>,
    built: watch::Sender<bool>,
    /// Files and bytes indexed so far by the running build.
    building: Mutex<(u64, u64)>,
    cookies: Mutex<HashMap<String, oneshot::Sender<()>>>,
    next_cookie: AtomicU64,
    watch_error: Mutex<Option<String>>,
    /// Why this root is never indexed (`/`), if it is not: every query scans.
    refused: Option<String>,
    /// git's global excludes file (`core.excludesFile`, else `~/.config/git/ignore`): a change
    /// to it rebuilds the index.
    global_excludes: Option<PathBuf>,
    /// The root's (device, inode) at start: another means the directory was replaced.
    root_identity: Option<(u64, u64)>,
    /// Stops the daemon when the root is gone.
    shutdown: Option<warm_daemon::Shutdown>,
    /// The other daemons of this user, for the inotify budget (`None`: no budget kept, as
    /// for a search service embedded outside warm's runtime directory).
    peers: Option<Peers>,
    /// Directories created lately, rescanned at each barrier (see [`Refresh::Directories`]).
    recent_dirs: Mutex<Vec<(PathBuf, Instant)>>,
    stopping: AtomicBool,
    events: EventLog,
    /// How each query was answered, for `search/status`: a fallback must never hide the path
    /// a user (or a test) meant to exercise.
    queries: QueryCounters,
    /// A pause before each batch of watch events is applied: `WARM_SEARCH_TEST_APPLY_DELAY_MS`,
    /// for tests that must prove the barrier waits for the indexer (zero otherwise).
    apply_delay: Duration,
}

#[derive(Default)]
struct QueryCounters {
    index: AtomicU64,
    building: AtomicU64,
    unwatched: AtomicU64,
    barrier_timeouts: AtomicU64,
}

impl QueryCounters {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn to_json(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "index": get(&self.index),
            "building": get(&self.building),
            "unwatched": get(&self.unwatched),
            "barrier_timeouts": get(&self.barrier_timeouts),
        })
    }
}

pub struct SearchService {
    shared: Arc<Shared>,
    /// Dropped at shutdown, which ends the event stream and so the indexer thread.
    watcher: Arc<Mutex<Option<notify::RecommendedWatcher>>>,
}

impl SearchService {
    /// Starts watching `root` and building its index in the background.
    ///
    /// With `shutdown`, the daemon is stopped when the root is deleted or replaced (`rm -rf
    /// repo && git clone ...`): a daemon must never answer for a tree that is gone, and the
    /// next query then starts a fresh one on the new directory.
    pub fn start(
        root: PathBuf,
        events: EventLog,
        peers: Option<Peers>,
        shutdown: Option<warm_daemon::Shutdown>,
    ) -> SearchService {
        let root_identity = identity_of(&root);
        // The whole file system is nobody's project: watching it needs an inotify watch per
        // directory of the machine, and an index of it is as large as the disk.
        let refused = if root == Path::new("/") {
            Some("refusing to index / (the whole file system): each search scans, as rg does; run warm search inside a project instead".to_owned())
        } else {
            // Changes there may never reach inotify: an index could answer stale.
            crate::special::unwatchable_file_system(&root).map(|fs| format!(
                "{} is on a {fs} file system, whose changes inotify does not see (made on another machine, or behind the mount): each search scans, as rg does",
                root.display()
            ))
        };
        let shared = Arc::new(Shared {
            root: root.clone(),
            index: RwLock::new(None),
            built: watch::channel(false).0,
            building: Mutex::new((0, 0)),
            cookies: Mutex::new(HashMap::new()),
            next_cookie: AtomicU64::new(0),
            watch_error: Mutex::new(None),
            refused,
            global_excludes: ignore::gitignore::gitconfig_excludes_path(),
            root_identity,
            shutdown,
            peers,
            recent_dirs: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            events,
            queries: QueryCounters::default(),
            apply_delay: std::env::var("WARM_SEARCH_TEST_APPLY_DELAY_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(Duration::ZERO, Duration::from_millis),
        });
        if let Some(reason) = &shared.refused {
            tracing::warn!("{reason}");
            return SearchService {
                shared,
                watcher: Arc::new(Mutex::new(None)),
            };
        }
        let (tx, rx) = mpsc::channel();
        // Watching starts before the walk, so no change made during the build is missed. Both
        // run on the indexer thread: adding a watch per directory takes a while on a large
        // tree, and the daemon answers meanwhile (queries scan until the index is ready).
        let watcher: Arc<Mutex<Option<notify::RecommendedWatcher>>> = Arc::new(Mutex::new(None));
        let indexer = shared.clone();
        let slot = watcher.clone();
        let spawned = std::thread::Builder::new()
            .name("warm-search-indexer".into())
            .spawn(move || {
                crate::index::lower_priority();
                indexer.watch(tx, &slot);
                indexer.run(rx);
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the indexer thread");
        }
        SearchService { shared, watcher }
    }
}

impl Service for SearchService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            match call.method.as_str() {
                CANDIDATES => shared.candidates(call).await,
                STATUS => Ok(shared.status()),
                other => Err(ErrorObject::method_not_found(other)),
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<()> {
        self.shared.stopping.store(true, Ordering::Relaxed);
        if let Ok(mut watcher) = self.watcher.lock() {
            watcher.take();
        }
        Box::pin(async {})
    }
}

impl Shared {
    /// Starts watching the root; a failure is kept for the queries, which then scan.
    fn watch(
        &self,
        tx: mpsc::Sender<notify::Result<notify::Event>>,
        slot: &Mutex<Option<notify::RecommendedWatcher>>,
    ) {
        // Held while the watcher is created, so that two daemons cannot both take the last
        // instance the budget allows.
        let _admission = match self.peers.as_ref().map(|p| budget::admit(p, &self.events)) {
            Some(Err(reason)) => {
                tracing::warn!("{reason}");
                self.events
                    .record("search.unwatched", json!({ "reason": reason }));
                if let Ok(mut slot) = self.watch_error.lock() {
                    *slot = Some(reason);
                }
                return;
            }
            Some(Ok(admission)) => Some(admission),
            None => None,
        };
        // Symlinks are not followed, as the index does not follow them: events of a directory
        // reached through a link would arrive under the link's path, which the index drops.
        let config = notify::Config::default().with_follow_symlinks(false);
        let watcher = notify::RecommendedWatcher::new(tx, config).and_then(|mut watcher| {
            watcher.watch(&self.root, notify::RecursiveMode::Recursive)?;
            // git's global excludes file changes what is ignored with no event in the tree:
            // its directory is watched too (best effort: it may not exist).
            if let Some(dir) = self.global_excludes.as_ref().and_then(|f| f.parent()) {
                if let Err(error) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
                    tracing::info!(%error, dir = %dir.display(), "git's global excludes not watched");
                }
            }
            Ok(watcher)
        });
        match watcher {
            Ok(watcher) if !self.stopping.load(Ordering::Relaxed) => {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(watcher);
                }
            }
            Ok(_) => {}
            Err(error) => {
                let reason = format!("cannot watch {}: {error}", self.root.display());
                tracing::warn!("{reason}; queries will scan instead of using the index");
                if let Ok(mut slot) = self.watch_error.lock() {
                    *slot = Some(reason);
                }
            }
        }
    }

    /// The indexer thread: the first build, then watch events as they come.
    fn run(self: Arc<Self>, rx: mpsc::Receiver<notify::Result<notify::Event>>) {
        self.rebuild("start");
        while let Ok(first) = rx.recv() {
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            if !self.apply_delay.is_zero() {
                std::thread::sleep(self.apply_delay);
            }
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            self.apply(batch);
        }
    }

    fn rebuild(&self, why: &str) {
        let started = std::time::Instant::now();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let index = Index::build(&self.root, threads, &|files, bytes| {
            if let Ok(mut building) = self.building.lock() {
                *building = (files, bytes);
            }
        });
        let stats = index.stats();
        tracing::info!(
            files = stats.files,
            bytes = stats.bytes,
            index_bytes = stats.index_bytes,
            ms = started.elapsed().as_millis() as u64,
            why,
            "index built"
        );
        self.events.record(
            "search.index",
            json!({ "why": why, "files": stats.files, "bytes": stats.bytes,
                "index_bytes": stats.index_bytes, "ms": started.elapsed().as_millis() as u64 }),
        );
        if let Ok(mut slot) = self.index.write() {
            *slot = Some(index);
        }
        self.built.send_replace(true);
        // The old index and the build's buffers are free now, but scattered through the heap:
        // give the pages back, or the daemon's memory ratchets up with every rebuild.
        return_free_memory();
    }

    /// Applies a batch of watch events in order, then releases the barriers they carried.
    fn apply(&self, batch: Vec<notify::Result<notify::Event>>) {
        let (cookies, changed, mut rebuild) = self.sort_events(batch);
        let rescan = !cookies.is_empty() && self.has_recent_dirs();
        let mut compacted = false;
        // A batch of barrier cookies only (one per query) leaves the index as it is: no write
        // lock, so the queries reading it are not held up.
        if !rebuild && (!changed.is_empty() || rescan) {
            if let Ok(mut guard) = self.index.write() {
                if let Some(index) = guard.as_mut() {
                    rebuild = self.refresh_all(index, &changed);
                    if !rebuild && rescan {
                        self.rescan_recent_dirs(index);
                    }
                    if !rebuild && !changed.is_empty() {
                        index.updated_at = SystemTime::now();
                        if index.needs_compaction() {
                            index.compact();
                            compacted = true;
                        }
                    }
                }
            }
        }
        if rebuild {
            self.rebuild("change");
        } else if compacted || changed.len() > 1000 {
            // A compaction, or a checkout's worth of refreshes: give back what the replaced
            // entries freed.
            return_free_memory();
        }
        if let Ok(mut waiting) = self.cookies.lock() {
            for cookie in cookies {
                if let Some(tx) = waiting.remove(&cookie) {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// Splits watch events into barrier cookies and changed paths, in order; true when only
    /// a rebuild is safe (the watcher lost events).
    fn sort_events(
        &self,
        batch: Vec<notify::Result<notify::Event>>,
    ) -> (Vec<String>, Vec<PathBuf>, bool) {
        let (mut cookies, mut changed, mut rebuild) = (Vec::new(), Vec::new(), false);
        for event in batch {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    // Lost events (e.g. a queue overflow).
                    tracing::warn!(%error, "watch error; rebuilding the index");
                    rebuild = true;
                    continue;
                }
            };
            rebuild |= event.need_rescan();
            // Reads (ours included: indexing opens files) leave contents as they were. A
            // metadata change does not, in effect: `chmod` decides whether a file can be read.
            if matches!(event.kind, notify::EventKind::Access(_)) {
                continue;
            }
            for path in event.paths {
                if self.global_excludes.as_ref() == Some(&path) {
                    rebuild = true;
                    continue;
                }
                match cookie_name(&self.root, &path) {
                    Some(cookie) => cookies.push(cookie),
                    None => changed.push(path),
                }
            }
        }
        (cookies, changed, rebuild)
    }

    /// Refreshes the changed paths; true when they need a rebuild.
    fn refresh_all(&self, index: &mut Index, changed: &[PathBuf]) -> bool {
        match index.refresh_all(changed) {
            Refresh::Done => false,
            Refresh::Rebuild => true,
            Refresh::Directories(dirs) => {
                if let Ok(mut recent) = self.recent_dirs.lock() {
                    let now = Instant::now();
                    recent.extend(dirs.into_iter().map(|dir| (dir, now)));
                }
                false
            }
        }
    }

    fn has_recent_dirs(&self) -> bool {
        self.recent_dirs.lock().is_ok_and(|mut recent| {
            recent.retain(|(_, at)| at.elapsed() < RECENT_DIR);
            !recent.is_empty()
        })
    }

    /// Rescans the directories created in the last few seconds, for files created in them
    /// before the watcher covered them.
    fn rescan_recent_dirs(&self, index: &mut Index) {
        let Ok(recent) = self.recent_dirs.lock() else {
            return;
        };
        let dirs: Vec<PathBuf> = recent.iter().map(|(dir, _)| dir.clone()).collect();
        // Walks only: what these find is already recorded as recent.
        let _ = index.refresh_all(&dirs);
    }

    async fn candidates(self: Arc<Self>, call: Call) -> Result<Value, ErrorObject> {
        let params: CandidatesParams =
            serde_json::from_value(call.params.clone().unwrap_or(Value::Null))
                .map_err(ErrorObject::invalid_params)?;
        if identity_of(&self.root) != self.root_identity {
            let reason = format!(
                "the project directory {} was deleted or replaced; this search scans, and the daemon stops",
                self.root.display()
            );
            tracing::warn!("{reason}");
            self.events.record(
                "search.root_gone",
                json!({ "root": self.root.to_string_lossy() }),
            );
            if let Some(shutdown) = &self.shutdown {
                shutdown.trigger("the project directory was deleted or replaced");
            }
            return Ok(self.scan_instead(reason));
        }
        let unwatched = self
            .refused
            .clone()
            .or_else(|| self.watch_error.lock().ok().and_then(|e| e.clone()));
        if let Some(reason) = unwatched {
            return Ok(self.scan_instead(reason));
        }
        // Until the first build is done, the client scans: a first query answered at
        // ripgrep's speed beats one that waits for the whole index.
        if !*self.built.borrow() {
            let (files, bytes) = self.building.lock().map(|b| *b).unwrap_or_default();
            QueryCounters::count(&self.queries.building);
            return Ok(json!({ "building": { "files": files, "bytes": bytes } }));
        }
        if !self.barrier().await {
            // Never an answer from an index that may be stale: the client scans instead.
            return Ok(self.scan_instead(format!(
                "the index could not be shown current within {}s (the watcher lags, or the tree is read-only)",
                COOKIE_WAIT.as_secs()
            )));
        }
        QueryCounters::count(&self.queries.index);
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let query = Query::for_patterns(&params.patterns, params.fixed_strings);
            let guard = shared
                .index
                .read()
                .map_err(|_| internal("the index is poisoned"))?;
            let index = guard
                .as_ref()
                .ok_or_else(|| internal("the index is not built"))?;
            let unindexed: Vec<Value> = params
                .scopes
                .iter()
                .filter(|scope| crate::wire::from_json(scope).is_none_or(|s| !index.has_dir(&s)))
                .cloned()
                .collect();
            if !unindexed.is_empty() {
                return Ok(json!({ "unindexed": unindexed }));
            }
            let files: Vec<Value> = index
                .candidates(&query)
                .into_iter()
                .map(crate::wire::to_json)
                .collect();
            Ok(json!({ "root": shared.root.to_string_lossy(), "files": files, "all": query.is_all() }))
        })
        .await
        .map_err(|e| internal(&e.to_string()))?
    }

    /// The answer that tells the client to scan, and why; counted.
    fn scan_instead(&self, reason: String) -> Value {
        QueryCounters::count(&self.queries.unwatched);
        json!({ "unwatched": reason })
    }

    /// Returns once every change made to the tree before the call has been indexed: true. False
    /// after [`COOKIE_WAIT`] without the barrier's event (the watcher lags behind a large
    /// checkout, or lost events): then the index may be stale, and the query must not use it.
    async fn barrier(&self) -> bool {
        let n = self.next_cookie.fetch_add(1, Ordering::Relaxed);
        let name = format!("{COOKIE_PREFIX}{}-{n}", std::process::id());
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.cookies.lock() {
            waiting.insert(name.clone(), tx);
        }
        let path = self.root.join(&name);
        if std::fs::write(&path, b"").is_err() {
            // No barrier without a file: the index cannot be shown current.
            if let Ok(mut waiting) = self.cookies.lock() {
                waiting.remove(&name);
            }
            return false;
        }
        let _ = std::fs::remove_file(&path);
        if tokio::time::timeout(COOKIE_WAIT, rx).await.is_err() {
            tracing::warn!("the watcher did not report the sync cookie in time; this query scans");
            QueryCounters::count(&self.queries.barrier_timeouts);
            if let Ok(mut waiting) = self.cookies.lock() {
                waiting.remove(&name);
            }
            return false;
        }
        true
    }

    fn status(&self) -> Value {
        let guard = self.index.read().ok();
        let index = guard.as_ref().and_then(|g| g.as_ref());
        let (files, bytes) = self.building.lock().map(|b| *b).unwrap_or_default();
        let watch_error = self.watch_error.lock().ok().and_then(|e| e.clone());
        let mut status = json!({
            "root": self.root.to_string_lossy(),
            "ready": index.is_some(),
            "building": { "files": files, "bytes": bytes },
            "watching": watch_error.is_none(),
            "watch_error": watch_error,
            "refused": self.refused,
            "inotify": budget::Usage::now().to_json(),
            "queries": self.queries.to_json(),
        });
        if let Some(index) = index {
            let stats = index.stats();
            status["files"] = json!(stats.files);
            status["bytes"] = json!(stats.bytes);
            status["trigrams"] = json!(stats.trigrams);
            status["index_bytes"] = json!(stats.index_bytes);
            status["dead_entries"] = json!(stats.dead_entries);
            status["updated_at"] = json!(index
                .updated_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default());
        }
        status
    }
}

/// Returns the allocator's free pages to the system (glibc's `malloc_trim`; elsewhere a
/// no-op).
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes a plain size, touches only the allocator's own state (it
        // is thread-safe: it takes each arena's lock) and has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A directory's (device, inode), `None` when it is gone.
fn identity_of(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// The name of a barrier file, if `path` is one.
fn cookie_name(root: &Path, path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (path.parent() == Some(root) && name.starts_with(COOKIE_PREFIX)).then(|| name.to_owned())
}

fn internal(message: &str) -> ErrorObject {
    ErrorObject::new(ErrorCode::InternalError, message.to_owned())
}
