//! The inotify budget: every search daemon watches its tree with one inotify instance, and a
//! user has few of them (128 by default, `fs.inotify.max_user_instances`), shared with every
//! program they run (editors, `tail -f`, file managers). warm never takes the last ones.
//!
//! Before a daemon creates its watcher it takes a per-user lock (`<runtime>/inotify.lock`, so
//! two daemons starting at once cannot both take the last slot), counts the instances the
//! user holds (from `/proc`), and if that would leave fewer than the reserve free, or if this
//! user already has [`max_search_daemons`] search daemons, asks the longest-idle other search
//! daemon to stop (a daemon with a request in flight or a lease held is never chosen). If
//! no room can be made, the daemon does not watch: each query checks the index against the
//! tree by metadata first (answers stay exact)
//! and `warm search --status` says why and how to raise the limit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warm_client::Connection;
use warm_protocol::Framing;
use warm_runtime::{DaemonPaths, EventLog, LockFile};

/// How many of the user's inotify instances warm leaves to other programs: a quarter of the
/// limit, at least 8.
pub fn reserve(max_instances: u64) -> u64 {
    (max_instances / 4).max(8)
}

/// The per-user cap on search daemons (`WARM_MAX_SEARCH_DAEMONS`, default 64).
pub fn max_search_daemons() -> usize {
    std::env::var("WARM_MAX_SEARCH_DAEMONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(64)
}

/// The user's inotify instances and watches, and the kernel's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub instances: u64,
    pub watches: u64,
    pub max_instances: u64,
    pub max_watches: u64,
}

impl Usage {
    /// Counts what the processes of this user hold now.
    pub fn now() -> Usage {
        let read_limit = |name: &str, default: u64| {
            std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(default)
        };
        let (instances, watches) = count_user_inotify();
        Usage {
            instances,
            watches,
            max_instances: read_limit("max_user_instances", 128),
            max_watches: read_limit("max_user_watches", 8192),
        }
    }

    /// True when one more instance leaves the reserve free.
    pub fn has_room(&self) -> bool {
        self.instances + 1 + reserve(self.max_instances) <= self.max_instances
    }

    pub fn to_json(self) -> Value {
        json!({
            "instances": self.instances,
            "max_instances": self.max_instances,
            "reserve": reserve(self.max_instances),
            "watches": self.watches,
            "max_watches": self.max_watches,
        })
    }
}

/// Instances (`anon_inode:inotify` descriptors) and their watches (`inotify wd:` lines of
/// fdinfo) in the processes of the effective user.
fn count_user_inotify() -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let uid = rustix::process::geteuid().as_raw();
    let (mut instances, mut watches) = (0, 0);
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for process in processes.flatten() {
        let is_pid = process
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid || !process.metadata().is_ok_and(|m| m.uid() == uid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let is_inotify = std::fs::read_link(fd.path())
                .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify");
            if is_inotify {
                instances += 1;
                let info = process.path().join("fdinfo").join(fd.file_name());
                watches += std::fs::read_to_string(info)
                    .map(|t| t.lines().filter(|l| l.starts_with("inotify wd:")).count() as u64)
                    .unwrap_or(0);
            }
        }
    }
    (instances, watches)
}

/// Where a daemon finds its peers, for the budget.
#[derive(Debug, Clone)]
pub struct Peers {
    pub runtime_dir: PathBuf,
    /// This daemon's own directory, never evicted.
    pub own_dir: PathBuf,
}

/// Holds the per-user budget lock while this daemon creates its watcher.
pub struct Admission {
    _lock: Option<LockFile>,
    pub usage: Usage,
}

/// Makes room for one more watcher, evicting the longest-idle search daemons as needed.
///
/// # Errors
/// Why no room could be made, with how to raise the limit: the caller scans instead.
pub fn admit(peers: &Peers, events: &EventLog) -> Result<Admission, NoRoom> {
    let lock = LockFile::acquire_until(
        &peers.runtime_dir.join("inotify.lock"),
        Instant::now() + Duration::from_secs(30),
    )
    .ok()
    .flatten();
    let cap = max_search_daemons();
    // A bounded number of evictions: each makes room for this daemon alone.
    for _ in 0..4 {
        let usage = Usage::now();
        let others = search_daemons(peers);
        if usage.has_room() && others.len() < cap {
            return Ok(Admission { _lock: lock, usage });
        }
        let Some(victim) = others
            .iter()
            .filter_map(|(paths, status)| Some((paths, idle_secs(status)?)))
            .max_by_key(|(_, idle)| *idle)
        else {
            return Err(no_room(&usage, others.len(), cap));
        };
        let (paths, idle) = victim;
        let reason = if usage.has_room() {
            format!(
                "the user's {cap} search daemons are the most allowed (WARM_MAX_SEARCH_DAEMONS)"
            )
        } else {
            format!(
                "inotify budget: {} of {} instances in use, {} kept free",
                usage.instances,
                usage.max_instances,
                reserve(usage.max_instances)
            )
        };
        tracing::info!(victim = %paths.dir.display(), idle, %reason, "evicting the longest-idle search daemon");
        events.record(
            "search.evicted",
            json!({ "daemon": paths.dir.display().to_string(), "idle_secs": idle, "reason": reason }),
        );
        evict(paths, &reason);
    }
    let usage = Usage::now();
    Err(no_room(&usage, search_daemons(peers).len(), cap))
}

