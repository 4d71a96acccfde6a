//! Worker-path benchmarks: what warm adds over talking to a worker's stdio directly, pool
//! throughput, worker stop times, and a real index tool warm versus cold.
//!
//! `cargo bench -p warm --bench workers` (`WARM_BENCH_QUICK=1` for a tenth). The Rust echo
//! worker is this binary re-invoked with `WARM_BENCH_ROLE=worker`; the Python one is the
//! test suite's `echo_worker.py`, run with the real interpreter (not the pyenv shim).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const WARM: &str = env!("CARGO_BIN_EXE_warm");
const ECHO: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n";

fn main() {
    if std::env::var("WARM_BENCH_ROLE").as_deref() == Ok("worker") {
        return rust_echo_worker();
    }
    let quick = std::env::var_os("WARM_BENCH_QUICK").is_some();
    let scale = if quick { 10 } else { 1 };
    let tmp = tempfile::tempdir().expect("tempdir");
    let python = python();
    let py_worker = manifest().join("tests/it/workers/echo_worker.py");
    let me = std::env::current_exe().expect("exe").display().to_string();
    let mut rows = Vec::new();

    let services = [
        (
            "py",
            vec![python.clone(), py_worker.display().to_string()],
            vec![],
        ),
        ("rs", vec![me.clone()], vec![("WARM_BENCH_ROLE", "worker")]),
    ];
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).expect("project");
    let mut config = String::new();
    for (name, command, env) in &services {
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
        config.push_str(&format!(
            "[services.{name}]\ncommand = {command:?}\nworkers = 2\nttl = \"0\"\nenv = {{ {} }}\n",
            env.join(", ")
        ));
    }
    std::fs::write(project.join(".warm.toml"), config).expect("config");
    let rt = tmp.path().join("rt");
    let warm = |args: &[&str]| {
        let mut cmd = Command::new(WARM);
        cmd.args(args)
            .current_dir(&project)
            .env("WARM_RUNTIME_DIR", &rt)
            .env("WARM_TRUST_ALL", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };

    for (name, command, env) in &services {
        let out = warm(&["-s", name, "start", "--json"])
            .output()
            .expect("start");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let sock = PathBuf::from(status["socket"].as_str().expect("socket"));
        // Direct: the same worker program on a pipe, no warm in between.
        let mut direct = DirectWorker::spawn(command, env, &project);
        let mut via = Trips::connect(&sock);
        let (mut direct_t, mut warm_t) = (Vec::new(), Vec::new());
        for _ in 0..(10 / scale.min(5)) {
            direct_t.extend(direct.run(1000));
            warm_t.extend(via.run(1000));
        }
        let (d, w) = (median(&direct_t), median(&warm_t));
        rows.push(format!(
            "| {name} echo worker, persistent round trip: warm vs its stdio directly | {} | {} | +{} (target ≤ +50 µs) |",
            show(w),
            show(d),
            show(w.saturating_sub(d))
        ));
        let mut one_shot = Vec::new();
        let mut ping = Vec::new();
        for _ in 0..(100 / scale) {
            let mut cmd = warm(&["-s", name, "call", "echo", "[1]"]);
            one_shot.push(time(|| assert!(cmd.status().expect("call").success())));
            let mut cmd = warm(&["-s", name, "call", "daemon/ping"]);
            ping.push(time(|| assert!(cmd.status().expect("ping").success())));
        }
        rows.push(format!(
            "| {name} echo worker, one-shot `warm call echo` vs one-shot `warm call daemon/ping` | {} | {} | +{} through the worker |",
            show(median(&one_shot)),
            show(median(&ping)),
            show(median(&one_shot).saturating_sub(median(&ping)))
        ));
        let rate = throughput(
            &sock,
            32,
            Duration::from_millis(if quick { 300 } else { 3000 }),
        );
        rows.push(format!(
            "| {name} echo, 32 clients over 2 workers | {rate:.0} req/s | | |"
        ));
        direct.stop();
    }

    rows.extend(stop_times(
        &python,
        &py_worker,
        &project,
        if quick { 3 } else { 10 },
    ));
    rows.push(index_ratio(
        &python,
        tmp.path(),
        &rt,
        if quick { 5 } else { 20 },
    ));

    let _ = warm(&["stop", "--all"]).status();
    println!("| measurement | warm | baseline | difference |\n|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The Rust echo worker: answers every request with its params.
fn rust_echo_worker() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message.get("id").is_none() {
            continue;
        }
        let answer =
            serde_json::json!({"jsonrpc": "2.0", "id": message["id"], "result": message["params"]});
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

struct DirectWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl DirectWorker {
    fn spawn(command: &[String], env: &[(&str, &str)], cwd: &Path) -> DirectWorker {
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn worker");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut worker = DirectWorker {
            child,
            stdin,
            stdout,
        };
        worker.run(200);
        worker
    }

    fn run(&mut self, count: usize) -> Vec<Duration> {
        let mut line = String::new();
        (0..count)
            .map(|_| {
                let start = Instant::now();
                self.stdin.write_all(ECHO).expect("write");
                line.clear();
                self.stdout.read_line(&mut line).expect("read");
                start.elapsed()
            })
            .collect()
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

struct Trips {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Trips {
    fn connect(sock: &Path) -> Trips {
        let stream = UnixStream::connect(sock).expect("connect");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut trips = Trips { stream, reader };
        trips.run(200);
        trips
    }

    fn run(&mut self, count: usize) -> Vec<Duration> {
        let mut line = Vec::new();
        (0..count)
            .map(|_| {
                let start = Instant::now();
                self.stream.write_all(ECHO).expect("write");
                line.clear();
                self.reader.read_until(b'\n', &mut line).expect("read");
                start.elapsed()
            })
            .collect()
    }
}

fn throughput(sock: &Path, clients: usize, duration: Duration) -> f64 {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (sock, barrier) = (sock.to_path_buf(), barrier.clone());
            std::thread::spawn(move || {
                let mut trips = Trips::connect(&sock);
                barrier.wait();
                let start = Instant::now();
                let mut done = 0u64;
                while start.elapsed() < duration {
                    trips.run(10);
                    done += 10;
                }
                done as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("client")).sum()
}

/// Time for `WorkerProcess::stop`: a healthy worker, and one that ignores SIGTERM while busy.
fn stop_times(python: &str, script: &Path, cwd: &Path, runs: usize) -> Vec<String> {
    use warm_worker::{ShutdownDeadlines, WorkerConfig, WorkerProcess};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = |mode: &str| WorkerConfig {
        service: "bench".into(),
        program: python.into(),
        args: vec![script.display().to_string()],
        env: [("WORKER_MODE".to_owned(), mode.to_owned())]
            .into_iter()
            .collect(),
        cwd: cwd.to_path_buf(),
        framing: warm_protocol::Framing::Ndjson,
        workers: 1,
        exclusive: vec![],
        request_timeout: Duration::from_secs(120),
        restart: warm_runtime::config::RestartPolicy::default(),
        shutdown: ShutdownDeadlines::default(),
        max_frame_bytes: 1 << 24,
        dialect: None,
        watch: Vec::new(),
        max_rss: None,
    };
    let events = warm_runtime::EventLog::new("/dev/null");
    let mut rows = Vec::new();
    for (mode, label, busy) in [
        ("", "healthy worker", false),
        ("ignore_sigterm", "busy worker ignoring SIGTERM", true),
    ] {
        let mut times = Vec::new();
        for _ in 0..runs {
            times.push(runtime.block_on(async {
                let worker = WorkerProcess::spawn(&config(mode), 0, events.clone(), None, None)
                    .expect("spawn");
                let progress = warm_daemon::Progress::none;
                let cancel = tokio_util::sync::CancellationToken::new;
                worker
                    .call(
                        "echo".into(),
                        None,
                        progress(),
                        cancel(),
                        Duration::from_secs(30),
                    )
                    .await
                    .expect("warm-up answer");
                if busy {
                    let w = worker.clone();
                    tokio::spawn(async move {
                        let params = Some(serde_json::json!({ "ms": 60_000 }));
                        let _ = w
                            .call(
                                "slow".into(),
                                params,
                                progress(),
                                cancel(),
                                Duration::from_secs(120),
                            )
                            .await;
                    });
                    tokio::task::yield_now().await;
                }
                let start = Instant::now();
                worker.stop().await;
                start.elapsed()
            }));
        }
        rows.push(format!(
            "| time to stop a {label} (median of {runs}) | {} | | deadlines: 2 s after closing stdin, 2 s after SIGTERM |",
            show(median(&times))
        ));
    }
    rows
}

/// The Python index example over this repository: one-shot `warm call search` versus the
/// tool run cold per query (interpreter start, imports, index build, one query).
fn index_ratio(python: &str, tmp: &Path, rt: &Path, runs: usize) -> String {
    let repo = manifest().join("../..").canonicalize().expect("repo");
    let worker = repo.join("examples/python-index/worker.py");
    let project = tmp.join("index-project");
    std::fs::create_dir_all(&project).expect("project");
    // Index the repository's sources: crates/ and docs/ (copied, so the config stays ours).
    for dir in ["crates", "docs", "examples"] {
        let status = Command::new("cp")
            .arg("-r")
            .arg(repo.join(dir))
            .arg(&project)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "copy {dir}");
    }
    std::fs::write(
        project.join(".warm.toml"),
        format!(
            "[services.index]\ncommand = [{python:?}, {:?}]\nttl = \"0\"\n",
            worker.display().to_string()
        ),
    )
    .expect("config");
    let warm_call = || {
        Command::new(WARM)
            .args(["-s", "index", "call", "search", r#"{"q": "daemon socket"}"#])
            .current_dir(&project)
            .env("WARM_RUNTIME_DIR", rt)
            .stdout(Stdio::null())
            .status()
            .expect("warm call")
    };
    assert!(warm_call().success());
    let (mut warm, mut cold) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        warm.push(time(|| assert!(warm_call().success())));
        cold.push(time(|| {
            let status = Command::new(python)
                .arg(&worker)
                .args(["--once", "search", "daemon", "socket"])
                .current_dir(&project)
                .stdout(Stdio::null())
                .status()
                .expect("cold run");
            assert!(status.success());
        }));
    }
    let (w, c) = (median(&warm), median(&cold));
    format!(
        "| python index example, one-shot search: `warm call` vs the tool run cold (median of {runs}) | {} | {} | {:.0}x faster |",
        show(w),
        show(c),
        c.as_secs_f64() / w.as_secs_f64()
    )
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}
