//! Hosting real worker processes (a Python ndjson worker): multiplexing, progress,
//! supervision, and the shutdown sequence.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warm_client::Connection;
use warm_protocol::Framing;

use crate::support::*;

fn worker_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/workers/echo_worker.py")
}

/// A `.warm.toml` declaring service `py` with `extra` lines added to its table.
pub(crate) fn configure(env: &TestEnv, extra: &str) {
    env.write_config(&format!(
        "[services.py]\ncommand = [{:?}, {:?}]\n{extra}\n",
        python(),
        worker_script().display().to_string()
    ));
}

fn socket(env: &TestEnv) -> PathBuf {
    PathBuf::from(
        env.json(&["-s", "py", "start"])["socket"]
            .as_str()
            .expect("socket")
            .to_owned(),
    )
}

fn connect(sock: &std::path::Path) -> Connection {
    let connection = Connection::connect(sock, Framing::Ndjson).expect("connect");
    connection
        .set_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    connection
}

pub(crate) fn worker_pids(env: &TestEnv) -> Vec<u64> {
    env.json(&["-s", "py", "status"])["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["state"] == "running")
        .filter_map(|w| w["pid"].as_u64())
        .collect()
}

#[test]
fn eight_clients_share_two_workers_and_get_their_own_answers() {
    let env = TestEnv::new();
    configure(&env, "workers = 2");
    let sock = socket(&env);
    let threads: Vec<_> = (0..8)
        .map(|client| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut connection = connect(&sock);
                for i in 0..500 {
                    let params = json!({ "client": client, "i": i });
                    let result = connection
                        .request("echo", Some(&params), &mut |_| {})
                        .expect("answer")
                        .expect("result");
                    assert_eq!(result, params, "client {client} got another's answer");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client");
    }
    let workers = env.json(&["-s", "py", "status"])["workers"].clone();
    let served: Vec<u64> = workers
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["requests"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(served.iter().sum::<u64>(), 4000, "{workers}");
    assert!(
        served.iter().all(|s| *s > 0),
        "one worker did everything: {workers}"
    );
}

#[test]
fn worker_progress_reaches_its_client_before_the_answer() {
    let env = TestEnv::new();
    configure(&env, "");
    let mut connection = connect(&socket(&env));
    let mut seen = Vec::new();
    let result = connection
        .request("slow", Some(&json!({ "ms": 60, "steps": 3 })), &mut |p| {
            seen.push(p.done)
        })
        .expect("answer")
        .expect("result");
    assert_eq!(result["slept_ms"], 60);
    assert_eq!(seen, vec![Some(1), Some(2), Some(3)]);
}

#[test]
fn killed_worker_fails_its_request_and_is_replaced() {
    let env = TestEnv::new();
    configure(&env, "");
    let sock = socket(&env);
    let old = worker_pids(&env);
    assert_eq!(old.len(), 1);
    let mut connection = connect(&sock);
    let started = Instant::now();
    let answer = std::thread::scope(|scope| {
        scope.spawn(|| {
            assert!(env.wait_in_flight("py", 1));
            kill(old[0] as u32, "KILL");
        });
        connection
            .request("slow", Some(&json!({ "ms": 30_000 })), &mut |_| {})
            .expect("answer")
    });
    let error = answer.expect_err("the request must fail");
    assert_eq!(error.code, -32002, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the client waited for the dead worker"
    );
    let echoed = connection
        .request("echo", Some(&json!([7])), &mut |_| {})
        .expect("answer")
        .expect("the next request succeeds");
    assert_eq!(echoed, json!([7]));
    let new = worker_pids(&env);
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);
    let events = env.events("py");
    assert!(
        events.iter().any(|e| e["event"] == "worker.restart"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "worker.exit" && e["signal"] == 9),
        "{events:?}"
    );
}

#[test]
fn an_idle_worker_that_dies_is_replaced_before_any_request_needs_it() {
    let env = TestEnv::new();
    configure(&env, "workers = 2");
    socket(&env);
    let old = worker_pids(&env);
    assert_eq!(old.len(), 2);
    kill(old[0] as u32, "KILL");
    // Only `daemon/status` from here on: nothing asks the pool for a worker, so only the
    // supervisor can have started the replacement.
    let replaced = wait_until(Duration::from_secs(10), || {
        let now = worker_pids(&env);
        now.len() == 2 && !now.contains(&old[0]) && now.contains(&old[1])
    });
    assert!(
        replaced,
        "workers now: {:?} (before: {old:?})",
        worker_pids(&env)
    );
}

#[test]
fn stopped_worker_times_out_and_is_replaced() {
    let env = TestEnv::new();
    configure(&env, "request_timeout = \"1s\"");
    let sock = socket(&env);
    let old = worker_pids(&env);
    kill(old[0] as u32, "STOP");
    let mut connection = connect(&sock);
    let error = connection
        .request("echo", Some(&json!([1])), &mut |_| {})
        .expect("answer")
        .expect_err("timeout");
    assert_eq!(error.code, -32001, "{error}");
    let echoed = connection
        .request("echo", Some(&json!([2])), &mut |_| {})
        .expect("answer")
        .expect("a new worker answers");
    assert_eq!(echoed, json!([2]));
    // The stopped worker is killed by the shutdown sequence, not left behind.
    assert!(wait_until(Duration::from_secs(15), || !is_running(
        old[0] as u32
    )));
}

#[test]
fn worker_that_always_exits_makes_the_service_unavailable_not_the_daemon() {
    let env = TestEnv::new();
    configure(
        &env,
        "env = { WORKER_MODE = \"exit_at_once\" }\nrestart = { attempts = 2, window = \"60s\" }",
    );
    let sock = socket(&env);
    let mut connection = connect(&sock);
    let mut last = None;
    for _ in 0..5 {
        match connection
            .request("echo", None, &mut |_| {})
            .expect("answer")
        {
            Ok(value) => panic!("a crashing worker answered {value}"),
            Err(error) => {
                assert_eq!(error.code, -32002, "{error}");
                last = Some(error);
            }
        }
    }
    let last = last.expect("an error");
    assert!(last.message.contains("unavailable"), "{last}");
    let data = last.data.clone().unwrap_or(Value::Null);
    assert_eq!(data["last_exit"], "exit code 5", "{last:?}");
    assert!(
        data["stderr_tail"]
            .to_string()
            .contains("cannot load the index"),
        "{last:?}"
    );
    // The daemon itself is fine.
    let ping = connection
        .request("daemon/ping", None, &mut |_| {})
        .expect("answer");
    assert!(ping.is_ok());
    let status = env.json(&["-s", "py", "status"]);
    assert!(
        status["workers"].to_string().contains("unavailable"),
        "{status}"
    );
    let events = env.events("py");
    assert!(
        events.iter().any(|e| e["event"] == "service.unavailable"),
        "{events:?}"
    );
}

#[test]
fn worker_ignoring_sigterm_is_killed_at_the_deadline() {
    let env = TestEnv::new();
    configure(
        &env,
        "env = { WORKER_MODE = \"ignore_sigterm\" }\ndrain_timeout = \"500ms\"",
    );
    // Closing stdin would end the worker's read loop; keep it busy in a long request so that
    // only SIGKILL can stop it.
    let sock = socket(&env);
    let pid = worker_pids(&env)[0] as u32;
    let slow = std::thread::spawn(move || {
        let mut connection = connect(&sock);
        connection.request("slow", Some(&json!({ "ms": 60_000 })), &mut |_| {})
    });
    assert!(env.wait_in_flight("py", 1));
    env.ok(&["-s", "py", "stop"]);
    assert!(!is_running(pid), "the worker outlived its daemon");
    let events = env.events("py");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "worker.shutdown_escalated" && e["stage"] == "sigkill"),
        "{events:?}"
    );
    let answer = slow.join().expect("client thread");
    // Its request was answered (cancelled at the drain deadline or failed with the worker).
    assert!(matches!(answer, Ok(Err(_))), "{answer:?}");
}

