//! Starting, joining, listing and stopping daemons.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Runs `count` copies of `warm ARGS` at once; all must succeed.
fn all_succeed(env: &TestEnv, count: usize, args: &[&str]) {
    let outputs = run_concurrently(count, || {
        let mut command = env.warm();
        command.args(args);
        command
    });
    for (i, output) in outputs.into_iter().enumerate() {
        assert!(
            output.status.success(),
            "client {i} of {count} failed: {}\n{}",
            output.status,
            stderr_of(&output)
        );
    }
}

#[test]
fn fifty_concurrent_first_calls_share_one_daemon() {
    let env = TestEnv::new();
    all_succeed(&env, 50, &["call", "daemon/ping"]);
    let pid = env.only_daemon();
    let spawned: Vec<_> = env
        .events("default")
        .into_iter()
        .filter(|e| e["event"] == "client.spawned")
        .collect();
    assert_eq!(spawned.len(), 1, "exactly one client spawned: {spawned:?}");
    assert_eq!(spawned[0]["pid"], pid);
}

#[test]
fn racing_first_calls_to_a_slow_starting_daemon_spawn_it_once() {
    let env = TestEnv::new();
    // Each daemon takes 400 ms before it even tries for its lock: every client of the race
    // finds no daemon, and only spawn.lock keeps them from starting one each.
    let outputs = run_concurrently(10, || {
        let mut command = env.warm();
        command
            .env("WARM_TEST_START_DELAY_MS", "400")
            .args(["call", "daemon/ping"]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr_of(output));
    }
    env.only_daemon();
    assert_eq!(
        env.spawn_count("default"),
        1,
        "exactly one daemon was ever spawned"
    );
}

#[test]
fn fifty_concurrent_starts_share_one_daemon() {
    let env = TestEnv::new();
    all_succeed(&env, 50, &["start"]);
    env.only_daemon();
    assert_eq!(
        env.spawn_count("default"),
        1,
        "exactly one daemon was ever spawned"
    );
}

#[test]
fn second_start_joins_running_daemon() {
    let env = TestEnv::new();
    let first = env.json(&["start"]);
    let second = env.json(&["start"]);
    assert_eq!(first["pid"], second["pid"]);
    assert_eq!(first["socket"], second["socket"]);
    assert_eq!(first["root"], env.project.display().to_string());
}

#[test]
fn status_json_carries_the_contract_fields() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let status = env.json(&["status"]);
    for key in [
        "service",
        "root",
        "pid",
        "socket",
        "version",
        "uptime_secs",
        "ttl_secs",
        "ttl_remaining_secs",
        "connections",
        "in_flight",
        "requests",
        "workers",
    ] {
        assert!(status.get(key).is_some(), "status lacks {key}: {status}");
    }
    assert_eq!(status["service"], "default");
    assert_eq!(status["ttl_secs"], 600);
    // health.json carries the same object, rewritten every couple of seconds.
    let health_path = env.daemon_dir("default").join("health.json");
    assert!(wait_until(Duration::from_secs(10), || health_path.exists()));
    let health: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&health_path).expect("health")).expect("json");
    assert_eq!(health["pid"], status["pid"]);
    let events = env.ok(&["logs", "--events"]);
    assert!(
        events.lines().any(|l| l.contains("\"daemon.ready\"")),
        "{events}"
    );
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["pid"], status["pid"]);
}

#[test]
fn status_without_a_daemon_exits_3_and_says_how_to_start() {
    let env = TestEnv::new();
    let output = env.run(&["status"]);
    assert_exit(&output, 3, "warm start");
    assert!(env.daemon_pids().is_empty());
}

#[test]
fn stop_all_stops_every_daemon_and_leaves_no_files() {
    let env = TestEnv::new();
    let other = env.tmp.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    env.ok(&["start"]);
    env.ok(&["-s", "echo", "start"]);
    env.ok(&["--root", other.to_str().expect("utf8"), "start"]);
    assert_eq!(env.daemon_pids().len(), 3);
    let stopped = env.json(&["stop", "--all"]);
    assert_eq!(
        stopped["stopped"].as_array().map(Vec::len),
        Some(3),
        "{stopped}"
    );
    assert!(
        env.daemon_pids().is_empty(),
        "daemons left: {:?}",
        env.daemon_pids()
    );
    let left: Vec<_> = std::fs::read_dir(&env.runtime_dir)
        .expect("rt")
        .flatten()
        .collect();
    assert!(left.is_empty(), "files left: {left:?}");
}

