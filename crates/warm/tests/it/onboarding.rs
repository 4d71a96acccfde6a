//! The first ten minutes of a new user: what `status`, `logs` and `stop` show in a project whose
//! daemons are not the default one, what a failing worker says, how a fixed or edited worker
//! takes effect, and what a call queued behind a cancelled one says.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;
use crate::workers::configure;

const GOOD_WORKER: &str = r#"import json, sys
VERSION = "v1"
for line in sys.stdin:
    request = json.loads(line)
    if "id" in request:
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": VERSION}), flush=True)
"#;

/// A project whose service `app` runs `worker.py` (written by the test), with `extra` lines
/// in its table.
fn app_project(extra: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "[services.app]\ncommand = [{:?}, \"worker.py\"]\n{extra}\n",
        python()
    ));
    env
}

fn write_worker(env: &TestEnv, text: &str) {
    std::fs::write(env.project.join("worker.py"), text).expect("worker.py");
}

fn version(env: &TestEnv) -> std::process::Output {
    env.run(&["-s", "app", "call", "version", "--no-fallback"])
}

#[test]
fn status_logs_and_stop_without_a_service_show_the_projects_daemons() {
    let env = TestEnv::new();
    let echo_pid = env.json(&["-s", "echo", "start"])["pid"]
        .as_u64()
        .expect("pid");

    let output = env.run(&["status"]);
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stdout.contains("service      echo")
            && stdout.contains(&format!("pid          {echo_pid}")),
        "{stdout}"
    );
    assert!(
        stderr_of(&output).contains("no default daemon"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(
        env.json(&["status"])["pid"],
        echo_pid,
        "--json: the one daemon's status"
    );

    let output = env.run(&["logs"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains("daemon ready"),
        "{}",
        stdout_of(&output)
    );

    // With two daemons, logs asks which; status shows both.
    env.ok(&["-s", "search", "start"]);
    let output = env.run(&["logs"]);
    assert_exit(&output, 2, "-s echo");
    assert!(
        stderr_of(&output).contains("-s search"),
        "{}",
        stderr_of(&output)
    );
    let both = env.json(&["status"]);
    let mut services: Vec<&str> = both
        .as_array()
        .expect("an array of statuses")
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    services.sort();
    assert_eq!(services, ["echo", "search"]);

    let output = env.run(&["stop"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        wait_until(Duration::from_secs(10), || env.daemon_pids().is_empty()),
        "warm stop left {:?}",
        env.daemon_pids()
    );
    // An explicit service sticks to it.
    assert_exit(
        &env.run(&["-s", "echo", "status"]),
        3,
        "no echo daemon is running",
    );
}

#[test]
fn a_failing_worker_shows_its_stderr_and_is_retried_as_soon_as_it_is_fixed() {
    let env = app_project("");
    write_worker(
        &env,
        &format!("import no_such_module_for_warm\n{GOOD_WORKER}"),
    );

    let output = version(&env);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No module named 'no_such_module_for_warm'"),
        "the worker's stderr: {stderr}"
    );
    assert!(stderr.contains("warm logs -s app"), "{stderr}");

    // Past the restart policy the service refuses, and says until when and what ends it.
    assert!(
        wait_until(Duration::from_secs(20), || stderr_of(&version(&env))
            .contains("or at once when worker.py or .warm.toml changes")),
        "no lockout message: {}",
        stderr_of(&version(&env))
    );
    let status = env.ok(&["-s", "app", "status"]);
    assert!(status.contains("no new worker is started for"), "{status}");

    // The user fixes the worker: the very next call works, without waiting out the window.
    write_worker(&env, GOOD_WORKER);
    let output = version(&env);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).trim(), "\"v1\"");
    let lifted = env
        .events("app")
        .iter()
        .any(|e| e["event"] == "service.lockout_lifted");
    assert!(lifted, "no service.lockout_lifted event");
}

