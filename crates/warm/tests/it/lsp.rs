//! `warm lsp` against a real language server (python-lsp-server, installed by `.ci/run`).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    assert_exit, json_stdout, kill, pylsp_bin, python, require_python_modules, run_concurrently,
    stderr_of, stdout_if_exited, stdout_of, wait_until, TestEnv,
};

const APP: &str = r#"import os


def greet(name: str) -> str:
    """Say hello to someone."""
    return "hello " + name


class Greeter:
    def hello(self):
        return greet("world")


s = "é😀"; value = greet(s)
t = "é"; other = greet(t)
"#;

/// A Python project, with `pylsp` on `PATH` as a built-in server would be found.
struct Project {
    env: TestEnv,
    bin: PathBuf,
}

impl Project {
    fn new() -> Project {
        require_python_modules(
            &["pylsp", "pyflakes", "autopep8", "pylsp_workspace_symbols"],
            "pip install 'python-lsp-server[pyflakes,autopep8]' pylsp-workspace-symbols",
        );
        let env = TestEnv::new();
        let bin = pylsp_bin(&env);
        std::fs::create_dir(env.project.join(".git")).expect(".git");
        std::fs::write(env.project.join("app.py"), APP).expect("app.py");
        Project { env, bin }
    }

    fn command(&self, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = self.env.warm();
        command.env("PATH", path).arg("lsp").args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run warm lsp")
    }

    /// Runs `warm lsp ARGS`, asserts exit code `code`, returns stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        stdout_if_exited(&self.run(args), code, &format!("warm lsp {args:?}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        json_stdout(&self.run(&args), &format!("warm lsp {args:?}"))
    }

    /// The server's own answer to `method` at a 0-based LSP position of app.py.
    fn raw_at(&self, method: &str, line: u32, character: u32, extra: Value) -> Value {
        let mut params = json!({
            "textDocument": { "uri": format!("file://{}/app.py", self.env.project.display()) },
            "position": { "line": line, "character": character },
        });
        if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
            params.extend(extra.clone());
        }
        self.json(&["raw", method, &params.to_string()])
    }

    /// Declares the fake language server (tests/it/workers/fake_lsp.py) for `*.txt` files,
    /// with `extra` lines in its table.
    fn use_fake_server(&self, extra: &str) {
        let server = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/workers/fake_lsp.py");
        self.env.write_config(&format!(
            "[services.fake]\ncommand = [\"{}\", \"{}\"]\nframing = \"lsp\"\nfiles = [\"*.txt\"]\n{extra}\n",
            python(),
            server.display()
        ));
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.env.project.join(name), text).expect("write source");
    }

    /// Pids of running language servers of this test.
    fn servers(&self) -> Vec<u32> {
        let pids = self.env.all_pids();
        pids.into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("-m\0pylsp"))
            })
            .collect()
    }
}

