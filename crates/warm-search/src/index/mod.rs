//! [`Index`]: the project's files (by ripgrep's rules) and, for each trigram, the files that
//! contain it. File contents are not kept: candidates are verified by reading them.
//!
//! Files change by replacement: a changed file's old entry is marked dead and a new entry
//! (with a new, larger id) is added, so posting lists only ever grow at their end. When dead
//! entries outnumber live ones the index is rebuilt from the live files.
//!
//! The posting lists live in two places: those of the stored index the daemon loaded or last
//! wrote ([`Base`], mapped from the cache directory: see [`persist`]), for the ids below
//! its count, and in the heap for the files read since, whose ids all come after.

mod persist;
mod walk;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::SystemTime;

use rustc_hash::FxHashMap;

use crate::excluded::Excluded;
use crate::query::Query;
use crate::store::{Base, Stamp};
use crate::trigram::{self, Extractor, Postings};

/// Bytes read at a time when indexing a file.
const READ_CHUNK: usize = 256 * 1024;

struct Entry {
    /// Relative to the root.
    path: PathBuf,
    size: u64,
    alive: bool,
    /// The file's metadata when it was read (`None`: read it again when the index is next
    /// loaded; see [`Stamp::settled`]).
    stamp: Option<Stamp>,
}

/// What reading a file for the index found.
enum FileRead {
    Indexed {
        size: u64,
        trigrams: Vec<u32>,
        stamp: Option<Stamp>,
    },
    /// A candidate for every query: it exists but cannot be read (permissions), so that the
    /// search reports the error as rg does rather than skipping the file in silence; or its
    /// bytes are not the text ripgrep searches (UTF-16 with a byte-order mark, which ripgrep
    /// transcodes).
    Unreadable,
    /// Gone, or not a regular file: not part of the index.
    Skipped,
}

pub struct Index {
    root: PathBuf,
    entries: Vec<Entry>,
    by_path: HashMap<PathBuf, u32>,
    /// The lists of the ids from `base.ids` on (all of them without a base).
    postings: FxHashMap<u32, Postings>,
    /// The stored index's lists, for the ids below its count.
    base: Option<Base>,
    /// Changed since it was last stored.
    dirty: bool,
    /// Changes with every change, unique across all indexes of the process (see
    /// [`Index::generation`]).
    generation: u64,
    /// Directories the walk entered (relative; "" is the root): a file is part of the
    /// project when its directory is one of these and the rules let it through.
    dirs: HashSet<PathBuf>,
    /// What the walk left out of those directories (ignored or hidden), by name.
    excluded: Excluded,
    live_files: usize,
    live_bytes: u64,
    /// Entries that could not be read (see [`FileRead::Unreadable`]); dead ones are skipped.
    unreadable: Vec<u32>,
    pub updated_at: SystemTime,
}

/// `files` and `bytes` indexed so far, reported while building.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Done,
    /// It walked these directories (absolute). Files created in a new one before the watcher
    /// watched it may have been missed by the walk too: rescan them once more at the next
    /// barrier.
    Directories(Vec<PathBuf>),
    /// An ignore file changed: only a rebuild gives the right set of files.
    Rebuild,
}

/// Numbers for `warm search --status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub files: usize,
    pub bytes: u64,
    pub trigrams: usize,
    pub index_bytes: usize,
    pub dead_entries: usize,
    /// Bytes of the stored index mapped (in the page cache, not the heap).
    pub mapped_bytes: usize,
    /// Ignored and hidden entries of the directories indexed, known by name only.
    pub excluded_entries: usize,
}

impl Index {
    /// Walks `root` with ripgrep's default rules and indexes every file, on `threads`
    /// threads.
    pub fn build(root: &Path, threads: usize, progress: Progress<'_>) -> Index {
        let mut index = Index::empty(root);
        let files = index.walk(root, threads);
        index.add_files(files, threads, progress);
        index
    }

