//! The index as stored in the user's cache directory, so that a daemon's start (after its idle
//! TTL, a reboot, an upgrade) costs a check of the tree's metadata instead of a build.
//!
//! One file per project, `<cache>/search/<root tag>.idx`, written whole to a temporary file,
//! fsynced and renamed over the old one: a reader finds the old file or the new one, never
//! half of one. Before anything in it is used, its magic, format version, length, CRC-32 and
//! root are checked; a file that fails any check is rejected (and rebuilt by the caller),
//! never half used. It is read through mmap, so that the posting lists live in the page
//! cache, shared and reclaimable, rather than in the daemon's heap.
//!
//! Layout, little-endian: a header (magic, format version, CRC-32 of the body, body length),
//! then the body: the root; the entries in id order (a dead entry keeps its id, with no path),
//! each with the metadata its file had when it was read ([`Stamp`]); the trigram table,
//! sorted by trigram; the posting lists' bytes.

use std::borrow::Cow;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::trigram::PostingsRef;

/// Bumped whenever the layout changes: a file of another version is rebuilt, never read.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"WARMIDX\n";
/// Magic, version, CRC-32, body length.
const HEADER: usize = 8 + 4 + 4 + 8;
/// Trigram, ids, offset of the list in the postings, its length in bytes.
const TABLE_RECORD: usize = 4 + 4 + 8 + 4;
/// Stored indexes of all projects together are kept under this size, least recently used
/// evicted first.
pub const CACHE_CAP: u64 = 4 << 30;

const ALIVE: u8 = 1;
const STAMPED: u8 = 2;

/// What a file's metadata was when it was read, as git's index keeps it: a file whose stamp
/// is unchanged holds what was read (its contents cannot change without its mtime and ctime
/// moving, and a replacement has another inode or ctime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stamp {
            size: meta.len(),
            mtime: ns(meta.mtime(), meta.mtime_nsec()),
            ctime: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }

    /// The stamp of a file about to be read at `now`, or `None` when it changed so recently
    /// that a write after this moment could leave its timestamps as they are (they tick at
    /// the file system's granularity: a few milliseconds, a second or two on some): such a
    /// file is read again when the stored index is next loaded ("racily clean" in git's
    /// words).
    pub fn settled(meta: &std::fs::Metadata, now: SystemTime) -> Option<Stamp> {
        let stamp = Stamp::of(meta);
        let changed = stamp.mtime.max(stamp.ctime);
        // Whole seconds suggest a file system that keeps no finer time.
        let granularity = if changed % 1_000_000_000 == 0 {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(100)
        };
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_nanos()).ok())?;
        let margin = i64::try_from(granularity.as_nanos()).ok()?;
        (now.saturating_sub(changed) >= margin).then_some(stamp)
    }
}

/// One entry of a stored index: `path` is `None` for a dead one; `size` the bytes it counts
/// for; `stamp` is `None` for a file to read again (unreadable, or racily clean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub path: Option<PathBuf>,
    pub size: u64,
    pub stamp: Option<Stamp>,
}

/// Why a stored index was not used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no stored index")]
    Missing,
    #[error("cannot read the stored index: {0}")]
    Io(#[from] io::Error),
    #[error("not a warm index file")]
    Magic,
    #[error("stored in format version {0}, this warm reads version {FORMAT_VERSION}")]
    Version(u32),
    #[error("truncated: {found} bytes where the header says {expected}")]
    Truncated { found: u64, expected: u64 },
    #[error("checksum mismatch (the file is corrupted)")]
    Checksum,
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("stored for another project directory")]
    OtherRoot,
}

/// The posting lists of a stored index, read from its mapped file. Ids below `ids` are its
/// entries'.
pub struct Base {
    map: memmap2::Mmap,
    /// Offsets in `map` of the trigram table and of the postings.
    table: usize,
    trigrams: usize,
    postings: usize,
    pub ids: u32,
}

