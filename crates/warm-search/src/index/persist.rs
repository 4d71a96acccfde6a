//! An [`Index`] to and from its stored form ([`crate::store`]): what to write, and how an
//! index is brought up to date with the tree by metadata alone, when a daemon starts from a
//! stored index or when no watcher can tell it what changed.
//!
//! An entry is trusted only where the tree shows it still holds: the walk is done again by
//! ripgrep's rules (so the directories, ignore rules and names left out are today's), and
//! each file it finds keeps its entry only when its metadata equals the stamp it was read
//! with; every other file is read again, and files the walk no longer finds are dropped.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::{Entry, Index, Progress};
use crate::excluded::Excluded;
use crate::store::{Contents, Stored};
use crate::trigram::Postings;

/// What loading a stored index found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Validation {
    /// Files whose stored entry still holds.
    pub kept: usize,
    /// Files read again: new, changed, or never stamped.
    pub read: usize,
    /// Stored entries not kept: gone, changed, or never stamped.
    pub dropped: usize,
    /// Whether storing again would spare the next start some work: a stamped entry was
    /// dropped, or a file read now got a stamp (files that cannot be stamped, such as the
    /// unreadable ones, are read at every start whatever is stored).
    pub changed: bool,
    /// Milliseconds spent walking the tree, checking stamps, and reading files.
    pub walk_ms: u64,
    pub check_ms: u64,
    pub read_ms: u64,
}

impl Validation {
    /// Whether the index should be stored again (see [`Validation::changed`]).
    pub fn changed(&self) -> bool {
        self.changed
    }
}

impl Index {
    /// `stored`, the index stored for `root`, brought up to date with the tree: see the
    /// module's documentation. Files are checked and read on `threads` threads.
    pub fn load(
        root: &Path,
        stored: Stored,
        threads: usize,
        progress: Progress<'_>,
    ) -> (Index, Validation) {
        let mut index = Index::from_stored(root, stored);
        let validation = index.revalidate(threads, progress);
        index.dirty = validation.changed;
        (index, validation)
    }

    /// The index `stored` holds, as it was stored: no directory is known yet (see
    /// [`Index::revalidate`], or [`Index::adopt`], which takes them from the index stored).
    pub fn from_stored(root: &Path, stored: Stored) -> Index {
        let mut index = Index::empty(root);
        index.entries.reserve_exact(stored.entries.len());
        for (id, stored) in stored.entries.into_iter().enumerate() {
            let alive = stored.path.is_some();
            let path = stored.path.unwrap_or_default();
            if alive {
                index.by_path.insert(path.clone(), id as u32);
                index.live_files += 1;
                index.live_bytes += stored.size;
                if stored.stamp.is_none() {
                    // Unreadable, UTF-16, or read too soon after a change: a candidate for
                    // every query until it is read again, as when it was indexed.
                    index.unreadable.push(id as u32);
                }
            }
            index.entries.push(Entry {
                path,
                size: stored.size,
                alive,
                stamp: stored.stamp,
            });
        }
        index.base = Some(stored.base);
        index.dirty = false;
        index
    }

    /// Brings the index up to date with the tree by metadata alone (no watcher told it what
    /// changed): walks the tree again, keeps each file whose stamp holds, reads the others,
    /// and drops the files gone. Files are checked and read on `threads` threads.
    pub fn revalidate(&mut self, threads: usize, progress: Progress<'_>) -> Validation {
        let started = std::time::Instant::now();
        self.dirs.clear();
        self.excluded = Excluded::default();
        let root = self.root.clone();
        let walked = self.walk_with(&root, threads, true);
        let walk_ms = started.elapsed().as_millis() as u64;
        let mut seen = vec![false; self.entries.len()];
        let mut to_read = Vec::new();
        for (file, now) in walked.files.into_iter().zip(&walked.stamps) {
            let id = self.by_path.get(file.as_path()).copied();
            match id.filter(|&id| now.is_some() && self.entries[id as usize].stamp == *now) {
                Some(id) => seen[id as usize] = true,
                None => to_read.push(file),
            }
        }
        let gone: Vec<(PathBuf, u32)> = (self.by_path.iter())
            .filter(|(_, id)| !seen[**id as usize])
            .map(|(path, id)| (path.clone(), *id))
            .collect();
        let kept = seen.iter().filter(|seen| **seen).count();
        let mut changed = false;
        for (path, id) in &gone {
            changed |= self.entries[*id as usize].stamp.is_some();
            self.by_path.remove(path);
            self.kill(*id);
        }
        // A dead entry keeps its id (the stored lists name it), not its path.
        for entry in self.entries.iter_mut().filter(|e| !e.alive) {
            entry.path = PathBuf::new();
            entry.stamp = None;
        }
        let check_ms = started.elapsed().as_millis() as u64 - walk_ms;
        let reading = std::time::Instant::now();
        let first_read = self.entries.len();
        self.add_files(to_read, threads, progress);
        let read = &self.entries[first_read..];
        changed |= read.iter().any(|e| e.alive && e.stamp.is_some());
        Validation {
            kept,
            read: read.iter().filter(|e| e.alive).count(),
            dropped: gone.len(),
            walk_ms,
            check_ms,
            read_ms: reading.elapsed().as_millis() as u64,
            changed,
        }
    }