#[test]
fn worker_flooding_a_frame_over_the_limit_is_cut_off_and_replaced() {
    let env = TestEnv::new();
    configure(&env, "max_frame_bytes = 100000");
    let mut connection = connect(&socket(&env));
    let old = worker_pids(&env);
    let error = connection
        .request("flood", Some(&json!({ "bytes": 1_000_000 })), &mut |_| {})
        .expect("answer")
        .expect_err("cut off");
    assert_eq!(error.code, -32002, "{error}");
    assert!(error.message.contains("exceeds the limit"), "{error}");
    let echoed = connection
        .request("echo", Some(&json!({ "ok": true })), &mut |_| {})
        .expect("answer")
        .expect("replaced");
    assert_eq!(echoed, json!({ "ok": true }));
    assert_ne!(worker_pids(&env), old);
}

#[test]
fn exclusive_method_never_overlaps_and_is_not_starved_by_reads() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let env = TestEnv::new();
    let marks = env.tmp.path().join("marks");
    std::fs::create_dir(&marks).expect("marks dir");
    configure(
        &env,
        &format!(
            "workers = 2\nexclusive = [\"reindex\"]\nenv = {{ WORKER_MARKS = {:?} }}",
            marks.display().to_string()
        ),
    );
    let sock = socket(&env);
    let reading = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicU64::new(0));
    // A steady stream of reads from four clients, until the exclusive work is done.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (sock, reading, reads) = (sock.clone(), reading.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut connection = connect(&sock);
                while reading.load(Ordering::Relaxed) {
                    let result = connection
                        .request("read", Some(&json!({ "ms": 15 })), &mut |_| {})
                        .expect("answer")
                        .expect("read result");
                    assert_eq!(result["overlap"], false, "a read overlapped a reindex");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || reads
        .load(Ordering::Relaxed)
        > 10));
    let mut connection = connect(&sock);
    for round in 0..3 {
        let reads_before = reads.load(Ordering::Relaxed);
        let result = connection
            .request("reindex", Some(&json!({ "ms": 40 })), &mut |_| {})
            .expect("answer")
            .expect("reindex result");
        assert_eq!(
            result["overlap"], false,
            "reindex ran alongside another request"
        );
        // Not starved: the reindex got its turn while reads kept coming (they cannot have
        // stopped: only this thread stops them, below). Wait for fresh reads before the next
        // reindex, so each one is queued behind a live stream.
        assert!(
            wait_until(Duration::from_secs(10), || reads.load(Ordering::Relaxed)
                > reads_before + 4),
            "reads stalled after reindex {round}"
        );
    }
    reading.store(false, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("reader");
    }
}

