//! The workers in `examples/`, run through warm as their READMEs describe.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::json;

use crate::support::*;

fn example(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(path)
        .canonicalize()
        .expect("example exists")
        .display()
        .to_string()
}

#[test]
fn python_index_loads_once_searches_and_reindexes_exclusively_with_progress() {
    let env = TestEnv::new();
    std::fs::write(
        env.project.join("alpha.md"),
        "warm daemons keep indexes loaded",
    )
    .expect("write");
    std::fs::write(
        env.project.join("beta.py"),
        "def socket_flock(): return 'daemon'",
    )
    .expect("write");
    env.write_config(&format!(
        "[services.index]\ncommand = [{:?}, {:?}]\nworkers = 2\nexclusive = [\"reindex\"]\n",
        python(),
        example("python-index/worker.py")
    ));
    let found = env.json(&["-s", "index", "call", "search", r#"{"q": "daemon"}"#]);
    assert_eq!(found["files"], json!(["beta.py"]), "{found}");
    let found = env.json(&["-s", "index", "call", "search", r#"{"q": "warm indexes"}"#]);
    assert_eq!(found["files"], json!(["alpha.md"]), "{found}");
    // A new file is not seen until a reindex, which reports progress.
    std::fs::write(env.project.join("gamma.txt"), "another daemon").expect("write");
    let output = env
        .warm()
        .args(["-s", "index", "call", "reindex"])
        .env("WARM_PROGRESS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("reindex");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("[3/3] indexing"),
        "{}",
        stderr_of(&output)
    );
    let found = env.json(&["-s", "index", "call", "search", r#"{"q": "daemon"}"#]);
    assert_eq!(found["files"], json!(["beta.py", "gamma.txt"]), "{found}");
    // The cold path the example README compares against gives the same answer.
    let once = std::process::Command::new(python())
        .args([
            example("python-index/worker.py").as_str(),
            "--once",
            "search",
            "daemon",
        ])
        .current_dir(&env.project)
        .output()
        .expect("cold run");
    let once: serde_json::Value = serde_json::from_slice(&once.stdout).expect("json");
    assert_eq!(once["files"], json!(["beta.py", "gamma.txt"]));
}

#[test]
fn node_worker_stays_warm_between_calls() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "[services.node]\ncommand = [\"node\", {:?}]\n",
        example("node-worker/worker.js")
    ));
    assert_eq!(
        env.json(&["-s", "node", "call", "upper", r#"{"text": "héllo"}"#]),
        json!("HÉLLO")
    );
    assert_eq!(
        env.json(&["-s", "node", "call", "sum", "[1, 2, 3.5]"]),
        json!(6.5)
    );
    let first = env.json(&["-s", "node", "call", "uptime"]);
    let second = env.json(&["-s", "node", "call", "uptime"]);
    let (Some(first_secs), Some(second_secs)) = (first.as_f64(), second.as_f64()) else {
        panic!("uptime is not a number: {first}, {second}");
    };
    assert!(
        second_secs >= first_secs,
        "{first} then {second}: a new process?"
    );
    let status = env.json(&["-s", "node", "status"]);
    assert_eq!(status["workers"][0]["requests"], 4, "{status}");
    assert_eq!(status["workers"][0]["restarts"], 0, "{status}");
}

/// `target/<profile>/examples/NAME`, built by cargo alongside the tests.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    profile_dir.join("examples").join(name)
}

#[test]
fn binary_client_sends_megabytes_of_raw_bytes_next_to_json_clients() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let env = TestEnv::new();
    env.write_config(&format!(
        "[services.py]\ncommand = [{:?}, {:?}]\nworkers = 2\n",
        python(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/workers/echo_worker.py")
            .display()
            .to_string()
    ));
    let status = env.json(&["-s", "py", "start"]);
    let sock = PathBuf::from(status["socket"].as_str().expect("socket"));
    let running = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicU64::new(0));
    let json_clients: Vec<_> = (0..3)
        .map(|client| {
            let (sock, running, answered) = (sock.clone(), running.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut connection =
                    warm_client::Connection::connect(&sock, warm_protocol::Framing::Ndjson)
                        .expect("connect");
                let mut i = 0;
                while running.load(Ordering::Relaxed) {
                    let params = json!({ "client": client, "i": i });
                    let result = connection
                        .request("echo", Some(&params), &mut |_| {})
                        .expect("answer")
                        .expect("result");
                    assert_eq!(result, params);
                    answered.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..2 {
        let output = std::process::Command::new(example_binary("binary_bytes"))
            .arg(&sock)
            .arg("4")
            .output()
            .expect("run the binary client example");
        assert!(output.status.success(), "{}", stderr_of(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(report["worker_len"], 4 * 1024 * 1024, "{report}");
        assert_eq!(report["worker_sha256"], report["local_sha256"], "{report}");
    }
    assert!(answered.load(Ordering::Relaxed) > 0);
    running.store(false, Ordering::Relaxed);
    for client in json_clients {
        client.join().expect("a JSON client failed");
    }
}
