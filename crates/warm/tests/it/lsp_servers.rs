//! `warm lsp` against five real language servers (clangd, pyright, typescript-language-server,
//! bash-language-server, pylsp; `scripts/setup-tests` installs them), each answer compared
//! with what the same server answers a fresh, direct client (`workers/direct_lsp.py`, no warm
//! in it) on the files as they are at that moment.
//!
//! Every server gets the same story: a cold daemon asked for the diagnostics of a broken
//! file; a query that opens the main file; one that opens a second file, which is then
//! edited on disk; a third file that no query ever named, also edited (for clangd, a header);
//! and after each edit `definition`, `references`, `hover` and `diagnostics` must equal the
//! direct client's.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{json_stdout, pylsp_bin, python, stderr_of, stdout_if_exited, TestEnv};

/// One server and a small project in its language. `main` calls `helper` (defined in
/// `service`, which a query opens before it is edited) and `tool` (defined in `util`, which
/// no query names).
struct Spec {
    /// The daemon's service: `lsp-ID` of the built-in table.
    service: &'static str,
    /// The command the direct client starts (the same server).
    direct: &'static [&'static str],
    comment: &'static str,
    files: &'static [(&'static str, &'static str)],
    main: &'static str,
    service_file: &'static str,
    util_file: &'static str,
    /// `LINE:COL` of the calls of `helper` and of `tool` in `main`, and of `helper` in
    /// `service_file`.
    helper_call: (u32, u32),
    tool_call: (u32, u32),
    helper_definition: (u32, u32),
    broken: &'static str,
    /// Words of the error `broken` has.
    broken_message: &'static str,
}

const PY_FILES: &[(&str, &str)] = &[
    (
        "main.py",
        "from service import helper\nfrom util import tool\n\n\ndef go():\n    return helper(1) + tool(2)\n",
    ),
    ("service.py", "def helper(x):\n    return x + 1\n"),
    ("util.py", "def tool(x):\n    return x * 2\n"),
    ("broken.py", "def f():\n    return undefined_name\n"),
];

fn python_spec(service: &'static str, direct: &'static [&'static str]) -> Spec {
    Spec {
        service,
        direct,
        comment: "#",
        files: PY_FILES,
        main: "main.py",
        service_file: "service.py",
        util_file: "util.py",
        helper_call: (6, 12),
        tool_call: (6, 24),
        helper_definition: (1, 5),
        broken: "broken.py",
        broken_message: "undefined_name",
    }
}

const TS: Spec = Spec {
    service: "lsp-typescript-language-server",
    direct: &["typescript-language-server", "--stdio"],
    comment: "//",
    files: &[
        (
            "main.ts",
            "import { helper } from \"./service\";\nimport { tool } from \"./util\";\n\nexport function go(): number {\n  return helper(1) + tool(2);\n}\n",
        ),
        ("service.ts", "export function helper(n: number): number {\n  return n + 1;\n}\n"),
        ("util.ts", "export function tool(n: number): number {\n  return n * 2;\n}\n"),
        ("broken.ts", "export const n: number = \"not a number\";\n"),
        ("tsconfig.json", "{ \"compilerOptions\": { \"strict\": true } }\n"),
    ],
    main: "main.ts",
    service_file: "service.ts",
    util_file: "util.ts",
    helper_call: (5, 10),
    tool_call: (5, 22),
    helper_definition: (1, 17),
    broken: "broken.ts",
    broken_message: "not assignable",
};

const C: Spec = Spec {
    service: "lsp-clangd",
    direct: &["clangd"],
    comment: "//",
    files: &[
        (
            "main.c",
            "#include \"service.h\"\n#include \"util.h\"\n\nint go(void) {\n  return helper(1) + tool(2);\n}\n",
        ),
        ("service.h", "int helper(int x);\n"),
        ("util.h", "int tool(int x);\n"),
        ("broken.c", "int f(void) { return undefined_thing; }\n"),
    ],
    main: "main.c",
    service_file: "service.h",
    util_file: "util.h",
    helper_call: (5, 10),
    tool_call: (5, 22),
    helper_definition: (1, 5),
    broken: "broken.c",
    broken_message: "undeclared identifier",
};

const SH: Spec = Spec {
    service: "lsp-bash-language-server",
    direct: &["bash-language-server", "start"],
    comment: "#",
    files: &[
        (
            "main.sh",
            "#!/bin/bash\nsource ./service.sh\nsource ./util.sh\nhelper 1\ntool 2\n",
        ),
        ("service.sh", "helper() {\n  echo \"$1\"\n}\n"),
        ("util.sh", "tool() {\n  echo \"$1\"\n}\n"),
        (
            "broken.sh",
            "#!/bin/bash\nif [ -n \"$1\" ]; then\n  echo x\n",
        ),
    ],
    main: "main.sh",
    service_file: "service.sh",
    util_file: "util.sh",
    helper_call: (4, 1),
    tool_call: (5, 1),
    helper_definition: (1, 1),
    broken: "broken.sh",
    broken_message: "if",
};

struct ServerProject<'a> {
    env: TestEnv,
    spec: &'a Spec,
    /// A directory put first on `PATH`: `pylsp` there runs the tests' Python's module.
    bin: PathBuf,
}

