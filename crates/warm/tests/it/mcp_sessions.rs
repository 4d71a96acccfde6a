//! `warm mcp` over its raw stdio, where the SDKs cannot go: hostile lines, a call cancelled
//! while it runs, a session killed with `kill -9` while others go on, and the leases that keep
//! the daemons warm exactly as long as some session lives.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::mcp::{write_team_tools, Agent, APP};
use crate::support::wait_until;

/// One `warm mcp` process spoken to line by line, initialized; killed if still running when
/// dropped.
struct RawSession {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    /// Messages read while waiting for another one.
    unread: Vec<Value>,
}

impl RawSession {
    fn start(mut command: Command) -> RawSession {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn warm mcp");
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        let mut session = RawSession {
            child,
            input,
            output,
            unread: Vec::new(),
        };
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "raw", "version": "1" } } });
        session.send(&init);
        assert_eq!(session.answer(0)["result"]["serverInfo"]["name"], "warm");
        session.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        session
    }

    fn send_line(&mut self, line: &[u8]) {
        let input = self.input.as_mut().expect("stdin open");
        input.write_all(line).expect("write");
        input.write_all(b"\n").expect("write");
        input.flush().expect("flush");
    }

    fn send(&mut self, message: &Value) {
        self.send_line(message.to_string().as_bytes());
    }

    /// Reads until the answer to request `id` (other messages are kept for later).
    fn answer(&mut self, id: u64) -> Value {
        let is_it = |m: &Value| m["id"] == id && m.get("method").is_none();
        if let Some(at) = self.unread.iter().position(is_it) {
            return self.unread.remove(at);
        }
        loop {
            let mut line = String::new();
            let read = self.output.read_line(&mut line).expect("read an answer");
            assert!(read > 0, "warm mcp closed stdout before answering {id}");
            let message: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if is_it(&message) {
                return message;
            }
            self.unread.push(message);
        }
    }

    fn start_call(&mut self, id: u64, name: &str, arguments: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": { "name": name, "arguments": arguments } }));
    }

    fn call(&mut self, id: u64, name: &str, arguments: Value) -> Value {
        self.start_call(id, name, arguments);
        self.answer(id)
    }

    fn cancel(&mut self, id: u64) {
        self.send(
            &json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": { "requestId": id, "reason": "the agent moved on" } }),
        );
    }

    /// Closes stdin and waits for the process, which must end well.
    fn close(mut self) {
        drop(self.input.take());
        let status = self.child.wait().expect("warm mcp exits when stdin closes");
        assert!(status.success(), "{status}");
    }
}

impl Drop for RawSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

/// Hostile input on the MCP stdio: each bad line answered with an error, and the session
/// goes on serving.
#[test]
fn bad_input_on_the_mcp_stdio_is_answered_and_the_session_goes_on() {
    let agent = Agent::new();
    let mut session = RawSession::start(agent.warm_mcp());
    let mut ask = |line: &[u8]| {
        session.send_line(line);
        // Parse errors are answered with a null id.
        let mut answer = String::new();
        session
            .output
            .read_line(&mut answer)
            .expect("read an answer");
        serde_json::from_str::<Value>(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    let answer = ask(b"{this is not json");
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    let answer = ask(&vec![b'x'; 5 << 20]);
    assert_eq!(answer["error"]["code"], -32700, "{answer}");

    let answer = session.call(2, "search", json!({ "pattern": "x".repeat(1 << 20) }));
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer.to_string().contains("too long"), "{answer}");
    let answer = session.call(3, "search", json!({ "pattern": 3 }));
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let answer = session.call(4, "no_such_tool", json!({}));
    assert!(
        answer.get("error").is_some() || answer["result"]["isError"] == true,
        "{answer}"
    );
    let answer = session.call(5, "search", json!({ "pattern": "def twice" }));
    assert_eq!(text(&answer), "util.py:4:def twice():", "{answer}");
    session.send(&json!({ "jsonrpc": "2.0", "id": 6, "method": "ping" }));
    assert_eq!(session.answer(6)["result"], json!({}), "MCP ping");
    session.close();
}

/// A call the agent cancels while it runs has its `warm` command killed at once (nothing is
/// left running), is not answered (as the MCP specification asks), and the session goes on.
#[test]
fn a_call_cancelled_while_it_runs_is_stopped_and_the_session_goes_on() {
    let agent = Agent::new();
    write_team_tools(&agent.env);
    let mut session = RawSession::start(agent.warm_mcp());
    session.start_call(1, "nap", json!({ "ms": 600_000 }));
    let running = |env: &crate::support::TestEnv| env.pids_of(" call slow ").len();
    assert!(
        wait_until(Duration::from_secs(20), || running(&agent.env) == 1),
        "the slow call never started"
    );
    let in_flight = || {
        let status = agent.env.run(&["-s", "team", "status", "--json"]);
        serde_json::from_slice::<Value>(&status.stdout).is_ok_and(|s| s["in_flight"] == 1)
    };
    assert!(
        wait_until(Duration::from_secs(20), in_flight),
        "the worker never got it"
    );
    session.cancel(1);
    assert!(
        wait_until(Duration::from_secs(10), || running(&agent.env) == 0),
        "the cancelled call's warm command still runs"
    );
    let answer = session.call(2, "echo_back", json!({ "word": "after" }));
    assert!(text(&answer).contains("\"after\""), "{answer}");
    assert!(
        !session.unread.iter().any(|m| m["id"] == 1),
        "the cancelled call was answered: {:?}",
        session.unread
    );

    // A search cancelled as soon as it is sent (answered only if it finished first, then
    // rightly), and the next search is right.
    session.start_call(3, "search", json!({ "pattern": "def " }));
    session.cancel(3);
    let answer = session.call(4, "search", json!({ "pattern": "def twice" }));
    assert_eq!(text(&answer), "util.py:4:def twice():", "{answer}");
    if let Some(first) = session.unread.iter().find(|m| m["id"] == 3) {
        assert!(text(first).contains("app.py:4:def greet"), "{first}");
    }
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .env
            .pids_of(" search --line-number")
            .is_empty()),
        "a search command still runs"
    );
    session.close();
}