    /// What to store: every entry (dead ones with no path, so that ids keep their meaning),
    /// and every posting list, stored and read since alike.
    pub fn contents(&self) -> Contents<'_> {
        let entries = self
            .entries
            .iter()
            .map(|e| match e.alive {
                true => (Some(e.path.as_path()), e.size, e.stamp),
                false => (None, 0, None),
            })
            .collect();
        let stored = |trigram| self.base.as_ref().and_then(|base| base.get(trigram));
        let postings = self
            .trigrams()
            .into_iter()
            .filter_map(
                |trigram| match (stored(trigram), self.postings.get(&trigram)) {
                    (Some(list), None) => Some((trigram, list.len, Cow::Borrowed(list.bytes))),
                    (None, Some(list)) => {
                        let list = list.as_ref();
                        Some((trigram, list.len, Cow::Borrowed(list.bytes)))
                    }
                    (Some(_), Some(_)) => {
                        let mut merged = Postings::default();
                        for id in self.list(trigram) {
                            merged.push(id);
                        }
                        let list = merged.as_ref();
                        Some((trigram, list.len, Cow::Owned(list.bytes.to_vec())))
                    }
                    (None, None) => None,
                },
            )
            .collect();
        Contents { entries, postings }
    }

    /// Which state the index is in: a stored copy is this index only if the generation is
    /// the same at [`Index::contents`] and at [`Index::adopt`] (no change came between, and
    /// it is the same index: generations are unique across the process).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Becomes `stored` ([`Index::from_stored`] of the file just stored from this index at
    /// `generation`): the posting lists are then served from the mapped file, and the entries
    /// held in allocations made after the build's (made on another thread, their pages are
    /// not interleaved with what the build freed, which can then go back to the system).
    /// Returns the index it was, to drop outside any lock; refused (`None`) if the index
    /// changed since it was written.
    pub fn adopt(&mut self, mut stored: Index, generation: u64) -> Option<Index> {
        if generation != self.generation || stored.entries.len() != self.entries.len() {
            return None;
        }
        stored.dirs = std::mem::take(&mut self.dirs);
        stored.excluded = std::mem::take(&mut self.excluded);
        stored.unreadable = std::mem::take(&mut self.unreadable);
        stored.updated_at = self.updated_at;
        Some(std::mem::replace(self, stored))
    }

    /// Whether the index changed since it was last stored or loaded.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::query::Query;
    use crate::store::Stamp;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// Waits (with a deadline) until every file under `root` changed longer ago than the
    /// clock's granularity, so that a build stamps them all (see [`Stamp::settled`]).
    fn wait_settled(root: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let settled = || {
            ignore::WalkBuilder::new(root)
                .hidden(false)
                .build()
                .flatten()
                .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
                .all(|e| {
                    let meta = e.metadata().expect("meta");
                    Stamp::settled(&meta, crate::index::stamp_now()).is_some()
                })
        };
        while !settled() {
            assert!(Instant::now() < deadline, "files never settled");
            std::thread::yield_now();
        }
    }

    fn answers(index: &Index, patterns: &[&str]) -> Vec<Vec<PathBuf>> {
        patterns
            .iter()
            .map(|p| {
                index
                    .candidates(&Query::for_patterns(&[(*p).to_owned()], true))
                    .into_iter()
                    .map(Path::to_owned)
                    .collect()
            })
            .collect()
    }

    /// Stores `index` at `path` and loads it back as a daemon starting would.
    fn restart(index: &Index, path: &Path, root: &Path) -> (Index, Validation) {
        crate::store::save(path, root, &index.contents()).expect("save");
        let stored = crate::store::load(path, root).expect("load");
        Index::load(root, stored, 2, &|_, _| {})
    }

    const PATTERNS: [&str; 7] = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "fn",
        "moved_here",
        "ignored_now",
    ];

    #[test]
    fn a_stored_index_loaded_after_changes_answers_as_a_fresh_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("project");
        std::fs::create_dir_all(root.join(".git")).expect(".git");
        for i in 0..30 {
            write(
                &root,
                &format!("src/f{i}.rs"),
                &format!("fn alpha_{i}() {{}}\n"),
            );
        }
        write(&root, "src/keep.rs", "fn beta() {}\n");
        write(&root, "old/moved_here.rs", "fn moved_here() {}\n");
        write(&root, "logs/x.log", "ignored_now\n");
        wait_settled(&root);
        let built = Index::build(&root, 2, &|_, _| {});
        let path = dir.path().join("cache/p.idx");

        // Unchanged: every file kept, nothing read.
        let (same, validation) = restart(&built, &path, &root);
        assert_eq!(
            (validation.kept, validation.read, validation.dropped),
            (33, 0, 0)
        );
        assert!(!same.is_dirty());
        assert_eq!(answers(&same, &PATTERNS), answers(&built, &PATTERNS));

        // Changed while no daemon ran: an edit of the same size, a deletion, a rename of a
        // directory, a new file, and an ignore rule.
        write(&root, "src/f3.rs", "fn gamma_3() {}\n");
        std::fs::remove_file(root.join("src/f4.rs")).expect("rm");
        std::fs::rename(root.join("old"), root.join("new")).expect("mv");
        write(&root, "src/added.rs", "fn delta() {}\n");
        write(&root, ".gitignore", "logs/\n");
        let (loaded, validation) = restart(&same, &path, &root);
        let fresh = Index::build(&root, 2, &|_, _| {});
        assert_eq!(answers(&loaded, &PATTERNS), answers(&fresh, &PATTERNS));
        assert_eq!(loaded.stats().files, fresh.stats().files);
        assert_eq!(validation.kept, 29, "{validation:?}");
        assert!(loaded.is_dirty());

        // Stored again with lists both in the file and in the heap, and loaded: the same.
        wait_settled(&root);
        let (again, _) = restart(&loaded, &path, &root);
        assert_eq!(answers(&again, &PATTERNS), answers(&fresh, &PATTERNS));
    }

    #[test]
    fn an_adopted_file_serves_the_lists_and_later_changes_go_on_top() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("project");
        for i in 0..1100 {
            write(
                &root,
                &format!("f{i}.rs"),
                &format!("fn alpha_{i}() {{}}\n"),
            );
        }
        let mut index = Index::build(&root, 2, &|_, _| {});
        let path = dir.path().join("cache/p.idx");
        let generation = index.generation();
        crate::store::save(&path, &root, &index.contents()).expect("save");
        let stored = crate::store::load(&path, &root).expect("stored");
        assert!(index
            .adopt(Index::from_stored(&root, stored), generation)
            .is_some());
        assert_eq!(
            index.stats().mapped_bytes as u64,
            std::fs::metadata(&path).expect("m").len()
        );
        assert!(index.postings.is_empty(), "the heap's lists are freed");
        // A change after the adoption: read into the heap, on top of the stored lists.
        write(&root, "f5.rs", "fn beta() {}\n");
        let _ = index.refresh_all(&[root.join("f5.rs")]);
        let fresh = Index::build(&root, 2, &|_, _| {});
        assert_eq!(
            answers(&index, &["alpha_5", "beta", "alpha_1"]),
            answers(&fresh, &["alpha_5", "beta", "alpha_1"])
        );
        // A stale copy is never adopted.
        let stored = crate::store::load(&path, &root).expect("stored");
        assert!(index
            .adopt(Index::from_stored(&root, stored), generation)
            .is_none());
        // Compaction over stored and heap lists alike.
        for i in 0..1100 {
            write(
                &root,
                &format!("f{i}.rs"),
                &format!("fn gamma_{i}() {{}}\n"),
            );
            let _ = index.refresh_all(&[root.join(format!("f{i}.rs"))]);
        }
        assert!(index.needs_compaction());
        index.compact();
        let fresh = Index::build(&root, 2, &|_, _| {});
        let patterns = ["gamma_7", "alpha_7", "beta", "fn"];
        assert_eq!(answers(&index, &patterns), answers(&fresh, &patterns));
        assert_eq!(index.stats().mapped_bytes, 0);
    }
}
