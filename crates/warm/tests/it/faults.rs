//! Fault injection: processes killed or frozen under load, a full disk, too few file
//! descriptors, the wall clock jumping. Each ends the same way: every client got its result
//! or a clear error, retried requests succeed, nothing is left running, and the event log
//! says what happened.

use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use warm_client::Connection;
use warm_protocol::{Framing, Incoming, Message, Request, RequestId};

use crate::support::*;
use crate::workers::{configure, worker_pids};

const CLIENTS: usize = 4;
const CALLS_PER_CLIENT: usize = 30;
/// Attempts a client makes for one request before the test gives up on it.
const ATTEMPTS: usize = 8;

/// A small deterministic generator: the seed is printed, so a failing run can be replayed.
struct Random(u64);

impl Random {
    #[allow(clippy::disallowed_methods)] // the clock's nanoseconds are the seed
    fn from_clock() -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        let seed = u64::from(nanos) | 1;
        eprintln!("fault injection seed: {seed}");
        Random(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What clients saw while faults were injected, and how far the injector lets them go.
#[derive(Default)]
struct Outcomes {
    answered: AtomicUsize,
    /// Calls begun so far: each call's number is its ticket.
    begun: AtomicUsize,
    /// Calls may begin while their ticket is below this: the injector holds the load back so
    /// that every fault lands while calls are still to come, however fast the machine.
    admitted: AtomicUsize,
    /// Failed attempts (all retried): exit code and stderr.
    failures: Mutex<Vec<(Option<i32>, String)>>,
}

/// Runs `CLIENTS` clients, each making `CALLS_PER_CLIENT` one-shot `echo` calls through
/// `warm -s py call`, retrying any that fail, while `inject` runs beside them and admits
/// calls with [`admit`]; once it returns (or panics), every call is admitted. Every answer
/// must be the request's own params.
fn under_load(env: &TestEnv, inject: impl FnOnce(&Outcomes) + Send) -> Outcomes {
    /// Admits every call when the injector is done, even by a panic: no client waits on it.
    struct AdmitAll<'a>(&'a Outcomes);
    impl Drop for AdmitAll<'_> {
        fn drop(&mut self) {
            admit(self.0, usize::MAX);
        }
    }
    let outcomes = Outcomes::default();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let outcomes = &outcomes;
            scope.spawn(move || {
                for call in 0..CALLS_PER_CLIENT {
                    let ticket = outcomes.begun.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        wait_until(Duration::from_secs(60), || ticket
                            < outcomes.admitted.load(Ordering::Relaxed)),
                        "call {ticket} never admitted"
                    );
                    let params = json!({ "client": client, "call": call });
                    let answered = (0..ATTEMPTS).any(|_| {
                        let output = env.run(&["-s", "py", "call", "echo", &params.to_string()]);
                        if output.status.success() {
                            let answer: Value =
                                serde_json::from_slice(&output.stdout).expect("a JSON answer");
                            assert_eq!(answer, params, "someone else's answer");
                            return true;
                        }
                        outcomes
                            .failures
                            .lock()
                            .expect("failures")
                            .push((output.status.code(), stderr_of(&output)));
                        false
                    });
                    assert!(
                        answered,
                        "{params} failed {ATTEMPTS} times: {:?}",
                        outcomes
                            .failures
                            .lock()
                            .map(|f| f.clone())
                            .unwrap_or_default()
                    );
                    outcomes.answered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let _admit_all = AdmitAll(&outcomes);
        inject(&outcomes);
    });
    outcomes
}

/// Lets calls begin until `count` have begun.
fn admit(outcomes: &Outcomes, count: usize) {
    outcomes.admitted.fetch_max(count, Ordering::Relaxed);
}

/// Lets the load go on until `count` calls have been answered, with one more call per client
/// allowed to begin, so that the fault injected next may land mid-call.
fn let_through(outcomes: &Outcomes, count: usize) {
    admit(outcomes, count + CLIENTS);
    assert!(
        wait_until(Duration::from_secs(60), || outcomes
            .answered
            .load(Ordering::Relaxed)
            >= count),
        "load stalled before {count} answers"
    );
}