impl Base {
    /// The list of `trigram`, if any file holds it.
    pub fn get(&self, trigram: u32) -> Option<PostingsRef<'_>> {
        let (mut low, mut high) = (0, self.trigrams);
        while low < high {
            let middle = (low + high) / 2;
            let (found, list) = self.record(middle);
            match found.cmp(&trigram) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(list),
            }
        }
        None
    }

    /// Every trigram and its list, in trigram order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, PostingsRef<'_>)> + '_ {
        (0..self.trigrams).map(|i| self.record(i))
    }

    pub fn trigrams(&self) -> usize {
        self.trigrams
    }

    /// The size of the mapped file.
    pub fn mapped_bytes(&self) -> usize {
        self.map.len()
    }

    fn record(&self, i: usize) -> (u32, PostingsRef<'_>) {
        let at = self.table + i * TABLE_RECORD;
        let record = &self.map[at..at + TABLE_RECORD];
        let trigram = le_u32(&record[0..4]);
        let len = le_u32(&record[4..8]);
        // Checked when the file was loaded: every list lies within the postings.
        let offset = self.postings + le_u64(&record[8..16]) as usize;
        let bytes = le_u32(&record[16..20]) as usize;
        let bytes = &self.map[offset..offset + bytes];
        (trigram, PostingsRef { bytes, len })
    }
}

/// A stored index, checked and parsed.
pub struct Stored {
    pub entries: Vec<StoredEntry>,
    pub base: Base,
}

/// Where `root`'s index is stored: `None` without a cache directory.
pub fn location(root: &Path) -> Option<PathBuf> {
    let dir = warm_runtime::paths::cache_dir_location()?;
    let tag = warm_runtime::paths::root_tag(root);
    Some(dir.join("search").join(format!("{tag}.idx")))
}

/// Reads and checks the index stored at `path` for `root`.
pub fn load(path: &Path, root: &Path) -> Result<Stored, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| dir.exists()) {
        private_dir(dir)?;
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Missing),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: the file is warm's own, in the user's private cache directory, and warm never
    // writes one in place: a new index is written to another file and renamed over this
    // one, which leaves this mapping as it was. (A truncation in place by another program
    // would fault the daemon on access; no reader of these files does that.)
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let (base, entries) = parse(map, root)?;
    Ok(Stored { entries, base })
}

fn parse(map: memmap2::Mmap, root: &Path) -> Result<(Base, Vec<StoredEntry>), StoreError> {
    if map.len() < HEADER || &map[..8] != MAGIC {
        return Err(StoreError::Magic);
    }
    let version = le_u32(&map[8..12]);
    if version != FORMAT_VERSION {
        return Err(StoreError::Version(version));
    }
    let checksum = le_u32(&map[12..16]);
    let expected = le_u64(&map[16..24]).saturating_add(HEADER as u64);
    if map.len() as u64 != expected {
        return Err(StoreError::Truncated {
            found: map.len() as u64,
            expected,
        });
    }
    if crc32fast::hash(&map[HEADER..]) != checksum {
        return Err(StoreError::Checksum);
    }
    let mut body = Cursor {
        bytes: &map,
        at: HEADER,
    };
    if body.bytes_of_len()? != root.as_os_str().as_encoded_bytes() {
        return Err(StoreError::OtherRoot);
    }
    let count = body.u32()?;
    let mut entries = Vec::with_capacity(count.min(1 << 24) as usize);
    for _ in 0..count {
        entries.push(body.entry()?);
    }
    let trigrams = body.u32()? as usize;
    let table = body.at;
    let postings = trigrams
        .checked_mul(TABLE_RECORD)
        .and_then(|n| n.checked_add(table))
        .filter(|&end| end <= map.len())
        .ok_or(StoreError::Malformed("the trigram table overruns the file"))?;
    let base = Base {
        table,
        trigrams,
        postings,
        ids: count,
        map,
    };
    check_table(&base)?;
    Ok((base, entries))
}

/// Every list within the postings, trigrams ascending: what [`Base::record`] relies on.
fn check_table(base: &Base) -> Result<(), StoreError> {
    let room = (base.map.len() - base.postings) as u64;
    let mut last = None;
    for i in 0..base.trigrams {
        let at = base.table + i * TABLE_RECORD;
        let record = &base.map[at..at + TABLE_RECORD];
        let trigram = le_u32(&record[0..4]);
        let end = le_u64(&record[8..16]).checked_add(u64::from(le_u32(&record[16..20])));
        if end.is_none_or(|end| end > room) {
            return Err(StoreError::Malformed("a posting list overruns the file"));
        }
        if last.is_some_and(|last| last >= trigram) {
            return Err(StoreError::Malformed("the trigram table is out of order"));
        }
        last = Some(trigram);
    }
    Ok(())
}

