//! Where a daemon's files live: the runtime directory and one directory per identity.
//!
//! The runtime directory is the trust boundary: whoever can write into it can plant a socket
//! that clients will talk to, so it is created 0700 and refused when another user owns it or
//! when group or others can access it.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a daemon's paths cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The runtime directory is unsafe to use.
    #[error("{0}")]
    UnsafeRuntimeDir(String),
    /// Bad arguments or environment (service name, root, socket path length).
    #[error("{0}")]
    Setup(String),
}

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// What identifies a daemon: the service it runs and the project root it serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub service: String,
    /// Canonical absolute path of the project root.
    pub root: PathBuf,
}

impl Identity {
    /// An identity for `service` at `root`, canonicalising the root.
    ///
    /// # Errors
    /// [`PathError::Setup`] when the service name is not a plain name or the root does not exist.
    pub fn new(service: &str, root: &Path) -> Result<Identity, PathError> {
        validate_service_name(service)?;
        let root = root.canonicalize().map_err(|e| {
            PathError::Setup(format!(
                "project root {} is not usable: {e}",
                root.display()
            ))
        })?;
        Ok(Identity {
            service: service.to_owned(),
            root,
        })
    }

    /// The name of this identity's directory: `<service>-<root tag>` (see [`root_tag`]).
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.service, root_tag(&self.root))
    }
}

