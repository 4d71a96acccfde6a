//! The walk of a tree by ripgrep's rules ([`super::walker`]), on one thread or several, and
//! the listing of the directories it entered (for the names it leaves out: see
//! [`crate::excluded`]).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::excluded::read_listing;
use crate::store::Stamp;

/// What a walk found, relative to the root, in no particular order.
#[derive(Default)]
pub(super) struct Walked {
    /// The regular files the rules admit ...
    pub files: Vec<PathBuf>,
    /// ... and their metadata now, when asked for (`None` where it cannot be read).
    pub stamps: Vec<Option<Stamp>>,
    pub dirs: Vec<PathBuf>,
}

impl Walked {
    fn add(&mut self, path: PathBuf, found: Found) {
        match found {
            Found::Dir => self.dirs.push(path),
            Found::File(stamp) => {
                self.files.push(path);
                self.stamps.extend(stamp);
            }
        }
    }
}

enum Found {
    Dir,
    /// With its stamp when stamps are asked for.
    File(Option<Option<Stamp>>),
}

/// What the walk makes of `entry`: a directory, a regular file, or nothing (a symlink, a
/// FIFO, ...).
fn found(entry: &ignore::DirEntry, stamps: bool) -> Option<Found> {
    let kind = entry.file_type()?;
    if kind.is_dir() {
        Some(Found::Dir)
    } else if kind.is_file() {
        // Not followed (the walk follows no link): the file's own metadata.
        let stamp = stamps.then(|| entry.metadata().ok().map(|meta| Stamp::of(&meta)));
        Some(Found::File(stamp))
    } else {
        None
    }
}

/// Walks `dir` (absolute) by the rules, on `threads` threads, with each file's stamp if
/// `stamps`.
pub(super) fn tree(root: &Path, dir: &Path, threads: usize, stamps: bool) -> Walked {
    let relative = |path: &Path| path.strip_prefix(root).unwrap_or(path).to_owned();
    let mut walked = Walked::default();
    if threads <= 1 {
        for entry in super::walker(dir).build().flatten() {
            if let Some(found) = found(&entry, stamps) {
                walked.add(relative(entry.path()), found);
            }
        }
        return walked;
    }
    let (tx, rx) = mpsc::channel::<(PathBuf, Found)>();
    super::walker(dir)
        .threads(threads)
        .build_parallel()
        .run(|| {
            let tx = tx.clone();
            Box::new(move |entry| {
                if let Some(found) = entry.ok().and_then(|entry| {
                    found(&entry, stamps).map(|found| (relative(entry.path()), found))
                }) {
                    let _ = tx.send(found);
                }
                ignore::WalkState::Continue
            })
        });
    drop(tx);
    for (path, found) in rx {
        walked.add(path, found);
    }
    walked
}

/// The entries of each of `dirs` (relative to `root`), read on `threads` threads.
pub(super) fn listings(root: &Path, dirs: &[PathBuf], threads: usize) -> Vec<Vec<(PathBuf, bool)>> {
    if threads <= 1 || dirs.len() < 64 {
        return dirs.iter().map(|dir| read_listing(root, dir)).collect();
    }
    let chunk = dirs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = dirs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|dir| read_listing(root, dir))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    })
}