fn no_room(usage: &Usage, daemons: usize, cap: usize) -> NoRoom {
    NoRoom {
        instances: usage.instances,
        max_instances: usage.max_instances,
        daemons,
        cap,
    }
}

/// No watcher could be made room for: the user's inotify instances are near their limit (or
/// the search daemons at theirs) and no idle search daemon could be stopped. The daemon then
/// answers by scanning; the message says how to raise the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not watching: {instances} of the user's {max_instances} inotify instances are in use and warm keeps {} free for other programs ({daemons} search daemons, at most {cap}), and no idle search daemon could be stopped; each query checks the index against the tree by metadata instead. Raise the limit: sudo sysctl fs.inotify.max_user_instances={}",
    reserve(*.max_instances),
    (.max_instances * 4).max(1024)
)]
pub struct NoRoom {
    pub instances: u64,
    pub max_instances: u64,
    pub daemons: usize,
    pub cap: usize,
}

/// Running search daemons of this user other than this one, with their status.
fn search_daemons(peers: &Peers) -> Vec<(DaemonPaths, Value)> {
    let Ok(entries) = std::fs::read_dir(&peers.runtime_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("search-"))
        .filter(|e| e.path() != peers.own_dir)
        .filter_map(|e| DaemonPaths::from_dir(e.path()).ok())
        .filter(|paths| LockFile::is_held(&paths.lock).unwrap_or(false))
        .filter_map(|paths| {
            let status = request(&paths, "daemon/status", None)?;
            Some((paths, status))
        })
        .collect()
}

/// How long a daemon has been idle; `None` for one that must not be evicted (a request in
/// flight, a lease, or a TTL of 0: the user asked it to stay).
fn idle_secs(status: &Value) -> Option<u64> {
    let busy = status["in_flight"].as_u64() != Some(0) || status["leases"].as_u64() != Some(0);
    let remaining = status["ttl_remaining_secs"].as_u64()?;
    (!busy).then(|| {
        status["ttl_secs"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(remaining)
    })
}

fn request(paths: &DaemonPaths, method: &str, params: Option<&Value>) -> Option<Value> {
    let mut connection = Connection::connect(&paths.sock, Framing::Ndjson).ok()?;
    connection.set_timeout(Some(Duration::from_secs(2))).ok()?;
    connection.request(method, params, &mut |_| {}).ok()?.ok()
}

/// Asks a daemon to stop and waits (bounded) until it has released its lock, and so its
/// inotify instance.
fn evict(paths: &DaemonPaths, reason: &str) {
    let _ = request(paths, "daemon/shutdown", Some(&json!({ "reason": reason })));
    let _ = LockFile::acquire_until(&paths.lock, Instant::now() + Duration::from_secs(10));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_quarter_and_at_least_eight() {
        assert_eq!(reserve(128), 32);
        assert_eq!(reserve(16), 8);
        let usage = |instances| Usage {
            instances,
            watches: 0,
            max_instances: 128,
            max_watches: 8192,
        };
        assert!(usage(95).has_room());
        assert!(!usage(96).has_room(), "the 97th would leave only 31 free");
    }

    #[test]
    fn busy_and_never_expiring_daemons_are_never_evicted() {
        let status = |in_flight, leases, remaining: Option<u64>| json!({ "in_flight": in_flight, "leases": leases, "ttl_secs": 600, "ttl_remaining_secs": remaining });
        assert_eq!(idle_secs(&status(0, 0, Some(500))), Some(100));
        assert_eq!(idle_secs(&status(1, 0, Some(600))), None);
        assert_eq!(idle_secs(&status(0, 1, Some(600))), None);
        assert_eq!(idle_secs(&status(0, 0, None)), None);
    }

    #[test]
    fn this_process_inotify_instance_is_counted() {
        let before = count_user_inotify().0;
        let fd = rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::CLOEXEC)
            .expect("inotify_init");
        assert!(count_user_inotify().0 > before);
        drop(fd);
    }
}
