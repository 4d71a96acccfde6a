//! Workspace trust: a repository's `.warm.toml` can name commands (workers, language
//! servers), and cloning a repository must not be enough to run them. A file is trusted by
//! the user (`warm trust DIR`) for its exact content: the store records the file's canonical
//! path and the SHA-256 of its bytes, so an edited file (a `git pull`) needs trusting again.
//! As direnv's `allow`, VS Code's workspace trust and mise's `trust` do.
//!
//! The store is one text file, `$XDG_CONFIG_HOME/warm/trusted` (else
//! `~/.config/warm/trusted`), a line per file: `<sha256 hex> <path>`. `WARM_TRUST_ALL=1`
//! trusts everything, for CI and throwaway containers.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The environment variable that trusts every `.warm.toml`.
pub const TRUST_ALL_ENV: &str = "WARM_TRUST_ALL";

/// Where the store lives; `None` without `$XDG_CONFIG_HOME` and `$HOME`.
pub fn store_location() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(config.join("warm").join("trusted"))
}

/// True when every file is trusted by the environment.
pub fn trust_all() -> bool {
    std::env::var(TRUST_ALL_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn digest(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entries(store: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_to_string(store)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (hash, path) = line.split_once(' ')?;
            Some((hash.to_owned(), PathBuf::from(path)))
        })
        .collect()
}

/// Whether the file at `path` is trusted as it is on disk now.
pub fn is_file_trusted(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    let content = std::fs::read(&path).unwrap_or_default();
    is_trusted(&path, &content)
}

/// Whether the file at `path` (canonical) with these bytes was trusted.
pub fn is_trusted(path: &Path, content: &[u8]) -> bool {
    if trust_all() {
        return true;
    }
    let Some(store) = store_location() else {
        return false;
    };
    let hash = digest(content);
    entries(&store).iter().any(|(h, p)| *h == hash && p == path)
}

/// Records the file at `path` (canonical) with these bytes as trusted, replacing what was
/// recorded for it.
///
/// # Errors
/// [`Error::Setup`] when the store cannot be written.
pub fn trust(path: &Path, content: &[u8]) -> Result<PathBuf, Error> {
    let store = store_location()
        .ok_or_else(|| Error::Setup("cannot find your config directory: set HOME".into()))?;
    let mut kept: Vec<(String, PathBuf)> = entries(&store)
        .into_iter()
        .filter(|(_, p)| p != path)
        .collect();
    kept.push((digest(content), path.to_path_buf()));
    write(&store, &kept)?;
    Ok(store)
}

/// Forgets the file at `path`; true when it was trusted.
///
/// # Errors
/// [`Error::Setup`] when the store cannot be written.
pub fn revoke(path: &Path) -> Result<bool, Error> {
    let Some(store) = store_location() else {
        return Ok(false);
    };
    let all = entries(&store);
    let kept: Vec<(String, PathBuf)> = all.iter().filter(|(_, p)| p != path).cloned().collect();
    if kept.len() == all.len() {
        return Ok(false);
    }
    write(&store, &kept)?;
    Ok(true)
}

/// The trusted files, as recorded.
pub fn list() -> Vec<PathBuf> {
    store_location()
        .map(|store| entries(&store).into_iter().map(|(_, p)| p).collect())
        .unwrap_or_default()
}

/// Replaces the store atomically (a temporary file renamed over it): a crash leaves the old
/// store or the new one, never half of one.
fn write(store: &Path, entries: &[(String, PathBuf)]) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let failed = |e: std::io::Error| Error::Setup(format!("cannot write {}: {e}", store.display()));
    let dir = store.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    let temp = dir.join(format!(".trusted.{}", std::process::id()));
    let mut text = String::new();
    for (hash, path) in entries {
        // A path with a newline would forge a line; such a path is never trusted.
        if path.as_os_str().as_encoded_bytes().contains(&b'\n') {
            continue;
        }
        text.push_str(&format!("{hash} {}\n", path.display()));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temp, store).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_trusted_for_its_content_only() {
        let home = tempfile::tempdir().expect("tempdir");
        // The crate's only test that sets these variables.
        std::env::set_var("XDG_CONFIG_HOME", home.path());
        std::env::remove_var(TRUST_ALL_ENV);
        let file = Path::new("/p/.warm.toml");
        assert!(!is_trusted(file, b"a"));
        trust(file, b"a").expect("trust");
        assert!(is_trusted(file, b"a"));
        assert!(!is_trusted(file, b"a edited"), "edited: trust again");
        assert!(
            !is_trusted(Path::new("/q/.warm.toml"), b"a"),
            "another file"
        );
        trust(file, b"b").expect("trust again");
        assert!(is_trusted(file, b"b") && !is_trusted(file, b"a"));
        assert_eq!(list(), vec![file.to_path_buf()]);
        assert!(revoke(file).expect("revoke"));
        assert!(!is_trusted(file, b"b"));
    }
}