    fn empty(root: &Path) -> Index {
        Index {
            root: root.to_owned(),
            entries: Vec::new(),
            by_path: HashMap::new(),
            postings: FxHashMap::default(),
            base: None,
            dirty: true,
            generation: next_generation(),
            dirs: HashSet::new(),
            excluded: Excluded::default(),
            live_files: 0,
            live_bytes: 0,
            unreadable: Vec::new(),
            updated_at: stamp_now(),
        }
    }

    /// Files under `dir` (absolute) by the rules, recording the directories entered.
    ///
    /// A walk follows its starting path when it is a symlink, which rg's walk never does
    /// below the root: a directory that became a link (to an ancestor, say) between the read
    /// of its parent and this walk is not walked, and one that became a link during the walk
    /// yields nothing (its replacement has events of its own).
    ///
    /// With more than one thread, the walk and the listing of each directory's excluded
    /// entries run on `threads` threads (a whole tree, at a build or a load).
    fn walk(&mut self, dir: &Path, threads: usize) -> Vec<PathBuf> {
        self.walk_with(dir, threads, false).files
    }

    /// [`Index::walk`], with each file's stamp if `stamps`.
    fn walk_with(&mut self, dir: &Path, threads: usize, stamps: bool) -> walk::Walked {
        if dir != self.root && is_symlink(dir) {
            return walk::Walked::default();
        }
        let mut walked = walk::tree(&self.root, dir, threads, stamps);
        if dir != self.root && is_symlink(dir) {
            return walk::Walked::default();
        }
        let listings = walk::listings(&self.root, &walked.dirs, threads);
        let admitted: HashSet<&Path> = (walked.files.iter().chain(&walked.dirs))
            .map(PathBuf::as_path)
            .collect();
        for listing in listings {
            self.excluded.record(listing, &admitted);
        }
        drop(admitted);
        self.dirs.extend(std::mem::take(&mut walked.dirs));
        walked
    }