/// Reads the body of a stored index, every read bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(StoreError::Malformed("an entry overruns the file"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        self.take(4).map(le_u32)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        self.take(8).map(le_u64)
    }

    fn bytes_of_len(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn entry(&mut self) -> Result<StoredEntry, StoreError> {
        let flags = self.take(1)?[0];
        let (path, size) = if flags & ALIVE != 0 {
            use std::os::unix::ffi::OsStrExt;
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(self.bytes_of_len()?));
            (Some(path), self.u64()?)
        } else {
            (None, 0)
        };
        let stamp = if flags & STAMPED != 0 {
            Some(Stamp {
                size: self.u64()?,
                mtime: self.u64()? as i64,
                ctime: self.u64()? as i64,
                ino: self.u64()?,
            })
        } else {
            None
        };
        Ok(StoredEntry { path, size, stamp })
    }
}

/// What [`save`] writes: entries in id order (path, size, stamp), posting lists in trigram
/// order (trigram, ids, bytes).
pub struct Contents<'a> {
    pub entries: Vec<(Option<&'a Path>, u64, Option<Stamp>)>,
    pub postings: Vec<(u32, u32, Cow<'a, [u8]>)>,
}

/// Writes `contents` as `root`'s index at `path`, atomically; returns the bytes written.
pub fn save(path: &Path, root: &Path, contents: &Contents<'_>) -> io::Result<u64> {
    write(path, root, contents)?.commit()
}

/// A stored index written to a temporary file beside its place, not yet durable nor in
/// place: [`Pending::commit`] does both; dropped uncommitted, the file is removed. Apart so
/// that the slow part (fsync) needs nothing from the index it was written from.
pub struct Pending {
    temporary: PathBuf,
    path: PathBuf,
    file: Option<std::fs::File>,
    bytes: u64,
}

impl Pending {
    /// Makes the file durable and puts it in place atomically; returns its size.
    pub fn commit(mut self) -> io::Result<u64> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("already committed"))?;
        file.sync_all()?;
        drop(file);
        crash_point(u64::MAX - 1);
        std::fs::rename(&self.temporary, &self.path)?;
        crash_point(u64::MAX);
        self.temporary = PathBuf::new();
        // The rename itself is durable once the directory is.
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(self.bytes)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.temporary.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Writes `contents` as `root`'s index to a temporary file beside `path`.
pub fn write(path: &Path, root: &Path, contents: &Contents<'_>) -> io::Result<Pending> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the index path has no directory"))?;
    private_dir(dir)?;
    let temporary = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    match write_file(&temporary, root, contents) {
        Ok((file, bytes)) => Ok(Pending {
            temporary,
            path: path.to_owned(),
            file: Some(file),
            bytes,
        }),
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Creates `dir` (mode 0700) if needed, and refuses one that is a link, someone else's, or
/// open to other users: an index holds the names and trigrams of the user's files, and
/// one planted by someone else must never be read.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    let mode = meta.permissions().mode() & 0o777;
    let private = !meta.file_type().is_symlink()
        && meta.uid() == rustix::process::geteuid().as_raw()
        && mode & 0o077 == 0;
    if private {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} is a link, another user's, or open to other users (mode {mode:o}); run `chmod 700 {}` if it is yours",
            dir.display(),
            dir.display()
        )))
    }
}

fn write_file(
    temporary: &Path,
    root: &Path,
    contents: &Contents<'_>,
) -> io::Result<(std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temporary)?;
    file.write_all(&[0; HEADER])?;
    let mut body = BodyWriter {
        out: io::BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
        written: 0,
    };
    let root = root.as_os_str().as_encoded_bytes();
    body.put(&len_u32(root.len())?.to_le_bytes())?;
    body.put(root)?;
    body.put(&len_u32(contents.entries.len())?.to_le_bytes())?;
    for (path, size, stamp) in &contents.entries {
        let flags = path.map_or(0, |_| ALIVE) | stamp.map_or(0, |_| STAMPED);
        body.put(&[flags])?;
        if let Some(path) = path {
            let bytes = path.as_os_str().as_encoded_bytes();
            body.put(&len_u32(bytes.len())?.to_le_bytes())?;
            body.put(bytes)?;
            body.put(&size.to_le_bytes())?;
        }
        if let Some(stamp) = stamp {
            for field in [
                stamp.size,
                stamp.mtime as u64,
                stamp.ctime as u64,
                stamp.ino,
            ] {
                body.put(&field.to_le_bytes())?;
            }
        }
    }
    body.put(&len_u32(contents.postings.len())?.to_le_bytes())?;
    let mut offset = 0u64;
    for (trigram, len, bytes) in &contents.postings {
        body.put(&trigram.to_le_bytes())?;
        body.put(&len.to_le_bytes())?;
        body.put(&offset.to_le_bytes())?;
        body.put(&len_u32(bytes.len())?.to_le_bytes())?;
        offset += bytes.len() as u64;
    }
    for (_, _, bytes) in &contents.postings {
        body.put(bytes)?;
    }
    let BodyWriter { out, crc, written } = body;
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    let crc = crc.finalize();
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&written.to_le_bytes());
    file.seek(io::SeekFrom::Start(0))?;
    file.write_all(&header)?;
    Ok((file, written + HEADER as u64))
}

