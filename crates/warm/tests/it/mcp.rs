//! `warm mcp` driven by the official Python MCP SDK (`mcp` on PyPI, installed by
//! `scripts/setup-tests`), as a coding agent drives it: tools listed, every tool called on a
//! small Python project with python-lsp-server, search compared with the reference ripgrep,
//! diagnostics seen to follow edits on disk, bad calls answered as errors while the server
//! keeps serving, and several sessions sharing one set of daemons.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support::{
    pylsp_bin, python, reference_rg, require_python_modules, run_concurrently, stderr_of, TestEnv,
};

const APP: &str = "import os\n\n\ndef greet(name):\n    return \"hello \" + name\n\n\ndef main():\n    return greet(\"world\")\n";
const UTIL: &str =
    "from app import greet\n\n\ndef twice():\n    return greet(\"a\") + greet(\"b\")\n";

struct Agent {
    env: TestEnv,
    bin: PathBuf,
}

impl Agent {
    fn new() -> Agent {
        require_python_modules(&["mcp", "pylsp"], "pip install mcp python-lsp-server");
        let env = TestEnv::new();
        std::fs::write(env.project.join("app.py"), APP).expect("app.py");
        std::fs::write(env.project.join("util.py"), UTIL).expect("util.py");
        let bin = pylsp_bin(&env);
        Agent { env, bin }
    }

    /// An MCP session of the Python SDK client (`workers/mcp_client.py`) running `steps`.
    fn session(&self, steps: &Value) -> Command {
        self.client(&python(), "mcp_client.py", steps)
    }

    /// `PROGRAM workers/SCRIPT WARM ROOT STEPS`, in the environment `warm` commands get in
    /// these tests, with the pylsp wrapper on PATH.
    fn client(&self, program: &str, script: &str, steps: &Value) -> Command {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/workers")
            .join(script);
        let reference = self.env.warm();
        let mut command = Command::new(program);
        for (key, value) in reference.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .env("PATH", path)
            .current_dir(&self.env.project)
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_warm"))
            .arg(&self.env.project)
            .arg(steps.to_string());
        command
    }

    fn run(&self, steps: Value) -> Value {
        let output = self.session(&steps).output().expect("run the MCP client");
        parse(&output)
    }
}

fn parse(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "MCP client failed: {}",
        stderr_of(output)
    );
    serde_json::from_slice(&output.stdout).expect("MCP client JSON")
}

fn text(call: &Value) -> &str {
    call["text"].as_str().unwrap_or_default()
}

