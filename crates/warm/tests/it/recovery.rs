//! Stale state heals itself; a daemon that died, runs another version or another
//! configuration is replaced; a daemon that cannot start says why, fast.

use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn start_pid(env: &TestEnv, args: &[&str]) -> u32 {
    let mut all = args.to_vec();
    all.push("start");
    env.json(&all)["pid"].as_u64().expect("pid") as u32
}

#[test]
fn killed_daemon_is_replaced_on_next_call() {
    let env = TestEnv::new();
    let old = start_pid(&env, &[]);
    kill_and_wait_gone(old);
    let ping = env.json(&["call", "daemon/ping"]);
    let new = ping["pid"].as_u64().expect("pid") as u32;
    assert_ne!(new, old);
    assert_eq!(env.only_daemon(), new);
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["pid"], new);
}

/// Writes a daemon directory as a dead daemon would have left it.
fn plant_stale_dir(env: &TestEnv, meta_pid: u32, with_socket: bool) {
    // Learn the directory name by starting and stopping a daemon once.
    start_pid(env, &[]);
    let dir = env.daemon_dir("default");
    env.ok(&["stop"]);
    let meta = json!({
        "pid": meta_pid, "version": "0.1.0", "protocol": 1, "service": "default",
        "root": env.project.display().to_string(), "started_at": 0, "ttl_secs": 600
    });
    std::fs::write(dir.join("meta.json"), meta.to_string()).expect("meta");
    std::fs::write(dir.join("lock"), b"").expect("lock");
    if with_socket {
        // A real socket file that nobody listens on any more.
        let listener = UnixListener::bind(dir.join("sock")).expect("bind");
        drop(listener);
    }
}

#[test]
fn stale_meta_with_dead_pid_and_leftover_socket_heal() {
    let env = TestEnv::new();
    plant_stale_dir(&env, 999_999, true);
    let ping = env.json(&["call", "daemon/ping"]);
    assert_eq!(env.only_daemon(), ping["pid"].as_u64().expect("pid") as u32);
    let events = env.events("default");
    assert!(
        events.iter().any(|e| e["event"] == "stale.cleaned"),
        "{events:?}"
    );
}

#[test]
fn stale_meta_naming_a_live_unrelated_process_leaves_it_alone() {
    let env = TestEnv::new();
    let mut bystander = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    plant_stale_dir(&env, bystander.id(), true);
    let ping = env.json(&["call", "daemon/ping"]);
    assert_ne!(ping["pid"], bystander.id());
    env.ok(&["stop", "--all"]);
    assert!(
        is_running(bystander.id()),
        "an unrelated process was harmed"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[test]
fn leftover_lock_file_and_directory_heal() {
    let env = TestEnv::new();
    plant_stale_dir(&env, 999_998, false);
    env.ok(&["call", "daemon/ping"]);
    env.only_daemon();
    // `list` removes the directory of a daemon that is gone.
    env.ok(&["stop"]);
    let list = env.json(&["list"]);
    assert_eq!(list, json!([]));
    assert!(std::fs::read_dir(&env.runtime_dir)
        .expect("rt")
        .next()
        .is_none());
}

/// The runtime directory also holds warm's own files (the language-server probe cache):
/// `list` cleans up dead daemons' directories, never those.
#[test]
fn list_leaves_what_is_no_daemons_directory() {
    let env = TestEnv::new();
    let probes = env.runtime_dir.join("probes");
    std::fs::create_dir(&probes).expect("probes");
    std::fs::write(probes.join("0123456789abcdef"), "ok\n").expect("a probe");
    plant_stale_dir(&env, 999_998, false);
    let output = env.run(&["list", "--json"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let said = stderr_of(&output);
    assert!(!said.contains("probes"), "{said}");
    assert!(
        probes.join("0123456789abcdef").exists(),
        "the probe cache was removed"
    );
    assert_eq!(
        std::fs::read_dir(&env.runtime_dir).expect("rt").count(),
        1,
        "the stale daemon directory is removed, the cache kept"
    );
}

#[test]
fn daemon_that_cannot_start_fails_fast_with_reason_and_log() {
    let env = TestEnv::new();
    // Learn the directory, then put a non-empty directory where the socket must go: the
    // daemon can neither remove nor bind it.
    start_pid(&env, &[]);
    let dir = env.daemon_dir("default");
    env.ok(&["stop"]);
    std::fs::create_dir_all(dir.join("sock").join("blocker")).expect("mkdir");
    let output = env.run(&["call", "daemon/ping", "--no-fallback"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("cannot remove stale socket"), "{stderr}");
    assert!(stderr.contains("last lines of daemon.log"), "{stderr}");
    assert!(
        !stderr.contains("not ready after"),
        "a bare timeout: {stderr}"
    );
    // The failed daemon reported, then exits on its own.
    assert!(wait_until(Duration::from_secs(5), || env
        .daemon_pids()
        .is_empty()));
}

#[test]
fn daemon_of_another_version_is_replaced() {
    let env = TestEnv::new();
    let status = env
        .warm()
        .args(["start", "--json"])
        .env("WARM_VERSION_OVERRIDE", "0.0.1-old")
        .stderr(Stdio::piped())
        .output()
        .expect("start old");
    assert!(status.status.success(), "{}", stderr_of(&status));
    let old: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(old["version"], "0.0.1-old");
    let new = env.json(&["status"]);
    // `status` does not replace (it only looks); `call` does.
    assert_eq!(new["version"], "0.0.1-old");
    let ping = env.json(&["call", "daemon/ping"]);
    assert_ne!(ping["pid"], old["pid"]);
    let status = env.json(&["status"]);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        env.only_daemon(),
        status["pid"].as_u64().expect("pid") as u32
    );
    let events = env.events("default");
    assert!(
        events.iter().any(|e| e["event"] == "daemon.shutdown"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("0.0.1-old"))),
        "{events:?}"
    );
}

#[test]
fn changed_config_replaces_the_daemon() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\nttl = \"5m\"\n");
    let old = env.json(&["-s", "echo", "start"]);
    assert_eq!(old["ttl_secs"], 300);
    env.write_config("[services.echo]\nttl = \"7m\"\n");
    env.ok(&["-s", "echo", "call", "echo", "[1]"]);
    let new = env.json(&["-s", "echo", "status"]);
    assert_ne!(new["pid"], old["pid"]);
    assert_eq!(new["ttl_secs"], 420);
    env.only_daemon();
}

#[test]
fn graceful_stop_answers_requests_in_flight() {
    let env = TestEnv::new();
    env.ok(&["-s", "echo", "start"]);
    let slow = env.slow_echo_call(1_500);
    env.ok(&["-s", "echo", "stop"]);
    let output = wait_output(slow);
    assert!(
        output.status.success(),
        "in-flight request lost: {}",
        stderr_of(&output)
    );
    assert_eq!(stdout_of(&output).trim(), r#"{"slept_ms":1500}"#);
    assert!(env.daemon_pids().is_empty());
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let env = TestEnv::new();
    let pid = start_pid(&env, &[]);
    kill(pid, "TERM");
    assert!(wait_until(Duration::from_secs(10), || !is_running(pid)));
    let events = env.events("default");
    let shutdown = events
        .iter()
        .find(|e| e["event"] == "daemon.shutdown")
        .expect("event");
    assert_eq!(shutdown["reason"], "signal: SIGTERM");
    let dir = env.daemon_dir("default");
    assert!(!dir.join("sock").exists() && !dir.join("meta.json").exists());
}

#[test]
fn drain_deadline_cancels_overrunning_requests_with_an_answer() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\ndrain_timeout = \"300ms\"\n");
    let pid = start_pid(&env, &["-s", "echo"]);
    let slow = env.slow_echo_call(60_000);
    env.ok(&["-s", "echo", "stop"]);
    assert!(!is_running(pid));
    let output = wait_output(slow);
    // Answered, not dropped; and not resent to a new daemon, since it had started running.
    assert_exit(&output, 1, "-32005");
    assert!(env.daemon_pids().is_empty());
}

