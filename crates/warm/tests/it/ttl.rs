//! Idle TTL: expiry, renewal, requests and leases that hold the daemon, runtime changes.

use std::time::{Duration, Instant};

use crate::support::*;

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    wait_until(timeout, || !is_running(pid))
}

#[test]
fn daemon_exits_about_ttl_after_the_last_request() {
    let env = TestEnv::new();
    let pid = env.json(&["start", "--ttl", "2s"])["pid"]
        .as_u64()
        .expect("pid") as u32;
    let ping = env.json(&["ping"]);
    let last_request = Instant::now();
    assert_eq!(ping["ttl_secs"], 2);
    assert!(
        ping["ttl_remaining_secs"].as_u64().is_some_and(|s| s <= 2),
        "{ping}"
    );
    assert!(
        wait_gone(pid, Duration::from_secs(15)),
        "daemon did not idle out"
    );
    let lived = last_request.elapsed();
    assert!(
        lived >= Duration::from_millis(1500),
        "exited {lived:?} after the last request"
    );
    let events = env.events("default");
    let shutdown = events
        .iter()
        .find(|e| e["event"] == "daemon.shutdown")
        .expect("event");
    assert!(
        shutdown["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("idle")),
        "{shutdown}"
    );
    assert!(
        !env.daemon_dir("default").join("sock").exists(),
        "socket left behind"
    );
}

#[test]
fn running_request_holds_the_daemon_past_its_ttl() {
    let env = TestEnv::new();
    let pid = env.json(&["-s", "echo", "start", "--ttl", "1s"])["pid"]
        .as_u64()
        .expect("pid") as u32;
    let slept = env.json(&["-s", "echo", "call", "sleep", r#"{"ms": 2500}"#]);
    assert_eq!(slept["slept_ms"], 2500);
    // Still serving, not merely alive: a daemon that had begun to idle out during the request
    // would be draining now, and the ping would start a new daemon.
    let ping = env.json(&["-s", "echo", "ping"]);
    assert_eq!(
        ping["pid"], pid,
        "the daemon began to exit while a request ran"
    );
    let shutdowns = env
        .events("echo")
        .iter()
        .filter(|e| e["event"] == "daemon.shutdown")
        .count();
    assert_eq!(shutdowns, 0, "a shutdown began while the request ran");
    assert!(wait_gone(pid, Duration::from_secs(15)));
}

#[test]
fn keepalive_lease_holds_the_daemon_past_its_ttl() {
    let env = TestEnv::new();
    let pid = env.json(&["start", "--ttl", "1s"])["pid"]
        .as_u64()
        .expect("pid") as u32;
    let output = env.run(&["keepalive", "--", "sleep", "2.5"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(is_running(pid), "daemon exited while a lease was held");
    let events = env.events("default");
    assert!(events.iter().any(|e| e["event"] == "lease.acquired"));
    assert!(wait_gone(pid, Duration::from_secs(15)));
    let events = env.events("default");
    assert!(
        events.iter().any(|e| e["event"] == "lease.released"),
        "{events:?}"
    );
}

#[test]
fn ping_renews_the_ttl() {
    let env = TestEnv::new();
    let pid = env.json(&["start", "--ttl", "2s"])["pid"]
        .as_u64()
        .expect("pid") as u32;
    // Keep pinging for twice the TTL: the daemon must survive all of it.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let ping = env.json(&["ping"]);
        assert_eq!(ping["pid"], pid);
        // Pacing the pings is the scenario under test (a user pinging now and then), not
        // synchronisation.
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(is_running(pid));
    let human = env.ok(&["ping"]);
    assert!(
        human.contains("ttl 2s") && human.contains("left"),
        "{human}"
    );
}

#[test]
fn zero_ttl_never_expires_until_changed_at_runtime() {
    let env = TestEnv::new();
    let pid = env.json(&["start", "--ttl", "0"])["pid"]
        .as_u64()
        .expect("pid") as u32;
    let ping = env.json(&["ping"]);
    assert_eq!(ping["ttl_secs"], 0);
    assert!(ping["ttl_remaining_secs"].is_null(), "{ping}");
    // Nothing may end it on its own; give a 1 s TTL daemon's worth of time three times over.
    assert!(
        !wait_gone(pid, Duration::from_secs(3)),
        "a ttl 0 daemon exited"
    );
    let changed = env.json(&["call", "daemon/set_ttl", r#"{"ttl_secs": 1}"#]);
    assert_eq!(changed["ttl_secs"], 1);
    assert!(
        wait_gone(pid, Duration::from_secs(15)),
        "set_ttl did not take effect"
    );
    let events = env.events("default");
    assert!(events
        .iter()
        .any(|e| e["event"] == "ttl.changed" && e["to_secs"] == 1));
}

#[test]
fn start_with_ttl_changes_a_running_daemon() {
    let env = TestEnv::new();
    let first = env.json(&["start"]);
    let second = env.json(&["start", "--ttl", "45m"]);
    assert_eq!(first["pid"], second["pid"]);
    assert_eq!(second["ttl_secs"], 2700);
}

/// A bare number is seconds, on the command line and in `.warm.toml`, as `sleep` takes it.
#[test]
fn a_ttl_written_as_a_bare_number_is_seconds() {
    let env = TestEnv::new();
    env.ok(&["-s", "echo", "start", "--ttl", "42"]);
    assert_eq!(env.json(&["-s", "echo", "status"])["ttl_secs"], 42);
    env.write_config("[services.default]\nttl = 90\nrequest_timeout = 2.5\n");
    env.ok(&["start"]);
    assert_eq!(env.json(&["status"])["ttl_secs"], 90);
    let output = env.run(&["start", "--ttl", "5 minutes"]);
    assert_exit(&output, 2, "invalid duration \"5 minutes\"");
}