/// The pyflakes lines of `warm lsp diagnostics` output (pycodestyle, which comes with the
/// autopep8 formatter, adds style warnings these tests do not care about).
fn pyflakes(output: &str) -> String {
    output
        .lines()
        .filter(|l| l.contains("[pyflakes"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// 1-based column of the first `needle` in line `line` (1-based) of APP, in characters.
fn column(line: usize, needle: &str) -> usize {
    let text = APP.lines().nth(line - 1).expect("line");
    let byte = text.find(needle).expect("needle");
    text[..byte].chars().count() + 1
}

#[test]
fn queries_answer_what_the_server_answers_an_editor() {
    let project = Project::new();
    // After `é😀`: 1 + 2 UTF-16 units for 2 characters.
    let at_greet = format!("app.py:14:{}", column(14, "greet(s)"));
    assert_eq!(column(14, "greet(s)"), 19);
    let hover = project.expect(0, &["hover", &at_greet]);
    assert_eq!(
        hover.trim(),
        "greet(name: str) -> str\n\nSay hello to someone."
    );
    assert_eq!(
        project.json(&["hover", &at_greet]),
        project.raw_at("textDocument/hover", 13, 20, json!({}))
    );

    let definition = project.expect(0, &["definition", &at_greet]);
    assert_eq!(definition, "app.py:4:5: def greet(name: str) -> str:\n");
    assert_eq!(
        project.json(&["definition", &at_greet]),
        project.raw_at("textDocument/definition", 13, 20, json!({}))
    );

    let references = project.expect(0, &["references", "app.py:4:5"]);
    let expected_other = format!("app.py:15:{}:", column(15, "greet(t)"));
    let lines: Vec<&str> = references.lines().collect();
    assert_eq!(lines.len(), 4, "{references}");
    assert!(
        lines[0].starts_with("app.py:4:5: def greet"),
        "{references}"
    );
    assert!(lines[1].starts_with("app.py:11:16:"), "{references}");
    assert!(lines[3].starts_with(&expected_other), "{references}");
    assert_eq!(
        project.json(&["references", "app.py:4:5"]),
        project.raw_at(
            "textDocument/references",
            3,
            4,
            json!({ "context": { "includeDeclaration": true } })
        )
    );

    let symbols = project.expect(0, &["symbols", "app.py"]);
    assert!(
        symbols.contains("app.py:4:1: function greet\n"),
        "{symbols}"
    );
    assert!(
        symbols.contains("app.py:10:5: method Greeter.hello\n"),
        "{symbols}"
    );

    let workspace = project.expect(0, &["workspace-symbols", "Greeter", "--language", "python"]);
    assert_eq!(workspace, "app.py:9:7: class app.Greeter\n");

    let diagnostics = project.expect(0, &["diagnostics", "app.py"]);
    assert_eq!(
        pyflakes(&diagnostics),
        "app.py:1:1: warning: 'os' imported but unused [pyflakes]\n"
    );
    assert_eq!(project.servers().len(), 1, "one server for all queries");
}

#[test]
fn edits_on_disk_are_seen_by_the_next_query() {
    let project = Project::new();
    project.write("lib.py", "def helper():\n    return 1\n");
    assert_eq!(pyflakes(&project.expect(0, &["diagnostics", "lib.py"])), "");

    project.write("lib.py", "def helper():\n    return missing\n");
    let diagnostics = project.expect(1, &["diagnostics", "lib.py"]);
    assert_eq!(
        pyflakes(&diagnostics),
        "lib.py:2:12: error: undefined name 'missing' [pyflakes]\n"
    );

    project.write(
        "lib.py",
        "\n\n\ndef helper():\n    return 1\n\nx = helper()\n",
    );
    assert_eq!(pyflakes(&project.expect(0, &["diagnostics", "lib.py"])), "");
    assert_eq!(
        project.expect(0, &["definition", "lib.py:7:5"]),
        "lib.py:4:5: def helper():\n"
    );

    // Rename across the file; --apply writes it.
    let diff = project.expect(0, &["rename", "lib.py:4:5", "assist"]);
    assert!(diff.contains("-def helper():\n+def assist():"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(project.env.project.join("lib.py")).expect("lib.py"),
        "\n\n\ndef helper():\n    return 1\n\nx = helper()\n",
        "without --apply nothing is written"
    );
    project.expect(0, &["rename", "lib.py:4:5", "assist", "--apply"]);
    assert_eq!(
        std::fs::read_to_string(project.env.project.join("lib.py")).expect("lib.py"),
        "\n\n\ndef assist():\n    return 1\n\nx = assist()\n"
    );
    assert_eq!(
        project.expect(0, &["definition", "lib.py:7:5"]),
        "lib.py:4:5: def assist():\n"
    );
}

/// A server answers from every document it has open, not only the one a query names: before
/// each query, every open document whose file changed is synced, and one whose file is gone
/// is closed (issue 17's stale definitions after editing another file).
#[test]
fn every_open_document_is_brought_up_to_date_before_a_query() {
    let project = Project::new();
    project.use_fake_server("");
    project.write("notes.txt", "notes\n");
    project.write("other.txt", "other\n");
    let other = format!("file://{}/other.txt", project.env.project.display());
    let notes = format!("file://{}/notes.txt", project.env.project.display());
    let seen = || project.json(&["raw", "test/seen"]);
    project.expect(0, &["hover", "other.txt:1:1"]);
    project.expect(0, &["hover", "notes.txt:1:1"]);

    // Edited on disk; the next query names only notes.txt.
    project.write("other.txt", "other, edited\n");
    project.expect(0, &["hover", "notes.txt:1:1"]);
    let after = seen();
    assert_eq!(
        after["open_at_last_hover"],
        json!({ &other: "other, edited\n", &notes: "notes\n" }),
        "{after}"
    );
    assert_eq!(after["changed"], json!([[other, 2]]));

    // Deleted: closed before the next query.
    std::fs::remove_file(project.env.project.join("other.txt")).expect("rm other.txt");
    project.expect(0, &["hover", "notes.txt:1:1"]);
    let after = seen();
    assert_eq!(
        after["open_at_last_hover"],
        json!({ &notes: "notes\n" }),
        "{after}"
    );
    assert_eq!(after["closed"], json!([other]));
}

#[test]
fn twenty_cold_hovers_share_one_daemon_and_one_server() {
    let project = Project::new();
    for output in run_concurrently(20, || project.command(&["hover", "app.py:11:17"])) {
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert_eq!(
            stdout_of(&output),
            "greet(name: str) -> str\n\nSay hello to someone.\n"
        );
    }
    project.env.only_daemon();
    assert_eq!(project.servers().len(), 1, "one language server");
    assert_eq!(
        project.env.spawn_count("lsp-pylsp"),
        1,
        "one daemon ever spawned"
    );
    let servers_started = project
        .env
        .events("lsp-pylsp")
        .iter()
        .filter(|e| e["event"] == "worker.spawn")
        .count();
    assert_eq!(servers_started, 1, "one language server ever started");
}

#[test]
fn a_killed_server_is_replaced_and_the_query_answered_again() {
    let project = Project::new();
    let first = project.expect(0, &["definition", "app.py:11:17"]);
    let servers = project.servers();
    assert_eq!(servers.len(), 1);
    kill(servers[0], "KILL");
    assert!(wait_until(Duration::from_secs(10), || {
        !project.servers().contains(&servers[0])
    }));
    assert_eq!(project.expect(0, &["definition", "app.py:11:17"]), first);
    let events = project.env.events("lsp-pylsp");
    let exit = events
        .iter()
        .find(|e| e["event"] == "worker.exit" && e["pid"] == servers[0])
        .unwrap_or_else(|| panic!("no worker.exit event for the killed server: {events:?}"));
    assert_eq!(exit["signal"], 9);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "worker.restart" && e["previous_pid"] == servers[0]),
        "no worker.restart event: {events:?}"
    );
}

#[test]
fn a_configured_server_is_used_for_its_languages() {
    let project = Project::new();
    project.env.write_config(&format!(
        "[services.py]\ncommand = [\"{}\", \"-m\", \"pylsp\"]\nframing = \"lsp\"\nlanguages = [\"python\"]\n",
        python()
    ));
    let hover = project.expect(0, &["hover", "app.py:11:17"]);
    assert!(hover.starts_with("greet(name: str)"), "{hover}");
    assert_eq!(project.env.json(&["-s", "py", "status"])["service"], "py");
    let servers = project.expect(0, &["servers"]);
    assert!(
        servers.lines().next().is_some_and(|l| l.starts_with("py ")),
        "{servers}"
    );
}

#[test]
fn missing_servers_bad_locations_and_outside_files_are_clear_errors() {
    let project = Project::new();
    // A PATH of one empty directory: no language server, whatever this machine has installed.
    let empty_path = project.env.tmp.path().join("empty-bin");
    std::fs::create_dir(&empty_path).expect("empty bin dir");
    let output = project
        .env
        .warm()
        .env("PATH", &empty_path)
        .args(["lsp", "hover", "app.py:1:1"])
        .output()
        .expect("run");
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("no language server for python is installed")
            && stderr.contains("pylsp, basedpyright-langserver, pyright-langserver")
            && stderr.contains("pip install python-lsp-server"),
        "{stderr}"
    );
    assert!(project.env.daemon_pids().is_empty());
    // Named with -s: the same hint, and no daemon started to idle without its server.
    let output = project
        .env
        .warm()
        .env("PATH", &empty_path)
        .args(["lsp", "-s", "lsp-pyright", "hover", "app.py:1:1"])
        .output()
        .expect("run");
    assert_exit(&output, 2, "pyright-langserver is not installed");
    assert_exit(&output, 2, "npm install -g pyright");
    // A configured server whose command is not found: the same.
    project.env.write_config(
        "[services.ghost]\ncommand = [\"ghost-language-server\"]\nframing = \"lsp\"\nlanguages = [\"python\"]\n",
    );
    for args in [
        &["lsp", "-s", "ghost", "hover", "app.py:1:1"][..],
        &["lsp", "hover", "app.py:1:1"][..],
    ] {
        let output = project.env.warm().args(args).output().expect("run");
        assert_exit(
            &output,
            2,
            "\"ghost-language-server\" (.warm.toml) is not found on PATH",
        );
    }
    assert!(
        project.env.daemon_pids().is_empty(),
        "no daemon left behind"
    );
    std::fs::remove_file(project.env.project.join(".warm.toml")).expect("remove config");

    let outside = project.env.tmp.path().join("outside.py");
    std::fs::write(&outside, "x = 1\n").expect("outside.py");
    let location = format!("{}:1:1", outside.display());
    let output = project.run(&["hover", &location]);
    assert_exit(&output, 2, "is outside the project root");

    for (location, message) in [
        ("app.py:0:1", "start at 1"),
        ("app.py:12", "is not a location"),
        ("nope.py:1:1", "cannot read nope.py"),
        // Checked by the daemon against the file's content: a usage error all the same.
        ("app.py:99:1", "line 99 is past the end"),
    ] {
        let output = project.run(&["hover", location]);
        assert_exit(&output, 2, message);
    }
}

#[test]
fn server_progress_is_shown_and_the_negotiated_encoding_is_used() {
    let project = Project::new();
    project.use_fake_server("");
    project.write("notes.txt", "é x\n");
    let output = project
        .command(&["hover", "notes.txt:1:3"])
        .env("WARM_PROGRESS", "1")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr_of(&output));
    // Column 3 follows `é `: 3 bytes in the UTF-8 the fake server chose.
    assert_eq!(stdout_of(&output), "fake hover at 0:3\n");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("[0/100] Indexing"), "{stderr}");
    assert!(stderr.contains("[75/100] Indexing: 3/4 files"), "{stderr}");
}

