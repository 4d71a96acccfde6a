//! [`WatchedFiles`]: telling a server of files that changed on disk though no query named them.
//!
//! Some servers (pyright among them) read the project's files themselves and ask their client
//! to report changes: `client/registerCapability` for `workspace/didChangeWatchedFiles`, with
//! globs. warm watches the project from the moment the service starts (before the server is
//! spawned, so nothing the server reads can change unseen), keeps the paths that changed, and
//! before each query passes a barrier: it creates a cookie file in the root and waits until
//! the watcher reports it, so every change made before the query is in hand. The changes that
//! the server's globs match are sent as one `workspace/didChangeWatchedFiles`, queued on the
//! server's input ahead of the query.
//!
//! A server that registers no watchers (bash-language-server, pylsp) is told of the files of
//! its languages (its `languages` and `files` in `.warm.toml`, or the built-in table's), as an
//! editor's extension for it declares them: it reads the project too, and would otherwise
//! answer from files as they were when it started.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::Watcher;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use warm_protocol::{ErrorCode, ErrorObject};
use warm_runtime::cookie::{as_cookie, cookie_name};
use warm_runtime::sync::Recover;
use warm_worker::WorkerProcess;

use crate::uri::{file_uri, path_from_uri};

/// How long a query waits for its cookie before going on without the latest changes.
const COOKIE_WAIT: Duration = Duration::from_secs(2);
/// Changed paths kept between two queries at most; past it the oldest are dropped (and
/// logged): a server that registered watchers hears of the rest.
const MAX_PENDING: usize = 100_000;

/// LSP's `FileChangeType`.
const CREATED: u8 = 1;
const CHANGED: u8 = 2;
const DELETED: u8 = 3;

/// One glob a server asked to be told about, with the kinds of change it wants
/// (`WatchKind`: 1 create, 2 change, 4 delete).
struct Watch {
    glob: globset::GlobMatcher,
    /// For a `RelativePattern`: the directory the glob is relative to.
    base: Option<PathBuf>,
    kinds: u8,
}

impl Watch {
    fn matches(&self, path: &Path, change: u8) -> bool {
        let bit = match change {
            CREATED => 1,
            CHANGED => 2,
            _ => 4,
        };
        if self.kinds & bit == 0 {
            return false;
        }
        match &self.base {
            Some(base) => path
                .strip_prefix(base)
                .is_ok_and(|inside| self.glob.is_match(inside)),
            None => self.glob.is_match(path),
        }
    }
}

#[derive(Default)]
struct State {
    /// Paths changed since the last query, and whether one of the events created it.
    changed: BTreeMap<PathBuf, bool>,
    dropped: u64,
    cookies: HashMap<String, oneshot::Sender<()>>,
    /// The servers' registrations: by server process, by registration id.
    watches: HashMap<u32, HashMap<String, Vec<Watch>>>,
}

/// What [`WatchedFiles::flush`] found.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Whether a file the server reads changed since the last flush (one its globs match,
    /// or of its languages): not the caches and logs tools write into a project (clangd's
    /// `.cache/clangd`, `__pycache__`), which would make every query look like one after a
    /// change.
    pub any: bool,
    /// Files of the server's languages that changed, when the server registered no
    /// watchers: it may not read `didChangeWatchedFiles` at all (bash-language-server does
    /// not), so the caller opens them, which every server reads.
    pub unwatched: Vec<PathBuf>,
}

/// The files a server that registered no watchers is told of.
struct Served {
    languages: Vec<String>,
    files: globset::GlobSet,
}

impl Served {
    fn matches(&self, root: &Path, path: &Path) -> bool {
        let relative = path.strip_prefix(root).unwrap_or(path);
        if relative.starts_with(".git") {
            return false;
        }
        if self.languages.is_empty() && self.files.is_empty() {
            return true;
        }
        crate::servers::language_of(path).is_some_and(|l| self.languages.iter().any(|s| s == l))
            || self.files.is_match(relative)
            || path.file_name().is_some_and(|n| self.files.is_match(n))
    }
}

pub struct WatchedFiles {
    root: PathBuf,
    served: Served,
    state: Arc<Mutex<State>>,
    /// `None` when the project could not be watched (then nothing is sent).
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    next_cookie: AtomicU64,
}

