//! The indexer thread of the search service: it sets up the watcher, builds the index, then
//! applies watch events as they come, in order (refreshing what changed in place, rebuilding
//! only when events were lost or an ignore rule changed), and releases the queries' barriers
//! once everything before them is applied.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, Watcher};
use serde_json::json;
use warm_runtime::sync::{Recover, RecoverRw};

use super::counters::{add, count};
use super::{cookie_name, Shared};
use crate::budget;
use crate::index::{Index, Refresh};
use crate::store;

impl Shared {
    /// Starts watching the root; a failure is kept for the queries, which then scan.
    pub(super) fn watch(&self, tx: mpsc::Sender<notify::Result<notify::Event>>) {
        // Held while the watcher is created, so that two daemons cannot both take the last
        // instance the budget allows.
        let _admission = match self.peers.as_ref().map(|p| budget::admit(p, &self.events)) {
            Some(Err(no_room)) => {
                let reason = no_room.to_string();
                tracing::warn!("{reason}");
                self.events
                    .record("search.unwatched", json!({ "reason": reason }));
                *self.watch_error.recover() = Some(reason);
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
                *self.watcher.recover() = Some(watcher);
            }
            Ok(_) => {}
            Err(error) => {
                let reason = format!("cannot watch {}: {error}", self.root.display());
                tracing::warn!("{reason}; queries will scan instead of using the index");
                *self.watch_error.recover() = Some(reason);
            }
        }
    }

    /// The indexer thread: the first build, then watch events as they come.
    pub(super) fn run(self: Arc<Self>, rx: mpsc::Receiver<notify::Result<notify::Event>>) {
        let _ = self.this.set(Arc::downgrade(&self));
        let held = self.settle(&rx);
        if !self.load_stored() {
            self.rebuild("start");
        }
        self.release(held);
        while let Ok(first) = rx.recv() {
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            if !self.apply_delay.is_zero() {
                std::thread::sleep(self.apply_delay);
            }
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            add(&self.work.events, batch.len() as u64);
            self.apply_from(batch, Some(&rx));
        }
    }