#[test]
fn thousand_worker_start_stop_cycles_leak_nothing() {
    let env = TestEnv::new();
    // A worker that answers one request by exiting: every request is one start/stop cycle.
    env.write_config(
        "[services.cycle]\n\
         command = [\"/bin/sh\", \"-c\", \"read line; exit 3\"]\n\
         restart = { attempts = 100000, window = \"1h\" }\n",
    );
    let status = env.json(&["-s", "cycle", "start"]);
    let daemon = status["pid"].as_u64().expect("pid") as u32;
    let sock = PathBuf::from(status["socket"].as_str().expect("socket"));
    let counts = || {
        let fds = std::fs::read_dir(format!("/proc/{daemon}/fd")).map_or(0, |d| d.count());
        let threads = std::fs::read_dir(format!("/proc/{daemon}/task")).map_or(0, |d| d.count());
        (fds, threads, children_of(daemon))
    };
    // Settled: exactly one child, running (a zombie is an exited worker not yet reaped, and
    // its replacement may not exist yet).
    let one_running_child = || {
        let children = children_of(daemon);
        children.len() == 1 && is_running(children[0])
    };
    let mut connection = connect(&sock);
    // One cycle first, so that lazily created runtime resources exist before counting.
    let _ = connection.request("x", None, &mut |_| {}).expect("answer");
    assert!(wait_until(Duration::from_secs(10), one_running_child));
    let before = counts();
    for i in 0..1000 {
        let error = connection
            .request("x", None, &mut |_| {})
            .expect("answer")
            .expect_err("the worker exits instead of answering");
        assert_eq!(error.code, -32002, "cycle {i}: {error}");
    }
    // Settled: the last exit reaped, its replacement running, stray tasks finished.
    // A leak would grow with the cycles (1,000 of them); a few descriptors come and go with
    // normal work (an event being appended, the runtime's handle on a child it waits for),
    // so the comparison allows that much and no more.
    const SLACK_FDS: usize = 8;
    const SLACK_THREADS: usize = 2;
    let settled = wait_until(Duration::from_secs(20), || {
        let now = counts();
        one_running_child() && now.0 <= before.0 + SLACK_FDS && now.1 <= before.1 + SLACK_THREADS
    });
    let after = counts();
    assert!(settled, "before {before:?}, after {after:?}");
    let zombies = after.2.iter().filter(|pid| !is_running(**pid)).count();
    assert_eq!(zombies, 0, "zombie children: {after:?}");
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = proc_stat_field(&stat, 4).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            children.push(child);
        }
    }
    children
}