    /// Reads and indexes `files` (relative paths) in parallel; adds them in order.
    fn add_files(&mut self, files: Vec<PathBuf>, threads: usize, progress: Progress<'_>) {
        if threads <= 1 {
            // A refresh, on the indexer thread itself: a thread per batch of changes would
            // give the allocator a new arena each time, and the daemon's memory would creep
            // up under churn.
            let mut extractor = Extractor::default();
            let mut buffer = vec![0; READ_CHUNK];
            for path in files {
                let read = read_trigrams(&self.root.join(&path), &mut extractor, &mut buffer);
                self.add_read(path, read);
            }
            self.updated_at = stamp_now();
            return;
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) = mpsc::sync_channel::<(usize, FileRead)>(1024);
        let root = self.root.clone();
        let root = &root;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let (tx, next, files) = (tx.clone(), &next, &files);
                scope.spawn(move || {
                    lower_priority();
                    let mut extractor = Extractor::default();
                    let mut buffer = vec![0; READ_CHUNK];
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = files.get(i) else {
                            return;
                        };
                        let read = read_trigrams(&root.join(path), &mut extractor, &mut buffer);
                        if tx.send((i, read)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            // Ids must ascend along each posting list: results are added in file order.
            let mut pending: HashMap<usize, FileRead> = HashMap::new();
            let mut next_to_add = 0;
            let (mut done_files, mut done_bytes) = (0u64, 0u64);
            for (i, read) in rx {
                pending.insert(i, read);
                while let Some(read) = pending.remove(&next_to_add) {
                    done_bytes += self.add_read(files[next_to_add].clone(), read);
                    done_files += 1;
                    next_to_add += 1;
                    if done_files % 256 == 0 {
                        progress(done_files, done_bytes);
                    }
                }
            }
            progress(done_files, done_bytes);
        });
        for postings in self.postings.values_mut() {
            postings.shrink();
        }
        self.updated_at = stamp_now();
    }

    /// Adds what reading `path` found; returns the bytes indexed.
    fn add_read(&mut self, path: PathBuf, read: FileRead) -> u64 {
        match read {
            FileRead::Indexed {
                size,
                trigrams,
                stamp,
            } => {
                self.insert(path, size, &trigrams, stamp);
                size
            }
            FileRead::Unreadable => {
                let id = self.insert(path, 0, &[], None);
                self.unreadable.push(id);
                0
            }
            FileRead::Skipped => 0,
        }
    }

    fn insert(&mut self, path: PathBuf, size: u64, trigrams: &[u32], stamp: Option<Stamp>) -> u32 {
        if let Some(old) = self.by_path.get(&path).copied() {
            self.kill(old);
        }
        let id = self.entries.len() as u32;
        for &trigram in trigrams {
            self.postings.entry(trigram).or_default().push(id);
        }
        self.by_path.insert(path.clone(), id);
        self.entries.push(Entry {
            path,
            size,
            alive: true,
            stamp,
        });
        self.live_files += 1;
        self.live_bytes += size;
        self.note_change();
        id
    }

    fn note_change(&mut self) {
        self.dirty = true;
        self.generation = next_generation();
    }

    fn kill(&mut self, id: u32) {
        if let Some(entry) = self.entries.get_mut(id as usize).filter(|e| e.alive) {
            entry.alive = false;
            self.live_files -= 1;
            self.live_bytes -= entry.size;
            self.note_change();
        }
    }

    /// Brings the index up to date with `paths` (absolute), each of which changed in some way:
    /// created, modified, deleted, renamed from or to, or its permissions changed. A directory
    /// among them is looked at again whole (it may be another directory now: `mv a t; mv b a`).
    ///
    /// Linear in the number of paths and the sizes of their directories: each directory
    /// holding changed paths is read once, however many of its entries changed.
    pub fn refresh_all(&mut self, paths: &[PathBuf]) -> Refresh {
        let mut relative: Vec<PathBuf> = paths
            .iter()
            .filter_map(|p| p.strip_prefix(&self.root).ok().map(Path::to_owned))
            .collect();
        if relative.iter().any(|r| is_ignore_file(r)) {
            return Refresh::Rebuild;
        }
        relative.sort();
        relative.dedup();
        // A path under another changed path is covered when that one is looked at again.
        let mut kept: Vec<PathBuf> = Vec::with_capacity(relative.len());
        for path in relative {
            if path.as_os_str().is_empty() {
                // The root itself: its entries have events of their own.
                continue;
            }
            if kept.last().is_some_and(|last| path.starts_with(last)) {
                continue;
            }
            kept.push(path);
        }
        let mut walked = Vec::new();
        let mut by_parent: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        for path in kept {
            self.forget(&path);
            if let Some(parent) = path.parent().filter(|p| self.dirs.contains(*p)) {
                by_parent.entry(parent.to_owned()).or_default().push(path);
            }
        }
        for (parent, children) in by_parent {
            // One read of the directory tells which of its changed entries the rules admit,
            // and what each is now.
            // Only directories and regular files: a symlink is not followed (as rg's walk
            // does not), nor is a FIFO or a socket read.
            let admitted: HashMap<PathBuf, bool> = walker(&self.root.join(&parent))
                .max_depth(Some(1))
                .build()
                .flatten()
                .filter(|e| e.depth() == 1)
                .filter_map(|e| {
                    let kind = e.file_type().filter(|k| k.is_dir() || k.is_file())?;
                    let relative = e.path().strip_prefix(&self.root).ok()?.to_owned();
                    Some((relative, kind.is_dir()))
                })
                .collect();
            let mut files = Vec::new();
            for child in children {
                match admitted.get(&child) {
                    Some(true) => {
                        let dir = self.root.join(&child);
                        files.extend(self.walk(&dir, 1));
                        walked.push(dir);
                    }
                    Some(false) => files.push(child),
                    None => self.excluded.note(&self.root, &child),
                }
            }
            self.add_files(files, 1, &|_, _| {});
        }
        if walked.is_empty() {
            Refresh::Done
        } else {
            Refresh::Directories(walked)
        }
    }

    /// Drops `relative` and everything under it.
    fn forget(&mut self, relative: &Path) {
        self.excluded.forget(relative);
        if let Some(id) = self.by_path.remove(relative) {
            self.kill(id);
        }
        if self.dirs.remove(relative) {
            let under: Vec<PathBuf> = self
                .by_path
                .keys()
                .filter(|p| p.starts_with(relative))
                .cloned()
                .collect();
            for path in under {
                if let Some(id) = self.by_path.remove(&path) {
                    self.kill(id);
                }
            }
            self.dirs.retain(|d| !d.starts_with(relative));
        }
    }

    /// Whether dead entries are worth a [`Index::compact`]: past a sixteenth of the live ones
    /// (and a thousand), so that the index stays within ~1.2x of a fresh build's memory.
    pub fn needs_compaction(&self) -> bool {
        let dead = self.entries.len() - self.live_files;
        dead > 1024 && dead * 16 > self.live_files
    }

    /// Drops the dead entries without reading a file: the live ones are numbered again in
    /// their order, and each posting list is rewritten without dead ids and sized to fit, so
    /// the index holds what a fresh build of the same files would. Linear in the postings.
    pub fn compact(&mut self) {
        let mut renumbered = vec![None; self.entries.len()];
        let mut live = Vec::with_capacity(self.live_files);
        for (old, entry) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if entry.alive {
                renumbered[old] = u32::try_from(live.len()).ok();
                live.push(entry);
            }
        }
        self.entries = live;
        let new_id = |id: u32| renumbered.get(id as usize).copied().flatten();
        let trigrams = self.trigrams();
        let mut postings = FxHashMap::with_capacity_and_hasher(trigrams.len(), Default::default());
        for trigram in trigrams {
            let mut kept = Postings::default();
            for id in self.list(trigram).into_iter().filter_map(new_id) {
                kept.push(id);
            }
            if !kept.is_empty() {
                kept.shrink();
                postings.insert(trigram, kept);
            }
        }
        self.postings = postings;
        self.base = None;
        self.note_change();
        self.unreadable = self
            .unreadable
            .iter()
            .filter_map(|&id| new_id(id))
            .collect();
        self.by_path.retain(|_, id| match new_id(*id) {
            Some(new) => {
                *id = new;
                true
            }
            None => false,
        });
        self.by_path.shrink_to_fit();
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether ripgrep's walk from the root enters `dir` (relative; `""` is the root), so
    /// that the index holds its files.
    pub fn has_dir(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || self.dirs.contains(dir)
    }

    /// What the walk left out of the directories it entered under `scope` (relative), with
    /// `true` for a directory: see [`Excluded`].
    pub fn excluded_under<'a>(
        &'a self,
        scope: &'a Path,
    ) -> impl Iterator<Item = (&'a Path, bool)> + 'a {
        self.excluded.under(scope)
    }

    /// Files that may match `query`, as paths relative to the root, in path order.
    pub fn candidates(&self, query: &Query) -> Vec<&Path> {
        let ids = match self.evaluate(query) {
            Some(ids) => trigram::union(&ids, &self.unreadable),
            None => (0..self.entries.len() as u32).collect(),
        };
        let mut paths: Vec<&Path> = ids
            .into_iter()
            .filter_map(|id| self.entries.get(id as usize))
            .filter(|e| e.alive)
            .map(|e| e.path.as_path())
            .collect();
        paths.sort_unstable();
        paths
    }

    /// Ids selected by the query; `None` means all.
    fn evaluate(&self, query: &Query) -> Option<Vec<u32>> {
        match query {
            Query::All => None,
            Query::Trigram(t) => Some(self.list(*t)),
            Query::And(parts) => {
                let mut lists: Vec<Vec<u32>> =
                    parts.iter().filter_map(|p| self.evaluate(p)).collect();
                lists.sort_by_key(Vec::len);
                let mut lists = lists.into_iter();
                let first = lists.next()?;
                Some(lists.fold(first, |acc, list| trigram::intersect(&acc, &list)))
            }
            Query::Or(parts) => {
                let mut acc = Vec::new();
                for part in parts {
                    acc = trigram::union(&acc, &self.evaluate(part)?);
                }
                Some(acc)
            }
        }
    }

    /// The ids of the files holding `trigram`, ascending: the stored ones, then the heap's.
    fn list(&self, trigram: u32) -> Vec<u32> {
        let mut ids = Vec::new();
        if let Some(list) = self.base.as_ref().and_then(|base| base.get(trigram)) {
            list.decode_into(&mut ids);
        }
        if let Some(list) = self.postings.get(&trigram) {
            list.as_ref().decode_into(&mut ids);
        }
        ids
    }

    /// Every trigram some file holds, ascending.
    fn trigrams(&self) -> Vec<u32> {
        let mut trigrams: Vec<u32> = self.postings.keys().copied().collect();
        if let Some(base) = &self.base {
            trigrams.extend(base.iter().map(|(trigram, _)| trigram));
        }
        trigrams.sort_unstable();
        trigrams.dedup();
        trigrams
    }

    pub fn stats(&self) -> Stats {
        let postings: usize = self.postings.values().map(Postings::heap_bytes).sum();
        let table = self.postings.capacity() * (4 + std::mem::size_of::<Postings>());
        let entries: usize = self
            .entries
            .iter()
            .map(|e| std::mem::size_of::<Entry>() + e.path.as_os_str().len())
            .sum();
        let paths: usize = self.by_path.keys().map(|p| p.as_os_str().len() + 32).sum();
        let trigrams = match &self.base {
            Some(base) => base.trigrams().max(self.postings.len()),
            None => self.postings.len(),
        };
        Stats {
            files: self.live_files,
            bytes: self.live_bytes,
            trigrams,
            index_bytes: postings + table + entries + paths + self.excluded.heap_bytes(),
            dead_entries: self.entries.len() - self.live_files,
            mapped_bytes: self.base.as_ref().map_or(0, Base::mapped_bytes),
            excluded_entries: self.excluded.len(),
        }
    }
}

/// A number no index of this process had before: a stored copy of one index (or of one of
/// its states) can then never be taken for another's.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Indexing yields to interactive work: the first queries scan while the index builds, and
/// a user's own tools share the machine. (On Linux a thread has its own nice value.)
pub fn lower_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
}

