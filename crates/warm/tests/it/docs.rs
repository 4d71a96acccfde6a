//! Every snippet in the docs runs, so none can drift from what warm does: the README, `docs/`
//! and the examples' READMEs.
//!
//! - `toml`: written as a project's `.warm.toml`, which warm must accept;
//! - `json`: must parse (one value, or one per line);
//! - `python`: must compile; one that reads `sys.stdin` is a worker, hosted by warm and called;
//! - `sh`: every `warm ...` command line must parse as warm's CLI takes it (run through `sh`
//!   with `--help` added before any `-- COMMAND`, so nothing is started). Lines of other
//!   programs (`cargo`, `printf | socat`) are not warm's to check.
//! - `text` blocks are sample output, not snippets.
//!
//! And the README's Quick start runs line by line, for real, in a project that has what its
//! lines name.

use std::path::{Path, PathBuf};

use crate::support::*;

struct Snippet {
    /// `docs/workers.md:25`, for messages.
    place: String,
    language: String,
    text: String,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn documents() -> Vec<PathBuf> {
    let root = workspace();
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "examples"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read docs dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "md") {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

/// The fenced blocks of a Markdown file (indented fences, as in lists, included).
fn snippets(path: &Path) -> Vec<Snippet> {
    let text = std::fs::read_to_string(path).expect("read markdown");
    let shown = path
        .strip_prefix(workspace())
        .unwrap_or(path)
        .display()
        .to_string();
    let mut found = Vec::new();
    let mut open: Option<(usize, String, usize, Vec<String>)> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(info)) => {
                let language = info.split_whitespace().next().unwrap_or("").to_owned();
                open = Some((number + 1, language, indent, Vec::new()));
            }
            (Some(_), Some("")) => {
                if let Some((start, language, _, lines)) = open.take() {
                    found.push(Snippet {
                        place: format!("{shown}:{start}"),
                        language,
                        text: lines.join("\n") + "\n",
                    });
                }
            }
            (Some((_, _, indent_of_fence, lines)), _) => {
                let cut = line.len().min(*indent_of_fence);
                lines.push(line[cut..].to_owned());
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{shown}: a code block is never closed");
    found
}

fn all_snippets() -> Vec<Snippet> {
    let snippets: Vec<Snippet> = documents().iter().flat_map(|d| snippets(d)).collect();
    assert!(
        snippets.len() >= 15,
        "found only {} snippets",
        snippets.len()
    );
    snippets
}

#[test]
fn every_toml_snippet_is_a_valid_warm_toml() {
    for snippet in all_snippets().iter().filter(|s| s.language == "toml") {
        let env = TestEnv::new();
        env.write_config(&snippet.text);
        let service = snippet
            .text
            .lines()
            .find_map(|l| l.trim().strip_prefix("[services.")?.strip_suffix(']'))
            .unwrap_or("default");
        // Loading the configuration is the first thing every command does; nothing runs yet.
        let output = env.run(&["-s", service, "status"]);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{}: warm refused the snippet:\n{}\n{}",
            snippet.place,
            snippet.text,
            stderr_of(&output)
        );
    }
}

#[test]
fn every_json_snippet_parses() {
    for snippet in all_snippets().iter().filter(|s| s.language == "json") {
        let whole = serde_json::from_str::<serde_json::Value>(&snippet.text);
        let lines = snippet
            .text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .try_for_each(|l| serde_json::from_str::<serde_json::Value>(l).map(drop));
        assert!(
            whole.is_ok() || lines.is_ok(),
            "{}: not JSON: {:?}\n{}",
            snippet.place,
            whole.err(),
            snippet.text
        );
    }
}

#[test]
fn every_python_snippet_compiles_and_worker_snippets_answer_through_warm() {
    let mut workers = 0;
    for snippet in all_snippets().iter().filter(|s| s.language == "python") {
        let env = TestEnv::new();
        let script = env.project.join("snippet.py");
        std::fs::write(&script, &snippet.text).expect("write snippet");
        let compiled = std::process::Command::new(python())
            .args(["-m", "py_compile"])
            .arg(&script)
            .output()
            .expect("py_compile");
        assert!(
            compiled.status.success(),
            "{}: {}",
            snippet.place,
            stderr_of(&compiled)
        );
        if !snippet.text.contains("sys.stdin") {
            continue;
        }
        workers += 1;
        env.write_config(&format!(
            "[services.doc]\ncommand = [{:?}, \"snippet.py\"]\n",
            python()
        ));
        let output = env.run(&["-s", "doc", "call", "anything", r#"{"from": "the docs"}"#]);
        assert!(
            output.status.success(),
            "{}: the worker snippet did not answer: {}",
            snippet.place,
            stderr_of(&output)
        );
    }
    assert!(
        workers > 0,
        "the worker snippet of docs/workers.md was not found"
    );
}

/// A `warm` command line with `--help` added where clap reads it: before `-- COMMAND`, else
/// at the end (after stripping a trailing comment).
fn with_help(line: &str) -> String {
    let command = match line.find("  #") {
        Some(comment) => line[..comment].trim_end(),
        None => line.trim_end(),
    };
    match command.find(" -- ") {
        Some(dashes) => format!("{} --help{}", &command[..dashes], &command[dashes..]),
        None => format!("{command} --help"),
    }
}

#[test]
fn every_warm_command_in_a_shell_snippet_parses() {
    let warm_dir = Path::new(WARM)
        .parent()
        .expect("warm's directory")
        .to_owned();
    let path = format!(
        "{}:{}",
        warm_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut checked = 0;
    for snippet in all_snippets().iter().filter(|s| s.language == "sh") {
        for line in snippet.text.lines().map(str::trim) {
            if !line.starts_with("warm ") {
                continue;
            }
            let env = TestEnv::new();
            let line = with_help(line);
            let output = std::process::Command::new("sh")
                .args(["-c", &line])
                .current_dir(&env.project)
                .env("PATH", &path)
                .env("WARM_RUNTIME_DIR", &env.runtime_dir)
                .output()
                .expect("run sh");
            assert!(
                output.status.success() && stdout_of(&output).contains("Usage:"),
                "{}: `{line}` is not a valid warm command line:\n{}",
                snippet.place,
                stderr_of(&output)
            );
            assert!(env.daemon_pids().is_empty(), "`{line}` started a daemon");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} warm command lines found");
}

#[test]
fn help_is_added_before_the_command_of_keepalive() {
    assert_eq!(
        with_help("warm keepalive -- make test           # hold"),
        "warm keepalive --help -- make test"
    );
    assert_eq!(with_help("warm status"), "warm status --help");
}

/// The README's Quick start, line by line, for real: in a project that has what the lines
/// name (a Makefile with a `test` target, a Python worker module `mytool.worker`, a Rust file
/// with `parse_config`, `src/app.py`), with pylsp on PATH. Every line must succeed, or (for
/// a query that finds nothing) exit 1; none may be a usage error or an unavailable daemon.
#[test]
fn the_readme_quick_start_runs_as_written() {
    crate::support::require_python_modules(&["pylsp"], "pip install python-lsp-server");
    let readme = workspace().join("README.md");
    let quick_start = snippets(&readme)
        .into_iter()
        .find(|s| s.language == "sh" && s.text.contains("warm call daemon/ping"))
        .expect("the Quick start block");
    let env = TestEnv::new();
    let p = &env.project;
    std::fs::create_dir_all(p.join("src")).expect("src");
    std::fs::create_dir_all(p.join("mytool")).expect("mytool");
    std::fs::write(p.join("Makefile"), "test:\n\t@true\n").expect("Makefile");
    std::fs::write(p.join("mytool/__init__.py"), "").expect("package");
    std::fs::write(
        p.join("mytool/worker.py"),
        "import json, sys\nfor line in sys.stdin:\n    m = json.loads(line)\n    if 'id' in m:\n        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': None}), flush=True)\n",
    )
    .expect("worker");
    std::fs::write(p.join("src/config.rs"), "fn parse_config() {}\n").expect("rust");
    let app: String = (1..=11)
        .map(|i| format!("x{i} = {i}\n"))
        .collect::<String>()
        + "print(x1)\n";
    std::fs::write(p.join("src/app.py"), app).expect("app.py");
    // python3 -m must find mytool in the project, and pylsp must be on PATH.
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    for (name, module) in [("pylsp", "pylsp"), ("python3", "")] {
        let script = if module.is_empty() {
            format!("#!/bin/sh\nexec {} \"$@\"\n", crate::support::python())
        } else {
            format!(
                "#!/bin/sh\nexec {} -m {module} \"$@\"\n",
                crate::support::python()
            )
        };
        std::fs::write(bin.join(name), script).expect("wrapper");
        std::fs::set_permissions(
            bin.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
    }
    let warm_dir = Path::new(WARM).parent().expect("warm's directory");
    let path = format!(
        "{}:{}:{}",
        warm_dir.display(),
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in quick_start
        .text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("warm "))
    {
        let output = std::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(p)
            .env("PATH", &path)
            .env("WARM_RUNTIME_DIR", &env.runtime_dir)
            .env("XDG_CONFIG_HOME", env.tmp.path().join("config"))
            // `~` is the test's (`warm shim install ~/...`).
            .env("HOME", env.tmp.path())
            .env_remove("WARM_TRUST_ALL")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sh");
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "README: `{line}` exited {code:?}:\n{}\n{}",
            stdout_of(&output),
            stderr_of(&output)
        );
    }
}