#[test]
fn service_requests_after_a_mismatched_hello_are_refused_unrun() {
    let env = TestEnv::new();
    let status = env.json(&["-s", "echo", "start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let mut connection =
        warm_client::Connection::connect(&sock, warm_protocol::Framing::Ndjson).expect("connect");
    let hello = json!({ "version": "0.0.0-other", "protocol": 1 });
    let answer = connection
        .request("daemon/hello", Some(&hello), &mut |_| {})
        .expect("answer")
        .expect("hello result");
    assert_eq!(answer["version"], env!("CARGO_PKG_VERSION"));
    let refused = connection
        .request("sleep", Some(&json!({ "ms": 1 })), &mut |_| {})
        .expect("answer")
        .expect_err("refused");
    assert_eq!(refused.code, -32003, "{refused}");
    // Built-ins still answer, so the client can inspect and replace the daemon.
    let ping = connection
        .request("daemon/ping", None, &mut |_| {})
        .expect("answer");
    assert!(ping.is_ok());
    assert_eq!(
        env.json(&["-s", "echo", "status"])["requests"]
            .as_u64()
            .map(|r| r >= 3),
        Some(true)
    );
}

#[test]
fn a_deleted_or_replaced_socket_file_ends_the_daemon_and_the_next_call_succeeds() {
    let env = TestEnv::new();
    for replace in [false, true] {
        let old = start_pid(&env, &[]);
        let sock = env.daemon_dir("default").join("sock");
        std::fs::remove_file(&sock).expect("delete the socket file");
        if replace {
            std::fs::write(&sock, b"not a socket").expect("replace the socket file");
        }
        // The old daemon holds the lock but nobody can reach it: it notices and leaves, and
        // the call (retrying meanwhile) starts a reachable one.
        let ping = env.json(&["call", "daemon/ping"]);
        let new = ping["pid"].as_u64().expect("pid") as u32;
        assert_ne!(new, old);
        assert!(wait_until(Duration::from_secs(5), || !is_running(old)));
        assert_eq!(env.only_daemon(), new);
        let what = if replace { "replaced" } else { "deleted" };
        let events = env.events("default");
        assert!(
            events.iter().any(|e| e["event"] == "daemon.socket_lost"
                && e["pid"] == old
                && e["socket"] == what),
            "{events:?}"
        );
        env.ok(&["stop"]);
    }
}