    /// Reads and drops the watch events queued before a build, up to a sync cookie of its
    /// own: the build reads the whole tree after them, so nothing they say is news. Above all
    /// a queue overflow among them must not cost a second build: notify's thread reads nothing
    /// while it adds the watches of a large tree, and every file opened meanwhile (the first
    /// query's scan reads them all; notify 8 asks for opens) queues an event, past the
    /// kernel's 16,384. Returns the queries' cookies met on the way, to release once the build
    /// is done. A directory moved meanwhile may have cost notify watches: the root is watched
    /// again then.
    fn settle(&self, rx: &mpsc::Receiver<notify::Result<notify::Event>>) -> Vec<String> {
        let mut held = Vec::new();
        if self.watcher.recover().is_none() {
            return held;
        }
        let mut rewatch = Rewatch::No;
        let no_trackers = HashSet::new();
        // Each try needs room in the kernel's queue for its cookie's event.
        'tries: for _ in 0..3 {
            let n = self.next_cookie.fetch_add(1, Ordering::Relaxed);
            let name = warm_runtime::cookie::cookie_name(n);
            let path = self.root.join(&name);
            if std::fs::write(&path, b"").is_err() {
                break;
            }
            let _ = std::fs::remove_file(&path);
            let deadline = Instant::now() + super::COOKIE_WAIT;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let Ok(event) = rx.recv_timeout(left) else {
                    continue 'tries;
                };
                add(&self.work.events, 1);
                count(&self.work.settled);
                let Ok(event) = event else { continue };
                rewatch = rewatch.max(self.rewatch_for(&event, &no_trackers));
                for cookie in event
                    .paths
                    .iter()
                    .filter_map(|p| cookie_name(&self.root, p))
                {
                    if cookie == name {
                        break 'tries;
                    }
                    held.push(cookie);
                }
            }
        }
        if rewatch != Rewatch::No {
            self.rewatch(std::slice::from_ref(&self.root));
        }
        held
    }

    /// Releases the queries waiting for these barrier cookies.
    fn release(&self, cookies: Vec<String>) {
        let mut waiting = self.cookies.recover();
        for cookie in cookies {
            if let Some(tx) = waiting.remove(&cookie) {
                let _ = tx.send(());
            }
        }
    }

    /// Loads the index stored by an earlier daemon and brings it up to date with the tree
    /// (see [`Index::load`]): false when there is none to load, or it is rejected (it is
    /// removed then, and the caller builds). Queries wait for it meanwhile (`loading`).
    fn load_stored(&self) -> bool {
        let Some(path) = &self.store_path else {
            self.loading.store(false, Ordering::Relaxed);
            return false;
        };
        let started = Instant::now();
        let loaded = self.load_from(path, started);
        self.loading.store(false, Ordering::Relaxed);
        // Wakes the queries waiting for the load (see `Shared::wait_for_load`).
        self.built.send_modify(|_| {});
        loaded
    }

    fn load_from(&self, path: &std::path::Path, started: Instant) -> bool {
        let stored = match store::load(path, &self.root) {
            Ok(stored) => stored,
            Err(store::StoreError::Missing) => return false,
            Err(error) => {
                let why = error.to_string();
                tracing::warn!(path = %path.display(), "stored index rejected ({why}); building a new one");
                self.events.record(
                    "search.store_rejected",
                    json!({ "path": path.to_string_lossy(), "why": why }),
                );
                // A file that cannot be read (or sits in a directory that is not private) is
                // left where it is; one read and found wrong is removed.
                if !matches!(error, store::StoreError::Io(_)) {
                    let _ = std::fs::remove_file(path);
                }
                return false;
            }
        };
        let parse_ms = started.elapsed().as_millis() as u64;
        let (index, validation) = Index::load(&self.root, stored, threads(), &|files, bytes| {
            *self.building.recover() = (files, bytes);
        });
        let stats = index.stats();
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            files = stats.files,
            ?validation,
            parse_ms,
            ms,
            "stored index loaded"
        );
        self.events.record(
            "search.index",
            json!({ "why": "loaded", "files": stats.files, "bytes": stats.bytes,
                "kept": validation.kept, "read": validation.read, "dropped": validation.dropped,
                "ms": ms }),
        );
        count(&self.work.loads);
        self.publish(index);
        if validation.changed() {
            self.persist_in_background();
        } else {
            store::touch(path);
        }
        true
    }

    /// Stores the index if it changed since it was last stored (at shutdown).
    pub(super) fn store_changes(&self) {
        let dirty = self
            .index
            .read()
            .is_ok_and(|index| index.as_ref().is_some_and(Index::is_dirty));
        if dirty {
            self.persist(false);
        }
    }

    /// Stores the index in the cache directory; with `adopt`, then serves its posting lists
    /// from the stored file (mapped) and frees the heap's copies. The index is locked (for
    /// reading) only while the file is written, not while it is made durable.
    fn persist(&self, adopt: bool) {
        let Some(path) = &self.store_path else {
            return;
        };
        // One store at a time: a newer one waits for an older one to finish.
        let _storing = self.storing.recover();
        let started = Instant::now();
        let written = {
            // A poisoned index is never stored: it is rebuilt at the next batch.
            let Ok(guard) = self.index.read() else {
                return;
            };
            let Some(index) = guard.as_ref() else {
                return;
            };
            store::write(path, &self.root, &index.contents())
                .map(|pending| (pending, index.generation()))
        };
        let stored = written.and_then(|(pending, generation)| Ok((pending.commit()?, generation)));
        let (bytes, generation) = match stored {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "the index could not be stored");
                self.events.record(
                    "search.store_failed",
                    json!({ "path": path.to_string_lossy(), "error": error.to_string() }),
                );
                return;
            }
        };
        // Read back, and the old index dropped, outside the lock: queries go on meanwhile.
        let adopted = adopt
            && match store::load(path, &self.root) {
                Ok(stored) => {
                    let stored = Index::from_stored(&self.root, stored);
                    let replaced = self.index.write().ok().and_then(|mut index| {
                        index.as_mut().and_then(|i| i.adopt(stored, generation))
                    });
                    replaced.is_some()
                }
                Err(error) => {
                    tracing::warn!(%error, "the index just stored cannot be read back");
                    false
                }
            };
        count(&self.work.stores);
        self.events.record(
            "search.stored",
            json!({ "bytes": bytes, "ms": started.elapsed().as_millis() as u64, "mapped": adopted }),
        );
        if adopted {
            return_free_memory();
        }
        if let Some(dir) = path.parent() {
            store::evict(dir, path, store::CACHE_CAP);
        }
    }

    /// [`Shared::persist`] on a thread of its own, so that watch events (and the barriers of
    /// the queries waiting on them) are not held up while the index is written and synced.
    fn persist_in_background(&self) {
        let Some(shared) = self.this.get().and_then(std::sync::Weak::upgrade) else {
            // Not started as a service (a test's own `Shared`): stored in place.
            self.persist(true);
            return;
        };
        if self.store_path.is_none() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("warm-search-store".into())
            .spawn(move || shared.persist(true));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start a thread to store the index");
        }
    }

    fn rebuild(&self, why: &str) {
        let started = std::time::Instant::now();
        let index = Index::build(&self.root, threads(), &|files, bytes| {
            *self.building.recover() = (files, bytes);
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
        count(&self.work.builds);
        self.publish(index);
        self.persist_in_background();
    }

    /// Makes `index` the one queries read.
    fn publish(&self, index: Index) {
        // A whole new index: it also heals a lock poisoned by a panic mid-update (the one
        // lock here that is never recovered as it is, since a refresh may be half done).
        *self.index.write_recover() = Some(index);
        self.index.clear_poison();
        self.built.send_replace(true);
        // The old index and the build's buffers are free now, but scattered through the heap:
        // give the pages back, or the daemon's memory ratchets up with every rebuild.
        return_free_memory();
    }

    /// Applies a batch of watch events in order, then releases the barriers they carried.
    #[cfg(test)]
    fn apply(&self, batch: Vec<notify::Result<notify::Event>>) {
        self.apply_from(batch, None);
    }

    /// [`Shared::apply`], with the channel the batch came from: a rebuild first drops what it
    /// holds (see [`Shared::settle`]).
    fn apply_from(
        &self,
        batch: Vec<notify::Result<notify::Event>>,
        rx: Option<&mpsc::Receiver<notify::Result<notify::Event>>>,
    ) {
        let sorted = self.sort_events(batch);
        // A panic mid-update (caught, the daemon serves on) leaves the index in doubt.
        let mut rebuild = sorted
            .rebuild
            .or(self.index.is_poisoned().then_some("a failed update"));
        let rescan = !sorted.cookies.is_empty() && self.has_recent_dirs();
        let (mut compacted, mut new_dirs) = (false, Vec::new());
        // A batch of barrier cookies only (one per query) leaves the index as it is: no write
        // lock, so the queries reading it are not held up.
        if rebuild.is_none() && (!sorted.changed.is_empty() || rescan) {
            match self.index.write() {
                Ok(mut guard) => {
                    if let Some(index) = guard.as_mut() {
                        let ignore_rules_changed;
                        (ignore_rules_changed, compacted, new_dirs) =
                            self.update(index, &sorted.changed, rescan);
                        rebuild = ignore_rules_changed.then_some("an ignore file changed");
                    }
                }
                // A panic mid-update left the index in doubt: only a rebuild is safe.
                Err(_) => rebuild = Some("a failed update"),
            }
        }
        match sorted.rewatch {
            Rewatch::No => {}
            Rewatch::NewDirs if !new_dirs.is_empty() => self.rewatch(&new_dirs),
            Rewatch::NewDirs | Rewatch::Root => self.rewatch(std::slice::from_ref(&self.root)),
        }
        let mut cookies = sorted.cookies;
        if let Some(why) = rebuild {
            if let Some(rx) = rx {
                if sorted.lost_events {
                    // The lost events may have moved directories: see [`Shared::rewatch`].
                    self.rewatch(std::slice::from_ref(&self.root));
                }
                cookies.extend(self.settle(rx));
            }
            self.rebuild(why);
        } else if compacted {
            // The compacted lists are all in the heap: stored, they move to the page cache.
            self.persist_in_background();
        } else if sorted.changed.len() > 1000 {
            // A compaction, or a checkout's worth of refreshes: give back what the replaced
            // entries freed.
            return_free_memory();
        }
        self.release(cookies);
    }

    /// Watches `dirs` again (the top ones: a watch covers what is below), after events that
    /// show the watcher may have lost watches of its own.
    ///
    /// notify names each inotify watch by the path it had when it was added, and applies the
    /// watch changes a batch of events calls for only after the whole batch. Moving
    /// directories in quick succession (`mv z a; mv x a/b`) then loses watches: `x/`'s watch
    /// is the one `a/b` shares (inotify keeps one watch per inode), and removing the watch of
    /// the path `x`, gone, removes `a/b`'s; or `a/b` is reported, and watched, under the
    /// out-of-date name `z/b`. Nothing written in `a/b` would ever reach the index. Watching
    /// again walks the directories as they are now and adds every watch under its real path;
    /// notify's thread takes the request only after the batch these events came from, so no
    /// removal of that batch can undo it.
    fn rewatch(&self, dirs: &[PathBuf]) {
        let mut tops: Vec<&PathBuf> = Vec::new();
        let mut sorted: Vec<&PathBuf> = dirs.iter().collect();
        sorted.sort();
        for dir in sorted {
            if !tops.last().is_some_and(|top| dir.starts_with(top)) {
                tops.push(dir);
            }
        }
        let mut watcher = self.watcher.recover();
        let Some(watcher) = watcher.as_mut() else {
            return;
        };
        count(&self.work.rewatches);
        let relative: Vec<String> = tops
            .iter()
            .map(|dir| {
                dir.strip_prefix(&self.root)
                    .unwrap_or(dir)
                    .display()
                    .to_string()
            })
            .collect();
        self.events
            .record("search.rewatch", json!({ "dirs": relative }));
        for dir in tops {
            if let Err(error) = watcher.watch(dir, notify::RecursiveMode::Recursive) {
                // Gone again already: its removal has events of its own.
                tracing::debug!(%error, dir = %dir.display(), "not watched again");
            }
        }
    }

    /// Refreshes the changed paths in place, and rescans new directories when `rescan`:
    /// (whether only a rebuild is right, whether the index was compacted, the directories
    /// that appeared).
    fn update(
        &self,
        index: &mut Index,
        changed: &[PathBuf],
        rescan: bool,
    ) -> (bool, bool, Vec<PathBuf>) {
        let new_dirs = match self.refresh_all(index, changed) {
            Some(dirs) => dirs,
            None => return (true, false, Vec::new()),
        };
        if rescan {
            self.rescan_recent_dirs(index);
        }
        count(&self.work.updates);
        index.updated_at = crate::index::stamp_now();
        if !index.needs_compaction() {
            return (false, false, new_dirs);
        }
        index.compact();
        count(&self.work.compactions);
        (false, true, new_dirs)
    }

    /// Splits watch events into barrier cookies and changed paths, in order, and tells
    /// whether the watcher lost events or may have lost watches (see [`Shared::rewatch`]).
    fn sort_events(&self, batch: Vec<notify::Result<notify::Event>>) -> SortedEvents {
        let mut sorted = SortedEvents::default();
        let arrived: HashSet<usize> = batch
            .iter()
            .flatten()
            .filter(|e| matches!(e.kind, EventKind::Modify(ModifyKind::Name(RenameMode::To))))
            .filter_map(|e| e.attrs.tracker())
            .collect();
        for event in batch {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    // Lost events (e.g. a queue overflow).
                    tracing::warn!(%error, "watch error; rebuilding the index");
                    sorted.rebuild = Some("lost events (a watch error)");
                    sorted.lost_events = true;
                    continue;
                }
            };
            if event.need_rescan() {
                sorted.rebuild = Some("lost events (the kernel's event queue overflowed)");
                sorted.lost_events = true;
            }
            // Reads (ours included: indexing opens files) leave contents as they were. A
            // metadata change does not, in effect: `chmod` decides whether a file can be read.
            if matches!(event.kind, EventKind::Access(_)) {
                continue;
            }
            sorted.rewatch = sorted.rewatch.max(self.rewatch_for(&event, &arrived));
            for path in event.paths {
                if self.global_excludes.as_ref() == Some(&path) {
                    sorted.rebuild = Some("git's global excludes file changed");
                    continue;
                }
                match cookie_name(&self.root, &path) {
                    Some(cookie) => sorted.cookies.push(cookie),
                    None => sorted.changed.push(path),
                }
            }
        }
        sorted
    }

    /// What `event` says of the watcher's own watches: a directory of the index moved away
    /// (to where this batch shows, or not), or something appeared under a path whose
    /// directory does not exist (the watcher's name for it is out of date).
    fn rewatch_for(&self, event: &notify::Event, arrived: &HashSet<usize>) -> Rewatch {
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                let was_dir = event.paths.first().is_some_and(|path| {
                    let relative = path.strip_prefix(&self.root).unwrap_or(path);
                    let index = self.index.read_recover();
                    index.as_ref().is_some_and(|index| index.has_dir(relative))
                });
                match (was_dir, event.attrs.tracker()) {
                    (false, _) => Rewatch::No,
                    (true, Some(tracker)) if arrived.contains(&tracker) => Rewatch::NewDirs,
                    (true, _) => Rewatch::Root,
                }
            }
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                let stale = event
                    .paths
                    .first()
                    .and_then(|path| path.parent())
                    .is_some_and(|dir| std::fs::symlink_metadata(dir).is_err());
                if stale {
                    Rewatch::NewDirs
                } else {
                    Rewatch::No
                }
            }
            _ => Rewatch::No,
        }
    }

    /// Refreshes the changed paths: the directories walked (new ones), or `None` when only
    /// a rebuild is right.
    fn refresh_all(&self, index: &mut Index, changed: &[PathBuf]) -> Option<Vec<PathBuf>> {
        match index.refresh_all(changed) {
            Refresh::Done => Some(Vec::new()),
            Refresh::Rebuild => None,
            Refresh::Directories(dirs) => {
                let mut recent = self.recent_dirs.recover();
                let now = Instant::now();
                recent.extend(dirs.iter().map(|dir| (dir.clone(), now)));
                Some(dirs)
            }
        }
    }

    fn has_recent_dirs(&self) -> bool {
        let mut recent = self.recent_dirs.recover();
        recent.retain(|(_, at)| at.elapsed() < self.recent_dir);
        !recent.is_empty()
    }

    /// Rescans the directories created in the last few seconds, for files created in them
    /// before the watcher covered them.
    fn rescan_recent_dirs(&self, index: &mut Index) {
        let dirs: Vec<PathBuf> = self
            .recent_dirs
            .recover()
            .iter()
            .map(|(dir, _)| dir.clone())
            .collect();
        count(&self.work.rescans);
        // Walks only: what these find is already recorded as recent.
        let _ = index.refresh_all(&dirs);
    }
}