/// Two sessions share the daemons; `kill -9` of one leaves the other working; the daemons
/// stay while a session lives, however long it is quiet, and idle out on their TTL once the
/// last one has gone.
#[test]
fn daemons_stay_while_any_session_lives_and_idle_out_after_the_last() {
    let agent = Agent::new();
    let env = &agent.env;
    env.write_config(
        "[services.search]\nttl = \"1s\"\n[services.lsp-pylsp]\nttl = \"1s\"\n\
         [services.echo]\nttl = \"3s\"\n",
    );
    // A daemon of another project, running before the sessions' calls.
    let other = env.tmp.path().join("other");
    std::fs::create_dir(&other).expect("other project");
    let in_other = |args: &[&str]| {
        let mut command = env.warm();
        command
            .current_dir(&other)
            .arg("--root")
            .arg(&other)
            .args(args);
        command.output().expect("warm in the other project")
    };
    assert!(in_other(&["-s", "echo", "start"]).status.success());
    let other_leases = || {
        let status = in_other(&["-s", "echo", "status", "--json"]);
        serde_json::from_slice::<Value>(&status.stdout).map_or(Value::Null, |s| s["leases"].clone())
    };
    let at = json!({ "file": "app.py", "line": 9, "column": 12 });
    let mut first = RawSession::start(agent.warm_mcp());
    let mut second = RawSession::start(agent.warm_mcp());
    for session in [&mut first, &mut second] {
        let answer = session.call(1, "lsp_definition", at.clone());
        assert!(text(&answer).contains("app.py:4:5"), "{answer}");
    }
    // Each session holds each daemon it used (taken after its call, in the background).
    let leases = |service: &str| {
        let status = env.run(&["-s", service, "status", "--json"]);
        serde_json::from_slice::<Value>(&status.stdout).map_or(Value::Null, |s| s["leases"].clone())
    };
    for service in ["search", "lsp-pylsp"] {
        assert!(
            wait_until(Duration::from_secs(10), || leases(service) == 2),
            "{service}: {} leases",
            leases(service)
        );
    }
    // ... and nothing of another project's: its daemon ran before those calls, so the
    // lease passes that took the pylsp daemon saw it too.
    assert_eq!(
        other_leases(),
        0,
        "a session leased another project's daemon"
    );
    assert!(in_other(&["-s", "echo", "stop"]).status.success());
    assert!(
        wait_until(Duration::from_secs(10), || env.daemon_pids().len() == 2),
        "one search and one pylsp daemon: {:?}",
        env.daemon_pids()
    );

    // kill -9 of one session: the other goes on.
    drop(first);
    std::fs::write(env.project.join("app.py"), APP.replace("greet", "hello")).expect("edit");
    let answer = second.call(2, "search", json!({ "pattern": "def hello" }));
    assert_eq!(text(&answer), "app.py:4:def hello(name):", "{answer}");
    let answer = second.call(3, "lsp_definition", at.clone());
    assert!(text(&answer).contains("app.py:4:5"), "{answer}");
    // A daemon restarted under a session is held again after the session's next call.
    env.ok(&["-s", "search", "restart", "--ttl", "1"]);
    let answer = second.call(4, "search", json!({ "pattern": "def hello" }));
    assert!(text(&answer).contains("app.py:4"), "{answer}");
    assert!(
        wait_until(Duration::from_secs(10), || leases("search") == 1),
        "the restarted search daemon is not held: {} leases",
        leases("search")
    );
    let mut daemons = env.daemon_pids();
    daemons.sort_unstable();

    // A witness with a longer TTL, started after the session's last call and held by
    // nobody: once it has idled out, unheld daemons would have been gone for 2 s.
    env.ok(&["-s", "echo", "start"]);
    let echo = env
        .daemon_pids()
        .into_iter()
        .find(|pid| !daemons.contains(pid))
        .expect("the echo daemon");
    assert!(
        wait_until(Duration::from_secs(30), || !env
            .daemon_pids()
            .contains(&echo)),
        "the witness never idled out"
    );
    let running: Vec<Value> = serde_json::from_str(&env.ok(&["list", "--json"])).expect("list");
    let mut held: Vec<u32> = running
        .iter()
        .filter(|d| d["state"] == "running")
        .filter_map(|d| d["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect();
    held.sort_unstable();
    assert_eq!(
        held, daemons,
        "held daemons idled out under a session: {running:?}"
    );

    second.close();
    assert!(
        wait_until(Duration::from_secs(30), || env.daemon_pids().is_empty()),
        "daemons left after the last session: {:?}",
        env.daemon_pids()
    );
}