fn len_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::other("too large for the index format"))
}

/// The body of the file being written, with its CRC-32 and length.
struct BodyWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> BodyWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        crash_point(self.written + bytes.len() as u64);
        self.out.write_all(bytes)?;
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// `WARM_SEARCH_TEST_CRASH_AT=N` (tests only) ends the process at once with `SIGKILL`,
/// when a write would take the body past `N` bytes; `u64::MAX - 1` is just before the rename,
/// `u64::MAX` just after it.
fn crash_point(reached: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("WARM_SEARCH_TEST_CRASH_AT")
            .ok()
            .and_then(|n| n.parse().ok())
    });
    if at.is_some_and(|at| reached >= at) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// Removes the least recently used stored indexes beyond `cap` bytes in total, those of
/// project directories that are gone, and the temporary files of daemons that died while
/// writing one; never `keep`, nor a file another daemon is writing.
pub fn evict(dir: &Path, keep: &Path, cap: u64) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let mut stored: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for entry in listing.flatten() {
        let path = entry.path();
        if let Some(pid) = temporary_writer(&path) {
            if !warm_runtime::meta::process_is_running(pid) {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if path == keep || path.extension().is_none_or(|e| e != "idx") {
            continue;
        }
        if stored_root(&path).is_some_and(|root| !root.is_dir()) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            stored.push((used, meta.len(), path));
        }
    }
    let kept = std::fs::metadata(keep).map_or(0, |m| m.len());
    let mut total = kept + stored.iter().map(|(_, size, _)| size).sum::<u64>();
    stored.sort();
    for (_, size, path) in stored {
        if total <= cap {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= size;
        }
    }
}

/// The pid of the process writing the temporary file `path` (named by [`save`]).
fn temporary_writer(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, writer) = rest.rsplit_once(".idx.")?;
    writer.split_once('-')?.0.parse().ok()
}

/// The project directory a stored index is for, read from its first bytes.
fn stored_root(path: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut start = vec![0; HEADER + 4 + 4096];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut start).ok()?;
    let start = start.get(..n)?;
    if start.get(..8)? != MAGIC {
        return None;
    }
    let len = le_u32(start.get(HEADER..HEADER + 4)?) as usize;
    let root = start.get(HEADER + 4..HEADER + 4 + len)?;
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(root)))
}