/// One batch of watch events, sorted.
#[derive(Default)]
struct SortedEvents {
    /// Barrier cookies seen, to release once the batch is applied.
    cookies: Vec<String>,
    /// Paths to refresh, in order.
    changed: Vec<PathBuf>,
    /// Why to rebuild: the watcher lost events, or an ignore file outside the tree changed.
    rebuild: Option<&'static str>,
    /// The watcher lost events.
    lost_events: bool,
    /// Which directories to watch again (see [`Shared::rewatch`]).
    rewatch: Rewatch,
}

/// Which directories a batch of events calls to watch again, least to most.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rewatch {
    #[default]
    No,
    /// The directories that appeared in the batch (the root when none did).
    NewDirs,
    /// The whole tree: a directory moved to a place no event showed.
    Root,
}

/// Threads to build or load an index on.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
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

#[cfg(test)]
mod tests {
    //! The indexer fed by hand-made watch events: each test decides exactly which events the
    //! watcher "saw", so the races these paths exist for are played out deterministically.

    use std::path::Path;
    use std::sync::atomic::AtomicU64;

    use notify::event::RenameMode;
    use notify::event::{AccessKind, CreateKind, DataChange, EventKind, Flag, ModifyKind};
    use notify::Event;
    use warm_runtime::EventLog;

