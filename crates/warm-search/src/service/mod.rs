//! [`SearchService`]: the daemon side of `warm search`: builds the index when the daemon
//! starts, keeps it fresh from a file watcher, and answers which files may match.
//!
//! Methods (their types are in [`crate::protocol`]):
//! - [`CANDIDATES`] `{patterns, fixed_strings?}` → `{root, files, all}`: the files (relative
//!   to `root`, in path order) that may match, for the file system as it was when the request
//!   arrived; `all` when the patterns have no usable trigram. Instead, `{building: {files,
//!   bytes}}` while the first build runs (a stored index being loaded is waited for), or
//!   `{unwatched: reason}` when the root is never indexed: the client then scans. With no
//!   watcher (the user's inotify limit reached), the index is checked against the tree by
//!   metadata before each answer instead.
//! - [`STATUS`] → files, bytes, index size, last update, build progress; `refused` with the
//!   reason when the root is never indexed (`/`); the user's inotify usage; `queries`: how
//!   many were answered from the index, told to scan (`building`, `unwatched`), and how many
//!   barriers timed out; `work`: how the index was kept current (`builds`, in-place
//!   `updates`, new-directory `rescans`, `compactions`).
//!
//! Freshness uses a sync barrier in the manner of watchman's cookies: the request creates a
//! file in the root and waits until the indexer has seen its event. Watch events arrive in
//! order, so every change made before the request has been applied by then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use warm_daemon::{BoxFuture, Call, Service};
use warm_protocol::{ErrorCode, ErrorObject};
use warm_runtime::sync::Recover;
use warm_runtime::EventLog;

use crate::budget::{self, Peers};
use crate::index::Index;
use crate::protocol::{
    BuildProgress, Candidates, CandidatesParams, ExcludedEntry, WirePath, CANDIDATES, STATUS,
};
use crate::query::Query;

mod counters;
mod indexer;

use counters::{count, IndexCounters, QueryCounters};

/// How long a query waits for its barrier before answering from the index as it is.
const COOKIE_WAIT: Duration = Duration::from_secs(2);
/// How long a query waits for a stored index to be loaded and checked against the tree,
/// rather than scanning (a load takes a fraction of a scan; a build is not waited for).
const LOAD_WAIT: Duration = Duration::from_secs(5);
/// How long a new directory is rescanned at each barrier.
const RECENT_DIR: Duration = Duration::from_secs(5);

struct Shared {
    root: PathBuf,
    /// `None` until the first build is done.
    index: RwLock<Option<Index>>,
    built: watch::Sender<bool>,
    /// A stored index is being loaded (see [`LOAD_WAIT`]).
    loading: AtomicBool,
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
    /// Where the index is stored between daemons (`None`: never stored; see [`crate::store`]).
    store_path: Option<PathBuf>,
    /// Held while the index is being stored: one store at a time.
    storing: Mutex<()>,
    /// This service itself, for the threads it starts (set by the indexer thread).
    this: std::sync::OnceLock<std::sync::Weak<Shared>>,
    /// The root's (device, inode) at start: another means the directory was replaced.
    root_identity: Option<(u64, u64)>,
    /// Stops the daemon when the root is gone.
    shutdown: Option<warm_daemon::Shutdown>,
    /// The other daemons of this user, for the inotify budget (`None`: no budget kept, as
    /// for a search service embedded outside warm's runtime directory).
    peers: Option<Peers>,
    /// Directories created lately, rescanned at each barrier (see [`Refresh::Directories`]).
    recent_dirs: Mutex<Vec<(PathBuf, Instant)>>,
    /// How long a new directory stays in `recent_dirs`: [`RECENT_DIR`], or
    /// `WARM_SEARCH_TEST_RECENT_DIR_MS` for tests that must prove the watches alone keep the
    /// index right (the rescans would hide a directory left unwatched).
    recent_dir: Duration,
    /// The file watcher; dropped at shutdown, which ends the event stream and so the indexer
    /// thread.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    stopping: AtomicBool,
    events: EventLog,
    /// How each query was answered, for `search/status`: a fallback must never hide the path
    /// a user (or a test) meant to exercise.
    queries: QueryCounters,
    /// How the index was kept current (builds, in-place updates, rescans, compactions).
    work: IndexCounters,
    /// A pause before each batch of watch events is applied: `WARM_SEARCH_TEST_APPLY_DELAY_MS`,
    /// for tests that must prove the barrier waits for the indexer (zero otherwise).
    apply_delay: Duration,
}

