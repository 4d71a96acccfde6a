//! Noticing that a worker's code changed: a [`CommandFingerprint`] of the files its command
//! runs (the program and any argument naming a file, such as a script), and a [`Watch`] on the
//! `watch` globs of `.warm.toml`.
//!
//! Both exist so that a user who fixes a worker never has to wait out the restart policy or
//! remember `warm restart`: a crash-looping service is retried as soon as its command's files
//! change, and `watch = ["src/**/*.py"]` replaces the workers when those files change.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher;

use crate::config::WorkerConfig;

/// The identity of a file's content as far as metadata tells: changed on any write or
/// replacement.
type Stamp = Option<(SystemTime, u64, u64)>;

/// The files a worker command runs, each with its `Stamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFingerprint(Vec<(PathBuf, Stamp)>);

impl CommandFingerprint {
    /// The program (found on `PATH` when it is a bare name) and every argument that names an
    /// existing file relative to the worker's directory.
    pub fn of(config: &WorkerConfig) -> CommandFingerprint {
        let mut files = Vec::new();
        files.extend(resolve_program(&config.program, config));
        for arg in &config.args {
            let path = config.cwd.join(arg);
            if !arg.starts_with('-') && path.is_file() {
                files.push(path);
            }
        }
        CommandFingerprint(files.into_iter().map(|f| (f.clone(), stamp(&f))).collect())
    }

    /// The files compared, for messages.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(path, _)| path.as_path())
    }
}

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

fn resolve_program(program: &str, config: &WorkerConfig) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(config.cwd.join(program));
    }
    let path = config
        .env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"))?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Watches the project for changes to files matching the service's `watch` globs; calls
/// `on_change` with the first changed path of each burst (changes within 100 ms of each other
/// make one burst: an editor's save or a `git checkout` reloads once).
pub struct Watch {
    /// Dropping the watcher ends the event stream, and with it the thread.
    _watcher: notify::RecommendedWatcher,
}

/// A bad `watch` glob or a watcher that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("bad watch glob {glob:?}: {error}")]
    Glob { glob: String, error: globset::Error },
    #[error("cannot watch {}: {error}", root.display())]
    Watcher { root: PathBuf, error: notify::Error },
}

impl Watch {
    /// Starts watching `root` for `globs` (relative to `root`, as in `.gitignore`:
    /// `*.py` matches at any depth).
    ///
    /// # Errors
    /// [`WatchError`] for a bad glob or when no watcher can be set up (e.g. the inotify
    /// limit).
    pub fn start(
        root: &Path,
        globs: &[String],
        on_change: impl Fn(&Path) + Send + 'static,
    ) -> Result<Watch, WatchError> {
        let mut builder = globset::GlobSetBuilder::new();
        for glob in globs {
            let compiled = globset::GlobBuilder::new(glob)
                .literal_separator(glob.contains('/'))
                .build()
                .map_err(|error| WatchError::Glob {
                    glob: glob.clone(),
                    error,
                })?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|error| WatchError::Glob {
            glob: globs.join(", "),
            error,
        })?;
        let (tx, rx) = std_mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx).map_err(|error| WatchError::Watcher {
            root: root.to_path_buf(),
            error,
        })?;
        watcher
            .watch(root, notify::RecursiveMode::Recursive)
            .map_err(|error| WatchError::Watcher {
                root: root.to_path_buf(),
                error,
            })?;
        let root = root.to_path_buf();
        let matches = move |path: &Path| {
            path.strip_prefix(&root)
                .is_ok_and(|relative| set.is_match(relative))
        };
        std::thread::Builder::new()
            .name("warm-watch".into())
            .spawn(move || watch_loop(&rx, matches, on_change))
            .map_err(|error| WatchError::Watcher {
                root: PathBuf::new(),
                error: notify::Error::io(error),
            })?;
        Ok(Watch { _watcher: watcher })
    }
}

fn watch_loop(
    rx: &std_mpsc::Receiver<notify::Result<notify::Event>>,
    matches: impl Fn(&Path) -> bool,
    on_change: impl Fn(&Path),
) {
    const BURST: Duration = Duration::from_millis(100);
    // Reads (a worker loading its code, a client reading .warm.toml) change nothing and may
    // never pause: only matching changes count, for the trigger and for the burst's end.
    let first_match = |event: notify::Result<notify::Event>| {
        let event = event.ok()?;
        if event.kind.is_access() {
            return None;
        }
        event.paths.into_iter().find(|p| matches(p))
    };
    while let Ok(event) = rx.recv() {
        let Some(changed) = first_match(event) else {
            continue;
        };
        // The rest of the burst: one reload for a save that truncates, writes and renames.
        let mut quiet_from = Instant::now();
        while let Some(left) = BURST.checked_sub(quiet_from.elapsed()) {
            match rx.recv_timeout(left) {
                Ok(event) => {
                    if first_match(event).is_some() {
                        quiet_from = Instant::now();
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        on_change(&changed);
    }
}