#[test]
fn watched_worker_code_reloads_the_workers_and_restart_starts_a_fresh_daemon() {
    let env = app_project("watch = [\"*.py\"]");
    write_worker(&env, GOOD_WORKER);
    assert_eq!(stdout_of(&version(&env)).trim(), "\"v1\"");
    let daemon = env.only_daemon();

    write_worker(&env, &GOOD_WORKER.replace("v1", "v2"));
    assert!(
        wait_until(Duration::from_secs(10), || stdout_of(&version(&env)).trim()
            == "\"v2\""),
        "the edit never took effect: {}",
        stdout_of(&version(&env))
    );
    assert_eq!(env.only_daemon(), daemon, "a reload keeps the daemon");
    assert!(env
        .events("app")
        .iter()
        .any(|e| e["event"] == "service.reload" && e["reason"] == "worker.py changed"));

    // Without watch globs: `warm restart` makes the edit take effect.
    write_worker(&env, &GOOD_WORKER.replace("v1", "v3"));
    let output = env.run(&["-s", "app", "restart"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_ne!(env.only_daemon(), daemon, "restart starts a new daemon");
    assert_eq!(stdout_of(&version(&env)).trim(), "\"v3\"");
}

#[test]
fn a_call_queued_behind_a_cancelled_one_says_why_it_waits() {
    let env = TestEnv::new();
    configure(&env, "workers = 1");
    env.ok(&["-s", "py", "start"]);
    let mut slow = env
        .warm()
        .args(["-s", "py", "call", "slow", r#"{"ms": 1500}"#])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn slow call");
    assert!(env.wait_in_flight("py", 1), "the slow call never started");
    // Ctrl-C of the client: its connection closes, the daemon cancels the request, but the
    // worker (which ignores $/cancelRequest) is still busy with it.
    kill(slow.id(), "INT");
    let _ = slow.wait();
    // The client is gone when `wait` returns; the daemon notices the closed connection a
    // moment later. Until then the next call would queue behind a live request, not a
    // cancelled one.
    assert!(
        env.wait_in_flight("py", 0),
        "the daemon never cancelled the request"
    );

    let output = env
        .warm()
        .args(["-s", "py", "call", "echo", r#"{"after": "cancel"}"#])
        .env("WARM_PROGRESS", "1")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).trim(), r#"{"after":"cancel"}"#);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("waiting for worker") && stderr.contains("to finish 1 cancelled request"),
        "{stderr}"
    );
}

#[test]
fn a_search_daemon_of_the_whole_file_system_never_indexes_it() {
    let env = TestEnv::new();
    let output = env.run(&["--root", "/", "search", "--status"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("index:      none (refusing to index /"),
        "{stdout}"
    );
    let status = env.json(&["--root", "/", "search", "--status"]);
    assert_eq!(status["ready"], false);
    assert!(status["refused"].is_string(), "{status}");
}

#[test]
fn fifos_in_the_tree_never_block_the_index() {
    let env = TestEnv::new();
    std::fs::create_dir(env.project.join(".git")).expect(".git");
    std::fs::write(env.project.join("a.txt"), "needle one\n").expect("a.txt");
    for name in ["pipe.txt", "also-a-pipe"] {
        let status = std::process::Command::new("mkfifo")
            .arg(env.project.join(name))
            .status()
            .expect("mkfifo");
        assert!(status.success());
    }
    assert!(
        wait_until(Duration::from_secs(30), || {
            env.json(&["search", "--status"])["ready"] == true
        }),
        "the index never finished: {}",
        env.json(&["search", "--status"])
    );
    let output = env.run(&["search", "needle"]);
    assert_eq!(
        stdout_of(&output),
        "a.txt:needle one\n",
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn without_version_control_the_nearest_manifest_is_the_project() {
    let env = TestEnv::new();
    std::fs::write(env.project.join("pyproject.toml"), "").expect("pyproject.toml");
    let src = env.project.join("src/pkg");
    std::fs::create_dir_all(&src).expect("src");
    let from = |dir: &std::path::Path| {
        let output = env
            .warm()
            .current_dir(dir)
            .args(["-s", "echo", "start", "--json"])
            .output()
            .expect("warm start");
        assert!(output.status.success(), "{}", stderr_of(&output));
        let status: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("status JSON");
        (status["pid"].clone(), status["root"].clone())
    };
    let (top_pid, top_root) = from(&env.project);
    let (src_pid, src_root) = from(&src);
    assert_eq!(top_root, env.project.display().to_string());
    assert_eq!(
        (src_pid, src_root),
        (top_pid, top_root),
        "one daemon for the project"
    );
}

#[test]
fn a_language_server_that_does_not_run_is_not_taken_for_installed() {
    let env = TestEnv::new();
    std::fs::write(env.project.join("app.py"), "x = 1\n").expect("app.py");
    // rustup's proxies look like this when their component is missing.
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let stub = bin.join("pylsp");
    std::fs::write(
        &stub,
        "#!/bin/sh\necho \"error: Unknown binary 'pylsp' in official toolchain\" >&2\nexit 1\n",
    )
    .expect("stub");
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let warm = |args: &[&str]| {
        env.warm()
            .env("PATH", &bin)
            .args(args)
            .output()
            .expect("run warm")
    };
    let output = warm(&["lsp", "hover", "app.py:1:1"]);
    assert_exit(&output, 2, "pylsp does not run");
    assert!(
        stderr_of(&output).contains("Unknown binary 'pylsp'"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        env.daemon_pids().is_empty(),
        "no daemon for a server that cannot run"
    );

    let servers = stdout_of(&warm(&["lsp", "servers"]));
    let line = servers
        .lines()
        .find(|l| l.starts_with("lsp-pylsp"))
        .unwrap_or_default();
    assert!(line.contains("broken:"), "{servers}");
}