/// ripgrep's default walk exactly (.gitignore, .ignore and .rgignore, hidden files and
/// directories skipped unless an ignore file whitelists them, symlinks not followed), and
/// never into `/proc`, `/sys` and the like: see [`special`](crate::special). A search that
/// may reach other files (`--hidden`, a `-t` that can select a hidden file, ...) scans.
pub(super) fn walker(dir: &Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(dir);
    builder
        .add_custom_ignore_filename(".rgignore")
        .filter_entry(|entry| {
            let name = entry.file_name().as_encoded_bytes();
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            let pseudo = is_dir && crate::special::is_pseudo_mount(entry.path());
            !pseudo && !name.starts_with(b".warm-cookie-")
        });
    builder
}

fn is_ignore_file(relative: &Path) -> bool {
    matches!(
        relative.file_name().and_then(|n| n.to_str()),
        Some(".gitignore" | ".ignore" | ".rgignore")
    ) || relative.ends_with(".git/info/exclude")
}

/// Size and trigrams of a file.
fn read_trigrams(path: &Path, extractor: &mut Extractor, buffer: &mut [u8]) -> FileRead {
    let mut file = match crate::special::open_regular(path) {
        Ok(Some(file)) => file,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return FileRead::Unreadable,
        Ok(None) | Err(_) => return FileRead::Skipped,
    };
    // Taken before reading: a write after it moves the timestamps past this stamp.
    let stamp = file
        .metadata()
        .ok()
        .and_then(|meta| Stamp::settled(&meta, stamp_now()));
    let mut size = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) if size == 0 && has_utf16_bom(&buffer[..n]) => {
                extractor.finish();
                return FileRead::Unreadable;
            }
            Ok(n) => {
                // ripgrep stops reading a file at its first NUL byte (a binary file): nothing
                // after it can match, so nothing after it is indexed.
                let text = &buffer[..n];
                match text.iter().position(|&b| b == 0) {
                    Some(nul) => {
                        extractor.feed(&text[..nul]);
                        size = file.metadata().map_or(size + n as u64, |m| m.len());
                        break;
                    }
                    None => extractor.feed(text),
                }
                size += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                extractor.finish();
                return FileRead::Unreadable;
            }
        }
    }
    FileRead::Indexed {
        size,
        trigrams: extractor.finish(),
        stamp,
    }
}