/// The part of a daemon directory's name that names its project: the first 16 hex digits of
/// the SHA-256 of the canonical root. Every daemon of one project has it, so a client can
/// find them without asking every daemon of the user.
pub fn root_tag(root: &Path) -> String {
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a runtime directory entry's name is a daemon directory's (`SERVICE-` and 16 hex
/// digits, see [`Identity::dir_name`]). The runtime directory also holds warm's own files
/// (`probes/`, `inotify.lock`), which are no daemon's and must never be cleaned up as one.
pub fn is_daemon_dir_name(name: &str) -> bool {
    let Some((service, hex)) = name.rsplit_once('-') else {
        return false;
    };
    hex.len() == 16
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && validate_service_name(service).is_ok()
}

/// Service names become file names and CLI words: keep them plain.
pub fn validate_service_name(service: &str) -> Result<(), PathError> {
    let is_plain = !service.is_empty()
        && service.len() <= 64
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !service.starts_with('.');
    if is_plain {
        Ok(())
    } else {
        Err(PathError::Setup(format!(
            "invalid service name {service:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The runtime directory: `$WARM_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/warm`, else
/// `/tmp/warm-$UID`.
pub fn runtime_dir_location() -> PathBuf {
    if let Some(dir) = std::env::var_os("WARM_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("warm");
    }
    PathBuf::from(format!("/tmp/warm-{}", rustix::process::geteuid().as_raw()))
}

/// The cache directory, for state that is costly to rebuild and must outlive a reboot (the
/// search index): `$WARM_CACHE_DIR`, else `$XDG_CACHE_HOME/warm`, else `~/.cache/warm`;
/// `None` with none of them set.
pub fn cache_dir_location() -> Option<PathBuf> {
    let set = |name: &str| {
        std::env::var_os(name)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    };
    set("WARM_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|dir| dir.join("warm")))
        .or_else(|| set("HOME").map(|home| home.join(".cache/warm")))
}

/// True when a socket listens at the path `sock`. With the daemon's lock free, that is a
/// service manager's socket (systemd socket activation): it starts the daemon on the first
/// connection, and its socket file must not be taken for a dead daemon's.
///
/// Read from the kernel's table of Unix sockets (`/proc/net/unix`: the listening flag and the
/// bound path) rather than by connecting, which would start the manager's daemon.
pub fn socket_is_listening(sock: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    /// `__SO_ACCEPTCON` in the table's flags: the socket listens.
    const ACCEPTING: u32 = 0x0001_0000;
    let Ok(table) = fs::read("/proc/net/unix") else {
        return false;
    };
    let path = sock.as_os_str().as_bytes();
    // `Num: RefCount Protocol Flags Type St Inode Path`; the path (which may hold spaces)
    // is the rest of the line.
    table.split(|b| *b == b'\n').skip(1).any(|line| {
        let Some(before) = line.strip_suffix(path) else {
            return false;
        };
        let flags = before
            .split(|b| *b == b' ')
            .filter(|field| !field.is_empty())
            .nth(3)
            .and_then(|field| std::str::from_utf8(field).ok())
            .and_then(|field| u32::from_str_radix(field, 16).ok());
        before.ends_with(b" ") && flags.is_some_and(|flags| flags & ACCEPTING != 0)
    })
}

/// Creates the runtime directory if needed and checks that only this user can use it.
///
/// # Errors
/// [`PathError::UnsafeRuntimeDir`] naming the problem and the fix.
pub fn ensure_runtime_dir(dir: &Path) -> Result<PathBuf, PathError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => {
            return Err(PathError::UnsafeRuntimeDir(format!(
                "cannot create runtime directory {}: {e}",
                dir.display()
            )))
        }
    }
    check_private_dir(dir)?;
    Ok(dir.to_path_buf())
}

/// Refuses a directory that is a symlink, owned by someone else, or open to group or others.
pub fn check_private_dir(dir: &Path) -> Result<(), PathError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        PathError::UnsafeRuntimeDir(format!("cannot inspect {}: {e}", dir.display()))
    })?;
    if meta.file_type().is_symlink() {
        return Err(PathError::UnsafeRuntimeDir(format!(
            "runtime directory {} is a symbolic link; remove it (or point WARM_RUNTIME_DIR at a real directory)",
            dir.display()
        )));
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(PathError::UnsafeRuntimeDir(format!(
            "runtime directory {} is owned by uid {}, not by you (uid {uid}); remove it or set WARM_RUNTIME_DIR to a directory you own",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PathError::UnsafeRuntimeDir(format!(
            "runtime directory {} has mode {mode:o}, open to other users; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// The files of one daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPaths {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub lock: PathBuf,
    pub spawn_lock: PathBuf,
    pub meta: PathBuf,
    pub health: PathBuf,
    pub log: PathBuf,
    pub events: PathBuf,
}

impl DaemonPaths {
    /// The paths of the daemon for `identity` under `runtime_dir`.
    ///
    /// # Errors
    /// [`PathError::Setup`] when the socket path would not fit in `sun_path`: checked up front so
    /// the failure names the cause instead of surfacing as an obscure bind error.
    pub fn new(runtime_dir: &Path, identity: &Identity) -> Result<DaemonPaths, PathError> {
        DaemonPaths::from_dir(runtime_dir.join(identity.dir_name()))
    }

    /// The paths inside an existing daemon directory.
    pub fn from_dir(dir: PathBuf) -> Result<DaemonPaths, PathError> {
        let sock = dir.join("sock");
        let sock_len = sock.as_os_str().len();
        if sock_len > MAX_SOCKET_PATH {
            return Err(PathError::Setup(format!(
                "socket path {} is {sock_len} bytes, over the {MAX_SOCKET_PATH}-byte limit of Unix sockets; set WARM_RUNTIME_DIR to a shorter directory",
                sock.display()
            )));
        }
        Ok(DaemonPaths {
            lock: dir.join("lock"),
            spawn_lock: dir.join("spawn.lock"),
            meta: dir.join("meta.json"),
            health: dir.join("health.json"),
            log: dir.join("daemon.log"),
            events: dir.join("events.jsonl"),
            sock,
            dir,
        })
    }

    /// Removes the directory of a daemon that is not running, with everything in it.
    /// `Ok(false)` when a daemon holds its lock or a client is starting one.
    ///
    /// Both locks are held while the files (the lock files included) are removed; a process
    /// that opened a lock file before the removal finds, once it gets the lock, that the path
    /// no longer names that inode, and starts over on a fresh one (see [`LockFile`]).
    ///
    /// [`LockFile`]: crate::LockFile
    pub fn remove_if_dead(&self) -> io::Result<bool> {
        let Some(_spawn) = crate::LockFile::try_acquire(&self.spawn_lock)? else {
            return Ok(false);
        };
        let Some(_lock) = crate::LockFile::try_acquire(&self.lock)? else {
            return Ok(false);
        };
        // A service manager's socket, its daemon idle: not dead.
        if socket_is_listening(&self.sock) {
            return Ok(false);
        }
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
        fs::remove_dir(&self.dir)?;
        Ok(true)
    }

    /// Creates the daemon directory (0700).
    pub fn create_dir(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
    }
}

/// Directories that mark a version-controlled tree's root.
pub const VCS_MARKERS: &[&str] = &[".git", ".hg", ".jj", ".svn"];

/// Files that mark a project's root when there is no version control: the build or package
/// manifest of the common languages.
pub const PROJECT_MARKERS: &[&str] = &[
    "Cargo.toml",
    "pyproject.toml",
    "setup.py",
    "package.json",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "CMakeLists.txt",
    "meson.build",
    "Makefile",
    "composer.json",
    "Gemfile",
    "mix.exs",
    "deno.json",
];

/// Finds the project root: the nearest ancestor of `start` holding `.warm.toml`; else, when
/// `vcs_fallback`, the nearest VCS root, else the nearest directory with a project manifest
/// ([`PROJECT_MARKERS`]); else `start` itself.
///
/// The manifest step keeps one daemon per project when there is no version control: a query
/// from `src/` and one from the project's top share a daemon instead of starting two.
pub fn find_root(start: &Path, vcs_fallback: bool) -> PathBuf {
    // One buffer for every probe: a `join` per (directory, marker) pair was a third of a
    // one-shot call's instructions, nearly all of it allocation.
    let mut probe = PathBuf::with_capacity(start.as_os_str().len() + 32);
    let mut holds_any = |dir: &Path, markers: &[&str]| {
        markers.iter().any(|marker| {
            probe.clear();
            probe.push(dir);
            probe.push(marker);
            probe.exists()
        })
    };
    let mut nearest = |markers: &[&str]| start.ancestors().find(|d| holds_any(d, markers));
    if let Some(dir) = nearest(&[".warm.toml"]) {
        return dir.to_path_buf();
    }
    if vcs_fallback {
        if let Some(dir) = nearest(VCS_MARKERS).or_else(|| nearest(PROJECT_MARKERS)) {
            return dir.to_path_buf();
        }
    }
    start.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listening_socket_at_exactly_that_path_is_listening() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let listening = tmp.path().join("l.sock");
        let listener = std::os::unix::net::UnixListener::bind(&listening).expect("bind");
        assert!(socket_is_listening(&listening));
        // Bound but not listening.
        let datagram = tmp.path().join("d.sock");
        let _datagram = std::os::unix::net::UnixDatagram::bind(&datagram).expect("bind");
        assert!(!socket_is_listening(&datagram));
        // A listening socket whose path merely ends with the one asked about.
        let asked = tmp.path().join("q.sock");
        let longer = tmp
            .path()
            .join("x")
            .join(asked.strip_prefix("/").expect("absolute"));
        fs::create_dir_all(longer.parent().expect("parent")).expect("mkdir");
        let _longer = std::os::unix::net::UnixListener::bind(&longer).expect("bind");
        assert!(!socket_is_listening(&asked));
        // The file a closed listener leaves behind.
        drop(listener);
        assert!(listening.exists());
        assert!(!socket_is_listening(&listening));
    }

    #[test]
    fn a_dead_daemons_directory_is_removed_and_a_listening_ones_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = DaemonPaths::from_dir(tmp.path().join("svc-0123456789abcdef")).expect("paths");
        fs::create_dir_all(&paths.dir).expect("mkdir");
        let listener = std::os::unix::net::UnixListener::bind(&paths.sock).expect("bind");
        assert!(!paths.remove_if_dead().expect("checked"));
        assert!(
            paths.sock.exists(),
            "a service manager's socket was removed"
        );
        drop(listener);
        assert!(paths.remove_if_dead().expect("removed"));
        assert!(!paths.dir.exists());
    }

    #[test]
    fn dir_name_is_service_and_sixteen_hex() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let id = Identity::new("search", tmp.path()).expect("identity");
        let name = id.dir_name();
        assert!(name.starts_with("search-"));
        assert_eq!(name.len(), "search-".len() + 16);
    }

    #[test]
    fn only_daemon_directory_names_are_taken_for_daemons() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for service in ["search", "lsp-pylsp", "a_b.c"] {
            let id = Identity::new(service, tmp.path()).expect("identity");
            assert!(is_daemon_dir_name(&id.dir_name()), "{}", id.dir_name());
        }
        for other in [
            "probes",
            "inotify.lock",
            "search-0123",
            "search-0123456789ABCDEF",
            "-0123456789abcdef",
            "a b-0123456789abcdef",
        ] {
            assert!(!is_daemon_dir_name(other), "{other}");
        }
    }

    #[test]
    fn service_names_with_slashes_are_refused() {
        assert!(validate_service_name("a/b").is_err());
        assert!(validate_service_name("..").is_err());
        assert!(validate_service_name("").is_err());
        assert!(validate_service_name("my-svc_2").is_ok());
    }

    #[test]
    fn group_accessible_runtime_dir_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("rt");
        ensure_runtime_dir(&dir).expect("fresh dir is accepted");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).expect("chmod");
        let err = ensure_runtime_dir(&dir).expect_err("refused");
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn too_long_socket_path_is_refused_up_front() {
        let long = PathBuf::from("/tmp").join("x".repeat(120));
        assert!(DaemonPaths::from_dir(long).is_err());
    }

    #[test]
    fn root_is_nearest_config_then_vcs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let project = tmp.path().join("p");
        let nested = project.join("a/b");
        fs::create_dir_all(&nested).expect("mkdir");
        fs::create_dir(project.join(".git")).expect("mkdir");
        assert_eq!(find_root(&nested, true), project);
        assert_eq!(find_root(&nested, false), nested);
        fs::write(project.join("a/.warm.toml"), "").expect("write");
        assert_eq!(find_root(&nested, true), project.join("a"));
    }

    #[test]
    fn without_vcs_the_nearest_manifest_is_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let project = tmp.path().join("p");
        let nested = project.join("src/deep");
        fs::create_dir_all(&nested).expect("mkdir");
        assert_eq!(
            find_root(&nested, true),
            nested,
            "no marker: the directory itself"
        );
        fs::write(project.join("pyproject.toml"), "").expect("write");
        assert_eq!(find_root(&nested, true), project);
        // Version control wins over a nearer manifest (a workspace member's Cargo.toml).
        fs::write(project.join("src/Cargo.toml"), "").expect("write");
        assert_eq!(find_root(&nested, true), project.join("src"));
        fs::create_dir(project.join(".git")).expect("mkdir");
        assert_eq!(find_root(&nested, true), project);
    }
}