/// Marks a stored index as just used, for [`evict`]'s order.
pub fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(crate::index::stamp_now());
    }
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigram::Postings;

    fn postings(ids: &[u32]) -> Vec<u8> {
        let mut list = Postings::default();
        for &id in ids {
            list.push(id);
        }
        list.as_ref().bytes.to_vec()
    }

    fn stamp(n: u64) -> Stamp {
        Stamp {
            size: n,
            mtime: n as i64 * 3,
            ctime: -(n as i64),
            ino: n + 7,
        }
    }

    /// A small stored index: three entries (one dead), two trigrams.
    fn stored(dir: &Path) -> (PathBuf, PathBuf) {
        let root = dir.join("project");
        let path = dir.join("search/x.idx");
        let contents = Contents {
            entries: vec![
                (Some(Path::new("a.rs")), 1, Some(stamp(1))),
                (None, 0, None),
                (Some(Path::new("d/\u{e9}.rs")), 5, None),
            ],
            postings: vec![
                (7, 2, Cow::Owned(postings(&[0, 2]))),
                (9, 1, Cow::Owned(postings(&[2]))),
            ],
        };
        save(&path, &root, &contents).expect("save");
        (path, root)
    }

    fn ids(base: &Base, trigram: u32) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(list) = base.get(trigram) {
            list.decode_into(&mut out);
        }
        out
    }

    #[test]
    fn what_is_saved_is_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, root) = stored(dir.path());
        let Stored { entries, base } = load(&path, &root).expect("load");
        assert_eq!(
            entries,
            [
                StoredEntry {
                    path: Some("a.rs".into()),
                    size: 1,
                    stamp: Some(stamp(1))
                },
                StoredEntry {
                    path: None,
                    size: 0,
                    stamp: None
                },
                StoredEntry {
                    path: Some("d/\u{e9}.rs".into()),
                    size: 5,
                    stamp: None
                },
            ]
        );
        assert_eq!(base.ids, 3);
        assert_eq!(ids(&base, 7), [0, 2]);
        assert_eq!(ids(&base, 9), [2]);
        assert!(base.get(8).is_none() && base.get(0).is_none() && base.get(10).is_none());
        // Nothing but the file itself is left behind (no temporary file).
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["x.idx"]);
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, root) = stored(dir.path());
        let good = std::fs::read(&path).expect("read");
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                std::fs::write(&path, &bad).expect("write");
                assert!(load(&path, &root).is_err(), "bit {bit} of byte {at}");
            }
            std::fs::write(&path, &good[..at]).expect("truncate");
            assert!(load(&path, &root).is_err(), "truncated to {at} bytes");
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&path, &longer).expect("extend");
        assert!(matches!(
            load(&path, &root),
            Err(StoreError::Truncated { .. })
        ));
        std::fs::write(&path, &good).expect("restore");
        assert!(load(&path, &root).is_ok());
        assert!(matches!(
            load(&path, &dir.path().join("other")),
            Err(StoreError::OtherRoot)
        ));
        let mut other_version = good;
        other_version[8] ^= 2;
        std::fs::write(&path, &other_version).expect("version");
        assert!(matches!(load(&path, &root), Err(StoreError::Version(3))));
        std::fs::remove_file(&path).expect("rm");
        assert!(matches!(load(&path, &root), Err(StoreError::Missing)));
    }

    #[test]
    fn a_directory_open_to_other_users_is_never_read_or_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, root) = stored(dir.path());
        let search = path.parent().expect("dir");
        let mode = |m| std::fs::set_permissions(search, std::fs::Permissions::from_mode(m));
        assert_eq!(
            std::fs::metadata(search)
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o700,
            "created private"
        );
        mode(0o777).expect("chmod");
        assert!(matches!(load(&path, &root), Err(StoreError::Io(_))));
        let contents = Contents {
            entries: Vec::new(),
            postings: Vec::new(),
        };
        assert!(save(&path, &root, &contents).is_err());
        mode(0o700).expect("chmod");
        assert!(load(&path, &root).is_ok());
    }

    #[test]
    fn a_file_changed_within_the_clocks_granularity_gets_no_stamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("write");
        let meta = std::fs::metadata(&file).expect("meta");
        let changed = meta.modified().expect("mtime");
        assert_eq!(Stamp::settled(&meta, changed), None, "just written");
        let later = changed + Duration::from_secs(3);
        assert_eq!(Stamp::settled(&meta, later), Some(Stamp::of(&meta)));
        let before = changed - Duration::from_secs(60);
        assert_eq!(
            Stamp::settled(&meta, before),
            None,
            "a clock behind the file"
        );
    }

    #[test]
    fn eviction_keeps_the_newest_within_the_cap_and_drops_gone_projects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let search = dir.path().join("search");
        let project = dir.path().join("project");
        std::fs::create_dir(&project).expect("project");
        let contents = Contents {
            entries: vec![(Some(Path::new("a")), 1, None)],
            postings: vec![(1, 1, Cow::Owned(vec![0; 1000]))],
        };
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for (n, age) in [(1u64, 3), (2, 2), (3, 1)] {
            let path = search.join(format!("{n}.idx"));
            save(&path, &project, &contents).expect("save");
            let file = std::fs::File::options()
                .append(true)
                .open(&path)
                .expect("open");
            file.set_modified(old + Duration::from_secs(100 - age))
                .expect("mtime");
        }
        let mut exited = std::process::Command::new("true").spawn().expect("true");
        let dead = exited.id();
        exited.wait().expect("reaped");
        let dead_writer = search.join(format!(".1.idx.{dead}-0.tmp"));
        let live_writer = search.join(format!(".1.idx.{}-9.tmp", std::process::id()));
        std::fs::write(&dead_writer, "partial").expect("tmp");
        std::fs::write(&live_writer, "partial").expect("tmp");
        let gone = search.join("gone.idx");
        save(&gone, &dir.path().join("deleted"), &contents).expect("save");
        let size = std::fs::metadata(search.join("1.idx")).expect("size").len();
        evict(&search, &search.join("3.idx"), size * 2);
        let mut left: Vec<_> = std::fs::read_dir(&search)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let live = live_writer
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            left,
            [live.as_str(), "2.idx", "3.idx"],
            "the oldest, the gone project's and the dead writer's removed"
        );
    }
}
