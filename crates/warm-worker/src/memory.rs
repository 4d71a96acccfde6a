//! Memory caps (`max_rss`): a worker whose resident memory, with its child processes', has
//! passed the cap is replaced between requests, as a reload replaces workers: a new one
//! takes the slot's new requests at once, the old one finishes those it has, then stops. No
//! request fails for it.
//!
//! The whole process tree counts, because servers do their work in children
//! (typescript-language-server runs `tsserver`). A worker is replaced for memory only once it
//! has answered a request since it became ready: one whose start alone passes the cap is
//! replaced at most once per request, never in a loop.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

use crate::pool::Pool;

/// How often the workers' memory is read: a daemon serving nobody spends ~50 µs on it.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Processes followed down one tree at most: a worker forking without end is not our tree
/// walk's problem to follow.
const MAX_TREE: usize = 4096;

/// Resident memory of process `pid` and of all its descendants, in bytes; `None` when the
/// process is gone.
pub fn tree_rss(pid: u32) -> Option<u64> {
    let mut total = rss(pid)?;
    let mut seen = HashSet::from([pid]);
    let mut next = children(pid);
    while let Some(child) = next.pop() {
        if seen.len() >= MAX_TREE || !seen.insert(child) {
            continue;
        }
        // A child gone meanwhile holds no memory.
        total += rss(child).unwrap_or(0);
        next.extend(children(child));
    }
    Some(total)
}

/// The machine's memory, in bytes.
pub fn physical_memory() -> u64 {
    let info = rustix::system::sysinfo();
    (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
}

/// `/proc/PID/statm`'s resident pages, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// The children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Reads the memory of `pool`'s workers every second while the pool lives, and has those
/// past `cap` replaced.
pub(crate) async fn enforce_cap(pool: Weak<Pool>, cap: u64) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        if pool.is_stopping() {
            return;
        }
        for worker in pool.running_workers() {
            if worker.served_since_ready() == 0 {
                continue;
            }
            match tree_rss(worker.pid) {
                Some(rss) if rss > cap => pool.replace_for_memory(&worker, rss, cap),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_counts_its_children_and_a_gone_process_nothing() {
        let me = std::process::id();
        assert!(tree_rss(me).expect("this process is there") > 0);
        // A child that holds 64 MiB it has touched.
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys; b = b'x' * (64 << 20); print('ok', flush=True); sys.stdin.read()",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("the child reports");
        assert_eq!(line, "ok\n");
        let children = tree_rss(me).expect("still there") - rss(me).expect("still there");
        assert!(children >= 64 << 20, "the child holds {children} bytes");
        // ... and no more than it can: the child's pages are added, nothing else.
        assert!(children < 256 << 20, "the child holds {children} bytes");
        let child_pid = child.id();
        drop(child.stdin.take());
        child.wait().expect("the child exits");
        assert_eq!(tree_rss(child_pid), None);
    }

    #[test]
    fn physical_memory_is_the_kernels_memtotal() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
        let kib: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
            .expect("MemTotal in kB");
        assert_eq!(physical_memory(), kib * 1024);
    }
}
