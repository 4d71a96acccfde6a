//! `warm mcp` driven by the official Python MCP SDK (`mcp` on PyPI, installed by
//! `scripts/setup-tests`), as a coding agent drives it: tools listed, every tool called on a
//! small Python project with python-lsp-server, search compared with the reference ripgrep,
//! diagnostics seen to follow edits on disk, bad calls answered as errors while the server
//! keeps serving, and several sessions sharing one set of daemons.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support::{
    pylsp_bin, python, reference_rg, require_python_modules, run_concurrently, stderr_of, TestEnv,
};

pub const APP: &str = "import os\n\n\ndef greet(name):\n    return \"hello \" + name\n\n\ndef main():\n    return greet(\"world\")\n";
const UTIL: &str =
    "from app import greet\n\n\ndef twice():\n    return greet(\"a\") + greet(\"b\")\n";

pub struct Agent {
    pub env: TestEnv,
    bin: PathBuf,
}

impl Agent {
    pub fn new() -> Agent {
        require_python_modules(&["mcp", "pylsp"], "pip install mcp python-lsp-server");
        let env = TestEnv::new();
        std::fs::write(env.project.join("app.py"), APP).expect("app.py");
        std::fs::write(env.project.join("util.py"), UTIL).expect("util.py");
        let bin = pylsp_bin(&env);
        Agent { env, bin }
    }

    /// `warm mcp` itself, in the environment the SDK clients give it (for raw stdio tests).
    pub fn warm_mcp(&self) -> Command {
        let mut command = self.env.warm();
        command.env("PATH", self.path()).arg("mcp");
        command
    }

    /// PATH with the pylsp wrapper first.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// An MCP session of the Python SDK client (`workers/mcp_client.py`) running `steps`.
    fn session(&self, steps: &Value) -> Command {
        self.client(&python(), "mcp_client.py", steps)
    }

    /// `PROGRAM workers/SCRIPT WARM ROOT STEPS` with the project as ROOT (see `client_in`).
    fn client(&self, program: &str, script: &str, steps: &Value) -> Command {
        self.client_in(&self.env.project, program, script, steps)
    }

    /// `PROGRAM workers/SCRIPT WARM DIR STEPS` (`warm mcp` runs in DIR), in the environment
    /// `warm` commands get in these tests, with the pylsp wrapper on PATH.
    fn client_in(&self, dir: &Path, program: &str, script: &str, steps: &Value) -> Command {
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
        command
            .env("PATH", self.path())
            .current_dir(dir)
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_warm"))
            .arg(dir)
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

/// A `.warm.toml` whose `team` service (the test echo worker) declares three tools.
pub fn write_team_tools(env: &TestEnv) {
    let worker = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/workers/echo_worker.py");
    env.write_config(&format!(
        r#"[services.team]
command = [{python:?}, {worker:?}]
# A cancelled call's worker sleeps on (this worker reads no cancellation): the next call
# takes the other.
workers = 2

[services.team.tools.echo_back]
description = "Answers its arguments."
method = "echo"
input_schema = {{ type = "object", properties = {{ word = {{ type = "string" }} }}, required = ["word"] }}

[services.team.tools.nap]
description = "Sleeps ms milliseconds."
method = "slow"

[services.team.tools.missing]
description = "A method the worker does not have."
"#,
        python = python(),
        worker = worker.display().to_string(),
    ));
}

#[test]
fn a_workers_method_declared_in_warm_toml_is_an_agent_tool_once_the_file_is_trusted() {
    let agent = Agent::new();
    write_team_tools(&agent.env);
    let out = agent.run(json!([
        ["call", "echo_back", { "word": "hi" }],
        ["progress", "nap", { "ms": 2500, "steps": 1 }],
        ["call", "missing", {}],
        ["call", "search", { "pattern": "def twice" }],
        ["progress", "echo_back", { "word": "quick" }],
    ]));
    let tools = out["tools"].as_array().map(Vec::len);
    assert_eq!(
        tools,
        Some(11),
        "8 built-in and 3 declared: {}",
        out["tools"]
    );
    assert_eq!(out["schemas"]["echo_back"]["required"], json!(["word"]));
    assert_eq!(out["schemas"]["nap"], json!({ "type": "object" }));
    let calls = &out["calls"];
    let echoed: Value = serde_json::from_str(text(&calls[0])).expect("the result as JSON");
    assert_eq!(echoed, json!({ "word": "hi" }));
    assert_eq!(calls[1]["error"], false, "{}", calls[1]);
    let slept: Value = serde_json::from_str(text(&calls[1])).expect("the result as JSON");
    assert_eq!(slept, json!({ "slept_ms": 2500 }));
    let heard = calls[1]["progress"].as_array().cloned().unwrap_or_default();
    let heard: Vec<&str> = heard.iter().filter_map(Value::as_str).collect();
    assert!(
        heard
            .iter()
            .any(|m| m.contains("waiting for team to answer slow (")),
        "the elapsed time while the worker says nothing: {heard:?}"
    );
    assert_eq!(
        heard.last(),
        Some(&"[1/1] step 1"),
        "the worker's own progress"
    );
    assert_eq!(calls[2]["error"], true, "{}", calls[2]);
    assert!(
        text(&calls[2]).contains("no method missing"),
        "{}",
        calls[2]
    );
    assert_eq!(text(&calls[3]), "util.py:4:def twice():");
    // A call answered within the second hears no progress: no noise for quick calls.
    assert_eq!(calls[4]["progress"], json!([]), "{}", calls[4]);

    // Not trusted: the tools are not offered (their descriptions reach the model), and the
    // session says why on stderr.
    let mut untrusted = agent.session(&json!([]));
    let output = untrusted
        .env_remove("WARM_TRUST_ALL")
        .output()
        .expect("run the MCP client");
    let out = parse(&output);
    assert_eq!(
        out["tools"].as_array().map(Vec::len),
        Some(8),
        "{}",
        out["tools"]
    );
    assert!(
        stderr_of(&output).contains("is not trusted, so they are not offered"),
        "{}",
        stderr_of(&output)
    );
}

/// The configuration `warm init --mcp` prints, used as an agent would: from a working
/// directory outside the project, the session serves the project it names.
#[test]
fn the_configuration_warm_init_prints_starts_a_session_on_its_project() {
    let agent = Agent::new();
    let printed: Value = serde_json::from_str(&agent.env.ok(&["init", "--mcp"])).expect("JSON");
    let server = &printed["mcpServers"]["warm"];
    let command = server["command"].as_str().expect("command");
    assert_eq!(
        std::fs::canonicalize(command).ok(),
        std::fs::canonicalize(env!("CARGO_BIN_EXE_warm")).ok()
    );
    let elsewhere = agent.env.tmp.path();
    let steps = json!([["call", "search", { "pattern": "def twice" }]]);
    let output = agent
        .client_in(elsewhere, &python(), "mcp_client.py", &steps)
        .arg(server["args"].to_string())
        .output()
        .expect("run the MCP client");
    let out = parse(&output);
    assert_eq!(text(&out["calls"][0]), "util.py:4:def twice():");
    assert!(
        !agent.env.project.join(".warm.toml").exists(),
        "init --mcp wrote nothing"
    );
}