impl<'a> ServerProject<'a> {
    fn new(spec: &'a Spec) -> ServerProject<'a> {
        let env = TestEnv::new();
        for (name, text) in spec.files {
            std::fs::write(env.project.join(name), text).expect("write source");
        }
        if spec.service == "lsp-clangd" {
            let root = env.project.display();
            let commands: Vec<String> = ["main.c", "broken.c"]
                .iter()
                .map(|f| format!(r#"{{"directory":"{root}","command":"cc -c {f}","file":"{f}"}}"#))
                .collect();
            std::fs::write(
                env.project.join("compile_commands.json"),
                format!("[{}]\n", commands.join(",")),
            )
            .expect("compile_commands.json");
        }
        let bin = pylsp_bin(&env);
        ServerProject { env, spec, bin }
    }

    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn warm(&self, args: &[&str]) -> Output {
        let mut command = self.env.warm();
        command
            .env("PATH", self.path())
            .args(["lsp", "-s", self.spec.service])
            .args(args);
        command.output().expect("run warm lsp")
    }

    /// `warm lsp ARGS`, which must exit with `code`; its stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let what = format!("{}: warm lsp {args:?}", self.spec.service);
        stdout_if_exited(&self.warm(args), code, &what)
    }

    /// `warm lsp ARGS --json`, parsed (whatever the exit code: a query with no answer exits 1
    /// and prints `null`).
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let what = format!("{}: warm lsp {args:?}", self.spec.service);
        json_stdout(&self.warm(&args), &what)
    }

    /// What a fresh server answers a direct client for `method` (or `diagnostics`) in `file`.
    fn direct(&self, file: &str, method: &str, at: Option<(u32, u32)>) -> Value {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/workers/direct_lsp.py");
        let mut command = Command::new(python());
        command
            .current_dir(&self.env.project)
            .env("PATH", self.path())
            .arg(&script)
            .arg(&self.env.project)
            .arg(self.env.project.join(file))
            .arg(method);
        if let Some((line, column)) = at {
            command.args([line.to_string(), column.to_string()]);
        }
        let output = command
            .arg("--")
            .args(self.spec.direct)
            .output()
            .expect("run the direct client");
        assert!(
            output.status.success(),
            "{}: direct client: {}",
            self.spec.service,
            stderr_of(&output)
        );
        serde_json::from_slice(&output.stdout).expect("direct client JSON")
    }

    /// Asserts that warm's answer to `command` at `file:line:col` is the direct client's.
    fn same(&self, command: &str, method: &str, file: &str, at: (u32, u32)) {
        let location = format!("{file}:{}:{}", at.0, at.1);
        let warm = self.json(&[command, &location]);
        let direct = self.direct(file, method, Some(at));
        assert_eq!(
            normalized(warm),
            normalized(direct),
            "{}: {command} {location}, warm (left) vs a fresh direct client (right)",
            self.spec.service
        );
    }

    fn same_diagnostics(&self, file: &str) {
        let warm = self.json(&["diagnostics", file]);
        let warm = warm[0]["diagnostics"].clone();
        let direct = self.direct(file, "diagnostics", None);
        assert_eq!(
            normalized(warm),
            normalized(direct),
            "{}: diagnostics {file}, warm (left) vs a fresh direct client (right)",
            self.spec.service
        );
    }

    /// Puts three comment lines at the top of `file`: every line below moves down by three.
    fn prepend_lines(&self, file: &str) {
        let path = self.env.project.join(file);
        let text = std::fs::read_to_string(&path).expect("read source");
        let comment = self.spec.comment;
        let text = format!("{comment} one\n{comment} two\n{comment} three\n{text}");
        std::fs::write(&path, text).expect("edit source");
    }
}

impl ServerProject<'_> {
    /// Replaces `from` with `to` in `file`.
    fn replace(&self, file: &str, from: &str, to: &str) {
        let path = self.env.project.join(file);
        let text = std::fs::read_to_string(&path).expect("read source");
        assert!(text.contains(from), "{file} holds {from:?}");
        std::fs::write(&path, text.replace(from, to)).expect("edit source");
    }

    fn stop(&self) {
        let output = self.env.run(&["stop", "-s", self.spec.service]);
        assert!(output.status.success(), "warm stop: {}", stderr_of(&output));
    }