pub struct SearchService {
    shared: Arc<Shared>,
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
        let store_path = crate::store::location(&root);
        let mut shared = Shared::new(root, events, peers, shutdown);
        if shared.refused.is_none() {
            // Queries wait for a stored index from the start: the indexer thread first sets
            // up the watcher, and a query meanwhile must not think a build is coming.
            let stored = store_path.as_ref().is_some_and(|path| path.exists());
            shared.loading = AtomicBool::new(stored);
            shared.store_path = store_path;
        }
        let shared = Arc::new(shared);
        if let Some(reason) = &shared.refused {
            tracing::warn!("{reason}");
            return SearchService { shared };
        }
        let (tx, rx) = mpsc::channel();
        // Watching starts before the walk, so no change made during the build is missed. Both
        // run on the indexer thread: adding a watch per directory takes a while on a large
        // tree, and the daemon answers meanwhile (queries scan until the index is ready).
        // The build yields to interactive work, but the watcher's own thread (created by
        // `watch`, and a thread takes its creator's nice value) must not: it drains the
        // kernel's event queue, which every file the build or a search opens adds to (notify
        // 8 asks for opens), and a queue that overflows loses events and costs a rebuild.
        let indexer = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("warm-search-indexer".into())
            .spawn(move || {
                indexer.watch(tx);
                crate::index::lower_priority();
                indexer.run(rx);
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the indexer thread");
        }
        SearchService { shared }
    }
}

impl Service for SearchService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            match call.method.as_str() {
                CANDIDATES => shared.candidates(call).await.and_then(|answer| {
                    serde_json::to_value(answer).map_err(|e| internal(&e.to_string()))
                }),
                STATUS => Ok(shared.status()),
                other => Err(ErrorObject::method_not_found(other)),
            }
        })
    }

    /// Stops the indexer, and stores what changed since the index was last stored, so that
    /// the next daemon reads again only what changes from now on.
    fn shutdown(&self) -> BoxFuture<()> {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.watcher.recover().take();
        let shared = self.shared.clone();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || shared.store_changes()).await;
        })
    }
}

/// A duration in milliseconds from the environment variable `name` (tests only).
fn test_duration(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
}

impl Shared {
    fn new(
        root: PathBuf,
        events: EventLog,
        peers: Option<Peers>,
        shutdown: Option<warm_daemon::Shutdown>,
    ) -> Shared {
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
        Shared {
            root_identity: identity_of(&root),
            store_path: None,
            storing: Mutex::new(()),
            this: std::sync::OnceLock::new(),
            root,
            index: RwLock::new(None),
            built: watch::channel(false).0,
            loading: AtomicBool::new(false),
            building: Mutex::new((0, 0)),
            cookies: Mutex::new(HashMap::new()),
            next_cookie: AtomicU64::new(0),
            watch_error: Mutex::new(None),
            refused,
            global_excludes: ignore::gitignore::gitconfig_excludes_path(),
            shutdown,
            peers,
            recent_dirs: Mutex::new(Vec::new()),
            recent_dir: test_duration("WARM_SEARCH_TEST_RECENT_DIR_MS").unwrap_or(RECENT_DIR),
            watcher: Mutex::new(None),
            stopping: AtomicBool::new(false),
            events,
            queries: QueryCounters::default(),
            work: IndexCounters::default(),
            apply_delay: test_duration("WARM_SEARCH_TEST_APPLY_DELAY_MS").unwrap_or_default(),
        }
    }