    use super::*;
    use crate::query::Query;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        shared: Shared,
    }

    /// A built index of a project holding `a.rs`, with git's global excludes file at a path
    /// of the test's own.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("project");
        std::fs::create_dir(&root).expect("project");
        std::fs::write(root.join("a.rs"), "fn before() {}\n").expect("a.rs");
        let mut shared = Shared::new(
            root.clone(),
            EventLog::new(dir.path().join("events.jsonl")),
            None,
            None,
        );
        shared.global_excludes = Some(dir.path().join("global-ignore"));
        shared.rebuild("start");
        Fixture {
            _dir: dir,
            root,
            shared,
        }
    }

    fn event(kind: EventKind, path: &Path) -> notify::Result<Event> {
        Ok(Event::new(kind).add_path(path.to_owned()))
    }

    fn created(path: &Path) -> notify::Result<Event> {
        event(EventKind::Create(CreateKind::Any), path)
    }

    fn written(path: &Path) -> notify::Result<Event> {
        event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), path)
    }

    /// A barrier file's event, as a query's barrier makes it.
    fn cookie(root: &Path) -> notify::Result<Event> {
        created(&root.join(warm_runtime::cookie::cookie_name(1)))
    }

    /// The files the index says may contain `needle`.
    fn candidates(shared: &Shared, needle: &str) -> Vec<PathBuf> {
        let guard = shared.index.read().expect("index lock");
        let index = guard.as_ref().expect("built");
        let query = Query::for_patterns(&[needle.to_owned()], true);
        index
            .candidates(&query)
            .into_iter()
            .map(Path::to_owned)
            .collect()
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A queue overflow reported before the first build (as when the first query's scan
    /// opens every file while notify adds the watches) is dropped with what came before it,
    /// not answered by a second build once the first is done.
    #[test]
    fn events_queued_before_the_first_build_are_settled_not_rebuilt_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("project");
        std::fs::create_dir(&root).expect("project");
        std::fs::write(root.join("a.rs"), "fn before() {}\n").expect("a.rs");
        let shared = Arc::new(Shared::new(
            root.clone(),
            EventLog::new(dir.path().join("events.jsonl")),
            None,
            None,
        ));
        let (tx, rx) = mpsc::channel();
        let inject = tx.clone();
        shared.watch(tx);
        inject
            .send(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)))
            .expect("overflow");
        let indexer = shared.clone();
        let thread = std::thread::spawn(move || indexer.run(rx));
        // A query's barrier after the build: released once everything before it is applied.
        let (done, applied) = tokio::sync::oneshot::channel();
        let name = warm_runtime::cookie::cookie_name(999);
        shared.cookies.recover().insert(name.clone(), done);
        inject.send(created(&root.join(&name))).expect("cookie");
        // Waited for with a deadline: a cookie never released fails the test, not hangs it.
        let (released, waited) = mpsc::channel();
        std::thread::spawn(move || released.send(applied.blocking_recv()));
        waited
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the cookie released within 30 s")
            .expect("released");
        assert_eq!(get(&shared.work.builds), 1, "no second build");
        assert!(get(&shared.work.settled) >= 1);
        assert_eq!(candidates(&shared, "before"), [Path::new("a.rs")]);
        shared.stopping.store(true, Ordering::Relaxed);
        shared.watcher.recover().take();
        drop(inject);
        thread.join().expect("indexer thread");
    }

    #[test]
    fn a_file_created_in_a_new_directory_before_its_watch_is_found_at_the_next_barrier() {
        let Fixture { root, shared, .. } = &fixture();
        std::fs::create_dir(root.join("new")).expect("mkdir");
        shared.apply(vec![created(&root.join("new"))]);
        // Written after the directory's walk, before the watcher covered it: no event.
        std::fs::write(root.join("new/late.rs"), "fn needle() {}\n").expect("late.rs");
        assert!(candidates(shared, "needle").is_empty());

        shared.apply(vec![cookie(root)]);
        assert_eq!(candidates(shared, "needle"), [Path::new("new/late.rs")]);
        assert_eq!(get(&shared.work.rescans), 1);
        assert_eq!(get(&shared.work.builds), 1, "found without a rebuild");
    }

    #[test]
    fn barrier_cookies_and_reads_alone_never_take_the_write_lock() {
        let Fixture { root, shared, .. } = &fixture();
        let read = event(EventKind::Access(AccessKind::Any), &root.join("a.rs"));
        shared.apply(vec![cookie(root), read, cookie(root)]);
        shared.apply(vec![cookie(root)]);
        assert_eq!(get(&shared.work.updates), 0);
        assert_eq!(get(&shared.work.rescans), 0);
        assert_eq!(get(&shared.work.builds), 1);
    }

    #[test]
    fn changes_are_refreshed_in_place_and_only_lost_events_or_ignore_rules_rebuild() {
        let Fixture { root, shared, .. } = &fixture();
        std::fs::write(root.join("a.rs"), "fn after() {}\n").expect("a.rs");
        shared.apply(vec![written(&root.join("a.rs")), cookie(root)]);
        assert_eq!(candidates(shared, "after"), [Path::new("a.rs")]);
        assert!(candidates(shared, "before").is_empty());
        assert_eq!(
            (get(&shared.work.updates), get(&shared.work.builds)),
            (1, 1),
            "a changed file is refreshed, not rebuilt"
        );
        // One dead entry is far below what is worth compacting (over 1,024, and a sixteenth).
        assert_eq!(get(&shared.work.compactions), 0);

        let global_excludes = shared.global_excludes.clone().expect("set");
        let rebuilds: [Vec<notify::Result<Event>>; 4] = [
            vec![written(&root.join(".gitignore"))],
            vec![written(&global_excludes)],
            vec![Err(notify::Error::generic("queue overflow"))],
            vec![Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan))],
        ];
        for (n, batch) in rebuilds.into_iter().enumerate() {
            shared.apply(batch);
            assert_eq!(get(&shared.work.builds), n as u64 + 2, "batch {n} rebuilds");
        }
        assert_eq!(get(&shared.work.updates), 1, "a rebuild is not an update");
    }

    #[test]
    fn an_index_poisoned_by_a_panic_mid_update_is_rebuilt_at_the_next_batch() {
        let Fixture { root, shared, .. } = &fixture();
        let panicked = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _guard = shared.index.write();
                    panic!("a refresh that panics halfway");
                })
                .join()
        });
        assert!(panicked.is_err() && shared.index.is_poisoned());
        shared.apply(vec![cookie(root)]);
        assert!(!shared.index.is_poisoned());
        assert_eq!(get(&shared.work.builds), 2);
        assert_eq!(candidates(shared, "before"), [Path::new("a.rs")]);
    }

    fn renamed(mode: RenameMode, path: &Path, tracker: usize) -> Event {
        Event::new(EventKind::Modify(ModifyKind::Name(mode)))
            .add_path(path.to_owned())
            .set_tracker(tracker)
    }

    #[test]
    fn moved_directories_and_paths_under_missing_directories_call_for_watching_again() {
        let Fixture { root, shared, .. } = &fixture();
        std::fs::create_dir(root.join("d")).expect("d");
        std::fs::create_dir(root.join("g")).expect("g");
        shared.rebuild("test");
        std::fs::rename(root.join("d"), root.join("e")).expect("mv d e");
        let arrived: HashSet<usize> = [7].into();
        let rewatch = |event: &Event| shared.rewatch_for(event, &arrived);
        let from_dir = |tracker| renamed(RenameMode::From, &root.join("d"), tracker);
        assert_eq!(
            rewatch(&from_dir(7)),
            Rewatch::NewDirs,
            "moved where the batch shows"
        );
        assert_eq!(
            rewatch(&from_dir(8)),
            Rewatch::Root,
            "moved where no event shows"
        );
        let from_file = renamed(RenameMode::From, &root.join("a.rs"), 8);
        assert_eq!(rewatch(&from_file), Rewatch::No, "a file holds no watch");
        let to_stale = renamed(RenameMode::To, &root.join("d/b"), 7);
        assert_eq!(
            rewatch(&to_stale),
            Rewatch::NewDirs,
            "named under a directory gone"
        );
        let stale = created(&root.join("gone/f.rs")).expect("event");
        assert_eq!(rewatch(&stale), Rewatch::NewDirs);
        let fresh = created(&root.join("e/f.rs")).expect("event");
        assert_eq!(rewatch(&fresh), Rewatch::No);

        // Applied, with a watcher: the directory moved in is watched again when the batch
        // shows where it went, else the whole tree; nothing for a batch that calls for none.
        shared.watch(mpsc::channel().0);
        shared.apply(vec![created(&root.join("e/f.rs")), cookie(root)]);
        assert_eq!(get(&shared.work.rewatches), 0);
        let to_dir = renamed(RenameMode::To, &root.join("e"), 7);
        shared.apply(vec![Ok(from_dir(7)), Ok(to_dir)]);
        assert_eq!(rewatched(fixture_events(shared)), [vec!["e".to_owned()]]);
        std::fs::remove_dir(root.join("g")).expect("rm g");
        shared.apply(vec![Ok(renamed(RenameMode::From, &root.join("g"), 9))]);
        shared.apply(vec![created(&root.join("gone/f.rs"))]);
        let whole_tree = vec![String::new()];
        assert_eq!(
            rewatched(fixture_events(shared)),
            [vec!["e".to_owned()], whole_tree.clone(), whole_tree]
        );
        assert_eq!(get(&shared.work.rewatches), 3);
    }

    /// The event log's lines.
    fn fixture_events(shared: &Shared) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(shared.events.path()).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The directories of each `search.rewatch` event, in order.
    fn rewatched(events: Vec<serde_json::Value>) -> Vec<Vec<String>> {
        events
            .iter()
            .filter(|e| e["event"] == "search.rewatch")
            .map(|e| serde_json::from_value(e["dirs"].clone()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_watcher_set_up_as_the_service_stops_is_dropped_not_kept() {
        let Fixture { shared, .. } = &fixture();
        shared.watch(mpsc::channel().0);
        assert!(shared.watcher.recover().take().is_some(), "running: kept");

        shared.stopping.store(true, Ordering::Relaxed);
        shared.watch(mpsc::channel().0);
        // Kept, its inotify instance and watches would outlive the stopped service.
        assert!(shared.watcher.recover().is_none(), "stopping: dropped");
    }
}
