//! [`Excluded`]: the entries ripgrep's default walk leaves out of the directories it enters
//! (ignored or hidden files and directories: their names, never their contents).
//!
//! A positive `-g` glob admits an ignored file, and a selected type a hidden one (`-t js`
//! reaches `.eslintrc.js`); a glob that matches an ignored directory's name walks into it. The
//! index does not hold those files, but with these names a search so filtered is still
//! answered from it: the client looks for the few names its filters may admit and reads only
//! their directories by ripgrep's rules (see `scan::Filters::may_admit_excluded`).

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// Excluded entries by path relative to the root; `true` for a directory.
#[derive(Debug, Default)]
pub struct Excluded(BTreeMap<PathBuf, bool>);

impl Excluded {
    /// Records what `dir` (relative to `root`) holds besides `admitted`, the paths the walk
    /// reached in it; replaces what was recorded for its entries before.
    pub fn list_dir(&mut self, root: &Path, dir: &Path, admitted: &HashSet<&Path>) {
        self.record(read_listing(root, dir), admitted);
    }

    /// Records the entries of a [`read_listing`] that are not `admitted`.
    pub fn record(&mut self, listing: Vec<(PathBuf, bool)>, admitted: &HashSet<&Path>) {
        for (path, is_dir) in listing {
            if !admitted.contains(path.as_path()) && !is_cookie(&path) {
                self.0.insert(path, is_dir);
            }
        }
    }

    /// Records `path` (relative to `root`) as excluded if it exists.
    pub fn note(&mut self, root: &Path, path: &Path) {
        if is_cookie(path) {
            return;
        }
        if let Ok(meta) = root.join(path).symlink_metadata() {
            self.0.insert(path.to_owned(), meta.is_dir());
        }
    }

    /// Forgets `path` and everything recorded under it.
    pub fn forget(&mut self, path: &Path) {
        let under: Vec<PathBuf> = self
            .0
            .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in under {
            self.0.remove(&p);
        }
    }

    /// The entries under `scope` (relative; `""` is the root), in path order.
    pub fn under<'a>(&'a self, scope: &'a Path) -> impl Iterator<Item = (&'a Path, bool)> + 'a {
        self.0
            .range::<Path, _>((Bound::Included(scope), Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(scope))
            .map(|(p, is_dir)| (p.as_path(), *is_dir))
    }

    /// What the names cost in memory, roughly (a B-tree entry and its path).
    pub fn heap_bytes(&self) -> usize {
        self.0
            .keys()
            .map(|p| p.as_os_str().len() + std::mem::size_of::<(PathBuf, bool)>() + 8)
            .sum()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A barrier's cookie (directly in the root) is warm's own, never the project's.
fn is_cookie(path: &Path) -> bool {
    warm_runtime::cookie::as_cookie(Path::new(""), path).is_some()
}

/// Every entry of `dir` (relative to `root`), relative to `root`, with `true` for a
/// directory: read on any thread, then [`Excluded::record`]ed.
pub fn read_listing(root: &Path, dir: &Path) -> Vec<(PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            (dir.join(entry.file_name()), is_dir)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(excluded: &Excluded, scope: &str) -> Vec<(String, bool)> {
        excluded
            .under(Path::new(scope))
            .map(|(p, d)| (p.display().to_string(), d))
            .collect()
    }

    #[test]
    fn a_listing_keeps_what_the_walk_did_not_admit_and_forget_drops_a_subtree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["a", "a/target", "a-b"] {
            std::fs::create_dir(root.join(d)).expect("dir");
        }
        for f in ["a/x.rs", "a/.env", "a/gen.rs", "a-b/y.rs"] {
            std::fs::write(root.join(f), "").expect("file");
        }
        let mut excluded = Excluded::default();
        let admitted: HashSet<&Path> = [Path::new("a/x.rs")].into_iter().collect();
        excluded.list_dir(root, Path::new("a"), &admitted);
        let admitted: HashSet<&Path> = [Path::new("a"), Path::new("a-b")].into_iter().collect();
        excluded.list_dir(root, Path::new(""), &admitted);
        excluded.note(root, Path::new("a-b/y.rs"));
        excluded.note(root, Path::new("a-b/gone.rs"));
        let cookie = format!("{}1-2", warm_runtime::cookie::COOKIE_PREFIX);
        std::fs::write(root.join(&cookie), "").expect("cookie");
        excluded.note(root, Path::new(&cookie));
        assert_eq!(
            paths(&excluded, ""),
            [
                ("a/.env".to_owned(), false),
                ("a/gen.rs".to_owned(), false),
                ("a/target".to_owned(), true),
                ("a-b/y.rs".to_owned(), false),
            ]
        );
        assert_eq!(paths(&excluded, "a").len(), 3);
        excluded.forget(Path::new("a"));
        assert_eq!(paths(&excluded, ""), [("a-b/y.rs".to_owned(), false)]);
        excluded.forget(Path::new("a-b/y.rs"));
        assert!(excluded.is_empty());
    }
}