#[test]
fn stop_leaves_logs_but_no_process() {
    let env = TestEnv::new();
    let pid = env.json(&["start"])["pid"].as_u64().expect("pid") as u32;
    env.ok(&["stop"]);
    assert!(!is_running(pid));
    let events = env.events("default");
    let shutdown = events
        .iter()
        .find(|e| e["event"] == "daemon.shutdown")
        .expect("daemon.shutdown event");
    assert!(
        shutdown["reason"]
            .as_str()
            .is_some_and(|r| r.contains("warm stop")),
        "{shutdown}"
    );
    let logs = env.ok(&["logs"]);
    assert!(logs.contains("daemon ready"), "{logs}");
    // Stopping again is not an error.
    env.ok(&["stop"]);
}

#[test]
fn stop_returns_when_its_daemon_is_gone_though_the_next_one_has_started() {
    let env = TestEnv::new();
    let first = env.json(&["-s", "echo", "start"]);
    let socket = PathBuf::from(first["socket"].as_str().expect("socket"));
    let draining = env.slow_echo_call(1500);
    let stop = env
        .warm()
        .args(["-s", "echo", "stop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warm stop");
    // The socket goes first; then a call starts the next daemon, which takes the lock as
    // soon as the draining one lets it go.
    assert!(wait_until(Duration::from_secs(10), || !socket.exists()));
    assert_eq!(env.ok(&["-s", "echo", "call", "echo", "[1]"]), "[1]\n");
    let stopped = wait_output(stop);
    assert_eq!(
        stdout_if_exited(&stopped, 0, "warm stop"),
        format!("stopped echo (pid {})\n", first["pid"])
    );
    stdout_if_exited(&wait_output(draining), 0, "the drained call");
    assert_ne!(
        env.only_daemon(),
        first["pid"].as_u64().expect("pid") as u32
    );
}

#[test]
fn runtime_dir_open_to_others_is_refused() {
    let env = TestEnv::new();
    std::fs::set_permissions(&env.runtime_dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let output = env.run(&["call", "daemon/ping"]);
    assert_exit(&output, 2, "chmod 700");
    assert!(env.daemon_pids().is_empty());
}

#[test]
fn runtime_dir_owned_by_another_user_is_refused() {
    let env = TestEnv::new();
    let chown = std::process::Command::new("chown")
        .arg("65534")
        .arg(&env.runtime_dir)
        .status()
        .expect("chown");
    assert!(chown.success(), "chown needs root (CI runs as root)");
    let output = env.run(&["call", "daemon/ping"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    assert!(stderr.contains("WARM_RUNTIME_DIR"), "{stderr}");
    assert!(env.daemon_pids().is_empty());
}

#[test]
fn unknown_service_and_bad_config_are_usage_errors() {
    let env = TestEnv::new();
    let output = env.run(&["-s", "nope", "call", "daemon/ping"]);
    assert_exit(&output, 2, "known services are default, echo");
    assert!(
        stderr_of(&output).contains("lsp-pylsp"),
        "the lsp-* services are named"
    );
    let output = env.run(&["-s", "pyright", "call", "daemon/ping"]);
    assert_exit(
        &output,
        2,
        "the language server pyright is the service lsp-pyright",
    );

    env.write_config("[services.index]\nttl = \"soon\"\n");
    let output = env.run(&["call", "daemon/ping"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains(".warm.toml"), "{stderr}");
    assert!(stderr.contains("services.index.ttl"), "{stderr}");

    env.write_config("[services.index]\ncommand = [\"x\"]\nworkers = 2\nbogus = 1\n");
    let stderr = stderr_of(&env.run(&["call", "daemon/ping"]));
    assert!(
        stderr.contains("bogus") && stderr.contains("expected one of"),
        "{stderr}"
    );
}

#[test]
fn call_prints_results_and_maps_errors_to_exit_codes() {
    let env = TestEnv::new();
    let echoed = env.ok(&["-s", "echo", "call", "echo", r#"{"a":[1,"é"]}"#]);
    assert_eq!(echoed.trim(), r#"{"a":[1,"é"]}"#);
    let output = env.run(&["-s", "echo", "call", "no/such/method"]);
    assert_exit(&output, 1, "-32601");
    let output = env.run(&["-s", "echo", "call", "echo", "{not json"]);
    assert_eq!(output.status.code(), Some(2));
    let output = env.run(&[
        "-s",
        "echo",
        "call",
        "sleep",
        r#"{"ms": 5000}"#,
        "--timeout",
        "200ms",
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    let output = env.run(&[
        "-s",
        "echo",
        "call",
        "fail",
        r#"{"code": -32001, "message": "slow"}"#,
    ]);
    assert_eq!(output.status.code(), Some(4));
}

/// `--timeout` is the caller's deadline: when it runs out before a (here frozen) daemon says
/// hello, that is a timeout (4), not an unavailable daemon (3).
#[test]
fn a_timeout_that_runs_out_before_the_hello_is_a_timeout() {
    let env = TestEnv::new();
    env.ok(&["-s", "echo", "call", "echo", "{}"]);
    let daemon = env.only_daemon();
    kill(daemon, "STOP");
    let output = env.run(&["-s", "echo", "call", "echo", "{}", "--timeout", "300ms"]);
    kill(daemon, "CONT");
    assert_exit(&output, 4, "daemon/hello");
}

#[test]
fn call_reads_params_from_stdin_and_streams_progress() {
    let env = TestEnv::new();
    let mut child = env
        .warm()
        .args(["-s", "echo", "call", "sleep", "-"])
        .env("WARM_PROGRESS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(br#"{"ms": 60, "steps": 3}"#)
            .expect("write");
    }
    let output = wait_output(child);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).trim(), r#"{"slept_ms":60}"#);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("[1/3]") && stderr.contains("[3/3]"),
        "{stderr}"
    );
}

#[test]
fn keepalive_exits_with_the_command_code() {
    let env = TestEnv::new();
    // The command itself sees the lease held while it runs.
    let probe = format!(
        "{} status --json | grep -q '\"leases\":1' || exit 9; exit 7",
        WARM
    );
    let output = env.run(&["keepalive", "--", "sh", "-c", &probe]);
    assert_eq!(
        output.status.code(),
        Some(7),
        "9: no lease was held while the command ran"
    );
    // The lease went away with the keepalive process.
    assert!(wait_until(Duration::from_secs(5), || {
        env.json(&["status"])["leases"] == 0
    }));
}

#[test]
fn init_writes_a_starter_that_validates_and_refuses_to_overwrite() {
    let env = TestEnv::new();
    let output = env.run(&["init", "--name", "idx", "--", "python3", "-m", "my tool"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = std::fs::read_to_string(env.project.join(".warm.toml")).expect("written");
    assert!(
        text.contains(r#"command = ["python3", "-m", "my tool"]"#),
        "{text}"
    );
    assert!(
        text.contains("[services.idx]") && text.contains("[client]"),
        "{text}"
    );
    // Valid as written: the configuration loads (no daemon runs, so status says exit 3, not 2).
    let status = env.run(&["-s", "idx", "status"]);
    assert_eq!(status.status.code(), Some(3), "{}", stderr_of(&status));
    // No overwriting by accident.
    let again = env.run(&["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr_of(&again).contains("--force"),
        "{}",
        stderr_of(&again)
    );
    // Without a command everything is commented out, and still valid.
    let blank = env.run(&["init", "--force", "--lsp"]);
    assert!(blank.status.success(), "{}", stderr_of(&blank));
    let text = std::fs::read_to_string(env.project.join(".warm.toml")).expect("written");
    assert!(
        text.contains("# [services.main]") && text.contains("framing = \"lsp\""),
        "{text}"
    );
    env.ok(&["call", "daemon/ping"]);
    let bad = env.run(&["init", "--force", "--name", "a/b"]);
    assert_eq!(bad.status.code(), Some(2));
}