fn is_symlink(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

/// UTF-16's byte-order marks, which make ripgrep transcode a file before searching it.
fn has_utf16_bom(start: &[u8]) -> bool {
    start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF])
}

/// The wall-clock time an index was last updated, for `--status` to show: a timestamp, never
/// a timing decision (those run on `Instant`; see clippy.toml).
#[allow(clippy::disallowed_methods)]
pub(crate) fn stamp_now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git")).expect(".git");
        std::fs::create_dir_all(root.join("src")).expect("src");
        std::fs::create_dir_all(root.join("target")).expect("target");
        std::fs::write(root.join(".gitignore"), "target/\n").expect("gitignore");
        std::fs::write(root.join("src/a.rs"), "fn parse_config() {}\n").expect("a");
        std::fs::write(root.join("src/b.rs"), "fn render() {}\n").expect("b");
        std::fs::write(root.join("target/c.rs"), "fn parse_config() {}\n").expect("c");
        dir
    }

    fn find<'a>(index: &'a Index, pattern: &str) -> Vec<&'a Path> {
        index.candidates(&Query::for_patterns(&[pattern.to_owned()], false))
    }

    fn excluded(index: &Index) -> Vec<(String, bool)> {
        index
            .excluded_under(Path::new(""))
            .map(|(path, dir)| (path.display().to_string(), dir))
            .collect()
    }

    #[test]
    fn the_names_left_out_follow_builds_and_refreshes() {
        let dir = tree();
        let root = dir.path();
        let mut index = Index::build(root, 1, &|_, _| {});
        let at_build = [
            (".git".to_owned(), true),
            (".gitignore".to_owned(), false),
            ("target".to_owned(), true),
        ];
        assert_eq!(excluded(&index), at_build);
        // Hidden and ignored entries appear and go as the tree changes; admitted ones never
        // become names.
        std::fs::write(root.join("src/.env"), "x\n").expect(".env");
        std::fs::create_dir(root.join("src/target")).expect("src/target");
        std::fs::write(root.join("src/c.rs"), "fn c() {}\n").expect("c");
        std::fs::remove_dir_all(root.join("target")).expect("rm target");
        let changed: Vec<PathBuf> = ["src/.env", "src/target", "src/c.rs", "target"]
            .iter()
            .map(|p| root.join(p))
            .collect();
        let _ = index.refresh_all(&changed);
        assert_eq!(
            excluded(&index),
            [
                (".git".to_owned(), true),
                (".gitignore".to_owned(), false),
                ("src/.env".to_owned(), false),
                ("src/target".to_owned(), true),
            ]
        );
        // A directory refreshed whole drops the names under it and lists it again.
        std::fs::remove_file(root.join("src/.env")).expect("rm .env");
        let _ = index.refresh_all(&[root.join("src")]);
        assert_eq!(
            excluded(&index),
            [
                (".git".to_owned(), true),
                (".gitignore".to_owned(), false),
                ("src/target".to_owned(), true),
            ]
        );
    }

    #[test]
    fn ignored_files_are_not_indexed_and_literals_select_files() {
        let dir = tree();
        let index = Index::build(dir.path(), 2, &|_, _| {});
        assert_eq!(find(&index, "parse_config"), [Path::new("src/a.rs")]);
        assert_eq!(find(&index, "RENDER"), [Path::new("src/b.rs")]);
        // No trigram: every file ripgrep's walk reaches (hidden files are not).
        assert_eq!(
            find(&index, "fn"),
            [Path::new("src/a.rs"), Path::new("src/b.rs")]
        );
        assert!(find(&index, "nowhere_at_all").is_empty());
    }

    #[test]
    fn refreshes_follow_creations_changes_and_deletions() {
        let dir = tree();
        let root = dir.path();
        let mut index = Index::build(root, 1, &|_, _| {});
        std::fs::write(root.join("src/b.rs"), "fn parse_config_too() {}\n").expect("b");
        assert_eq!(index.refresh_all(&[root.join("src/b.rs")]), Refresh::Done);
        assert_eq!(find(&index, "parse_config").len(), 2);
        std::fs::remove_file(root.join("src/a.rs")).expect("rm a");
        assert_eq!(index.refresh_all(&[root.join("src/a.rs")]), Refresh::Done);
        assert_eq!(find(&index, "parse_config"), [Path::new("src/b.rs")]);
        std::fs::create_dir_all(root.join("src/new")).expect("new dir");
        std::fs::write(root.join("src/new/d.rs"), "fn parse_config() {}\n").expect("d");
        assert_eq!(
            index.refresh_all(&[root.join("src/new")]),
            Refresh::Directories(vec![root.join("src/new")])
        );
        assert_eq!(find(&index, "parse_config").len(), 2);
        std::fs::write(root.join("target/e.rs"), "fn parse_config() {}\n").expect("e");
        assert_eq!(
            index.refresh_all(&[root.join("target/e.rs")]),
            Refresh::Done
        );
        assert_eq!(find(&index, "parse_config").len(), 2, "ignored stays out");
        assert_eq!(
            index.refresh_all(&[root.join(".gitignore")]),
            Refresh::Rebuild
        );
        assert_eq!(
            index.stats().files,
            2,
            "b.rs and new/d.rs (.gitignore is hidden)"
        );
    }

    #[test]
    fn hidden_files_are_indexed_exactly_where_ripgrep_walks_them() {
        let dir = tree();
        let root = dir.path();
        std::fs::write(
            root.join(".gitignore"),
            "target/\n!.github/\n!.env.example\n",
        )
        .expect("ignore");
        std::fs::create_dir_all(root.join(".github")).expect(".github");
        std::fs::create_dir_all(root.join(".cache")).expect(".cache");
        for file in [".github/ci.yml", ".cache/x", ".env.example", ".secret"] {
            std::fs::write(root.join(file), "needle_hidden\n").expect("write");
        }
        // UTF-16 with a byte-order mark: ripgrep transcodes it, so it is always a candidate.
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("needle_utf".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        std::fs::write(root.join("src/wide.txt"), utf16).expect("utf16");
        let index = Index::build(root, 1, &|_, _| {});
        assert_eq!(
            find(&index, "needle_hidden"),
            [
                Path::new(".env.example"),
                Path::new(".github/ci.yml"),
                Path::new("src/wide.txt")
            ]
        );
        assert!(find(&index, "needle_utf").contains(&Path::new("src/wide.txt")));
    }

    #[test]
    fn compaction_keeps_every_answer_and_frees_what_dead_entries_held() {
        let dir = tree();
        let root = dir.path();
        for i in 0..40 {
            std::fs::write(
                root.join(format!("src/f{i}.rs")),
                format!("fn item_{i}() {{}}\n"),
            )
            .expect("write");
        }
        let mut index = Index::build(root, 1, &|_, _| {});
        for round in 0..3 {
            for i in 0..40 {
                let path = root.join(format!("src/f{i}.rs"));
                std::fs::write(&path, format!("fn item_{i}_round_{round}() {{}}\n")).expect("edit");
                let _ = index.refresh_all(&[path]);
            }
        }
        std::fs::remove_file(root.join("src/a.rs")).expect("rm");
        let _ = index.refresh_all(&[root.join("src/a.rs")]);
        assert!(index.stats().dead_entries >= 120);
        let before: Vec<PathBuf> = find(&index, "round_2")
            .into_iter()
            .map(Path::to_owned)
            .collect();
        index.compact();
        let fresh = Index::build(root, 1, &|_, _| {});
        assert_eq!(index.stats().dead_entries, 0);
        assert_eq!(index.stats().files, fresh.stats().files);
        for pattern in [
            "round_2",
            "round_1",
            "item_7_",
            "RENDER",
            "parse_config",
            "fn",
        ] {
            assert_eq!(find(&index, pattern), find(&fresh, pattern), "{pattern}");
        }
        assert_eq!(find(&index, "round_2"), before);
        assert!(
            index.stats().index_bytes <= fresh.stats().index_bytes,
            "no more than a fresh build"
        );
        // It keeps working: a change after the compaction is found.
        std::fs::write(root.join("src/f3.rs"), "fn after_compaction() {}\n").expect("edit");
        let _ = index.refresh_all(&[root.join("src/f3.rs")]);
        assert_eq!(find(&index, "after_compaction"), [Path::new("src/f3.rs")]);
    }

    #[test]
    fn a_directory_replaced_by_a_link_to_an_ancestor_is_never_walked() {
        let dir = tree();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b")).expect("b");
        std::fs::write(root.join("b/x.rs"), "fn in_b() {}\n").expect("x");
        let mut index = Index::build(root, 1, &|_, _| {});
        std::fs::remove_dir_all(root.join("b")).expect("rm b");
        std::os::unix::fs::symlink(".", root.join("b")).expect("b -> .");
        // As when the parent was read while b was still a directory.
        assert!(index.walk(&root.join("b"), 1).is_empty());
        let _ = index.refresh_all(&[root.join("b")]);
        assert!(find(&index, "parse_config")
            .iter()
            .all(|p| !p.starts_with("b")));
        assert!(find(&index, "in_b").is_empty());
    }

    #[test]
    fn swapped_directories_are_looked_at_again() {
        let dir = tree();
        let root = dir.path();
        std::fs::create_dir_all(root.join("x")).expect("x");
        std::fs::create_dir_all(root.join("y")).expect("y");
        std::fs::write(root.join("x/fx.rs"), "fn in_x() {}\n").expect("fx");
        std::fs::write(root.join("y/fy.rs"), "fn in_y() {}\n").expect("fy");
        let mut index = Index::build(root, 1, &|_, _| {});
        // mv x t; mv y x; mv t y: both names are directories the index knows, before and after.
        std::fs::rename(root.join("x"), root.join("t")).expect("mv");
        std::fs::rename(root.join("y"), root.join("x")).expect("mv");
        std::fs::rename(root.join("t"), root.join("y")).expect("mv");
        let events = ["x", "t", "y", "x", "t", "y"].map(|n| root.join(n));
        index.refresh_all(&events);
        assert_eq!(find(&index, "in_x"), [Path::new("y/fx.rs")]);
        assert_eq!(find(&index, "in_y"), [Path::new("x/fy.rs")]);
    }
}