impl WatchedFiles {
    /// Starts watching `root` (recursively, not following links) for a server of
    /// `languages` and `files` (globs). When the watch cannot be made (no inotify instance
    /// left), servers are not told of unopened files' changes and the reason is logged.
    pub fn start(root: &Path, languages: &[String], files: &[String]) -> WatchedFiles {
        let mut globs = globset::GlobSetBuilder::new();
        for pattern in files {
            if let Ok(glob) = globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
            {
                globs.add(glob);
            }
        }
        let served = Served {
            languages: languages.to_vec(),
            files: globs.build().unwrap_or_else(|_| globset::GlobSet::empty()),
        };
        let state = Arc::new(Mutex::new(State::default()));
        let handler_state = state.clone();
        let handler_root = root.to_owned();
        let handler = move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                record(&handler_root, &handler_state, event);
            }
        };
        let config = notify::Config::default().with_follow_symlinks(false);
        let watcher = notify::RecommendedWatcher::new(handler, config).and_then(|mut watcher| {
            watcher.watch(root, notify::RecursiveMode::Recursive)?;
            Ok(watcher)
        });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the project: servers are told only of the files queries name");
                None
            }
        };
        WatchedFiles {
            root: root.to_owned(),
            served,
            state,
            watcher: Mutex::new(watcher),
            next_cookie: AtomicU64::new(0),
        }
    }

    /// Records the watchers of a `client/registerCapability` (other registrations are
    /// ignored).
    pub fn register(&self, pid: u32, params: Option<&Value>) {
        let registrations = params
            .and_then(|p| p.get("registrations"))
            .and_then(Value::as_array);
        let mut state = self.state.recover();
        for registration in registrations.into_iter().flatten() {
            if registration.get("method").and_then(Value::as_str)
                != Some("workspace/didChangeWatchedFiles")
            {
                continue;
            }
            let id = registration
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let watchers = registration
                .pointer("/registerOptions/watchers")
                .and_then(Value::as_array);
            let watches: Vec<Watch> = watchers.into_iter().flatten().filter_map(watch).collect();
            tracing::debug!(pid, id, globs = watches.len(), "server watches files");
            state.watches.entry(pid).or_default().insert(id, watches);
        }
    }

    /// Forgets the watchers of a `client/unregisterCapability`.
    pub fn unregister(&self, pid: u32, params: Option<&Value>) {
        // The protocol spells it so.
        let unregistrations = params
            .and_then(|p| p.get("unregisterations"))
            .and_then(Value::as_array);
        let mut state = self.state.recover();
        let Some(watches) = state.watches.get_mut(&pid) else {
            return;
        };
        for unregistration in unregistrations.into_iter().flatten() {
            if let Some(id) = unregistration.get("id").and_then(Value::as_str) {
                watches.remove(id);
            }
        }
    }

    /// Tells `worker` of every file its globs match that changed on disk before this call:
    /// passes the barrier, then queues one `workspace/didChangeWatchedFiles`. A server that
    /// registered no watchers is told of the files it serves, and they are returned for the
    /// caller to open. Says whether a file the server reads changed since the last call:
    /// it may answer differently now.
    ///
    /// # Errors
    /// -32002 when the server takes no more input.
    ///
    /// # Cancellation safety
    /// Dropped before the notification is queued, the changes taken are lost to this server;
    /// they were made before a query that was itself dropped.
    pub async fn flush(&self, worker: &WorkerProcess) -> Result<Flushed, ErrorObject> {
        self.barrier().await;
        let (changed, dropped) = {
            let mut state = self.state.recover();
            state.watches.retain(|pid, _| *pid == worker.pid);
            (
                std::mem::take(&mut state.changed),
                std::mem::take(&mut state.dropped),
            )
        };
        if dropped > 0 {
            tracing::warn!(dropped, "more changed paths than kept between queries");
        }
        let mut flushed = Flushed {
            any: dropped > 0,
            unwatched: Vec::new(),
        };
        let changes: Vec<Value> = {
            let state = self.state.recover();
            let registered = state
                .watches
                .get(&worker.pid)
                .filter(|w| w.values().any(|w| !w.is_empty()));
            changed
                .into_iter()
                .filter_map(|(path, created)| {
                    let change = match (path.exists(), created) {
                        (true, true) => CREATED,
                        (true, false) => CHANGED,
                        (false, _) => DELETED,
                    };
                    let wanted = match registered {
                        Some(watches) => {
                            watches.values().flatten().any(|w| w.matches(&path, change))
                        }
                        None => self.served.matches(&self.root, &path),
                    };
                    flushed.any |= wanted;
                    if wanted && registered.is_none() && change != DELETED && path.is_file() {
                        flushed.unwatched.push(path.clone());
                    }
                    wanted.then(|| json!({ "uri": file_uri(&path), "type": change }))
                })
                .collect()
        };
        if changes.is_empty() {
            return Ok(flushed);
        }
        tracing::debug!(
            changes = changes.len(),
            "telling the server of changed files"
        );
        let params = json!({ "changes": changes });
        if worker
            .notify("workspace/didChangeWatchedFiles", params)
            .await
        {
            Ok(flushed)
        } else {
            Err(ErrorObject::new(
                ErrorCode::WorkerUnavailable,
                "worker unavailable: the language server takes no more input",
            ))
        }
    }

    /// Waits until the watcher has reported every change made before this call; false when
    /// it could not be shown (no watcher, the cookie could not be made, or it came late).
    async fn barrier(&self) -> bool {
        if self.watcher.recover().is_none() {
            return false;
        }
        let name = cookie_name(self.next_cookie.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.state.recover().cookies.insert(name.clone(), tx);
        let path = self.root.join(&name);
        if std::fs::write(&path, b"").is_err() {
            self.state.recover().cookies.remove(&name);
            return false;
        }
        let _ = std::fs::remove_file(&path);
        if tokio::time::timeout(COOKIE_WAIT, rx).await.is_err() {
            tracing::warn!("the watcher did not report the sync cookie in time");
            self.state.recover().cookies.remove(&name);
            return false;
        }
        true
    }
}