    async fn candidates(self: Arc<Self>, call: Call) -> Result<Candidates, ErrorObject> {
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
        if let Some(reason) = &self.refused {
            return Ok(self.scan_instead(reason.clone()));
        }
        let unwatched = self.watch_error.recover().clone();
        if let Some(reason) = unwatched {
            // No watcher to tell what changed: the index is checked against the tree by
            // metadata before each answer (a walk and a stat per file, no file read unless
            // it changed), which still beats reading every file.
            if !*self.built.borrow() && !self.wait_for_load().await {
                return Ok(self.scan_instead(reason));
            }
            count(&self.queries.validated);
            count(&self.queries.index);
            let shared = self.clone();
            return tokio::task::spawn_blocking(move || {
                shared.revalidate();
                shared.answer(&params)
            })
            .await
            .map_err(|e| internal(&e.to_string()))?;
        }
        // Until the first build is done, the client scans: a first query answered at
        // ripgrep's speed beats one that waits for the whole index. A stored index being
        // loaded is waited for: that takes a fraction of a scan.
        if !*self.built.borrow() && !self.wait_for_load().await {
            let (files, bytes) = *self.building.recover();
            count(&self.queries.building);
            return Ok(Candidates::Building {
                building: BuildProgress { files, bytes },
            });
        }
        if !self.barrier().await {
            // Never an answer from an index that may be stale: the client scans instead.
            return Ok(self.scan_instead(format!(
                "the index could not be shown current within {}s (the watcher lags, or the tree is read-only)",
                COOKIE_WAIT.as_secs()
            )));
        }
        count(&self.queries.index);
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.answer(&params))
            .await
            .map_err(|e| internal(&e.to_string()))?
    }

    /// The files of the index that may match (or why the client must scan).
    fn answer(&self, params: &CandidatesParams) -> Result<Candidates, ErrorObject> {
        let query = Query::for_patterns(&params.patterns, params.fixed_strings);
        // Poisoned by a panic mid-update: the next batch of events rebuilds it (see
        // `apply`); until then, a scan answers right.
        let Ok(guard) = self.index.read() else {
            return Ok(
                self.scan_instead("the index is being rebuilt after a failed update".to_owned())
            );
        };
        let index = guard
            .as_ref()
            .ok_or_else(|| internal("the index is not built"))?;
        let unindexed: Vec<WirePath> = params
            .scopes
            .iter()
            .filter(|scope| !index.has_dir(&scope.0))
            .cloned()
            .collect();
        if !unindexed.is_empty() {
            return Ok(Candidates::Unindexed { unindexed });
        }
        let files = index
            .candidates(&query)
            .into_iter()
            .map(WirePath::from)
            .collect();
        let excluded = if params.excluded {
            excluded_under(index, &params.scopes)
        } else {
            Vec::new()
        };
        Ok(Candidates::Files {
            root: self.root.to_string_lossy().into_owned(),
            files,
            all: query.is_all(),
            excluded,
        })
    }

    /// Checks the index against the tree by metadata (see [`Index::revalidate`]), for a
    /// query with no watcher to rely on. Queries take turns: each sees the tree as it was
    /// when its own check began.
    fn revalidate(&self) {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut guard = match self.index.write() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A check that panicked halfway left the index in doubt: a new one is built
                // (no watcher's batch of events will ever do it here).
                let mut guard = poisoned.into_inner();
                *guard = Some(Index::build(&self.root, threads, &|_, _| {}));
                self.index.clear_poison();
                count(&self.work.builds);
                guard
            }
        };
        let Some(index) = guard.as_mut() else {
            return;
        };
        let validation = index.revalidate(threads, &|_, _| {});
        if validation.changed() {
            count(&self.work.updates);
            index.updated_at = crate::index::stamp_now();
        }
        if index.needs_compaction() {
            index.compact();
            count(&self.work.compactions);
        }
    }

    /// Whether the index is ready after waiting for the stored one being loaded, if it is.
    async fn wait_for_load(&self) -> bool {
        if !self.loading.load(Ordering::Relaxed) {
            return false;
        }
        let mut built = self.built.subscribe();
        // Woken by the load's end too: a stored index rejected is built, which is not waited
        // for.
        let loading = &self.loading;
        let ended = async {
            let _ = built
                .wait_for(|built| *built || !loading.load(Ordering::Relaxed))
                .await;
        };
        let _ = tokio::time::timeout(LOAD_WAIT, ended).await;
        let ready = *self.built.borrow();
        ready
    }

    /// The answer that tells the client to scan, and why; counted.
    fn scan_instead(&self, reason: String) -> Candidates {
        count(&self.queries.unwatched);
        Candidates::Unwatched { unwatched: reason }
    }

    /// Returns once every change made to the tree before the call has been indexed: true. False
    /// after [`COOKIE_WAIT`] without the barrier's event (the watcher lags behind a large
    /// checkout, or lost events): then the index may be stale, and the query must not use it.
    async fn barrier(&self) -> bool {
        let n = self.next_cookie.fetch_add(1, Ordering::Relaxed);
        let name = warm_runtime::cookie::cookie_name(n);
        let (tx, rx) = oneshot::channel();
        self.cookies.recover().insert(name.clone(), tx);
        let path = self.root.join(&name);
        if std::fs::write(&path, b"").is_err() {
            // No barrier without a file: the index cannot be shown current.
            self.cookies.recover().remove(&name);
            return false;
        }
        let _ = std::fs::remove_file(&path);
        if tokio::time::timeout(COOKIE_WAIT, rx).await.is_err() {
            tracing::warn!("the watcher did not report the sync cookie in time; this query scans");
            count(&self.queries.barrier_timeouts);
            self.cookies.recover().remove(&name);
            return false;
        }
        true
    }

    fn status(&self) -> Value {
        let guard = self.index.read().ok();
        let index = guard.as_ref().and_then(|g| g.as_ref());
        let (files, bytes) = *self.building.recover();
        let watch_error = self.watch_error.recover().clone();
        let mut status = json!({
            "root": self.root.to_string_lossy(),
            "ready": index.is_some(),
            "building": { "files": files, "bytes": bytes },
            "watching": watch_error.is_none(),
            "watch_error": watch_error,
            "refused": self.refused,
            "inotify": budget::Usage::now().to_json(),
            "queries": self.queries.to_json(),
            "work": self.work.to_json(),
            "stored": self.store_path.as_ref().map(|path| json!({
                "path": path.to_string_lossy(),
                "bytes": std::fs::metadata(path).map(|m| m.len()).ok(),
            })),
        });
        if let Some(index) = index {
            let stats = index.stats();
            status["files"] = json!(stats.files);
            status["bytes"] = json!(stats.bytes);
            status["trigrams"] = json!(stats.trigrams);
            status["index_bytes"] = json!(stats.index_bytes);
            status["dead_entries"] = json!(stats.dead_entries);
            status["mapped_bytes"] = json!(stats.mapped_bytes);
            status["excluded_entries"] = json!(stats.excluded_entries);
            status["updated_at"] = json!(index
                .updated_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default());
        }
        status
    }
}

/// The excluded entries under any of `scopes` (all of them for none), once each, in path
/// order.
fn excluded_under(index: &Index, scopes: &[WirePath]) -> Vec<ExcludedEntry> {
    let root = [WirePath(PathBuf::new())];
    let scopes = if scopes.is_empty() { &root[..] } else { scopes };
    let mut entries: Vec<(&Path, bool)> = scopes
        .iter()
        .flat_map(|scope| index.excluded_under(&scope.0))
        .collect();
    entries.sort_unstable();
    entries.dedup();
    entries
        .into_iter()
        .map(|(path, dir)| ExcludedEntry {
            path: WirePath::from(path),
            dir,
        })
        .collect()
}

/// A directory's (device, inode), `None` when it is gone.
fn identity_of(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// The name of a barrier file, if `path` is one.
fn cookie_name(root: &Path, path: &Path) -> Option<String> {
    warm_runtime::cookie::as_cookie(root, path).map(str::to_owned)
}

fn internal(message: &str) -> ErrorObject {
    ErrorObject::new(ErrorCode::InternalError, message.to_owned())
}
