//! Integration tests of the runtime as a library: the embedding example is its own client and
//! its own daemon.

mod memory;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/embedded`, built by cargo alongside the tests.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    profile_dir.join("examples").join("embedded")
}

struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("project")).expect("project");
        Sandbox { tmp }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(example_binary())
            .args(args)
            .current_dir(self.tmp.path().join("project"))
            .env("WARM_RUNTIME_DIR", self.tmp.path().join("rt"))
            .stdin(Stdio::null())
            .output()
            .expect("run the example")
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("json")
    }

    /// The daemon's pid, from the example's own `stats`.
    fn daemon_pid(&self) -> u32 {
        self.ok(&["stats"])["pid"].as_u64().expect("pid") as u32
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Kill what the test started, verifying the pid by its start time so that a reused
        // pid is never hit.
        let rt = self.tmp.path().join("rt");
        for entry in std::fs::read_dir(&rt).into_iter().flatten().flatten() {
            if let Some(meta) = warm_runtime::Meta::read(&entry.path().join("meta.json")) {
                if warm_runtime::meta::process_start_ticks(meta.pid) == meta.start_ticks {
                    let _ = Command::new("kill")
                        .arg("-9")
                        .arg(meta.pid.to_string())
                        .status();
                }
            }
        }
    }
}

#[test]
fn embedded_example_is_its_own_daemon_and_keeps_state() {
    let sandbox = Sandbox::new();
    assert_eq!(
        sandbox.ok(&["set", "greeting", "hello"]),
        serde_json::Value::Null
    );
    assert_eq!(sandbox.ok(&["get", "greeting"]), "hello");
    let stats = sandbox.ok(&["stats"]);
    assert_eq!(stats["keys"], 1);
    assert_eq!(stats["calls"], 3);
    let pid = sandbox.daemon_pid();
    assert_ne!(pid, std::process::id());
    // Concurrent first users of a fresh project still share one daemon.
    let other = Sandbox::new();
    let children: Vec<_> = (0..10)
        .map(|i| {
            Command::new(example_binary())
                .args(["set", &format!("k{i}"), "v"])
                .current_dir(other.tmp.path().join("project"))
                .env("WARM_RUNTIME_DIR", other.tmp.path().join("rt"))
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    assert_eq!(other.ok(&["stats"])["keys"], 10);
}

#[test]
fn embedded_daemon_is_gone_after_stop_request() {
    let sandbox = Sandbox::new();
    let pid = sandbox.daemon_pid();
    let rt = sandbox.tmp.path().join("rt");
    let dir = std::fs::read_dir(&rt)
        .expect("rt")
        .flatten()
        .next()
        .expect("daemon dir")
        .path();
    let mut connection =
        warm_client::Connection::connect(&dir.join("sock"), warm_protocol::Framing::Ndjson)
            .expect("connect");
    let answer = connection
        .request("daemon/shutdown", None, &mut |_| {})
        .expect("answer")
        .expect("result");
    assert_eq!(answer["pid"], pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while warm_runtime::meta::process_is_running(pid) {
        assert!(Instant::now() < deadline, "daemon did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}
