//! [`TestEnv`]: a private runtime directory and project for one test, and the guarantee that
//! every process the test started (directly or through auto-start) is killed when it ends,
//! pass or fail.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WARM: &str = env!("CARGO_BIN_EXE_warm");

pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub runtime_dir: PathBuf,
    pub project: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("warm-it-")
            .tempdir()
            .expect("tempdir");
        let runtime_dir = tmp.path().join("rt");
        std::fs::create_dir(&runtime_dir).expect("runtime dir");
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let project = tmp.path().join("project");
        std::fs::create_dir(&project).expect("project dir");
        // Canonical, as the daemon reports it.
        let project = project.canonicalize().expect("canonical project");
        TestEnv {
            tmp,
            runtime_dir,
            project,
        }
    }

    /// A `warm` command in the project directory, in this test's runtime directory.
    pub fn warm(&self) -> Command {
        let mut cmd = Command::new(WARM);
        cmd.current_dir(&self.project)
            .env("WARM_RUNTIME_DIR", &self.runtime_dir)
            // The tests' own configurations are trusted; the trust tests remove this. The
            // trust store is the test's own, never the user's.
            .env("WARM_TRUST_ALL", "1")
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            // Stored search indexes are the test's own, never in the user's cache.
            .env("WARM_CACHE_DIR", self.tmp.path().join("cache"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WARM_VERSION_OVERRIDE")
            .env_remove("WARM_RETRY_DELAYS")
            .env_remove("WARM_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `warm ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.warm().args(args).output().expect("run warm")
    }

    /// Runs `warm ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "warm {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `warm ARGS --json`, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.ok(&args);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {stdout:?}: {e}"))
    }

    /// Starts `warm -s echo call sleep {"ms": ms}` and returns once the daemon reports it
    /// in flight.
    pub fn slow_echo_call(&self, ms: u64) -> Child {
        let child = self
            .warm()
            .args(["-s", "echo", "call", "sleep", &format!(r#"{{"ms": {ms}}}"#)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn warm call");
        assert!(
            self.wait_in_flight("echo", 1),
            "the slow call never started"
        );
        child
    }

    /// Waits (10 s at most) until `service`'s daemon reports `count` requests in flight.
    pub fn wait_in_flight(&self, service: &str, count: u64) -> bool {
        wait_until(Duration::from_secs(10), || {
            self.json(&["-s", service, "status"])["in_flight"] == count
        })
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.project.join(".warm.toml"), text).expect("write .warm.toml");
    }

    /// Pids of live `warm serve` processes of this test's runtime directory.
    pub fn daemon_pids(&self) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|(_, cmdline)| cmdline.split('\0').nth(1) == Some("serve"))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Pids of every live process of this test (daemons, workers, clients).
    pub fn all_pids(&self) -> Vec<u32> {
        self.processes().into_iter().map(|(pid, _)| pid).collect()
    }

    /// Pids of live processes of this test whose command line (arguments joined by spaces)
    /// contains `needle`.
    pub fn pids_of(&self, needle: &str) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|(_, cmdline)| cmdline.replace('\0', " ").contains(needle))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Live processes (not zombies) whose environment names this test's runtime directory.
    fn processes(&self) -> Vec<(u32, String)> {
        let needle = format!("WARM_RUNTIME_DIR={}", self.runtime_dir.display());
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() || !is_running(pid) {
                continue;
            }
            let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if !environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
            {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).into_owned()));
        }
        found
    }

    /// The one daemon running; fails the test if there are none or several.
    pub fn only_daemon(&self) -> u32 {
        let pids = self.daemon_pids();
        assert_eq!(pids.len(), 1, "expected exactly one daemon, found {pids:?}");
        pids[0]
    }

    pub fn events(&self, service: &str) -> Vec<Value> {
        let mut events = Vec::new();
        for entry in std::fs::read_dir(&self.runtime_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{service}-")) {
                let text =
                    std::fs::read_to_string(entry.path().join("events.jsonl")).unwrap_or_default();
                events.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
            }
        }
        events
    }

    /// How many daemons of `service` clients spawned (`client.spawned` events): a race that
    /// starts a second daemon shows here even when the loser is gone by the end.
    pub fn spawn_count(&self, service: &str) -> usize {
        self.events(service)
            .iter()
            .filter(|e| e["event"] == "client.spawned")
            .count()
    }

    /// The daemon directory of `service` for the project.
    pub fn daemon_dir(&self, service: &str) -> PathBuf {
        let entries: Vec<PathBuf> = std::fs::read_dir(&self.runtime_dir)
            .expect("runtime dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{service}-")))
            })
            .collect();
        assert_eq!(entries.len(), 1, "daemon dirs for {service}: {entries:?}");
        entries[0].clone()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Kill everything this test started, whatever state it is in, then make sure it is
        // gone before the temporary directory is removed.
        for _ in 0..3 {
            let processes = self.processes();
            if processes.is_empty() {
                return;
            }
            for (pid, _) in &processes {
                kill(*pid, "KILL");
            }
            wait_until(Duration::from_secs(5), || {
                processes.iter().all(|(pid, _)| !is_running(*pid))
            });
        }
    }
}