#[test]
fn format_prints_the_formatted_file() {
    let project = Project::new();
    project.write("ugly.py", "x=1\ndef f( a ):\n  return a\n");
    let formatted = project.expect(0, &["format", "ugly.py"]);
    assert_eq!(formatted, "x = 1\n\n\ndef f(a):\n    return a\n");
    assert_eq!(
        std::fs::read_to_string(project.env.project.join("ugly.py")).expect("ugly.py"),
        "x=1\ndef f( a ):\n  return a\n",
        "format only prints"
    );
}

#[test]
fn a_rename_that_edits_a_file_outside_the_project_writes_nothing() {
    let project = Project::new();
    let outside = project.env.tmp.path().join("outside.txt");
    std::fs::write(&outside, "outside\n").expect("outside.txt");
    project.use_fake_server(&format!(
        "env = {{ FAKE_RENAME_ALSO = \"{}\" }}",
        outside.display()
    ));
    project.write("notes.txt", "inside\n");
    let output = project.run(&["rename", "notes.txt:1:1", "renamed", "--apply"]);
    assert_exit(&output, 2, "outside the project root");
    assert!(
        stderr_of(&output).contains("outside.txt"),
        "{}",
        stderr_of(&output)
    );
    let read = |path: &std::path::Path| std::fs::read_to_string(path).expect("read");
    assert_eq!(read(&outside), "outside\n", "the outside file was written");
    assert_eq!(
        read(&project.env.project.join("notes.txt")),
        "inside\n",
        "all or nothing"
    );

    // Without the outside edit, --apply writes the file.
    project.use_fake_server("");
    let output = project.run(&["rename", "notes.txt:1:1", "renamed", "--apply"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        read(&project.env.project.join("notes.txt")),
        "renamedinside\n"
    );
}

/// The server gets a document's content once per change, in full, with versions that only go
/// up; an unchanged file sends nothing; a document no query used for the idle time is closed,
/// and opened again by the next query.
#[test]
fn documents_sync_only_changes_with_rising_versions_and_close_when_idle() {
    let project = Project::new();
    project.use_fake_server("");
    project.write("notes.txt", "one\n");
    project.write("other.txt", "other\n");
    let uri = format!("file://{}/notes.txt", project.env.project.display());
    let seen = || project.json(&["raw", "test/seen"]);
    project.expect(0, &["hover", "notes.txt:1:1"]);
    project.expect(0, &["hover", "notes.txt:1:1"]);
    assert_eq!(seen()["changed"], json!([]), "unchanged: nothing sent");
    project.write("notes.txt", "two\n");
    project.expect(0, &["hover", "notes.txt:1:1"]);
    project.write("notes.txt", "three\n");
    project.expect(0, &["hover", "notes.txt:1:1"]);
    project.expect(0, &["hover", "notes.txt:1:1"]);
    let after = seen();
    assert_eq!(after["changed"], json!([[uri, 2], [uri, 3]]), "{after}");
    assert_eq!(after["opened"], json!([uri]));
    assert_eq!(after["closed"], json!([]));
}

/// Diagnostics from a server that sends no version belong to the content synced before they
/// arrived: after an edit, the previous content's diagnostics are never the answer.
#[test]
fn unversioned_diagnostics_are_for_the_content_just_synced() {
    let project = Project::new();
    // Published 400 ms after each change, as a server that lints after a debounce: the list
    // of the previous content is there first, and must not be taken.
    project.use_fake_server("env = { FAKE_PUBLISH_DELAY_MS = \"400\" }");
    for round in ["first", "second", "third"] {
        project.write("notes.txt", &format!("{round} content\n"));
        let output = project.run(&["diagnostics", "notes.txt"]);
        assert!(output.status.success(), "{}", stderr_of(&output));
        let printed = stdout_of(&output);
        assert!(
            printed.contains(&format!("content: {round} content")),
            "{round}: {printed}"
        );
        // And known to be for this content, not the last ones after the wait ran out.
        let answer = project.json(&["diagnostics", "notes.txt"]);
        assert_eq!(answer[0]["complete"], true, "{round}: {answer}");
    }
}

#[test]
fn idle_documents_are_closed_and_opened_again_when_queried() {
    let project = Project::new();
    project.use_fake_server("");
    project.write("notes.txt", "one\n");
    project.write("other.txt", "other\n");
    let uri = format!("file://{}/notes.txt", project.env.project.display());
    let other = format!("file://{}/other.txt", project.env.project.display());
    let seen = || project.json(&["raw", "test/seen"]);
    // A daemon whose documents idle out after 1.5 s (it inherits the variable).
    let run = |args: &[&str]| {
        project
            .command(args)
            .env("WARM_LSP_TEST_IDLE_DOCUMENT_MS", "1500")
            .output()
            .expect("warm lsp")
    };
    assert!(run(&["hover", "notes.txt:1:1"]).status.success());
    assert!(run(&["hover", "other.txt:1:1"]).status.success());
    // Keep other.txt in use while notes.txt idles out.
    let closed = wait_until(Duration::from_secs(20), || {
        run(&["hover", "other.txt:1:1"]);
        seen()["closed"] == json!([uri])
    });
    assert!(closed, "notes.txt was not closed: {}", seen());
    assert!(run(&["hover", "notes.txt:1:1"]).status.success());
    let after = seen();
    assert_eq!(after["opened"], json!([uri, other, uri]), "{after}");
    // The daemon counts what it closed.
    let logs = project.env.run(&["-s", "fake", "logs"]);
    assert!(
        stdout_of(&logs).contains("closed idle documents closed=1"),
        "{}",
        stdout_of(&logs)
    );
}

#[test]
fn a_replaced_server_gets_every_document_opened_again() {
    let project = Project::new();
    project.use_fake_server("");
    project.write("notes.txt", "some notes\n");
    let uri = format!("file://{}/notes.txt", project.env.project.display());
    let seen = || project.json(&["raw", "test/seen"]);
    project.expect(0, &["hover", "notes.txt:1:1"]);
    let first = seen();
    assert_eq!(first["opened"], json!([uri]), "{first}");

    let pid = u32::try_from(first["pid"].as_u64().expect("pid")).expect("pid fits");
    kill(pid, "KILL");
    // The same file, unchanged: only the server process changed.
    let replaced = wait_until(Duration::from_secs(10), || {
        let output = project.run(&["hover", "notes.txt:1:1"]);
        output.status.success() && seen()["pid"] != first["pid"]
    });
    assert!(replaced, "the server was not replaced");
    let second = seen();
    assert_eq!(
        second["opened"],
        json!([uri]),
        "reopened in the new server: {second}"
    );
    assert_eq!(second["initialize_count"], 1);
}

#[test]
fn a_server_past_max_rss_is_replaced_and_no_query_fails() {
    let project = Project::new();
    project.use_fake_server("max_rss = \"64M\"\nenv = { FAKE_GROW_MIB = \"40\" }");
    project.write("notes.txt", "some notes\n");
    let uri = format!("file://{}/notes.txt", project.env.project.display());
    let seen = || project.json(&["raw", "test/seen"]);
    let first = seen()["pid"].clone();
    // Every hover makes the server hold 40 MiB more: past its cap after the second.
    let mut hovers = 0;
    let replaced = wait_until(Duration::from_secs(20), || {
        hovers += 1;
        assert_eq!(
            project.expect(0, &["hover", "notes.txt:1:1"]),
            "fake hover at 0:0\n"
        );
        seen()["pid"] != first
    });
    assert!(replaced, "still {first} after {hovers} hovers");
    assert!(hovers >= 2, "replaced after {hovers} hovers");
    // The new server is asked about the file it has never seen: it is opened there.
    assert_eq!(
        project.expect(0, &["hover", "notes.txt:1:1"]),
        "fake hover at 0:0\n"
    );
    let second = seen();
    assert_eq!(second["opened"], json!([uri]), "reopened: {second}");
    assert_eq!(second["initialize_count"], 1);
    let events = project.env.events("fake");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "worker.memory_exceeded" && e["pid"] == first),
        "{events:?}"
    );
    // Shut down as the LSP says (shutdown, then exit: code 0), not killed.
    assert!(wait_until(Duration::from_secs(10), || {
        project
            .env
            .events("fake")
            .iter()
            .any(|e| e["event"] == "worker.exit" && e["pid"] == first && e["code"] == 0)
    }));
}

