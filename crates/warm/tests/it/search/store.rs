//! The search index stored between daemons (`warm-search/src/store.rs`): whatever happened
//! while no daemon ran (edits, a checkout, a daemon killed while writing, a corrupted file),
//! the first answers after a restart are ripgrep's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{run_in, source_of, wait_for_index};
use crate::support::{stdout_of, wait_until, TestEnv};

/// A deterministic pseudo-random sequence (xorshift), so that a failure names its seed.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// A git project of `files` files, each naming its number.
fn project(env: &TestEnv, files: usize) {
    let p = &env.project;
    git(p, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(p.join("src/deep")).expect("src");
    for i in 0..files {
        let dir = if i.is_multiple_of(3) {
            "src/deep"
        } else {
            "src"
        };
        std::fs::write(
            p.join(format!("{dir}/f{i}.rs")),
            format!("fn main_{i}() {{ token_{} }}\n", i % 7),
        )
        .expect("file");
    }
    std::fs::write(p.join(".gitignore"), "*.log\n").expect(".gitignore");
    std::fs::write(p.join("build.log"), "fn main_log() {}\n").expect("log");
}

/// Waits until every file of the project changed longer ago than the file system's clock
/// granularity, so that the daemon stamps them (a file changed within it is read again at
/// every start, which would hide a load that keeps nothing).
fn wait_settled(env: &TestEnv) {
    use std::os::unix::fs::MetadataExt;
    let newest = || -> Option<std::time::SystemTime> {
        let mut newest = std::time::SystemTime::UNIX_EPOCH;
        let mut dirs = vec![env.project.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).ok()?.flatten() {
                let meta = entry.metadata().ok()?;
                // The status change time: it moves with every write, and a rename.
                let changed = std::time::UNIX_EPOCH
                    + Duration::new(
                        meta.ctime().try_into().ok()?,
                        meta.ctime_nsec().try_into().ok()?,
                    );
                newest = newest.max(changed);
                if meta.is_dir() && entry.file_name() != ".git" {
                    dirs.push(entry.path());
                }
            }
        }
        Some(newest)
    };
    let settled = wait_until(Duration::from_secs(10), || {
        newest().is_some_and(|t| {
            t.elapsed()
                .is_ok_and(|age| age > Duration::from_millis(300))
        })
    });
    assert!(settled);
}

/// A project of `files` files whose index a daemon built and stored, then stopped: the
/// cache directory holding it.
fn stored_project(env: &TestEnv, files: usize) -> std::path::PathBuf {
    project(env, files);
    wait_settled(env);
    wait_for_index(env);
    wait_stored(env, 1);
    stop(env);
    env.tmp.path().join("cache/search")
}

fn status(env: &TestEnv) -> Value {
    env.json(&["search", "--status"])
}

/// Waits until the running daemon has stored its index at least `stores` times.
fn wait_stored(env: &TestEnv, stores: u64) {
    let stored = wait_until(Duration::from_secs(60), || {
        status(env)["work"]["stores"].as_u64() >= Some(stores)
    });
    assert!(stored, "the index was never stored: {}", status(env));
}

fn stop(env: &TestEnv) {
    let output = env.run(&["-s", "search", "stop"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(20), || env.daemon_pids().is_empty()),
        "the daemon did not exit"
    );
}

/// warm's lines (waiting for the index rather than scanning while it loads) and the
/// reference ripgrep's, in path order.
fn answers(env: &TestEnv, pattern: &str) -> (Vec<String>, Vec<String>, Value) {
    let output = env
        .warm()
        .env("WARM_SEARCH_WAIT", "1")
        .args(["search", "--json", pattern])
        .output()
        .expect("warm search");
    let source = source_of(&output);
    let plain = env
        .warm()
        .env("WARM_SEARCH_WAIT", "1")
        .args(["search", pattern])
        .output()
        .expect("warm search");
    let warm = stdout_of(&plain).lines().map(str::to_owned).collect();
    let rg = run_in(env, &env.project, Some("rg"), &["--sort", "path", pattern]);
    let rg = stdout_of(&rg).lines().map(str::to_owned).collect();
    (warm, rg, source)
}

fn assert_same(env: &TestEnv, pattern: &str, context: &str) {
    let (warm, rg, source) = answers(env, pattern);
    assert_eq!(warm, rg, "{context}: {pattern}");
    assert_eq!(source["source"], "index", "{context}: {pattern}: {source}");
}

const PATTERNS: [&str; 4] = ["main_1", "token_3", "fn (other|main)_2", "edited_"];

