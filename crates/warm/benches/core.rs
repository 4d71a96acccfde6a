//! Core benchmarks: warm against the floor (a bare tokio Unix-socket echo server and a minimal
//! Rust client), side by side in one run, as medians and ratios.
//!
//! `cargo bench -p warm --bench core` (or `scripts/bench-core`, which also writes the table to
//! `target/bench-core.md`). The floor programs are this same binary re-invoked with
//! `WARM_BENCH_ROLE=server|client`, so both sides pay the same process start-up.
//!
//! Measured:
//! - one-shot: `warm call daemon/ping` vs the floor client (connect, write, read, exit);
//! - persistent round trip on one connection (same raw client code for both servers);
//! - throughput with 32 connections, each sending request after request;
//! - cold: `warm call daemon/ping` with no daemon (spawn, ready, answer) vs spawning the floor
//!   server and connecting until it answers;
//! - idle daemon RSS.
//!
//! `WARM_BENCH_QUICK=1` runs a tenth of the iterations; `WARM_BENCH_ONLY=persistent,cold`
//! runs only the named sections.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WARM: &str = env!("CARGO_BIN_EXE_warm");
const PING: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon/ping\"}\n";

fn main() {
    match std::env::var("WARM_BENCH_ROLE").as_deref() {
        Ok("server") => return floor_server(&arg_path()),
        Ok("client") => return floor_client(&arg_path()),
        _ => {}
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported, everything runs.
    let quick = std::env::var_os("WARM_BENCH_QUICK").is_some();
    let scale = if quick { 10 } else { 1 };
    // WARM_BENCH_ONLY=one-shot,persistent,throughput,cold,rss runs a subset.
    let only = std::env::var("WARM_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    let bench = Bench::new();
    let mut report = Report::default();
    if wanted("one-shot") {
        bench.one_shot(&mut report, 300 / scale);
    }
    if wanted("persistent") {
        bench.persistent(&mut report, 20_000 / scale);
    }
    if wanted("throughput") {
        let duration = Duration::from_millis(if quick { 300 } else { 3000 });
        bench.throughput(&mut report, duration);
    }
    if wanted("cold") {
        bench.cold(&mut report, 40 / scale.min(4));
    }
    if wanted("rss") {
        bench.rss(&mut report);
    }
    report.print();
}

fn arg_path() -> PathBuf {
    PathBuf::from(std::env::var_os("WARM_BENCH_SOCK").expect("WARM_BENCH_SOCK"))
}

/// The floor server: a bare tokio echo server, line by line.
fn floor_server(sock: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let _ = std::fs::remove_file(sock);
        let listener = tokio::net::UnixListener::bind(sock).expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(reader);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match lines.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            if writer.write_all(&line).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

/// The floor client: connect, write one request, read one reply.
fn floor_client(sock: &Path) {
    let mut stream = UnixStream::connect(sock).expect("connect");
    stream.write_all(PING).expect("write");
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).expect("read");
    assert!(reply.ends_with('\n'));
}

struct Bench {
    tmp: tempfile::TempDir,
    runtime_dir: PathBuf,
    warm_sock: PathBuf,
    floor_sock: PathBuf,
    floor: std::process::Child,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.warm(&["stop", "--all"]).status();
        let _ = self.floor.kill();
        let _ = self.floor.wait();
    }
}

impl Bench {
    fn new() -> Bench {
        let tmp = tempfile::tempdir().expect("tempdir");
        let runtime_dir = tmp.path().join("rt");
        let floor_sock = tmp.path().join("floor.sock");
        let floor = Command::new(std::env::current_exe().expect("exe"))
            .env("WARM_BENCH_ROLE", "server")
            .env("WARM_BENCH_SOCK", &floor_sock)
            .spawn()
            .expect("floor server");
        let mut bench = Bench {
            warm_sock: PathBuf::new(),
            tmp,
            runtime_dir,
            floor_sock,
            floor,
        };
        let out = bench
            .warm(&["-s", "echo", "start", "--ttl", "0", "--json"])
            .output()
            .expect("warm start");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        bench.warm_sock = PathBuf::from(status["socket"].as_str().expect("socket"));
        // The default service too, for `warm call daemon/ping` one-shots.
        assert!(bench
            .warm(&["start", "--ttl", "0"])
            .output()
            .expect("start")
            .status
            .success());
        wait_connectable(&bench.floor_sock);
        bench
    }

    fn warm(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WARM);
        cmd.args(args)
            .current_dir(self.tmp.path())
            .env("WARM_RUNTIME_DIR", &self.runtime_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn floor_client(&self) -> Command {
        let mut cmd = Command::new(std::env::current_exe().expect("exe"));
        // The same working directory as warm's calls: std spawns a process with one through
        // fork, not vfork, when statically linked (it cannot find glibc's
        // posix_spawn_file_actions_addchdir_np), so both sides pay the same spawn.
        cmd.env("WARM_BENCH_ROLE", "client")
            .env("WARM_BENCH_SOCK", &self.floor_sock)
            .current_dir(self.tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    fn one_shot(&self, report: &mut Report, runs: usize) {
        let mut warm = Vec::with_capacity(runs);
        let mut floor = Vec::with_capacity(runs);
        // Interleaved so that drift in machine speed hits both sides alike.
        for _ in 0..runs {
            let mut cmd = self.warm(&["call", "daemon/ping"]);
            cmd.stdout(Stdio::null());
            warm.push(time(|| assert!(cmd.status().expect("warm call").success())));
            let mut cmd = self.floor_client();
            floor.push(time(|| {
                assert!(cmd.status().expect("floor client").success())
            }));
        }
        report.compare(
            "one-shot `warm call daemon/ping` vs floor client",
            &warm,
            &floor,
            1.25,
        );
    }

    fn persistent(&self, report: &mut Report, round_trips: usize) {
        let echo = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n";
        let mut warm_ping = RoundTrips::connect(&self.warm_sock, PING);
        let mut warm_echo = RoundTrips::connect(&self.warm_sock, echo);
        let mut floor_echo = RoundTrips::connect(&self.floor_sock, PING);
        // Alternating blocks, so that drift in machine speed hits every side alike.
        let block = 1000.min(round_trips);
        let (mut warm, mut warm_echo_times, mut floor) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..round_trips / block {
            warm.extend(warm_ping.run(block));
            warm_echo_times.extend(warm_echo.run(block));
            floor.extend(floor_echo.run(block));
        }
        let warm_echo = warm_echo_times;
        report.compare(
            "persistent round trip `daemon/ping` vs bare tokio echo",
            &warm,
            &floor,
            1.3,
        );
        report.compare(
            "persistent round trip `echo` service vs bare tokio echo",
            &warm_echo,
            &floor,
            1.3,
        );
        report.percentiles("persistent `daemon/ping`", &warm);
        report.percentiles("persistent bare tokio echo", &floor);
    }

    fn throughput(&self, report: &mut Report, duration: Duration) {
        let echo = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n";
        let warm = throughput(&self.warm_sock, echo, 32, duration);
        let floor = throughput(&self.floor_sock, echo, 32, duration);
        report.rows.push(format!(
            "| throughput, 32 connections (`echo`) | {:.0} req/s | {:.0} req/s | {:.2}x (target ≥ 0.8x) |",
            warm,
            floor,
            warm / floor
        ));
    }

    fn cold(&self, report: &mut Report, runs: usize) {
        let mut warm = Vec::with_capacity(runs);
        let mut floor = Vec::with_capacity(runs);
        let cold_dir = self.tmp.path().join("cold-rt");
        for i in 0..runs {
            let project = self.tmp.path().join(format!("cold-{i}"));
            std::fs::create_dir_all(&project).expect("project");
            let mut cmd = Command::new(WARM);
            cmd.args(["call", "daemon/ping"])
                .current_dir(&project)
                .env("WARM_RUNTIME_DIR", &cold_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            warm.push(time(|| assert!(cmd.status().expect("cold call").success())));

            let sock = self.tmp.path().join(format!("cold-{i}.sock"));
            let mut server = None;
            floor.push(time(|| {
                server = Some(
                    Command::new(std::env::current_exe().expect("exe"))
                        .env("WARM_BENCH_ROLE", "server")
                        .env("WARM_BENCH_SOCK", &sock)
                        .spawn()
                        .expect("floor server"),
                );
                let mut stream = wait_connectable(&sock);
                stream.write_all(PING).expect("write");
                let mut reply = String::new();
                BufReader::new(stream).read_line(&mut reply).expect("read");
            }));
            if let Some(mut server) = server {
                let _ = server.kill();
                let _ = server.wait();
            }
        }
        let _ = Command::new(WARM)
            .args(["stop", "--all"])
            .env("WARM_RUNTIME_DIR", &cold_dir)
            .stdout(Stdio::null())
            .status();
        report.compare(
            "cold `warm call daemon/ping` (spawn, ready, answer) vs floor spawn-to-first-reply",
            &warm,
            &floor,
            2.5,
        );
    }

    fn rss(&self, report: &mut Report) {
        // A fresh idle daemon (the benchmark ones have served load).
        let project = self.tmp.path().join("rss");
        std::fs::create_dir_all(&project).expect("project");
        let out = Command::new(WARM)
            .args(["start", "--json"])
            .current_dir(&project)
            .env("WARM_RUNTIME_DIR", &self.runtime_dir)
            .output()
            .expect("start");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let pid = status["pid"].as_u64().expect("pid");
        let fresh = rss_kib(pid);
        let after_load = self.warm_pid().map(rss_kib).unwrap_or(0);
        report.rows.push(format!(
            "| idle daemon RSS (fresh / after the load above) | {:.1} MiB / {:.1} MiB | | target ≤ 8 MiB |",
            fresh as f64 / 1024.0,
            after_load as f64 / 1024.0
        ));
    }

    fn warm_pid(&self) -> Option<u64> {
        let out = self
            .warm(&["-s", "echo", "status", "--json"])
            .output()
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()?["pid"].as_u64()
    }
}

fn wait_connectable(sock: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(stream) = UnixStream::connect(sock) {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "{} never accepted",
            sock.display()
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// One persistent connection sending the same request again and again.
struct RoundTrips {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    request: &'static [u8],
    reply: Vec<u8>,
}

impl RoundTrips {
    fn connect(sock: &Path, request: &'static [u8]) -> RoundTrips {
        let stream = UnixStream::connect(sock).expect("connect");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut trips = RoundTrips {
            stream,
            reader,
            request,
            reply: Vec::with_capacity(256),
        };
        // Warm-up, not counted.
        trips.run(200);
        trips
    }

    fn run(&mut self, count: usize) -> Vec<Duration> {
        (0..count)
            .map(|_| {
                let start = Instant::now();
                self.stream.write_all(self.request).expect("write");
                self.reply.clear();
                self.reader
                    .read_until(b'\n', &mut self.reply)
                    .expect("read");
                start.elapsed()
            })
            .collect()
    }
}

fn throughput(sock: &Path, request: &'static [u8], connections: usize, duration: Duration) -> f64 {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(connections));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let sock = sock.to_path_buf();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(&sock).expect("connect");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut reply = Vec::with_capacity(256);
                barrier.wait();
                let start = Instant::now();
                let mut done = 0u64;
                while start.elapsed() < duration {
                    stream.write_all(request).expect("write");
                    reply.clear();
                    reader.read_until(b'\n', &mut reply).expect("read");
                    done += 1;
                }
                done as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("thread")).sum()
}

fn rss_kib(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Report {
    rows: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    percentile(&sorted, 0.5)
}

fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

impl Report {
    fn compare(&mut self, name: &str, warm: &[Duration], floor: &[Duration], target: f64) {
        let (w, f) = (median(warm), median(floor));
        self.rows.push(format!(
            "| {name} (median of {}) | {} | {} | {:.2}x (target ≤ {target}x) |",
            warm.len(),
            show(w),
            show(f),
            w.as_secs_f64() / f.as_secs_f64()
        ));
    }

    fn percentiles(&mut self, name: &str, times: &[Duration]) {
        let mut sorted = times.to_vec();
        sorted.sort();
        self.rows.push(format!(
            "| {name}: p50 / p90 / p99 / p99.9 / max | {} / {} / {} / {} / {} | | |",
            show(percentile(&sorted, 0.5)),
            show(percentile(&sorted, 0.9)),
            show(percentile(&sorted, 0.99)),
            show(percentile(&sorted, 0.999)),
            show(*sorted.last().unwrap_or(&Duration::ZERO)),
        ));
    }

    fn print(&self) {
        let mut text = String::from("| measurement | warm | floor | ratio |\n|---|---|---|---|\n");
        for row in &self.rows {
            text.push_str(row);
            text.push('\n');
        }
        println!("{text}");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-core.md");
        let _ = std::fs::write(&out, &text);
        eprintln!("(table written to {})", out.display());
    }
}