#[test]
fn call_falls_back_to_the_worker_when_no_daemon_can_start() {
    let env = TestEnv::new();
    configure(&env, "");
    // Learn the daemon directory, then block its socket path so no daemon can start.
    socket(&env);
    let dir = env.daemon_dir("py");
    env.ok(&["-s", "py", "stop"]);
    std::fs::create_dir_all(dir.join("sock").join("blocker")).expect("mkdir");

    let output = env.run(&["-s", "py", "call", "echo", r#"{"via": "fallback"}"#]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).trim(), r#"{"via":"fallback"}"#);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("running the worker directly"), "{stderr}");
    assert!(
        stderr.contains("cannot remove stale socket"),
        "the reason is given: {stderr}"
    );

    let output = env.run(&["-s", "py", "call", "echo", "[1]", "--no-fallback"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    // The fallback worker was stopped with its call; nothing of this test is left running
    // (the daemons that failed to start exit on their own).
    assert!(
        wait_until(Duration::from_secs(5), || env.all_pids().is_empty()),
        "left running: {:?}",
        env.all_pids()
    );
}

#[test]
fn unavailable_service_recovers_once_the_window_has_passed() {
    let env = TestEnv::new();
    // Fails at start until the file `ready` exists in the project root (its working dir).
    let script = format!(
        "if [ -e ready ]; then exec {} {}; else echo 'not ready yet' >&2; exit 5; fi",
        python(),
        worker_script().display()
    );
    env.write_config(&format!(
        "[services.py]\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\nrestart = {{ attempts = 1, window = \"1s\" }}\n"
    ));
    let sock = socket(&env);
    let mut connection = connect(&sock);
    let error = connection
        .request("echo", Some(&json!([1])), &mut |_| {})
        .expect("answer")
        .expect_err("unavailable");
    assert_eq!(error.code, -32002, "{error}");
    std::fs::write(env.project.join("ready"), "").expect("marker");
    // Past the window, a later request starts a worker again and is answered.
    let recovered = wait_until(Duration::from_secs(15), || {
        matches!(
            connection.request("echo", Some(&json!([2])), &mut |_| {}),
            Ok(Ok(ref v)) if *v == json!([2])
        )
    });
    assert!(recovered, "the service never recovered");
}

#[test]
fn lsp_worker_gets_the_handshake_once_and_its_requests_answered() {
    let env = TestEnv::new();
    let server = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/workers/fake_lsp.py");
    env.write_config(&format!(
        "[services.lsp]\ncommand = [{:?}, {:?}]\nframing = \"lsp\"\n\
         initialization_options = {{ x = 1 }}\nsettings = {{ fake = {{ level = 3 }} }}\n",
        python(),
        server.display().to_string()
    ));
    let mut seen = json!(null);
    // The server's questions are answered asynchronously; wait until both answers arrived.
    let complete = wait_until(Duration::from_secs(10), || {
        seen = env.json(&["-s", "lsp", "call", "test/seen"]);
        seen["answers"].as_object().is_some_and(|a| a.len() == 2)
    });
    assert!(complete, "{seen}");
    let root_uri = format!("file://{}", env.project.display());
    assert_eq!(seen["initialize"]["rootUri"], root_uri.as_str(), "{seen}");
    assert_eq!(
        seen["initialize"]["initializationOptions"],
        json!({ "x": 1 })
    );
    assert_eq!(
        seen["initialize"]["capabilities"]["general"]["positionEncodings"],
        json!(["utf-8", "utf-32", "utf-16"])
    );
    assert_eq!(seen["initialized"], true);
    // Once: several calls later, still one handshake in this process.
    let again = env.json(&["-s", "lsp", "call", "test/seen"]);
    assert_eq!(again["initialize_count"], 1, "{again}");
    assert_eq!(again["pid"], seen["pid"]);
    assert_eq!(seen["settings"], json!({ "fake": { "level": 3 } }));
    assert_eq!(seen["answers"]["cfg"], json!([3, null]));
    assert_eq!(seen["answers"]["wdp"], json!(null));
    // Shutdown goes `shutdown` then `exit`: the server exits 0 only in that order.
    env.ok(&["-s", "lsp", "stop"]);
    let events = env.events("lsp");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "worker.exit" && e["code"] == 0),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "worker.shutdown_escalated"),
        "{events:?}"
    );
}

/// The workers' status objects of service `py`.
fn worker_status(env: &TestEnv) -> Vec<Value> {
    env.json(&["-s", "py", "status"])["workers"]
        .as_array()
        .expect("workers")
        .clone()
}

#[test]
fn a_worker_past_max_rss_is_replaced_between_requests_and_no_call_fails() {
    let env = TestEnv::new();
    configure(&env, "max_rss = \"100M\"");
    let sock = socket(&env);
    let first = worker_pids(&env);
    assert_eq!(first.len(), 1, "{first:?}");
    // Clients calling all along: not one of their calls may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (sock, stop) = (sock.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut connection = connect(&sock);
                let mut calls = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let params = json!({ "client": client, "i": calls });
                    let answer = connection.request("echo", Some(&params), &mut |_| {});
                    assert_eq!(answer.expect("answer"), Ok(params));
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let grown = connect(&sock)
        .request("grow", Some(&json!({ "mib": 150 })), &mut |_| {})
        .expect("answer")
        .expect("result");
    assert_eq!(grown, json!(first[0]));
    // A request running on the worker when it is found past its cap (checks come every
    // second): it finishes there.
    let running = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            connect(&sock).request("slow", Some(&json!({ "ms": 2500 })), &mut |_| {})
        })
    };
    let replaced = wait_until(Duration::from_secs(20), || {
        let now = worker_pids(&env);
        now.len() == 1 && now != first
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        assert!(client.join().expect("no call failed") > 0);
    }
    assert!(replaced, "still {:?}", worker_pids(&env));
    let running = running.join().expect("the slow call's thread");
    assert_eq!(running.expect("answer"), Ok(json!({ "slept_ms": 2500 })));

    let events = env.events("py");
    let exceeded = events
        .iter()
        .find(|e| e["event"] == "worker.memory_exceeded")
        .unwrap_or_else(|| panic!("no worker.memory_exceeded: {events:?}"));
    assert_eq!(exceeded["pid"], json!(first[0]));
    assert_eq!(exceeded["max_rss_bytes"], json!(100u64 << 20));
    assert!(
        exceeded["rss_bytes"].as_u64() > Some(100 << 20),
        "{exceeded}"
    );
    let status = &worker_status(&env)[0];
    assert_eq!(status["memory_restarts"], 1, "{status}");
    assert_eq!(status["max_rss_bytes"], json!(100u64 << 20), "{status}");
    assert!(status["rss_bytes"].as_u64() < Some(100 << 20), "{status}");
    // The replaced worker was stopped in order, once idle: its stdin closed, it exited 0.
    assert!(wait_until(Duration::from_secs(10), || {
        env.events("py")
            .iter()
            .any(|e| e["event"] == "worker.exit" && e["pid"] == json!(first[0]) && e["code"] == 0)
    }));
    // The new worker, under its cap, stays: served without a break for three checks (one
    // a second), it is neither replaced nor counted.
    let serving = worker_pids(&env);
    let mut connection = connect(&sock);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let params = json!({ "after": "the replacement" });
        let answer = connection.request("echo", Some(&params), &mut |_| {});
        assert_eq!(answer.expect("answer"), Ok(params));
    }
    assert_eq!(worker_pids(&env), serving);
    assert_eq!(worker_status(&env)[0]["memory_restarts"], 1);
    let human = env.ok(&["-s", "py", "status"]);
    assert!(human.contains("(cap 100MiB, replaced 1 times)"), "{human}");
}

#[test]
fn a_worker_that_starts_past_max_rss_is_replaced_once_per_request_not_in_a_loop() {
    let env = TestEnv::new();
    configure(&env, "max_rss = \"1M\"");
    let sock = socket(&env);
    let restarts = || worker_status(&env)[0]["memory_restarts"].as_u64();
    let mut connection = connect(&sock);
    for expected in 1..=2 {
        let pid = connection
            .request("pid", None, &mut |_| {})
            .expect("answer")
            .expect("result");
        assert!(
            wait_until(Duration::from_secs(10), || restarts() == Some(expected)),
            "{:?}",
            restarts()
        );
        assert_ne!(worker_pids(&env), vec![pid.as_u64().expect("pid")]);
    }
    // Idle, the replacement holds its place however long it stays over the cap (the check
    // runs every second).
    assert!(!wait_until(Duration::from_secs(3), || restarts() != Some(2)));
}