#[test]
fn changes_made_while_no_daemon_ran_are_seen_by_the_first_query_after_a_restart() {
    let env = TestEnv::new();
    let p = &env.project;
    project(&env, 300);
    git(p, &["add", "."]);
    git(p, &["commit", "-qm", "main"]);
    git(p, &["checkout", "-qb", "other"]);
    for i in (0..300).step_by(2) {
        std::fs::write(
            p.join(format!("src/f{i}.rs")),
            format!("fn other_{i}() {{}}\n"),
        )
        .expect("other");
    }
    git(p, &["add", "."]);
    git(p, &["commit", "-qm", "other"]);
    git(p, &["checkout", "-q", "main"]);
    wait_settled(&env);
    wait_for_index(&env);
    wait_stored(&env, 1);
    stop(&env);
    let stored = p.parent().expect("tmp").join("cache/search");
    assert_eq!(std::fs::read_dir(&stored).expect("cache").count(), 1);

    // While no daemon runs: a checkout of a branch differing in half the files, an edit that
    // keeps the size, a deletion, a directory renamed, a new file, a new ignore rule.
    git(p, &["checkout", "-q", "other"]);
    std::fs::write(p.join("src/f1.rs"), "fn edited_1() {  }\n").expect("edit");
    std::fs::remove_file(p.join("src/f2.rs")).expect("rm");
    std::fs::rename(p.join("src/deep"), p.join("src/moved")).expect("mv");
    std::fs::write(p.join("src/new.rs"), "fn edited_new() {}\n").expect("new");
    std::fs::write(p.join(".gitignore"), "*.log\nsrc/f5.rs\n").expect("ignore");
    // So that the next daemon stamps what it reads, and the start after it reads nothing.
    wait_settled(&env);
    for pattern in PATTERNS.iter().chain(&["fn other_", "moved"]) {
        assert_same(&env, pattern, "after the restart");
    }
    let work = &status(&env)["work"];
    assert_eq!(
        (work["loads"].as_u64(), work["builds"].as_u64()),
        (Some(1), Some(0)),
        "{work}"
    );
    let loaded = env
        .events("search")
        .into_iter()
        .find(|e| e["event"] == "search.index" && e["why"] == "loaded")
        .expect("a search.index event for the load");
    // Most files were kept as stored: only what changed was read again.
    let (kept, read) = (loaded["kept"].as_u64(), loaded["read"].as_u64());
    assert!(kept >= Some(50) && read >= Some(100), "{loaded}");
    stop(&env);

    // Nothing changed: the next start keeps every file and stores nothing new.
    assert_same(&env, "token_3", "unchanged");
    let work = &status(&env)["work"];
    assert_eq!(
        (work["loads"].as_u64(), work["stores"].as_u64()),
        (Some(1), Some(0)),
        "{work}"
    );
}

/// `kill -9` at seeded points while the daemon writes its index (after a build, or after a
/// load that merged what changed while it was down): the next daemon's answers are rg's,
/// from whatever it finds (the old file, the new one, or none), and no temporary file is
/// left once it has stored its own.
#[test]
fn a_daemon_killed_while_storing_its_index_never_leaves_a_wrong_answer() {
    let env = TestEnv::new();
    let p = &env.project;
    let cache = stored_project(&env, 200);
    let size = std::fs::read_dir(&cache)
        .expect("cache")
        .flatten()
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum::<u64>();
    let mut random = Seeded(0x5eed_0018);
    for point in 0..22u64 {
        // Changes while down, so that the start stores a merged index (or, when the last
        // crash left none, a built one).
        for _ in 0..3 {
            let i = random.below(200);
            let dir = if i.is_multiple_of(3) {
                "src/deep"
            } else {
                "src"
            };
            std::fs::write(
                p.join(format!("{dir}/f{i}.rs")),
                format!("fn edited_{point}_{i}() {{}}\n"),
            )
            .expect("edit");
        }
        let at = match point {
            0 => u64::MAX - 1,
            1 => u64::MAX,
            _ => random.below(size),
        };
        let crashing = env
            .warm()
            .env("WARM_SEARCH_TEST_CRASH_AT", at.to_string())
            .args(["-s", "search", "start"])
            .output()
            .expect("start");
        assert!(crashing.status.success());
        // `pid N socket PATH`. Its end is seen at its socket: a killed daemon's main thread
        // shows as a zombie while its other threads, and the listening socket they share,
        // are still being torn down (a client connecting then is reset, and scans).
        let started = stdout_of(&crashing);
        let sock = started
            .split_whitespace()
            .nth(3)
            .expect("the daemon's socket");
        let gone = wait_until(Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(sock).is_err()
        });
        assert!(
            gone,
            "point {point} (byte {at}): the daemon did not crash while storing"
        );
        let context = format!("after a crash at byte {at} (point {point})");
        for pattern in PATTERNS {
            assert_same(&env, pattern, &context);
        }
        assert_same(&env, &format!("edited_{point}_"), &context);
        stop(&env);
    }
    let left: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "one stored index, no temporary file: {left:?}"
    );
}