#[test]
fn an_agent_gets_ripgreps_matches_and_the_language_servers_answers_through_the_python_sdk() {
    let agent = Agent::new();
    std::fs::write(agent.env.tmp.path().join("outside.py"), "x = 1\n").expect("outside.py");
    let at = json!({ "file": "app.py", "line": 9, "column": 12 });
    let out = agent.run(json!([
        ["call", "search", { "pattern": "greet" }],
        ["call", "search", { "pattern": "greet", "max_lines": 2 }],
        ["call", "lsp_definition", at],
        ["call", "lsp_references", at],
        ["call", "lsp_hover", at],
        ["call", "lsp_symbols", { "file": "app.py" }],
        ["call", "lsp_diagnostics", { "files": ["app.py", "util.py"] }],
        ["write", "app.py", APP.replace("greet(\"world\")", "greet(nope)")],
        ["call", "lsp_diagnostics", { "files": ["app.py"] }],
        ["write", "app.py", APP],
        ["call", "lsp_diagnostics", { "files": ["app.py"] }],
        ["call", "lsp_rename", { "file": "app.py", "line": 4, "column": 5, "new_name": "welcome" }],
        ["raw", "no_such_tool", {}],
        ["raw", "lsp_hover", { "file": 3, "line": "x" }],
        ["call", "search", { "pattern": "(unclosed" }],
        ["call", "lsp_definition", { "file": "../outside.py", "line": 1, "column": 1 }],
        ["call", "search", { "pattern": "def twice" }],
    ]));
    assert_eq!(
        out["tools"],
        json!([
            "lsp_definition",
            "lsp_diagnostics",
            "lsp_hover",
            "lsp_references",
            "lsp_rename",
            "lsp_symbols",
            "lsp_workspace_symbols",
            "search"
        ])
    );
    assert_eq!(
        out["schemas"]["search"]["required"],
        json!(["pattern"]),
        "{}",
        out["schemas"]["search"]
    );
    let calls = out["calls"].as_array().expect("calls");

    // search: ripgrep's matches, all of them, as ripgrep prints them.
    let rg = Command::new(reference_rg())
        .args([
            "--line-number",
            "--no-heading",
            "--with-filename",
            "--color",
            "never",
            "greet",
        ])
        .current_dir(&agent.env.project)
        .output()
        .expect("run rg");
    let mut expected: Vec<&str> = std::str::from_utf8(&rg.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    let mut got: Vec<&str> = text(&calls[0]).lines().collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected, "search vs rg");
    assert!(!calls[0]["error"].as_bool().unwrap_or(true));
    // Capped, with how many there are and how to page on.
    assert!(
        text(&calls[1]).contains("of 4; call again with offset=2"),
        "{}",
        text(&calls[1])
    );

    assert!(
        text(&calls[2]).contains("app.py:4:5"),
        "definition: {}",
        text(&calls[2])
    );
    let references = text(&calls[3]);
    assert!(
        references.contains("app.py:4:5") && references.contains("util.py:5:12"),
        "references: {references}"
    );
    assert!(
        text(&calls[4]).contains("greet"),
        "hover: {}",
        text(&calls[4])
    );
    assert!(
        text(&calls[5]).contains("greet"),
        "symbols: {}",
        text(&calls[5])
    );
    // Diagnostics follow the file on disk: clean, then the bad edit, then the fix.
    assert!(
        !text(&calls[6]).contains("undefined name"),
        "{}",
        text(&calls[6])
    );
    assert!(
        text(&calls[7]).contains("undefined name 'nope'"),
        "{}",
        text(&calls[7])
    );
    assert!(
        !text(&calls[8]).contains("undefined name"),
        "{}",
        text(&calls[8])
    );
    // Rename without apply: a diff, and nothing written.
    assert!(
        text(&calls[9]).contains("+def welcome(name):"),
        "{}",
        text(&calls[9])
    );
    assert_eq!(
        std::fs::read_to_string(agent.env.project.join("app.py")).expect("app.py"),
        APP
    );

    // Bad calls: each an error, in the CLI's words where the CLI has them.
    assert_eq!(calls[10]["error"], true, "unknown tool: {}", calls[10]);
    assert_eq!(
        calls[11]["error"], true,
        "wrong argument types: {}",
        calls[11]
    );
    assert_eq!(calls[12]["error"], true, "bad pattern: {}", calls[12]);
    assert!(
        text(&calls[12]).contains("regex parse error"),
        "{}",
        text(&calls[12])
    );
    assert_eq!(calls[13]["error"], true, "outside file: {}", calls[13]);
    assert!(
        text(&calls[13]).contains("outside the project"),
        "{}",
        text(&calls[13])
    );
    // ... and the server kept serving.
    assert_eq!(text(&calls[14]), "util.py:4:def twice():");
}

#[test]
fn four_agent_sessions_share_one_search_daemon_and_one_language_server() {
    let agent = Agent::new();
    let steps = json!([
        ["call", "search", { "pattern": "def " }],
        ["call", "lsp_definition", { "file": "app.py", "line": 9, "column": 12 }],
    ]);
    let outputs = run_concurrently(4, || agent.session(&steps));
    for output in &outputs {
        let out = parse(output);
        assert!(text(&out["calls"][0]).contains("app.py:4:def greet(name):"));
        assert!(text(&out["calls"][1]).contains("app.py:4:5"));
    }
    // One search daemon and one language-server daemon for the four sessions.
    assert_eq!(
        agent.env.daemon_pids().len(),
        2,
        "daemons: {:?}",
        agent.env.daemon_pids()
    );
    assert_eq!(
        agent.env.spawn_count("lsp-pylsp"),
        1,
        "one language-server daemon"
    );
    let servers = agent
        .env
        .events("lsp-pylsp")
        .iter()
        .filter(|e| e["event"] == "worker.spawn")
        .count();
    assert_eq!(servers, 1, "one language server process");
}

