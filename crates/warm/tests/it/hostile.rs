//! Bad input harms nobody else: each bad client gets its error or a closed connection, the
//! daemon logs it, and a well-behaved client running at the same time sees no failure.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use warm_client::Connection;
use warm_protocol::Framing;

use crate::support::*;

/// Reads until EOF (or 15 s), returning what arrived.
fn read_to_close(stream: &mut UnixStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!(
                "connection was not closed: {e} (got {:?})",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

fn first_json(bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    let end = text.rfind('}').expect("end of JSON");
    serde_json::from_str(&text[start..=end]).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

/// A client pinging and echoing in a loop while the test misbehaves; counts failures.
struct WellBehaved {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl WellBehaved {
    fn start(sock: std::path::PathBuf) -> WellBehaved {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            let answered = answered.clone();
            move || {
                let mut connection =
                    Connection::connect(&sock, Framing::Ndjson).map_err(|e| e.to_string())?;
                connection
                    .set_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let params = json!({ "i": i });
                    let result = connection
                        .request("echo", Some(&params), &mut |_| {})
                        .map_err(|e| format!("request {i}: {e:?}"))?
                        .map_err(|e| format!("request {i}: {e}"))?;
                    if result != params {
                        return Err(format!("request {i}: wrong answer {result}"));
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            }
        });
        WellBehaved {
            stop,
            answered,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let result = self.thread.take().expect("thread").join().expect("join");
        assert_eq!(result, Ok(()), "the well-behaved client saw a failure");
        self.answered.load(Ordering::Relaxed)
    }
}

#[test]
fn hostile_clients_get_errors_and_nobody_else_notices() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\npartial_frame_timeout = \"1s\"\n");
    let status = env.json(&["-s", "echo", "start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let good = WellBehaved::start(sock.clone());
    let before = good.answered.load(Ordering::Relaxed);

    // Garbage bytes: no framing starts with 'G'; the connection is closed.
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert!(read_to_close(&mut stream).is_empty());

    // A frame announcing 100 MiB: -32004, then closed, before any body is sent.
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(b"Content-Length: 104857600\r\n\r\n")
        .expect("write");
    let answer = first_json(&read_to_close(&mut stream));
    assert_eq!(answer["error"]["code"], -32004, "{answer}");

    // Invalid JSON: -32700 and the connection goes on; an unknown method: -32601.
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(b"{this is not json\n{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"no/such\"}\n")
        .expect("write");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let text = String::from_utf8(read_to_close(&mut stream)).expect("utf8");
    let answers: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(answers.len(), 2, "{text}");
    assert_eq!(answers[0]["error"]["code"], -32700);
    assert_eq!(answers[0]["id"], Value::Null);
    assert_eq!(answers[1]["error"]["code"], -32601);
    assert_eq!(answers[1]["id"], 9);

    // Invalid request shapes get -32600 with their id.
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(b"{\"jsonrpc\":\"1.0\",\"id\":4,\"method\":\"echo\"}\n")
        .expect("write");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let answer = first_json(&read_to_close(&mut stream));
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(answer["id"], 4);

    // A frame left half sent: closed after the partial-frame timeout (1 s here).
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(b"Content-Length: 50\r\n\r\n{\"jsonrpc\":")
        .expect("write");
    assert!(read_to_close(&mut stream).is_empty());

    // A client that disconnects mid-request: its request is cancelled, nobody waits on it.
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sleep\",\"params\":{\"ms\":60000}}\n",
        )
        .expect("write");
    assert!(env.wait_in_flight("echo", 1));
    drop(stream);
    assert!(
        env.wait_in_flight("echo", 0),
        "the abandoned request was not cancelled"
    );

    assert!(wait_until(Duration::from_secs(5), || good
        .answered
        .load(Ordering::Relaxed)
        > before + 10));
    let answered = good.finish();
    assert!(answered > 0);
    let events = env.events("echo");
    for kind in [
        "connection.rejected",
        "connection.bad_frame",
        "connection.partial_timeout",
    ] {
        assert!(
            events.iter().any(|e| e["event"] == kind),
            "no {kind} event in {events:?}"
        );
    }
    env.only_daemon();
}

#[test]
fn binary_frame_with_bad_version_is_refused() {
    let env = TestEnv::new();
    let status = env.json(&["start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(&[0xEB, 0x57, 9, 0, 0, 0, 0, 2, 0x80, 0x80])
        .expect("write");
    let answer = read_to_close(&mut stream);
    assert!(
        answer.starts_with(&[0xEB, 0x57]),
        "answered in binary framing: {answer:?}"
    );
    let body: Value = rmp_serde::from_slice(&answer[8..]).expect("msgpack");
    assert_eq!(body["error"]["code"], -32700, "{body}");
}

#[test]
fn cancel_request_answers_cancelled_and_frees_the_slot() {
    let env = TestEnv::new();
    let status = env.json(&["-s", "echo", "start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"slow\",\"method\":\"sleep\",\"params\":{\"ms\":60000}}\n")
        .expect("write");
    assert!(env.wait_in_flight("echo", 1));
    stream
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":\"slow\"}}\n",
        )
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line).expect("answer");
    let answer: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(answer["id"], "slow");
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
    assert_eq!(env.json(&["-s", "echo", "status"])["in_flight"], 0);
}

#[test]
fn peer_of_another_user_is_refused() {
    let env = TestEnv::new();
    let status = env.json(&["start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    // The 0700 runtime directory already keeps other users out; open it up here so that the
    // daemon's own SO_PEERCRED check is what is tested.
    use std::os::unix::fs::PermissionsExt;
    for path in [
        env.tmp.path().to_path_buf(),
        env.runtime_dir.clone(),
        env.daemon_dir("default"),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    // Perl is in every Debian base system and runs for any user (the pyenv interpreter
    // lives under root's private home).
    // SIGPIPE ignored: the daemon may close before the write, which must not kill perl.
    let stranger = r#"use IO::Socket::UNIX; $SIG{PIPE} = "IGNORE";
        my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
        print $s qq({"jsonrpc":"2.0","id":1,"method":"daemon/ping"}\n);
        my $buf = ""; my $n = sysread($s, $buf, 100);
        print defined $n ? "read $n bytes: $buf" : "read error: $!";"#;
    let mut command = std::process::Command::new("/usr/bin/perl");
    std::os::unix::process::CommandExt::uid(&mut command, 65534);
    let output = command
        .current_dir("/")
        .arg("-e")
        .arg(stranger)
        .arg(&sock)
        .output()
        .expect("run perl as nobody");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Closed without an answer: a clean EOF, or a reset because its request went unread.
    let seen = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        seen == "read 0 bytes:" || seen == "read error: Connection reset by peer",
        "the stranger was answered: {seen:?}"
    );
    let events = env.events("default");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "connection.rejected" && e["peer_uid"] == 65534),
        "{events:?}"
    );
    // The daemon's own user is still served (once the runtime directory is private again,
    // or the client refuses it).
    std::fs::set_permissions(&env.runtime_dir, std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    env.ok(&["call", "daemon/ping"]);
}

#[test]
fn slowloris_connections_do_not_starve_real_clients() {
    const SLOW: usize = 300;
    let env = TestEnv::new();
    env.write_config("[services.echo]\npartial_frame_timeout = \"10s\"\n");
    let status = env.json(&["-s", "echo", "start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    // Each slow client sends the first byte of a frame, then one more byte a second: a frame
    // that would take minutes to complete.
    let mut slow: Vec<UnixStream> = (0..SLOW)
        .map(|_| {
            let mut stream = UnixStream::connect(&sock).expect("connect");
            stream.write_all(b"{").expect("first byte");
            stream
        })
        .collect();
    let trickle_stop = Arc::new(AtomicBool::new(false));
    let trickle = std::thread::spawn({
        let stop = trickle_stop.clone();
        let mut streams: Vec<UnixStream> =
            slow.iter().map(|s| s.try_clone().expect("clone")).collect();
        move || {
            while !stop.load(Ordering::Relaxed) {
                for stream in &mut streams {
                    let _ = stream.write_all(b" ");
                }
                // Pacing the attack, not waiting for a result.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    });
    let good = WellBehaved::start(sock.clone());
    let outputs = run_concurrently(20, || {
        let mut command = env.warm();
        command.args(["-s", "echo", "call", "echo", "[7]"]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr_of(output));
        assert_eq!(stdout_of(output).trim(), "[7]");
    }
    assert!(wait_until(Duration::from_secs(10), || good
        .answered
        .load(Ordering::Relaxed)
        > 100));
    // All of that happened while the slow connections were still held open.
    let open = env.json(&["-s", "echo", "status"])["connections"]
        .as_u64()
        .unwrap_or(0);
    assert!(open > SLOW as u64, "only {open} connections open");
    good.finish();
    // The partial-frame deadline then closes every slow connection, however it trickles.
    for stream in &mut slow {
        assert!(read_to_close(stream).is_empty());
    }
    trickle_stop.store(true, Ordering::Relaxed);
    trickle.join().expect("trickle thread");
    let timeouts = env
        .events("echo")
        .iter()
        .filter(|e| e["event"] == "connection.partial_timeout")
        .count();
    assert_eq!(timeouts, SLOW);
}

#[test]
fn duplicate_keys_are_a_parse_error_in_every_framing_and_nothing_runs() {
    let env = TestEnv::new();
    let status = env.json(&["start"]);
    let pid = status["pid"].clone();
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"daemon/ping","method":"daemon/shutdown"}"#;
    // MessagePack: the same map, keys in the same order.
    let text = |t: &str| rmpv::Value::from(t);
    let map = rmpv::Value::Map(vec![
        (text("jsonrpc"), text("2.0")),
        (text("id"), rmpv::Value::from(1)),
        (text("method"), text("daemon/ping")),
        (text("method"), text("daemon/shutdown")),
    ]);
    let mut packed = Vec::new();
    rmpv::encode::write_value(&mut packed, &map).expect("encode");
    let mut binary = vec![0xEB, 0x57, 1, 0];
    binary.extend_from_slice(&(packed.len() as u32).to_be_bytes());
    binary.extend_from_slice(&packed);
    let mut lsp = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    lsp.extend_from_slice(body);
    let mut ndjson = body.to_vec();
    ndjson.push(b'\n');

    for (framing, frame) in [("ndjson", ndjson), ("lsp", lsp), ("binary", binary)] {
        let mut stream = UnixStream::connect(&sock).expect("connect");
        stream.write_all(&frame).expect("write");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
        let answer = read_to_close(&mut stream);
        let body: Value = if framing == "binary" {
            rmp_serde::from_slice(&answer[8..]).expect("msgpack answer")
        } else {
            first_json(&answer)
        };
        assert_eq!(body["error"]["code"], -32700, "{framing}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("duplicate")),
            "{framing}: {body}"
        );
    }
    assert_eq!(
        env.json(&["status"])["pid"],
        pid,
        "the daemon was not shut down"
    );
}

#[test]
fn out_of_range_numbers_are_errors_and_the_daemon_keeps_serving() {
    let env = TestEnv::new();
    let status = env.json(&["start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let mut connection = Connection::connect(&sock, Framing::Ndjson).expect("connect");
    connection
        .set_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for ttl in [
        json!(u64::MAX),
        json!(315_360_001u64),
        json!(-1),
        json!(1.5),
        json!("600"),
    ] {
        let answer = connection
            .request(
                "daemon/set_ttl",
                Some(&json!({ "ttl_secs": ttl })),
                &mut |_| {},
            )
            .expect("an answer");
        let error = answer.expect_err(&format!("ttl_secs {ttl} was accepted"));
        assert_eq!(error.code, -32602, "ttl_secs {ttl}: {error:?}");
    }
    // Every later ping and status still works (a huge TTL used to overflow `Instant + ttl`).
    assert_eq!(env.json(&["ping"])["ttl_secs"], 600);
    assert_eq!(env.json(&["status"])["pid"], status["pid"]);
    let output = env.run(&["start", "--ttl", "18446744073709551615ms"]);
    assert_exit(&output, 2, "too long");
}

/// Sends one ndjson frame and reads one answer line.
fn one_answer(sock: &std::path::Path, frame: &[u8]) -> Value {
    let mut stream = UnixStream::connect(sock).expect("connect");
    stream.write_all(frame).expect("write");
    stream.write_all(b"\n").expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line).expect("answer");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn a_batch_over_the_limit_is_refused_whole_and_an_answer_over_the_frame_limit_is_an_error() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\nmax_batch = 50\nmax_frame_bytes = 4000\n");
    let status = env.json(&["-s", "echo", "start"]);
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let batch = |n: usize, method: &str| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": method}))
            .collect();
        serde_json::to_vec(&items).expect("batch")
    };

    let answer = one_answer(&sock, &batch(51, "daemon/shutdown"));
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    assert_eq!(answer["id"], Value::Null);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than 50")),
        "{answer}"
    );
    assert_eq!(
        env.json(&["-s", "echo", "status"])["pid"],
        status["pid"],
        "none of the refused batch ran"
    );

    // Fifty pings are answered; fifty status answers (~450 bytes each) are over 4000 bytes
    // together: each becomes -32004, under its own id.
    let answers = one_answer(&sock, &batch(50, "daemon/ping"));
    assert_eq!(answers.as_array().map(Vec::len), Some(50), "{answers}");
    let answers = one_answer(&sock, &batch(20, "daemon/status"));
    let answers = answers.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 20);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["id"], i, "{answer}");
        assert_eq!(answer["error"]["code"], -32004, "{answer}");
    }
    assert_eq!(env.json(&["-s", "echo", "status"])["pid"], status["pid"]);
}

#[test]
fn symlinks_planted_in_a_daemon_directory_are_never_written_through() {
    let env = TestEnv::new();
    let identity = warm_runtime::Identity::new("echo", &env.project).expect("identity");
    let paths = warm_runtime::DaemonPaths::new(&env.runtime_dir, &identity).expect("paths");
    paths.create_dir().expect("daemon dir");
    let target = env.tmp.path().join("victim");
    std::fs::write(&target, "precious\n").expect("victim");
    std::os::unix::fs::symlink(&target, &paths.events).expect("plant events.jsonl");

    env.ok(&["-s", "echo", "call", "echo", "[1]"]);
    env.ok(&["-s", "echo", "stop"]);
    assert_eq!(
        std::fs::read_to_string(&target).expect("victim"),
        "precious\n"
    );

    // A planted log: the daemon does not start (naming the file) rather than write through it.
    let _ = std::fs::remove_file(&paths.log);
    std::os::unix::fs::symlink(&target, &paths.log).expect("plant daemon.log");
    let output = env.run(&["-s", "echo", "call", "echo", "[1]", "--no-fallback"]);
    assert_exit(&output, 3, "daemon.log");
    assert_eq!(
        std::fs::read_to_string(&target).expect("victim"),
        "precious\n"
    );
}

/// A field of `/proc/PID/status` in MiB (`VmRSS`, `VmHWM`: the peak).
fn memory_mib(pid: u64, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("memory field")
        / 1024
}

#[test]
fn four_ten_megabyte_batches_at_once_cost_the_daemon_little_memory() {
    let env = TestEnv::new();
    let status = env.json(&["-s", "echo", "start"]);
    let pid = status["pid"].as_u64().expect("pid");
    let sock = std::path::PathBuf::from(status["socket"].as_str().expect("socket"));
    let idle = memory_mib(pid, "VmRSS:");
    let requests: Vec<Value> = (0..210_000)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "daemon/status"}))
        .collect();
    let mut body = serde_json::to_vec(&requests).expect("batch");
    body.push(b'\n');
    assert!(body.len() > 11_000_000, "{} bytes", body.len());
    let body = Arc::new(body);
    let well_behaved = WellBehaved::start(sock.clone());
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (sock, body) = (sock.clone(), body.clone());
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(&sock).expect("connect");
                stream.write_all(&body).expect("write the batch");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line)
                    .expect("answer");
                serde_json::from_str::<Value>(&line).expect("JSON answer")
            })
        })
        .collect();
    for sender in senders {
        let answer = sender.join().expect("sender");
        assert_eq!(answer["error"]["code"], -32004, "{answer}");
    }
    assert!(
        well_behaved.finish() > 0,
        "the well-behaved client was served"
    );
    let peak = memory_mib(pid, "VmHWM:");
    assert!(
        peak < idle + 64,
        "peak RSS {peak} MiB, idle {idle} MiB: a batch must be refused before it is built"
    );
}