/// Bit flips and truncations of the stored index at seeded offsets while no daemon runs:
/// each is detected (an event says why), the index is built again, and the answers are rg's.
#[test]
fn a_corrupted_or_truncated_stored_index_is_detected_and_rebuilt() {
    let env = TestEnv::new();
    let cache = stored_project(&env, 200);
    let mut random = Seeded(0xb17_f11b);
    for round in 0..12 {
        let file = std::fs::read_dir(&cache)
            .expect("cache")
            .flatten()
            .map(|e| e.path())
            .find(|path| path.extension().is_some_and(|x| x == "idx"))
            .expect("a stored index");
        let mut bytes = std::fs::read(&file).expect("read");
        let at = random.below(bytes.len() as u64) as usize;
        let damage = if round % 3 == 2 {
            bytes.truncate(at);
            format!("truncated to {at} bytes")
        } else {
            let bit = random.below(8);
            bytes[at] ^= 1 << bit;
            format!("bit {bit} of byte {at} flipped")
        };
        std::fs::write(&file, &bytes).expect("damage");
        for pattern in PATTERNS {
            assert_same(&env, pattern, &damage);
        }
        let rejected = env
            .events("search")
            .into_iter()
            .any(|e| e["event"] == "search.store_rejected");
        assert!(rejected, "{damage}: not detected");
        let work = &status(&env)["work"];
        assert_eq!(
            (work["loads"].as_u64(), work["builds"].as_u64()),
            (Some(0), Some(1))
        );
        wait_stored(&env, 1);
        stop(&env);
    }
}

/// With no watcher (here: no room in the user's budget of search daemons, the other one
/// never evicted), queries are still answered from the index, checked against the tree by
/// metadata before each one: every change made before a query is in its answer.
#[test]
fn without_a_watcher_each_query_checks_the_index_by_metadata() {
    let env = TestEnv::new();
    let p = &env.project;
    project(&env, 60);
    // Another project's search daemon with no idle timeout: never chosen for eviction.
    let other = env.tmp.path().join("other");
    std::fs::create_dir_all(other.join(".git")).expect("other project");
    let first = env
        .warm()
        .current_dir(&other)
        .args(["-s", "search", "start", "--ttl", "0"])
        .output()
        .expect("start the other");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let started = env
        .warm()
        .env("WARM_MAX_SEARCH_DAEMONS", "1")
        .args(["-s", "search", "start"])
        .output()
        .expect("start");
    assert!(started.status.success());
    let ready = wait_until(Duration::from_secs(60), || status(&env)["ready"] == true);
    assert!(ready, "{}", status(&env));
    let watch_error = status(&env)["watch_error"].to_string();
    assert!(
        watch_error.contains("(1 search daemons, at most 1)"),
        "{watch_error}"
    );
    for round in 0..4 {
        std::fs::write(p.join("src/f1.rs"), format!("fn edited_{round}() {{}}\n")).expect("edit");
        std::fs::write(p.join(format!("src/new{round}.rs")), "fn edited_new() {}\n").expect("new");
        let _ = std::fs::remove_file(p.join(format!("src/f{}.rs", 2 + round * 3)));
        let (from, to) = if round % 2 == 0 {
            ("deep", "moved")
        } else {
            ("moved", "deep")
        };
        std::fs::rename(p.join("src").join(from), p.join("src").join(to)).expect("mv");
        let context = format!("round {round}");
        for pattern in PATTERNS.iter().chain(&["fn main_3", "moved"]) {
            assert_same(&env, pattern, &context);
        }
    }
    let queries = &status(&env)["queries"];
    assert_eq!(queries["unwatched"], 0, "{queries}");
    assert!(
        queries["validated"].as_u64() >= Some(4 * 6 * 2),
        "{queries}"
    );
    assert!(env.run(&["stop", "--all"]).status.success());
}
