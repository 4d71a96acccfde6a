//! Kernel-held exclusive locks on files (`flock`), safe against the file being replaced.
//!
//! A lock file may be unlinked by whoever cleans a stale daemon directory while another process
//! is about to lock it. Locking the orphaned inode would let two processes each believe they
//! hold "the" lock, so after locking we check that the path still names the inode we locked,
//! and start over if not.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An exclusive lock, held until dropped (or until the process dies: the kernel releases it).
#[derive(Debug)]
pub struct LockFile {
    /// Held, never read: closing it is what releases the lock.
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// Tries once to take the lock.
    ///
    /// # Errors
    /// I/O errors opening the file; `Ok(None)` means another process holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<LockFile>> {
        loop {
            let file = open_lock_file(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if still_names(path, &file)? {
                return Ok(Some(LockFile {
                    _file: file,
                    path: path.to_path_buf(),
                }));
            }
        }
    }

    /// Waits for the lock until `deadline`.
    ///
    /// `flock` has no timeout, so this polls with a short growing interval; callers hold these
    /// locks for milliseconds (a spawn), so the wait is short in practice.
    ///
    /// # Errors
    /// I/O errors opening the file; `Ok(None)` when the deadline passed.
    pub fn acquire_until(path: &Path, deadline: Instant) -> io::Result<Option<LockFile>> {
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lock) = LockFile::try_acquire(path)? {
                return Ok(Some(lock));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// True when some process holds the lock at `path` (a daemon is alive).
    pub fn is_held(path: &Path) -> io::Result<bool> {
        match File::open(path) {
            Ok(file) => match file.try_lock() {
                Ok(()) => Ok(false),
                Err(TryLockError::WouldBlock) => Ok(true),
                Err(TryLockError::Error(e)) => Err(e),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    match open_lock_file_once(path) {
        // The daemon directory was removed as stale between our look and our open.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            open_lock_file_once(path)
        }
        other => other,
    }
}

fn open_lock_file_once(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW).bits() as i32)
        .open(path)
}

fn still_names(path: &Path, file: &File) -> io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(current) => Ok(current.ino() == held.ino() && current.dev() == held.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_while_first_is_held() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("lock");
        let first = LockFile::try_acquire(&path).expect("io").expect("free");
        assert!(LockFile::try_acquire(&path).expect("io").is_none());
        assert!(LockFile::is_held(&path).expect("io"));
        drop(first);
        assert!(!LockFile::is_held(&path).expect("io"));
        assert!(LockFile::try_acquire(&path).expect("io").is_some());
    }

    #[test]
    fn acquire_until_gives_up_at_the_deadline() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("lock");
        let _held = LockFile::try_acquire(&path).expect("io").expect("free");
        let got = LockFile::acquire_until(&path, Instant::now() + Duration::from_millis(30));
        assert!(got.expect("io").is_none());
    }
}