/// Failed attempts must have said why, in words a user can act on, with the documented
/// exit code: never a panic, a hang or a wrong answer.
fn assert_clear_failures(outcomes: &Outcomes, allowed: &[(i32, &str)]) {
    let failures = outcomes.failures.lock().expect("failures");
    for (code, stderr) in failures.iter() {
        assert!(
            allowed
                .iter()
                .any(|(c, words)| *code == Some(*c) && stderr.contains(words)),
            "unclear failure (exit {code:?}): {stderr}"
        );
    }
}

/// Exactly one daemon and its `workers` workers are left, nothing else of this test.
fn assert_nothing_else_running(env: &TestEnv, workers: usize) {
    let daemon = env.only_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || env.all_pids().len()
            == 1 + workers),
        "leftover processes: daemon {daemon}, all {:?}",
        env.all_pids()
    );
}

/// What `find` returns once it is not empty (within 10 s): the processes to kill next.
fn wait_for_some<T>(mut find: impl FnMut() -> Vec<T>) -> Vec<T> {
    let mut found = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            found = find();
            !found.is_empty()
        }),
        "nothing to kill"
    );
    found
}

fn count_events(env: &TestEnv, name: &str) -> usize {
    env.events("py")
        .iter()
        .filter(|e| e["event"] == name)
        .count()
}

#[test]
fn daemon_killed_at_random_points_under_load() {
    let env = TestEnv::new();
    configure(&env, "workers = 2");
    env.ok(&["-s", "py", "start"]);
    let mut random = Random::from_clock();
    let total = CLIENTS * CALLS_PER_CLIENT;
    let killed = Mutex::new(Vec::new());
    let outcomes = under_load(&env, |outcomes| {
        for round in 1..=3 {
            let_through(outcomes, round * total / 4 + random.below(total / 8));
            let pids = wait_for_some(|| env.daemon_pids());
            // Gone before the next round (or the final call) could reach it.
            kill_and_wait_gone(pids[0]);
            killed.lock().expect("killed").push(pids[0]);
        }
    });
    assert_eq!(outcomes.answered.load(Ordering::Relaxed), total);
    // Whoever was mid-request when the daemon died was told so (and retried); a client
    // arriving meanwhile started a new daemon or, failing that, ran the worker itself.
    assert_clear_failures(
        &outcomes,
        &[
            (3, "connection to the daemon was lost"),
            (3, "daemon unavailable"),
        ],
    );
    env.json(&["-s", "py", "call", "echo", "{}"]);
    assert_nothing_else_running(&env, 2);
    let killed = killed.into_inner().expect("killed");
    assert!(!killed.contains(&env.only_daemon()));
    // The dead daemons' leftovers were cleaned by the clients that replaced them, and the
    // survivor's start is on record.
    let events = env.events("py");
    let survivor = env.only_daemon();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "daemon.start" && e["pid"] == survivor),
        "{events:?}"
    );
    assert!(count_events(&env, "stale.cleaned") >= 1, "{events:?}");
}

#[test]
fn workers_killed_at_random_points_under_load() {
    let env = TestEnv::new();
    configure(&env, "workers = 2");
    env.ok(&["-s", "py", "start"]);
    let daemon = env.only_daemon();
    let mut random = Random::from_clock();
    let total = CLIENTS * CALLS_PER_CLIENT;
    let outcomes = under_load(&env, |outcomes| {
        for round in 1..=4 {
            let_through(outcomes, round * total / 5 + random.below(total / 10));
            let pids = wait_for_some(|| worker_pids(&env));
            kill_and_wait_gone(pids[random.below(pids.len())] as u32);
        }
    });
    assert_eq!(outcomes.answered.load(Ordering::Relaxed), total);
    // A request on the killed worker is answered with an error naming the worker.
    assert_clear_failures(&outcomes, &[(1, "worker")]);
    assert_eq!(env.only_daemon(), daemon, "the daemon survives its workers");
    assert!(wait_until(Duration::from_secs(10), || worker_pids(&env)
        .len()
        == 2));
    assert_nothing_else_running(&env, 2);
    let exits = env
        .events("py")
        .into_iter()
        .filter(|e| e["event"] == "worker.exit" && e["signal"] == 9)
        .count();
    assert_eq!(exits, 4, "{:?}", env.events("py"));
}