pub use warm_runtime::meta::process_is_running as is_running;

/// The real Python interpreter (the pyenv shim on PATH costs ~150 ms per start).
pub fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `bin` directory in the test's temporary directory holding a `pylsp` that runs the
/// tests' Python's module (the pyenv shim on PATH would cost ~150 ms a start, and may point at
/// another Python): put first on `PATH`, it is the `pylsp` a built-in server is found as.
pub fn pylsp_bin(env: &TestEnv) -> PathBuf {
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let wrapper = bin.join("pylsp");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {} -m pylsp \"$@\"\n", python()),
    )
    .expect("pylsp wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("chmod pylsp wrapper");
    bin
}

/// The reference ripgrep: the release warm follows (scripts/reference-rg installs it), never
/// whatever `rg` happens to be on PATH.
#[track_caller]
pub fn reference_rg() -> PathBuf {
    let root = std::env::var_os("WARM_REFERENCE_RG_ROOT").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/warm/ripgrep-15.2.0")
        },
        PathBuf::from,
    );
    let rg = root.join("bin/rg");
    assert!(
        rg.is_file(),
        "this test needs the reference ripgrep at {}: run scripts/reference-rg (or scripts/setup-tests)",
        rg.display()
    );
    rg
}

/// Fails the test, naming what to install, unless the real Python can import `modules`.
#[track_caller]
pub fn require_python_modules(modules: &[&str], install: &str) {
    let imports = format!("import {}", modules.join(", "));
    let status = Command::new(python())
        .args(["-c", &imports])
        .stderr(Stdio::null())
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "this test needs the Python modules {modules:?} in {}: {install} (or run scripts/setup-tests)",
        python()
    );
}

/// Field `number` (1-based, as proc(5) counts them) of a `/proc/PID/stat` or
/// `/proc/PID/task/TID/stat` line. Counted after the command name, which may hold spaces.
pub fn proc_stat_field(stat: &str, number: usize) -> Option<&str> {
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    after_name.split(' ').nth(number.checked_sub(3)?)
}

/// Kills `pid` with `SIGKILL` and waits (10 s at most) until it is gone: `kill` returns once
/// the signal is sent, and until its last thread has exited the process still holds its
/// descriptors (a daemon still accepts on its socket).
pub fn kill_and_wait_gone(pid: u32) {
    kill(pid, "KILL");
    assert!(
        wait_until(Duration::from_secs(10), || all_threads_exited(pid)),
        "{pid} outlived SIGKILL"
    );
}

/// Whether every thread of `pid` has exited, so that its descriptors (sockets included) are
/// closed. A zombie leader alone is not enough: a killed multi-threaded process shows `Z` for
/// its leader while its other threads, which share the descriptor table, are still exiting.
fn all_threads_exited(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            matches!(proc_stat_field(&stat, 3), None | Some("Z") | Some("X"))
        })
    })
}

pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Starts `count` commands made by `make` at once, each with its output captured, and waits
/// for them all.
pub fn run_concurrently(count: usize, make: impl Fn() -> Command) -> Vec<Output> {
    let children: Vec<Child> = (0..count)
        .map(|_| {
            make()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a concurrent command")
        })
        .collect();
    children.into_iter().map(wait_output).collect()
}

/// Waits for a child and returns its output, failing the test (and killing the child) if it
/// has not finished within two minutes: a hung child must fail its test, not hang the suite.
pub fn wait_output(child: Child) -> Output {
    const DEADLINE: Duration = Duration::from_secs(120);
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    match done_rx.recv_timeout(DEADLINE) {
        Ok(output) => output.expect("wait for child"),
        Err(_) => {
            kill(pid, "KILL");
            panic!("child {pid} did not finish within {}s", DEADLINE.as_secs());
        }
    }
}

/// Asserts that a command exited with `code` and that its stderr says `needle`.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32, needle: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "expected {needle:?} in stderr: {stderr}"
    );
}

/// The stdout of a command (`what`, for the message) that must have exited with `code`.
pub fn stdout_if_exited(output: &Output, code: i32, what: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}:\nstdout: {}\nstderr: {}",
        stdout_of(output),
        stderr_of(output)
    );
    stdout_of(output)
}

/// The stdout of a command (`what`, for the message), parsed as JSON.
pub fn json_stdout(output: &Output, what: &str) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{what}: bad JSON ({e}); stderr: {}", stderr_of(output)))
}

pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