/// Notes one watch event: a cookie releases its barrier, anything else is a changed path.
fn record(root: &Path, state: &Mutex<State>, event: notify::Event) {
    let created = match event.kind {
        EventKind::Access(_) => return,
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => true,
        _ => false,
    };
    let mut state = state.recover();
    for path in event.paths {
        if let Some(name) = as_cookie(root, &path) {
            if let Some(waiting) = state.cookies.remove(name) {
                let _ = waiting.send(());
            }
            continue;
        }
        if state.changed.len() >= MAX_PENDING && !state.changed.contains_key(&path) {
            state.dropped += 1;
            continue;
        }
        *state.changed.entry(path).or_default() |= created;
    }
}

/// A `FileSystemWatcher` (`{globPattern, kind?}`), or `None` when its glob is not one.
fn watch(watcher: &Value) -> Option<Watch> {
    let (pattern, base) = match watcher.get("globPattern")? {
        Value::String(pattern) => (pattern.as_str(), None),
        relative => {
            let base = relative.get("baseUri")?;
            let base = base
                .as_str()
                .or_else(|| base.get("uri").and_then(Value::as_str))?;
            (
                relative.get("pattern")?.as_str()?,
                Some(path_from_uri(base)?),
            )
        }
    };
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .ok()?
        .compile_matcher();
    let kinds = watcher
        .get("kind")
        .and_then(Value::as_u64)
        .map_or(7, |k| k as u8);
    Some(Watch { glob, base, kinds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_relative_patterns_match_as_servers_mean_them() {
        let any_py = watch(&json!({ "globPattern": "**/*.{py,pyi}" })).expect("a glob");
        assert!(any_py.matches(Path::new("/p/src/a.py"), CHANGED));
        assert!(!any_py.matches(Path::new("/p/src/a.rs"), CHANGED));
        let relative = watch(&json!({
            "globPattern": { "baseUri": "file:///p/src", "pattern": "*.h" },
            "kind": 4,
        }))
        .expect("a relative pattern");
        assert!(relative.matches(Path::new("/p/src/a.h"), DELETED));
        assert!(
            !relative.matches(Path::new("/p/src/a.h"), CHANGED),
            "deletes only"
        );
        assert!(!relative.matches(Path::new("/p/other/a.h"), DELETED));
    }

    #[tokio::test]
    async fn a_change_made_before_the_barrier_is_in_hand_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let watched = WatchedFiles::start(&root, &["python".to_owned()], &[]);
        std::fs::write(root.join("a.py"), "x = 1\n").expect("write");
        assert!(watched.barrier().await, "the watcher reports the cookie");
        let state = watched.state.recover();
        assert_eq!(state.changed.get(&root.join("a.py")), Some(&true));
        assert!(
            state.changed.keys().all(|p| as_cookie(&root, p).is_none()),
            "cookies are not changes"
        );
    }
}
