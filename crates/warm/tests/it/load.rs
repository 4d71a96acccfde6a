//! Load against a daemon whose in-flight limit is 64: busy answers are retried by clients and
//! nothing fails.

use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::json;
use warm_client::Connection;
use warm_protocol::{ErrorCode, Framing, Incoming, Message, Request, RequestId};

use crate::support::*;

const CONFIG: &str = "[services.echo]\nmax_in_flight = 64\nmax_connections = 16384\n";

#[test]
fn thousand_concurrent_one_shot_calls_all_succeed() {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    env.ok(&["-s", "echo", "start"]);
    let children: Vec<_> = (0..1000)
        .map(|i| {
            env.warm()
                .args([
                    "-s",
                    "echo",
                    "call",
                    "sleep",
                    &format!(r#"{{"ms": {}}}"#, 20 + i % 7),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn warm call")
        })
        .collect();
    let mut failures = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let output = wait_output(child);
        if !output.status.success() {
            failures.push(format!(
                "call {i}: {} {}",
                output.status,
                stderr_of(&output)
            ));
        } else {
            assert_eq!(
                stdout_of(&output).trim(),
                format!(r#"{{"slept_ms":{}}}"#, 20 + i % 7)
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    let status = env.json(&["-s", "echo", "status"]);
    assert_eq!(status["in_flight"], 0);
    env.only_daemon();
}

/// Sends one request on every connection at once (all open together), then reads every
/// answer; busy answers are sent again in the next round, until all are answered.
fn drive(connections: Vec<UnixStream>, start: Arc<Barrier>) -> (usize, usize) {
    let mut connections: Vec<Connection> = connections
        .into_iter()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_secs(60)))
                .expect("timeout");
            Connection::from_stream(s, Framing::Ndjson)
        })
        .collect();
    start.wait();
    let mut answered = 0;
    let mut busy = 0;
    let mut pending: Vec<usize> = (0..connections.len()).collect();
    let mut round = 0i64;
    while !pending.is_empty() {
        round += 1;
        for &index in &pending {
            let request = Message::Request(Request {
                id: RequestId::Number(round),
                method: "sleep".into(),
                params: Some(json!({ "ms": 20 })),
            });
            connections[index].send(&request).expect("send");
        }
        let mut still = Vec::new();
        for index in pending {
            match connections[index].recv() {
                Ok(Some(Incoming::Single(Ok(Message::Response(response))))) => {
                    assert_eq!(response.id, RequestId::Number(round));
                    match response.result {
                        Ok(_) => answered += 1,
                        Err(error) if error.kind() == ErrorCode::Busy => {
                            busy += 1;
                            still.push(index);
                        }
                        Err(error) => panic!("connection {index}: {error}"),
                    }
                }
                other => panic!("connection {index}: {other:?}"),
            }
        }
        pending = still;
    }
    (answered, busy)
}

#[test]
fn ten_thousand_open_connections_are_all_answered() {
    const THREADS: usize = 10;
    const PER_THREAD: usize = 1000;
    // 10,000 client ends here, as many server ends in the daemon (which raises its own).
    warm_daemon::raise_fd_limit();
    let env = TestEnv::new();
    env.write_config(CONFIG);
    let sock = std::path::PathBuf::from(
        env.json(&["-s", "echo", "start"])["socket"]
            .as_str()
            .expect("socket")
            .to_owned(),
    );
    let start = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let sock = sock.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let streams: Vec<UnixStream> = (0..PER_THREAD)
                    .map(|_| UnixStream::connect(&sock).expect("connect"))
                    .collect();
                drive(streams, start)
            })
        })
        .collect();
    // Every connection is open and accepted by the daemon before any request is sent.
    let mut open = 0;
    assert!(
        wait_until(Duration::from_secs(60), || {
            open = env.json(&["-s", "echo", "status"])["connections"]
                .as_u64()
                .unwrap_or(0);
            open > (THREADS * PER_THREAD) as u64
        }),
        "only {open} connections open"
    );
    start.wait();
    let mut answered = 0;
    let mut busy = 0;
    for thread in threads {
        let (a, b) = thread.join().expect("client thread");
        answered += a;
        busy += b;
    }
    assert_eq!(answered, THREADS * PER_THREAD);
    // The limit of 64 was really in play, and every busy answer was retried to success.
    assert!(busy > 0, "no request was ever refused busy");
    let status = env.json(&["-s", "echo", "status"]);
    assert_eq!(status["busy"].as_u64(), Some(busy as u64), "{status}");
    let status = env.json(&["-s", "echo", "status"]);
    assert_eq!(status["in_flight"], 0);
    env.only_daemon();
}

#[test]
fn warm_bench_counts_every_request_in_every_mode() {
    let env = TestEnv::new();
    for extra in [
        &["--pipeline", "8"][..],
        &["--framing", "binary", "--payload-bytes", "4096"],
        &["--framing", "lsp"],
        &["--one-shot"],
    ] {
        let mut args = vec![
            "-s", "echo", "bench", "--method", "echo", "-n", "500", "-c", "4",
        ];
        args.extend_from_slice(extra);
        let report = &env.json(&args)["report"];
        assert_eq!(report["requests"], 500, "{extra:?}: {report}");
        assert_eq!(report["ok"], 500, "{extra:?}: {report}");
        assert_eq!(report["lost"], 0, "{extra:?}: {report}");
        let histogram: u64 = report["histogram"]
            .as_array()
            .map(|h| h.iter().filter_map(|b| b[1].as_u64()).sum())
            .unwrap_or(0);
        assert_eq!(
            histogram, 500,
            "{extra:?}: every answer is in the histogram"
        );
    }
    // Errors are counted by code, not lost.
    let report = &env.json(&["-s", "echo", "bench", "--method", "no/such", "-n", "100"])["report"];
    assert_eq!(report["errors"]["-32601"], 100, "{report}");
    env.only_daemon();
}