#[test]
fn a_frozen_daemon_is_bypassed_not_replaced() {
    let env = TestEnv::new();
    configure(&env, "workers = 1");
    env.ok(&["-s", "py", "start"]);
    let daemon = env.only_daemon();
    kill(daemon, "STOP");
    // The hello goes unanswered: a call runs the worker itself (saying so), or with
    // --no-fallback fails naming the cause. Nobody starts a second daemon beside the frozen
    // one, which still holds its lock.
    let outputs = run_concurrently(3, || {
        let mut command = env.warm();
        command
            .args(["-s", "py", "call", "echo", r#"{"frozen":true}"#])
            .env("WARM_READY_TIMEOUT", "1s");
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr_of(output));
        assert_eq!(stdout_of(output).trim(), r#"{"frozen":true}"#);
        assert!(stderr_of(output).contains("running the worker directly"));
    }
    let output = env
        .warm()
        .args(["-s", "py", "call", "--no-fallback", "echo", "[]"])
        .env("WARM_READY_TIMEOUT", "1s")
        .output()
        .expect("run warm");
    assert_exit(&output, 3, "no answer to daemon/hello within 1.0s");
    assert_eq!(env.daemon_pids(), vec![daemon]);
    kill(daemon, "CONT");
    let output = env.run(&["-s", "py", "call", "echo", "[3]"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).is_empty(), "{}", stderr_of(&output));
    assert_eq!(env.only_daemon(), daemon);
    assert_nothing_else_running(&env, 1);
}

#[test]
fn a_frozen_worker_is_replaced_after_the_request_timeout() {
    let env = TestEnv::new();
    configure(&env, "workers = 1\nrequest_timeout = \"1s\"");
    env.ok(&["-s", "py", "start"]);
    let frozen = worker_pids(&env)[0] as u32;
    kill(frozen, "STOP");
    let output = env.run(&["-s", "py", "call", "echo", "[1]"]);
    assert_exit(
        &output,
        4,
        "did not answer within 1.0s; it is being replaced",
    );
    assert_eq!(env.json(&["-s", "py", "call", "echo", "[2]"]), json!([2]));
    // The frozen worker ignores SIGTERM until it runs again: the stop escalates to SIGKILL.
    assert!(wait_until(Duration::from_secs(15), || !is_running(frozen)));
    assert_nothing_else_running(&env, 1);
    let events = env.events("py");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "worker.exit" && e["pid"] == frozen),
        "{events:?}"
    );
}

/// A tmpfs mounted over a directory for the length of a test, unmounted even on failure.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts a 64 KiB tmpfs at `dir` and fills it up.
    fn full(dir: &std::path::Path) -> SmallDisk {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=700", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        let disk = SmallDisk(dir.to_owned());
        let filler = std::fs::write(dir.join("filler"), vec![0u8; 128 * 1024]);
        assert!(filler.is_err(), "the tmpfs should have filled up");
        disk
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_under_the_logs_does_not_stop_the_daemon() {
    let env = TestEnv::new();
    env.ok(&["-s", "echo", "start"]);
    let dir = env.daemon_dir("echo");
    env.ok(&["-s", "echo", "stop"]);
    let _disk = SmallDisk::full(&dir);
    // Starting writes meta.json and the log; serving writes events (a bad frame) and logs.
    assert_eq!(env.json(&["-s", "echo", "call", "echo", "[1]"]), json!([1]));
    let daemon = env.only_daemon();
    let mut bad = UnixStream::connect(dir.join("sock")).expect("connect");
    std::io::Write::write_all(&mut bad, b"{not json\n").expect("write");
    let outputs = run_concurrently(20, || {
        let mut command = env.warm();
        command.args(["-s", "echo", "call", "echo", "[2]"]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr_of(output));
    }
    assert_eq!(env.only_daemon(), daemon);
    env.ok(&["-s", "echo", "stop"]);
    assert!(wait_until(Duration::from_secs(10), || env
        .all_pids()
        .is_empty()));
    // Nothing half-written is left behind on the full disk.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("daemon dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A ping request on a raw connection.
fn send_ping(stream: &mut UnixStream, id: i64) {
    let request = Message::Request(Request {
        id: RequestId::Number(id),
        method: "daemon/ping".into(),
        params: None,
    });
    let frame = warm_protocol::encode_message(Framing::Ndjson, &request);
    std::io::Write::write_all(stream, &frame).expect("send a ping");
}

#[test]
fn connections_beyond_the_descriptor_limit_wait_and_are_all_answered() {
    const CONNECTIONS: usize = 120;
    let env = TestEnv::new();
    // The daemon inherits a limit of 64 descriptors: about 50 connections' worth.
    let mut command = Command::new("prlimit");
    command.args([
        "--nofile=64:64",
        "--",
        WARM,
        "-s",
        "echo",
        "start",
        "--json",
    ]);
    command
        .current_dir(&env.project)
        .env("WARM_RUNTIME_DIR", &env.runtime_dir);
    let output = command.output().expect("prlimit warm start");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let status: Value = serde_json::from_slice(&output.stdout).expect("status");
    let sock = status["socket"].as_str().expect("socket").to_owned();
    let mut streams: Vec<UnixStream> = (0..CONNECTIONS)
        .map(|_| UnixStream::connect(&sock).expect("connect (queued in the kernel)"))
        .collect();
    for (id, stream) in streams.iter_mut().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        send_ping(stream, id as i64);
    }
    // Answers come in order as descriptors free up: each connection closed lets the daemon
    // accept one that waited.
    for (id, stream) in streams.into_iter().enumerate() {
        let mut connection = Connection::from_stream(stream, Framing::Ndjson);
        match connection.recv() {
            Ok(Some(Incoming::Single(Ok(Message::Response(response))))) => {
                assert_eq!(response.id, RequestId::Number(id as i64));
                assert!(response.result.is_ok(), "{response:?}");
            }
            other => panic!("connection {id}: {other:?}"),
        }
    }
    assert!(env.json(&["-s", "echo", "status"])["pid"].is_u64());
    let events = env.events("echo");
    for name in ["daemon.accept_failed", "daemon.accept_resumed"] {
        assert!(
            events.iter().any(|e| e["event"] == name),
            "{name}: {events:?}"
        );
    }
    env.ok(&["-s", "echo", "stop"]);
}

#[test]
fn runtime_dir_swapped_for_a_symlink_to_another_users_dir() {
    let env = TestEnv::new();
    let daemon = env.json(&["-s", "echo", "start"])["pid"]
        .as_u64()
        .expect("pid") as u32;
    let moved = env.tmp.path().join("rt.moved");
    let other = env.tmp.path().join("other");
    std::fs::create_dir(&other).expect("other dir");
    let chown = Command::new("chown")
        .arg("65534")
        .arg(&other)
        .status()
        .expect("chown");
    assert!(chown.success(), "chown needs root (CI runs as root)");
    std::fs::rename(&env.runtime_dir, &moved).expect("move the runtime dir away");
    std::os::unix::fs::symlink(&other, &env.runtime_dir).expect("symlink");

    let output = env.run(&["-s", "echo", "call", "daemon/ping"]);
    assert_exit(&output, 2, "is a symbolic link; remove it");
    // The running daemon can no longer be reached at its path: it leaves, and writes nothing
    // into the other user's directory on its way out.
    assert!(wait_until(Duration::from_secs(10), || !is_running(daemon)));
    let planted: Vec<_> = std::fs::read_dir(&other)
        .expect("other")
        .flatten()
        .collect();
    assert!(planted.is_empty(), "{planted:?}");

    std::fs::remove_file(&env.runtime_dir).expect("remove the symlink");
    std::fs::rename(&moved, &env.runtime_dir).expect("restore the runtime dir");
    let ping = env.json(&["-s", "echo", "call", "daemon/ping"]);
    assert_ne!(ping["pid"], daemon);
    assert_eq!(env.only_daemon() as u64, ping["pid"].as_u64().expect("pid"));
    env.ok(&["-s", "echo", "stop"]);
}

#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let env = TestEnv::new();
    env.ok(&["-s", "echo", "start"]);
    for args in [
        &["list"][..],
        &["-s", "echo", "status"],
        &["-s", "echo", "call", "echo", "[1]"],
        &["search", "--no-daemon", "x"],
    ] {
        std::fs::write(env.project.join("a.txt"), "x\n").expect("file to search");
        // A pipe whose reader is already gone: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = env
            .warm()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run warm");
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    env.ok(&["-s", "echo", "stop"]);
}
