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

fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
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
    assert!(
        second.as_f64() >= first.as_f64(),
        "{first} then {second}: a new process?"
    );
    let status = env.json(&["-s", "node", "status"]);
    assert_eq!(status["workers"][0]["requests"], 4, "{status}");
    assert_eq!(status["workers"][0]["restarts"], 0, "{status}");
}