    /// Adds a comment line at the end of `file` (a shell script's first line must stay its
    /// shebang).
    fn append_line(&self, file: &str) {
        let path = self.env.project.join(file);
        let text = std::fs::read_to_string(&path).expect("read source");
        let text = format!("{text}{} the end\n", self.spec.comment);
        std::fs::write(&path, text).expect("edit source");
    }
}

/// Answers in an order that does not depend on the server's: arrays of locations or
/// diagnostics sorted by their JSON text.
fn normalized(value: Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(normalized).collect();
            items.sort_by_key(|item| item.to_string());
            Value::Array(items)
        }
        other => other,
    }
}

/// The story every server is put through.
fn differential(spec: &Spec) {
    let project = ServerProject::new(spec);
    let main = spec.main;

    // A cold daemon and a broken file: the error, never "clean".
    let output = project.expect(1, &["diagnostics", spec.broken]);
    assert!(
        output.contains(spec.broken_message),
        "{}: diagnostics of {}: {output}",
        spec.service,
        spec.broken
    );
    project.same_diagnostics(spec.broken);

    // The main file, opened by a query.
    project.same(
        "definition",
        "textDocument/definition",
        main,
        spec.helper_call,
    );

    // A second file, opened by a query (which may find nothing to hover: it only opens the
    // file), then edited on disk.
    let location = format!(
        "{}:{}:{}",
        spec.service_file, spec.helper_definition.0, spec.helper_definition.1
    );
    let opened = project.warm(&["hover", &location]);
    assert!(
        matches!(opened.status.code(), Some(0 | 1)),
        "{}: hover {location}: {}",
        spec.service,
        stderr_of(&opened)
    );
    project.prepend_lines(spec.service_file);
    project.same(
        "definition",
        "textDocument/definition",
        main,
        spec.helper_call,
    );
    project.same(
        "references",
        "textDocument/references",
        main,
        spec.helper_call,
    );
    project.same("hover", "textDocument/hover", main, spec.helper_call);
    // Three lines down, after `prepend_lines`.
    let moved = (spec.helper_definition.0 + 3, spec.helper_definition.1);
    project.same(
        "definition",
        "textDocument/definition",
        spec.service_file,
        moved,
    );

    // A file no query named (for clangd, a header), edited on disk.
    project.prepend_lines(spec.util_file);
    project.same(
        "definition",
        "textDocument/definition",
        main,
        spec.tool_call,
    );
    project.same("hover", "textDocument/hover", main, spec.tool_call);

    // Diagnostics of a file whose dependency (never opened) changed: `tool` renamed away,
    // then back. A server that knows it reports the call as an error both times warm is
    // asked (pyright, tsls, clangd); others report what a fresh client gets.
    project.replace(spec.util_file, "tool", "renamed_tool");
    project.same_diagnostics(main);
    project.replace(spec.util_file, "renamed_tool", "tool");
    project.same_diagnostics(main);

    // Diagnostics of an edited file with no error: current, and not a timeout.
    project.append_line(main);
    project.expect(0, &["diagnostics", main]);
    project.same_diagnostics(main);

    // A cold daemon asked about another file at once: the server has read the project
    // before it answers (bash-language-server's analysis of the sourced scripts, clangd's
    // and tsserver's indexing), so the answer is not a partial one.
    project.stop();
    project.same(
        "definition",
        "textDocument/definition",
        main,
        spec.tool_call,
    );
}

#[test]
fn pyright_answers_as_a_fresh_client_is_answered_after_every_edit() {
    differential(&python_spec(
        "lsp-pyright",
        &["pyright-langserver", "--stdio"],
    ));
}

#[test]
fn pylsp_answers_as_a_fresh_client_is_answered_after_every_edit() {
    differential(&python_spec("lsp-pylsp", &["pylsp"]));
}

#[test]
fn typescript_language_server_answers_as_a_fresh_client_is_answered_after_every_edit() {
    differential(&TS);
}

#[test]
fn clangd_answers_as_a_fresh_client_is_answered_after_every_edit() {
    differential(&C);
}

#[test]
fn bash_language_server_answers_as_a_fresh_client_is_answered_after_every_edit() {
    differential(&SH);
}

/// `rename --apply` across two files, then `diagnostics A B`: both checked against the other's
/// new content, so no false "has no exported member".
#[test]
fn a_rename_across_files_leaves_no_false_error() {
    let project = ServerProject::new(&TS);
    project.expect(0, &["diagnostics", "main.ts", "service.ts"]);
    project.expect(0, &["rename", "service.ts:1:17", "renamed", "--apply"]);
    let main = std::fs::read_to_string(project.env.project.join("main.ts")).expect("main.ts");
    assert!(
        main.contains("renamed(1)"),
        "the rename edited main.ts: {main}"
    );
    let output = project.expect(0, &["diagnostics", "main.ts", "service.ts"]);
    assert!(output.is_empty(), "no diagnostics: {output}");
}