#[test]
fn pylsp_replaced_for_memory_at_every_query_answers_every_query() {
    let project = Project::new();
    // Below what any server needs: each query leaves a server to replace.
    project
        .env
        .write_config("[services.lsp-pylsp]\nmax_rss = \"1M\"\n");
    let replaced = || {
        project
            .env
            .events("lsp-pylsp")
            .iter()
            .filter(|e| e["event"] == "worker.memory_exceeded")
            .count()
    };
    let first = project.expect(0, &["definition", "app.py:11:17"]);
    for queries in 1..=3 {
        // One replacement per query: a new server past its cap is replaced only once it has
        // answered a query (its handshake does not count).
        assert!(
            wait_until(Duration::from_secs(10), || replaced() == queries),
            "{} replaced after {queries} queries",
            replaced()
        );
        if queries < 3 {
            assert_eq!(project.expect(0, &["definition", "app.py:11:17"]), first);
        }
    }
    assert!(!wait_until(Duration::from_secs(3), || replaced() != 3));
}

#[test]
fn the_servers_table_lines_up_whatever_the_names() {
    let project = Project::new();
    project.use_fake_server("");
    let table = project.expect(0, &["servers"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines.len() > 2, "{table}");
    // Every column starts where it starts on every other line: columns are at least two
    // spaces apart, and the fourth (where the server is) is found the same way on each.
    let column_starts = |line: &str| -> Vec<usize> {
        let bytes = line.as_bytes();
        (0..bytes.len())
            .filter(|&i| bytes[i] != b' ' && (i == 0 || (i >= 2 && &bytes[i - 2..i] == b"  ")))
            .collect()
    };
    let starts: Vec<Vec<usize>> = lines.iter().map(|line| column_starts(line)).collect();
    assert!(
        starts
            .iter()
            .all(|s| s.len() >= 4 && s[..4] == starts[0][..4]),
        "{table}"
    );
    assert!(table.contains("lsp-typescript-language-server"), "{table}");
}
