//! `meta.json`: what a daemon says about itself, written once it listens.
//!
//! Informational only. Liveness is decided by the daemon's `flock`, never by the pid here, so
//! a stale or reused pid can mislead nobody.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub service: String,
    pub root: String,
    /// Unix time in seconds.
    pub started_at: u64,
    pub ttl_secs: u64,
    /// Start time of the process in clock ticks since boot (field 22 of `/proc/PID/stat`), so
    /// a forced kill can verify it targets this daemon and not a process that reused the pid.
    #[serde(default)]
    pub start_ticks: Option<u64>,
}

impl Meta {
    /// Reads a `meta.json`; `None` when missing or unreadable.
    pub fn read(path: &Path) -> Option<Meta> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, then rename),
/// so readers never see a half-written file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    // A fresh file (O_EXCL, which never follows a symlink) even if a crash left one behind;
    // the rename then replaces `path` itself, never what a planted symlink points to.
    let _ = std::fs::remove_file(&tmp);
    let written = {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| file.write_all(contents))
            .and_then(|()| std::fs::rename(&tmp, path))
    };
    if written.is_err() {
        // A full disk leaves a partial temporary file: it must not pile up.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Start time of process `pid` in clock ticks since boot, from `/proc/PID/stat`.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19)?.parse().ok()
}

/// True when `pid` is alive and not a zombie.
pub fn process_is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

/// Waits until `pid` no longer runs (gone or a zombie), or `deadline`. Returns whether it
/// stopped. Only waits, never signals, so a reused pid can come to no harm.
pub fn wait_process_exit(pid: u32, deadline: std::time::Instant) -> bool {
    while process_is_running(pid) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_start_ticks_and_runs() {
        let pid = std::process::id();
        assert!(process_start_ticks(pid).is_some());
        assert!(process_is_running(pid));
        assert!(!process_is_running(u32::MAX));
    }
}
