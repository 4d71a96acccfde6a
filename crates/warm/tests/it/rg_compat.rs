//! The `rg` shim against the reference ripgrep (scripts/reference-rg): same command line, same
//! moment, byte-identical output and the same exit code, with answers from the index, and no
//! call failing that ripgrep would answer. ripgrep's own suite runs in CI (scripts/rg-suite);
//! these are the cases that broke before, each in the situation a user meets it in.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{reference_rg, stderr_of, stdout_of, TestEnv, WARM};

/// `warm shim install` into the test's directory: the path of the `rg` link.
fn install_shim(env: &TestEnv) -> PathBuf {
    let dir = env.tmp.path().join("shim");
    let output = env.run(&["shim", "install", dir.to_str().expect("utf-8 tmp")]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let rg = dir.join("rg");
    assert_eq!(
        rg.canonicalize().expect("link"),
        Path::new(WARM).canonicalize().expect("warm")
    );
    rg
}

/// `program ARGS` in `dir` with the test's environment; a case that needs another sets it on
/// the command.
fn command(env: &TestEnv, program: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("WARM_RUNTIME_DIR", &env.runtime_dir)
        .env("WARM_CACHE_DIR", env.tmp.path().join("cache"))
        .env("WARM_TRUST_ALL", "1")
        .env("XDG_CONFIG_HOME", env.tmp.path().join("config"))
        .env("HOME", env.tmp.path())
        .env("WARM_RG", reference_rg())
        // Each query waits for the index instead of scanning while it builds.
        .env("WARM_SEARCH_WAIT", "1")
        // How each search was answered, one line per call of the shim.
        .env("WARM_SEARCH_LOG", env.tmp.path().join("sources.log"))
        .env_remove("RIPGREP_CONFIG_PATH")
        .args(args);
    command
}

/// Runs `command` to completion with `stdin` fed to it (none: /dev/null).
fn output(mut command: Command, stdin: Option<&[u8]>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn run(env: &TestEnv, program: &Path, dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    output(command(env, program, dir, args), stdin)
}

/// The shim prints what `rg --sort path ARGS` prints, byte for byte, with its exit code.
fn assert_same(env: &TestEnv, shim: &Path, dir: &Path, args: &[&str], stdin: Option<&[u8]>) {
    let sorted = [&["--sort", "path"][..], args].concat();
    let expected = run(env, &reference_rg(), dir, &sorted, stdin);
    let actual = run(env, shim, dir, args, stdin);
    assert_eq!(
        (actual.status.code(), stdout_of(&actual)),
        (expected.status.code(), stdout_of(&expected)),
        "{args:?}; shim stderr: {}; rg stderr: {}",
        stderr_of(&actual),
        stderr_of(&expected)
    );
    assert_eq!(actual.stdout, expected.stdout, "{args:?}: bytes");
}

/// A project holding what broke before: a hidden file an ignore file whitelists, UTF-16 with
/// a byte-order mark, a name that is not UTF-8, a binary file, flags rg reads its own way.
fn tricky_project(env: &TestEnv) {
    let p = &env.project;
    std::fs::create_dir_all(p.join(".git")).expect(".git");
    std::fs::create_dir_all(p.join("src")).expect("src");
    std::fs::write(p.join(".gitignore"), "target/\n!.foo\n").expect(".gitignore");
    std::fs::write(p.join(".foo"), "needle in a whitelisted hidden file\n").expect(".foo");
    std::fs::write(p.join(".bar"), "needle in a hidden file\n").expect(".bar");
    std::fs::write(
        p.join("src/main.rs"),
        "fn main() {}\n// Main: the needle -test\nlet x = needle;\n",
    )
    .expect("main.rs");
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("Шерлок needle\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(p.join("src/wide.txt"), utf16).expect("utf16");
    std::fs::write(
        p.join(OsStr::from_bytes(b"src/foo\xFFbar.txt")),
        "needle in a non-UTF-8 name\n",
    )
    .expect("non-utf8 name");
    std::fs::write(
        p.join("bin.dat"),
        b"needle first\n\x00needle after the NUL\n",
    )
    .expect("bin");
}

#[test]
fn the_shim_answers_as_ripgrep_from_the_index() {
    let env = TestEnv::new();
    tricky_project(&env);
    let shim = install_shim(&env);
    let log = env.tmp.path().join("sources.log");
    let cases: &[&[&str]] = &[
        &["needle"],
        &["Шерлок"],
        &["-l", "needle"],
        &["-c", "needle"],
        &["-s", "-i", "main", "-s"],
        &["-e", "-test"],
        &["-i", "MAIN", "-i"],
        &["-C", "1", "needle", "-C", "0"],
        &["--no-heading", "-n", "--column", "needle"],
        &["-o", "-w", "needle"],
        &["needle", "bin.dat"],
        &["-uu", "needle"],
        &["--files"],
        &["-v", "needle", "src"],
        &["needle", "src", "."],
        &["-x", "fn main\\(\\) \\{\\}"],
        // rg's -s (case-sensitive), not warm's --service: a path named main, which is missing.
        &["-s", "Main", "main"],
    ];
    for args in cases {
        assert_same(&env, &shim, &env.project, args, None);
    }
    // The index answered those it can: every one of the first eight.
    let sources = std::fs::read_to_string(&log).expect("sources log");
    let first: Vec<&str> = sources.lines().take(8).collect();
    assert!(
        first.iter().all(|line| *line == "index"),
        "expected answers from the index: {sources}"
    );
    // The same with no path and standard input: rg reads it.
    assert_same(
        &env,
        &shim,
        &env.project,
        &["a"],
        Some(b"a.json\na.txt\nb.txt\n"),
    );
}

#[test]
fn the_shim_never_fails_a_call_ripgrep_answers() {
    let env = TestEnv::new();
    tricky_project(&env);
    let shim = install_shim(&env);
    // A plain directory outside every project.
    let plain = env.tmp.path().join("plain");
    std::fs::create_dir_all(plain.join("d")).expect("plain");
    std::fs::write(plain.join("d/x.txt"), "plain needle\n").expect("x");
    assert_same(&env, &shim, &plain, &["needle"], None);
    assert_same(&env, &shim, &plain, &["nothing_matches"], None);
    // An unusable runtime directory: the same answer, and a note saying why.
    let mut unusable = command(
        &env,
        &shim,
        &env.project,
        &["--sort", "path", "needle", "src"],
    );
    unusable.env("WARM_RUNTIME_DIR", "/proc/warm-cannot-be-here");
    let scanned = output(unusable, None);
    let expected = run(
        &env,
        &reference_rg(),
        &env.project,
        &["--sort", "path", "needle", "src"],
        None,
    );
    assert_eq!(stdout_of(&scanned), stdout_of(&expected));
    assert_eq!(scanned.status.code(), Some(0));
    assert!(stderr_of(&scanned).contains("searching without the index"));
    // A flag warm does not know: the real rg's own answer, its error included.
    let unknown: &[&str] = &["--no-such-flag", "needle"];
    let actual = run(&env, &shim, &env.project, unknown, None);
    let expected = run(&env, &reference_rg(), &env.project, unknown, None);
    assert_eq!(actual.status.code(), Some(2));
    assert_eq!(stderr_of(&actual), stderr_of(&expected));
    // A flag only rg implements (--pre) goes to rg; with none installed, a clear error.
    assert_same(
        &env,
        &shim,
        &env.project,
        &["--pre", "cat", "needle", "src/main.rs"],
        None,
    );
    let mut without_rg = command(&env, &shim, &env.project, &["--pre", "cat", "needle"]);
    without_rg
        .env_remove("WARM_RG")
        .env("PATH", shim.parent().expect("shim dir"));
    let refused = output(without_rg, None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr_of(&refused)
            .contains("--pre is answered by ripgrep itself, and no ripgrep is installed"),
        "{}",
        stderr_of(&refused)
    );
}

#[test]
fn ripgreps_config_file_and_errors_are_ripgreps() {
    let env = TestEnv::new();
    tricky_project(&env);
    let shim = install_shim(&env);
    let config = env.tmp.path().join("ripgreprc");
    std::fs::write(&config, "# case\n--ignore-case\n\n--max-count=1\n").expect("config");
    let with_config = |program: &Path, args: &[&str]| {
        let mut configured = command(&env, program, &env.project, args);
        configured.env("RIPGREP_CONFIG_PATH", &config);
        output(configured, None)
    };
    let actual = with_config(&shim, &["MAIN", "src"]);
    let expected = with_config(&reference_rg(), &["--sort", "path", "MAIN", "src"]);
    assert_eq!(stdout_of(&actual), stdout_of(&expected));
    assert!(!actual.stdout.is_empty());
    let actual = with_config(&shim, &["--no-config", "MAIN", "src"]);
    assert_eq!(actual.status.code(), Some(1), "--no-config drops the file");
    // Errors: rg's exit code and words.
    for args in [
        &["\\x00"][..],
        &["("],
        &["a\\nb"],
        &["needle", "no/such/path"],
    ] {
        let actual = run(&env, &shim, &env.project, args, None);
        let expected = run(&env, &reference_rg(), &env.project, args, None);
        assert_eq!(actual.status.code(), expected.status.code(), "{args:?}");
        assert_eq!(stderr_of(&actual), stderr_of(&expected), "{args:?}");
    }
    // Every file ignored: "No files were searched", exit 2.
    let ignored = env.tmp.path().join("ignored");
    std::fs::create_dir_all(ignored.join(".git")).expect("dir");
    std::fs::write(ignored.join(".gitignore"), "*.txt\n").expect("ignore");
    std::fs::write(ignored.join("a.txt"), "needle\n").expect("a");
    let actual = run(&env, &shim, &ignored, &["needle"], None);
    let expected = run(&env, &reference_rg(), &ignored, &["needle"], None);
    assert_eq!(actual.status.code(), Some(2));
    assert_eq!(stderr_of(&actual), stderr_of(&expected));
}

/// A project where globs and types reach past ripgrep's default rules: ignored files and
/// directories, hidden files, a hidden directory.
fn filtered_project(env: &TestEnv) {
    let p = &env.project;
    for dir in [
        ".git",
        "src/deep",
        "build/out",
        "node_modules/pkg",
        ".cache",
        "sub/.cfg",
    ] {
        std::fs::create_dir_all(p.join(dir)).expect("dir");
    }
    std::fs::write(
        p.join(".gitignore"),
        "build/\nnode_modules/\ngen.py\n*.log\n",
    )
    .expect("ignore");
    for (file, text) in [
        ("src/a.py", "needle = 1\n"),
        ("src/gen.py", "needle = 'generated'\n"),
        ("src/deep/b.py", "needle = 2\n"),
        ("src/m.js", "const needle = 1;\n"),
        ("build/out/c.py", "needle = 3\n"),
        ("node_modules/pkg/i.js", "module.needle = 1;\n"),
        (".eslintrc.js", "needle: true\n"),
        ("sub/.x.js", "needle();\n"),
        ("sub/.cfg/c.js", "needle();\n"),
        (".cache/h.py", "needle = 4\n"),
        ("x.log", "needle logged\n"),
        ("README", "no match here\n"),
    ] {
        std::fs::write(p.join(file), text).expect("file");
    }
}

/// The filtered searches, each answered from the index as ripgrep answers it.
const FILTERED: &[&[&str]] = &[
    &["-g", "*.py", "needle"],
    &["-g", "*.py", "-g", "!src", "needle"],
    &["-g", "*.py", "needle", "src"],
    &["-g", "build", "-g", "*.py", "needle"],
    &[
        "-g",
        "{build,node_modules}",
        "-g",
        "pkg",
        "-g",
        "out",
        "-g",
        "*.{py,js}",
        "-l",
        "needle",
    ],
    &["-g", ".*", "-g", "*.js", "needle"],
    &["-g", "*.log", "-c", "needle"],
    &["--iglob", "*.PY", "needle"],
    &[
        "--glob-case-insensitive",
        "-g",
        "BUILD",
        "-g",
        "*.PY",
        "needle",
    ],
    &["-t", "js", "needle"],
    &["-t", "js", "-g", "!sub", "needle"],
    &["-t", "py", "needle", "sub", "."],
    &["-g", "*.js", "-T", "js", "needle"],
    &["-g", "/build", "needle"],
    &["--files"],
    &["--files", "-g", "*.py", "-g", "build"],
    &["--files", "-t", "js", "sub"],
    &["--files", "-g", "*.nothing"],
];

#[test]
fn globs_and_types_read_the_ignored_and_hidden_files_they_admit_from_the_index() {
    let env = TestEnv::new();
    filtered_project(&env);
    let shim = install_shim(&env);
    let log = env.tmp.path().join("sources.log");
    let check_all = |dir: &Path| {
        for args in FILTERED {
            assert_same(&env, &shim, dir, args, None);
        }
    };
    check_all(&env.project);
    // From a subdirectory, globs are matched against paths from there, as rg's are.
    check_all(&env.project.join("src"));
    // The names the index keeps beside it follow the tree: ignored and hidden entries
    // created, deleted and moved.
    let p = &env.project;
    std::fs::write(p.join("src/deep/gen.py"), "needle = 'new'\n").expect("gen");
    std::fs::remove_file(p.join("x.log")).expect("rm");
    std::fs::write(p.join("sub/later.log"), "needle later\n").expect("log");
    std::fs::rename(p.join("build"), p.join("src/build")).expect("mv build");
    std::fs::create_dir_all(p.join("new/.cfg")).expect("new");
    std::fs::write(p.join("new/.y.js"), "needle();\n").expect("y");
    std::fs::write(p.join("new/.cfg/z.js"), "needle();\n").expect("z");
    check_all(&env.project);
    let sources = std::fs::read_to_string(&log).expect("sources log");
    assert_eq!(sources.lines().count(), 3 * FILTERED.len(), "{sources}");
    // All from the index but the three whose path does not exist below src/ (rg's error).
    let scans: Vec<&str> = sources.lines().filter(|line| *line != "index").collect();
    assert_eq!(
        scans,
        [
            "scan\tsrc cannot be read",
            "scan\tsub cannot be read",
            "scan\tsub cannot be read"
        ],
        "{sources}"
    );
}