/// The same tools through the official TypeScript SDK (`@modelcontextprotocol/sdk`).
#[test]
fn an_agent_on_the_typescript_sdk_gets_the_same_answers() {
    let agent = Agent::new();
    let npm_root = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .expect("npm root -g");
    let node_path = String::from_utf8_lossy(&npm_root.stdout).trim().to_owned();
    let session = |steps: Value| -> Value {
        let output = agent
            .client("node", "mcp_client.cjs", &steps)
            .env("NODE_PATH", &node_path)
            .output()
            .expect("run the TypeScript MCP client");
        parse(&output)
    };
    let first = session(json!([
        ["call", "search", { "pattern": "def greet" }],
        ["call", "lsp_definition", { "file": "app.py", "line": 9, "column": 12 }],
        ["call", "lsp_diagnostics", { "files": ["app.py"] }],
    ]));
    assert_eq!(
        first["tools"].as_array().map(Vec::len),
        Some(8),
        "{}",
        first["tools"]
    );
    let calls = &first["calls"];
    assert_eq!(text(&calls[0]), "app.py:4:def greet(name):");
    assert!(
        text(&calls[1]).contains("app.py:4:5"),
        "{}",
        text(&calls[1])
    );
    assert!(
        !text(&calls[2]).contains("undefined name"),
        "{}",
        text(&calls[2])
    );
    // A bad edit on disk, seen by the next session at once.
    std::fs::write(
        agent.env.project.join("app.py"),
        APP.replace("greet(\"world\")", "greet(nope)"),
    )
    .expect("edit app.py");
    let second = session(json!([["call", "lsp_diagnostics", { "files": ["app.py"] }]]));
    assert!(
        text(&second["calls"][0]).contains("undefined name 'nope'"),
        "{}",
        second["calls"][0]
    );
}

/// Hostile input on the MCP stdio: each bad line answered with an error, and the session
/// goes on serving.
#[test]
fn bad_input_on_the_mcp_stdio_is_answered_and_the_session_goes_on() {
    use std::io::{BufRead, BufReader, Write};
    let agent = Agent::new();
    let mut server = agent
        .env
        .warm()
        .arg("mcp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn warm mcp");
    let mut input = server.stdin.take().expect("stdin");
    let mut output = BufReader::new(server.stdout.take().expect("stdout"));
    // Writes a line; when `answered`, reads the one-line answer.
    let mut exchange = |line: &[u8], answered: bool| -> Value {
        input.write_all(line).expect("write");
        input.write_all(b"\n").expect("write");
        input.flush().expect("flush");
        if !answered {
            return Value::Null;
        }
        let mut answer = String::new();
        output.read_line(&mut answer).expect("read an answer");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": { "name": "hostile", "version": "1" } } });
    assert!(exchange(init.to_string().as_bytes(), true)["result"]["serverInfo"]["name"] == "warm");
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    exchange(initialized.to_string().as_bytes(), false);
    let mut ask = |line: &[u8]| exchange(line, true);

    let answer = ask(b"{this is not json");
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    let answer = ask(&vec![b'x'; 5 << 20]);
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    let call = |id: u64, name: &str, arguments: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": { "name": name, "arguments": arguments } })
        .to_string()
    };
    let answer = ask(call(2, "search", json!({ "pattern": "x".repeat(1 << 20) })).as_bytes());
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer.to_string().contains("too long"), "{answer}");
    let answer = ask(call(3, "search", json!({ "pattern": 3 })).as_bytes());
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let answer = ask(call(4, "no_such_tool", json!({})).as_bytes());
    assert!(
        answer.get("error").is_some() || answer["result"]["isError"] == true,
        "{answer}"
    );
    let answer = ask(call(5, "search", json!({ "pattern": "def twice" })).as_bytes());
    assert_eq!(
        answer["result"]["content"][0]["text"], "util.py:4:def twice():",
        "{answer}"
    );
    drop(input);
    let status = server.wait().expect("warm mcp exits when stdin closes");
    assert!(status.success(), "{status}");
}
