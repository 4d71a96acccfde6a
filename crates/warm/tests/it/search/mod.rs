//! `warm search` against ripgrep (installed by `.ci/run`): same matches for the same flags, on
//! a real tree, and fresh after every change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

mod store;

use crate::support::{
    assert_exit, proc_stat_field, run_concurrently, stderr_of, stdout_of, wait_until, TestEnv,
};

/// Bytes of real source copied into the equivalence tree.
const TREE_BYTES: u64 = 24 * 1024 * 1024;

fn run_in(env: &TestEnv, dir: &Path, program: Option<&str>, args: &[&str]) -> Output {
    let mut command = match program {
        // The reference ripgrep, whatever `rg` is on PATH.
        Some(_) => Command::new(crate::support::reference_rg()),
        None => {
            let mut warm = env.warm();
            warm.arg("search");
            warm
        }
    };
    command
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run search")
}

/// The match and context messages of ripgrep's JSON output, as comparable strings, sorted
/// (ripgrep prints files in no fixed order).
fn json_matches(output: &Output) -> BTreeSet<String> {
    stdout_of(output)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["type"] == "match" || m["type"] == "context")
        .map(|mut m| {
            // Offsets are of the file, as both compute them; keep everything but timing.
            if let Some(data) = m.get_mut("data").and_then(Value::as_object_mut) {
                data.remove("elapsed");
            }
            m.to_string()
        })
        .collect()
}

fn sorted_lines(output: &Output) -> BTreeSet<String> {
    stdout_of(output).lines().map(str::to_owned).collect()
}

/// Copies crate sources from the cargo registry (sorted, so the same tree each run) until
/// `TREE_BYTES`, plus files that test the edges.
fn real_tree(root: &Path) -> u64 {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let mut crates: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .expect("the cargo registry (the build downloads it)")
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect();
    crates.sort();
    let mut copied = 0;
    for krate in crates {
        if copied >= TREE_BYTES {
            break;
        }
        let status = Command::new("cp")
            .arg("-r")
            .arg(&krate)
            .arg(root)
            .status()
            .expect("cp");
        assert!(status.success());
        copied += dir_size(&krate);
    }
    assert!(
        copied >= TREE_BYTES,
        "the registry holds only {copied} bytes of sources"
    );
    let edge = root.join("edge");
    std::fs::create_dir_all(edge.join("ignored")).expect("edge");
    std::fs::write(edge.join(".gitignore"), "ignored/\n").expect(".gitignore");
    std::fs::write(edge.join("ignored/hidden_match.rs"), "fn main() {}\n").expect("ignored");
    std::fs::write(edge.join(".hidden.rs"), "fn main() { unsafe {} }\n").expect("hidden");
    std::fs::write(
        edge.join("unicode.txt"),
        "naïve café Ωmega ΣΑΣ σας 🦀 crab\nKelvin \u{212A} sign\n",
    )
    .expect("unicode");
    std::fs::write(
        edge.join("latin1.txt"),
        b"caf\xe9 fn main bytes \xff\xfe\n".as_slice(),
    )
    .expect("latin1");
    std::fs::write(
        edge.join("binary.bin"),
        b"fn main() before\n\0\0after fn main\n".as_slice(),
    )
    .expect("binary");
    // A git repository, so that .gitignore files apply (as rg requires).
    std::fs::create_dir_all(root.join(".git")).expect(".git");
    copied
}

/// Starts the search daemon and waits until its index is built and watched, so that the
/// queries that follow are answered from the index (before that, they scan).
fn wait_for_index(env: &TestEnv) {
    let ready = wait_until(Duration::from_secs(60), || {
        let status = env.json(&["search", "--status"]);
        status["ready"] == true && status["watching"] == true
    });
    assert!(
        ready,
        "the index was not ready within 60 s: {}",
        env.json(&["search", "--status"])
    );
}

/// Starts the search daemon with a test knob (`WARM_SEARCH_TEST_*`) set, and waits for its
/// index.
fn start_search_with(env: &TestEnv, knob: &str, value: &str) {
    let started = env
        .warm()
        .env(knob, value)
        .args(["-s", "search", "start"])
        .output()
        .expect("start");
    assert!(started.status.success(), "{}", stderr_of(&started));
    wait_for_index(env);
}

fn dir_size(dir: &Path) -> u64 {
    let output = Command::new("du").arg("-sb").arg(dir).output().expect("du");
    stdout_of(&output)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Flags and pattern, as given to both tools.
const SUITE: &[&[&str]] = &[
    // Literals.
    &["fn main"],
    &["unsafe impl"],
    &["impl Iterator for"],
    &["TODO"],
    &["pub struct"],
    &["-F", "#[derive(Debug"],
    &["-F", "std::collections::HashMap"],
    &["Copyright"],
    &["-F", "a.b"],
    // Case.
    &["-i", "error"],
    &["-i", "utf-8"],
    &["-S", "hashmap"],
    &["-S", "HashMap"],
    &["-i", "kelvin"],
    // Words.
    &["-w", "new"],
    &["-w", "is_empty"],
    &["-w", "-i", "SELF"],
    // Regexes with literals.
    &[r"fn \w+_test"],
    &[r"impl<T> \w+"],
    &[r"struct [A-Z]\w+Error"],
    &[r"(?i)deprecated"],
    &[r"unwrap\(\)\."],
    &[r"\bSelf::new\("],
    &["foo|bar"],
    &[r"0x[0-9a-f]{8}"],
    &["-e", "panic!", "-e", "unreachable!"],
    // Without a usable trigram.
    &[r"\w+\s*=\s*\d+;"],
    &["[A-Z]{5,}"],
    &["a.b.c"],
    &[r"[0-9]{4}-[0-9]{2}-[0-9]{2}"],
    // Globs and types.
    &["-g", "*.toml", "version"],
    &["-g", "!*.rs", "license"],
    &["-g", "**/src/*.rs", "mod tests"],
    &["-t", "rust", "async fn"],
    &["-t", "toml", "edition"],
    &["-t", "md", "Example"],
    // Context and limits.
    &["-C", "2", "panic!\\(\"internal"],
    &["-A", "1", "-B", "3", "unreachable!"],
    &["-m", "2", "let mut"],
    // Unicode and bytes.
    &["café"],
    &[r"\p{Greek}+"],
    &["-i", "σας"],
    &["🦀"],
    &["bytes"],
    &["fn main"],
    // Ignored and hidden files: a type selects hidden files, a positive glob even ignored ones.
    &["--hidden", "unsafe"],
    &["-t", "rust", "unsafe \\{\\}"],
    &["-g", "*.rs", "hidden_match"],
    &["--no-ignore", "hidden_match"],
    // Nothing, and everywhere.
    &["zqxjkv_nothing_matches_this"],
];

/// Modes printed as plain lines (ripgrep does not combine them with --json).
const LINE_SUITE: &[&[&str]] = &[
    &["-c", "fn "],
    &["-l", "unsafe impl"],
    &["-c", ""],
    &["-l", "-i", "todo"],
];

/// More of ripgrep's printing flags, compared byte for byte.
const EXACT_SUITE: &[&[&str]] = &[
    &["-n", "fn main"],
    &["-o", r"0x[0-9a-f]{8}"],
    &["--column", "-w", "new"],
    &["--vimgrep", "unsafe impl"],
    &["-c", "-w", "-i", "self"],
    &["-l", "-F", "HashMap<"],
    &["--heading", "-n", "-C", "1", "unreachable!"],
    &["-r", "XX", "-F", "unwrap()"],
    &["--count-matches", "fn"],
    &["-N", "-B", "2", "panic!"],
    &["-x", "}"],
    &["-b", "-o", "-F", "Self"],
    &["--null", "-l", "async"],
    &["-e", "-> Self", "-F"],
    &["--trim", "-M", "40", "-n", "impl"],
    &["-T", "rust", "version"],
    &["-g", "!**/tests/**", "-w", "assert_eq"],
];

/// `warm search ARGS` prints exactly what `rg --sort path ARGS` prints (warm's order is
/// ripgrep's single-threaded order), and exits with the same code.
fn assert_same_bytes(env: &TestEnv, dir: &Path, args: &[&str]) {
    let expected = run_in(env, dir, Some("rg"), &[&["--sort", "path"], args].concat());
    let actual = run_in(env, dir, None, args);
    assert_eq!(
        actual.status.code(),
        expected.status.code(),
        "exit code of {args:?}; warm stderr: {}",
        stderr_of(&actual)
    );
    if actual.stdout != expected.stdout {
        let (a, e) = (stdout_of(&actual), stdout_of(&expected));
        let first = a.lines().zip(e.lines()).position(|(x, y)| x != y);
        panic!(
            "{args:?}: {} bytes from warm, {} from rg; first differing line {first:?}: warm {:?}, rg {:?}",
            actual.stdout.len(),
            expected.stdout.len(),
            first.and_then(|i| a.lines().nth(i)),
            first.and_then(|i| e.lines().nth(i)),
        );
    }
}

#[test]
fn matches_equal_ripgreps_on_a_real_tree() {
    let env = TestEnv::new();
    let tree = real_tree(&env.project);
    eprintln!("tree: {:.1} MB", tree as f64 / 1e6);
    wait_for_index(&env);
    assert!(SUITE.len() + LINE_SUITE.len() >= 40);
    for args in SUITE {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let expected = run_in(&env, &env.project, Some("rg"), &with_json);
        let actual = run_in(&env, &env.project, None, &with_json);
        assert_eq!(
            actual.status.code(),
            expected.status.code(),
            "exit code of {args:?}; warm stderr: {}",
            stderr_of(&actual)
        );
        let (expected, actual) = (json_matches(&expected), json_matches(&actual));
        assert!(
            expected == actual,
            "{args:?}: {} matches from rg, {} from warm; only rg: {:?}; only warm: {:?}",
            expected.len(),
            actual.len(),
            expected.difference(&actual).take(3).collect::<Vec<_>>(),
            actual.difference(&expected).take(3).collect::<Vec<_>>()
        );
    }
    for args in SUITE.iter().chain(LINE_SUITE).chain(EXACT_SUITE) {
        assert_same_bytes(&env, &env.project, args);
    }
    // From a subdirectory, with a path argument: paths print as rg prints them.
    let sub = env.project.join("edge");
    for args in [
        &["fn main"][..],
        &["fn main", "."],
        &["crab", "unicode.txt"],
    ] {
        let expected = run_in(&env, &sub, Some("rg"), &[args, &["--json"]].concat());
        let actual = run_in(&env, &sub, None, &[args, &["--json"]].concat());
        assert_eq!(
            json_matches(&actual),
            json_matches(&expected),
            "{args:?} in edge/"
        );
    }
    env.only_daemon();
}

/// A small project for the freshness tests.
fn small_project(env: &TestEnv) {
    std::fs::create_dir_all(env.project.join(".git")).expect(".git");
    std::fs::create_dir_all(env.project.join("src")).expect("src");
    std::fs::write(env.project.join("src/a.rs"), "fn alpha() {}\n").expect("a");
    std::fs::write(env.project.join("src/b.rs"), "fn beta() {}\n").expect("b");
}

fn found(env: &TestEnv, pattern: &str) -> String {
    let output = env.run(&["search", pattern]);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "{}",
        stderr_of(&output)
    );
    let mut lines: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap_or_default()
        .lines()
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn every_change_is_seen_by_the_next_query() {
    let env = TestEnv::new();
    small_project(&env);
    let project = &env.project;
    wait_for_index(&env);
    assert_eq!(found(&env, "fn alpha"), "src/a.rs:fn alpha() {}");

    std::fs::write(project.join("src/c.rs"), "fn gamma_new() {}\n").expect("create");
    assert_eq!(found(&env, "gamma_new"), "src/c.rs:fn gamma_new() {}");

    std::fs::write(project.join("src/a.rs"), "fn alpha_changed() {}\n").expect("modify");
    assert_eq!(
        found(&env, "alpha_changed"),
        "src/a.rs:fn alpha_changed() {}"
    );
    assert_eq!(found(&env, "fn alpha\\(\\)"), "");

    std::fs::remove_file(project.join("src/b.rs")).expect("delete");
    assert_eq!(found(&env, "beta"), "");

    std::fs::rename(project.join("src/c.rs"), project.join("src/d.rs")).expect("rename");
    assert_eq!(found(&env, "gamma_new"), "src/d.rs:fn gamma_new() {}");

    std::fs::create_dir_all(project.join("src/deep/er")).expect("mkdir");
    std::fs::write(project.join("src/deep/er/e.rs"), "fn epsilon_deep() {}\n").expect("deep");
    assert_eq!(
        found(&env, "epsilon_deep"),
        "src/deep/er/e.rs:fn epsilon_deep() {}"
    );

    std::fs::rename(project.join("src/deep"), project.join("src/moved")).expect("rename dir");
    assert_eq!(
        found(&env, "epsilon_deep"),
        "src/moved/er/e.rs:fn epsilon_deep() {}"
    );

    std::fs::write(project.join(".gitignore"), "src/moved/\n").expect("ignore");
    assert_eq!(found(&env, "epsilon_deep"), "");
    std::fs::write(project.join(".gitignore"), "").expect("unignore");
    assert_eq!(
        found(&env, "epsilon_deep"),
        "src/moved/er/e.rs:fn epsilon_deep() {}"
    );
    env.only_daemon();
}

#[test]
fn twenty_cold_searches_share_one_daemon() {
    let env = TestEnv::new();
    small_project(&env);
    for output in run_concurrently(20, || {
        let mut command = env.warm();
        command.args(["search", "fn \\w+"]);
        command
    }) {
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert_eq!(
            stdout_of(&output),
            "src/a.rs:fn alpha() {}\nsrc/b.rs:fn beta() {}\n"
        );
    }
    env.only_daemon();
    assert_eq!(
        env.spawn_count("search"),
        1,
        "exactly one daemon was ever spawned"
    );
}

#[test]
fn hostile_files_are_handled_as_ripgrep_handles_them() {
    let env = TestEnv::new();
    small_project(&env);
    let project = &env.project;
    // A 1 GB sparse file of NULs: binary, so neither tool reads past its first byte.
    let big = std::fs::File::create(project.join("big.bin")).expect("big");
    big.set_len(1 << 30).expect("1 GB");
    std::os::unix::fs::symlink("loop", project.join("loop")).expect("symlink loop");
    std::os::unix::fs::symlink(project.join("src"), project.join("src/self")).expect("dir loop");
    std::fs::write(
        project.join("bad.txt"),
        b"fn \xff\xfe broken utf8 alpha\n".as_slice(),
    )
    .expect("bad");
    std::fs::write(
        project.join("nul.txt"),
        b"alpha before nul\n\0alpha after\n".as_slice(),
    )
    .expect("nul");
    wait_for_index(&env);
    for args in [&["alpha", "--json"][..], &["-c", "alpha"], &["-l", "\\x00"]] {
        let expected = run_in(&env, project, Some("rg"), args);
        let actual = run_in(&env, project, None, args);
        assert_eq!(
            actual.status.code(),
            expected.status.code(),
            "{args:?}: {}",
            stderr_of(&actual)
        );
        if args.contains(&"--json") {
            assert_eq!(json_matches(&actual), json_matches(&expected), "{args:?}");
        } else {
            assert_eq!(sorted_lines(&actual), sorted_lines(&expected), "{args:?}");
        }
    }
}

#[test]
fn without_a_daemon_the_same_search_runs_in_process() {
    let env = TestEnv::new();
    small_project(&env);
    wait_for_index(&env);
    let indexed = found(&env, "fn \\w+");
    let output = env.run(&["search", "--no-daemon", "fn \\w+"]);
    assert!(output.status.success());
    assert_eq!(stdout_of(&output), format!("{indexed}\n"));
    // An unusable runtime directory: the search still answers, and says why on stderr.
    let output = env
        .warm()
        .env("WARM_RUNTIME_DIR", "/proc/warm-cannot-be-here")
        .args(["search", "fn alpha"])
        .output()
        .expect("run");
    assert_exit(&output, 0, "searching without the index");
    assert_eq!(stdout_of(&output), "src/a.rs:fn alpha() {}\n");
    let output = env.run(&["search", "("]);
    assert_exit(&output, 2, "regex");
    let status = env.json(&["search", "--status"]);
    assert_eq!(status["files"], 2);
}

/// `data.warm` of the `--json` summary: where the searched files came from.
fn source_of(output: &Output) -> Value {
    stdout_of(output)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|m| m["type"] == "summary")
        .map(|summary| summary["data"]["warm"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn the_barrier_makes_every_change_visible_even_when_the_indexer_lags() {
    let env = TestEnv::new();
    small_project(&env);
    // The indexer sleeps 400 ms before applying each batch of events: only a barrier that
    // waits for it can make the next query see the change (the index alone is stale).
    start_search_with(&env, "WARM_SEARCH_TEST_APPLY_DELAY_MS", "400");
    for round in 0..5 {
        let token = format!("fresh_token_{round}");
        std::fs::write(
            env.project.join(format!("src/new{round}.rs")),
            format!("fn {token}() {{}}\n"),
        )
        .expect("write");
        let output = env.run(&["search", "--json", &token]);
        assert_eq!(output.status.code(), Some(0), "round {round}: not found");
        assert_eq!(
            source_of(&output),
            json!({ "source": "index" }),
            "round {round}"
        );
    }
    let status = env.json(&["search", "--status"]);
    let queries = &status["queries"];
    assert_eq!(queries["barrier_timeouts"], 0, "{queries}");
    assert!(queries["index"].as_u64() >= Some(5), "{queries}");
    // Each file was added to the index in place: one build, at start.
    let work = &status["work"];
    assert_eq!(work["builds"], 1, "{work}");
    assert!(work["updates"].as_u64() >= Some(5), "{work}");
    let text = stdout_of(&env.run(&["search", "--status"]));
    assert!(text.contains(" watch events, 1 builds, "), "{text}");
}

#[test]
fn each_answer_says_whether_the_index_or_a_scan_served_it() {
    let env = TestEnv::new();
    small_project(&env);
    let no_daemon = env.run(&["search", "--json", "--no-daemon", "alpha"]);
    assert_eq!(
        source_of(&no_daemon),
        json!({ "source": "scan", "why": "--no-daemon" })
    );
    wait_for_index(&env);
    let indexed = env.run(&["search", "--json", "alpha"]);
    assert_eq!(source_of(&indexed), json!({ "source": "index" }));
    let hidden = env.run(&["search", "--json", "--hidden", "alpha"]);
    assert_eq!(source_of(&hidden)["source"], "scan");
    assert_eq!(
        json_matches(&indexed),
        json_matches(&hidden),
        "both paths answer the same"
    );
}

/// `warm search ARGS` and `rg -n ARGS` in the project: both outputs, sorted.
/// The lines warm and the reference ripgrep print for `args`, in the order printed: warm's
/// order is ripgrep's `--sort path`.
fn both(env: &TestEnv, args: &[&str]) -> (Vec<String>, Vec<String>) {
    let lines =
        |output: Output| -> Vec<String> { stdout_of(&output).lines().map(str::to_owned).collect() };
    let warm = lines(run_in(env, &env.project, None, args));
    let rg = lines(run_in(
        env,
        &env.project,
        Some("rg"),
        &[&["--sort", "path"], args].concat(),
    ));
    (warm, rg)
}

#[test]
fn swapped_and_recreated_directories_are_indexed_as_they_are_now() {
    let env = TestEnv::new();
    small_project(&env);
    let p = &env.project;
    for (dir, token) in [("a", "token_of_a"), ("b", "token_of_b")] {
        std::fs::create_dir(p.join(dir)).expect("dir");
        std::fs::write(
            p.join(dir).join(format!("f{dir}.txt")),
            format!("{token}\n"),
        )
        .expect("f");
    }
    wait_for_index(&env);
    // mv a t; mv b a; mv t b
    std::fs::rename(p.join("a"), p.join("t")).expect("mv");
    std::fs::rename(p.join("b"), p.join("a")).expect("mv");
    std::fs::rename(p.join("t"), p.join("b")).expect("mv");
    let (warm, rg) = both(&env, &["token_of"]);
    assert_eq!(warm, rg);
    assert_eq!(warm, ["a/fb.txt:token_of_b", "b/fa.txt:token_of_a"]);
    // rm -rf a; mkdir a; files in it at once.
    for round in 0..5 {
        std::fs::remove_dir_all(p.join("a")).expect("rm -rf");
        std::fs::create_dir(p.join("a")).expect("mkdir");
        for i in 0..3 {
            std::fs::write(
                p.join(format!("a/new{i}.txt")),
                format!("round_{round}_{i}\n"),
            )
            .expect("new file");
        }
        let (warm, rg) = both(&env, &[&format!("round_{round}_")]);
        assert_eq!(warm, rg, "round {round}");
        assert_eq!(warm.len(), 3, "round {round}: {warm:?}");
    }
}

/// 300 directories moved (`mv z a`), then 300 more moved into them (`mv x a/b`), at once.
/// notify applies the watch changes of a batch of events after the batch (remove `z`'s
/// watch, add `a`'s), so a move into `a` made meanwhile is lost to it, `a/b` shares the
/// inotify watch of `x` (one per inode), and removing the watch of the path `x` next removes
/// `a/b`'s: nothing written in `a/b` would reach the index unless the service watches the
/// moved directories again. The rescans of new directories are turned off
/// (`WARM_SEARCH_TEST_RECENT_DIR_MS=0`), so only the watches can make the files written
/// later in each `a/b` appear.
#[test]
fn directories_moved_into_directories_just_moved_are_watched_under_their_real_paths() {
    const PAIRS: usize = 300;
    let env = TestEnv::new();
    small_project(&env);
    let p = &env.project;
    for i in 0..PAIRS {
        // Subdirectories make each of notify's re-watches of a moved directory take longer.
        for sub in 0..4 {
            std::fs::create_dir_all(p.join(format!("z{i}/s{sub}"))).expect("z");
        }
        std::fs::create_dir(p.join(format!("x{i}"))).expect("x");
    }
    start_search_with(&env, "WARM_SEARCH_TEST_RECENT_DIR_MS", "0");
    for i in 0..PAIRS {
        std::fs::rename(p.join(format!("z{i}")), p.join(format!("a{i}"))).expect("mv z a");
    }
    for i in 0..PAIRS {
        std::fs::rename(p.join(format!("x{i}")), p.join(format!("a{i}/b"))).expect("mv x a/b");
    }
    // A barrier: every move is applied before the files are written.
    assert_eq!(found(&env, "fn alpha"), "src/a.rs:fn alpha() {}");
    for i in 0..PAIRS {
        std::fs::write(p.join(format!("a{i}/b/late.txt")), format!("late_{i}\n")).expect("w");
    }
    let (warm, rg) = both(&env, &["-l", "late_"]);
    assert_eq!(rg.len(), PAIRS);
    assert_eq!(warm, rg);
    let work = &env.json(&["search", "--status"])["work"];
    assert_eq!(
        work["builds"], 1,
        "kept right in place, not rebuilt: {work}"
    );
}

#[test]
fn edits_under_a_symlinked_directory_are_seen_at_their_real_path() {
    let env = TestEnv::new();
    small_project(&env);
    let p = &env.project;
    std::fs::create_dir(p.join("real")).expect("real");
    std::fs::write(p.join("real/r.txt"), "before_edit\n").expect("r");
    // Named to sort after the real directory, as `tk -> tcl8.6` in /usr/include: a watcher that
    // followed it would report the real files under this alias.
    std::os::unix::fs::symlink("real", p.join("zz-alias")).expect("symlink");
    wait_for_index(&env);
    std::fs::write(p.join("real/r.txt"), "after_edit\n").expect("edit");
    std::fs::write(p.join("real/s.txt"), "after_edit too\n").expect("new");
    let (warm, rg) = both(&env, &["after_edit"]);
    assert_eq!(warm, rg);
    assert_eq!(warm.len(), 2, "{warm:?}");
}

#[test]
fn a_barrier_that_times_out_scans_instead_of_answering_stale() {
    let env = TestEnv::new();
    small_project(&env);
    // The indexer takes longer than the barrier waits: the index cannot be shown current.
    start_search_with(&env, "WARM_SEARCH_TEST_APPLY_DELAY_MS", "3000");
    std::fs::write(env.project.join("src/late.rs"), "fn arrived_late() {}\n").expect("write");
    let output = env.run(&["search", "--json", "arrived_late"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the change was missed: {}",
        stderr_of(&output)
    );
    assert_eq!(
        source_of(&output)["source"],
        "scan",
        "a stale index must not answer"
    );
    assert_eq!(
        env.json(&["search", "--status"])["queries"]["barrier_timeouts"],
        1
    );
}

#[test]
fn a_checkout_of_a_branch_differing_in_many_files_is_seen_by_the_next_query() {
    let env = TestEnv::new();
    let p = &env.project;
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(p)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::create_dir(p.join("src")).expect("src");
    for i in 0..400 {
        std::fs::write(
            p.join(format!("src/f{i}.rs")),
            format!("fn main_{i}() {{}}\n"),
        )
        .expect("f");
    }
    git(&["add", "."]);
    git(&["commit", "-qm", "main"]);
    git(&["checkout", "-qb", "other"]);
    for i in 0..400 {
        std::fs::write(
            p.join(format!("src/f{i}.rs")),
            format!("fn other_{i}() {{}}\n"),
        )
        .expect("f");
    }
    for i in 400..700 {
        std::fs::write(
            p.join(format!("src/g{i}.rs")),
            format!("fn other_{i}() {{}}\n"),
        )
        .expect("g");
    }
    git(&["add", "."]);
    git(&["commit", "-qm", "other"]);
    git(&["checkout", "-q", "main"]);
    wait_for_index(&env);
    git(&["checkout", "-q", "other"]);
    let (warm, rg) = both(&env, &["fn other_"]);
    assert_eq!(warm.len(), 700);
    assert_eq!(warm, rg);
    git(&["checkout", "-q", "main"]);
    let (warm, rg) = both(&env, &["fn (other|main)_"]);
    assert_eq!(warm.len(), 400);
    assert_eq!(warm, rg);
    // From the index both times, not from a fallback scan.
    let queries = &env.json(&["search", "--status"])["queries"];
    assert_eq!(queries["index"], 2, "{queries}");
}

#[test]
fn a_project_directory_deleted_and_recreated_is_never_answered_from_the_old_tree() {
    let env = TestEnv::new();
    small_project(&env);
    wait_for_index(&env);
    let old = env.only_daemon();
    // rm -rf repo && git clone ...: the same path, another directory.
    std::fs::remove_dir_all(&env.project).expect("rm -rf");
    std::fs::create_dir(&env.project).expect("mkdir");
    small_project(&env);
    std::fs::write(env.project.join("src/a.rs"), "fn alpha_recloned() {}\n").expect("a");
    let output = env.run(&["search", "--json", "alpha"]);
    assert_eq!(
        source_of(&output)["source"],
        "scan",
        "not from the deleted tree's index"
    );
    let (warm, rg) = both(&env, &["alpha"]);
    assert_eq!(warm, rg);
    assert_eq!(warm, ["src/a.rs:fn alpha_recloned() {}"]);
    // The old daemon stopped; the next one indexes the new directory.
    assert!(
        wait_until(Duration::from_secs(10), || !crate::support::is_running(old)),
        "the old daemon is still running"
    );
    wait_for_index(&env);
    let output = env.run(&["search", "--json", "alpha_recloned"]);
    assert_eq!(source_of(&output), json!({ "source": "index" }));
    assert!(stdout_of(&output).contains("alpha_recloned"));
}

#[test]
fn symlinks_created_after_the_build_are_not_followed_as_rg_does_not() {
    let env = TestEnv::new();
    small_project(&env);
    wait_for_index(&env);
    std::os::unix::fs::symlink("src/a.rs", env.project.join("link.rs")).expect("file link");
    std::os::unix::fs::symlink("src", env.project.join("linkdir")).expect("dir link");
    let (warm, rg) = both(&env, &["alpha"]);
    assert_eq!(warm, rg);
    assert_eq!(warm, ["src/a.rs:fn alpha() {}"]);
}

#[test]
fn an_edit_of_gits_global_excludes_file_is_seen_by_the_next_query() {
    let env = TestEnv::new();
    small_project(&env);
    // TestEnv points XDG_CONFIG_HOME at tmp/config: git's global excludes are
    // tmp/config/git/ignore, for warm and for rg alike (HOME too, so no real config leaks in).
    let home = env.tmp.path().to_owned();
    let excludes = home.join("config/git/ignore");
    std::fs::create_dir_all(excludes.parent().expect("dir")).expect("git config dir");
    std::fs::write(&excludes, "").expect("global excludes");
    let search = |args: &[&str], program: Option<&str>| {
        let mut command = match program {
            Some(_) => Command::new(crate::support::reference_rg()),
            None => {
                let mut warm = env.warm();
                warm.arg("search");
                warm
            }
        };
        let output = command
            .current_dir(&env.project)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .args(args)
            .output()
            .expect("search");
        let mut lines: Vec<String> = stdout_of(&output).lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    search(&["fn"], None);
    wait_for_index(&env);
    assert_eq!(search(&["fn"], None).len(), 2);
    std::fs::write(&excludes, "b.rs\n").expect("edit global excludes");
    let warm = search(&["fn"], None);
    assert_eq!(warm, search(&["fn"], Some("rg")));
    assert_eq!(warm, ["src/a.rs:fn alpha() {}"]);
}

/// Unmounts a FUSE mount when the test ends, however it ends (lazily: a daemon may still have
/// it open until the TestEnv kills it).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A project on a file system whose changes inotify does not see (a FUSE mount here; NFS,
/// SMB and 9p alike): a change made behind the mount, in the backing directory, is seen by the
/// next query, because the daemon never answers from an index there.
#[test]
fn a_project_on_a_fuse_mount_never_answers_from_a_stale_index() {
    let env = TestEnv::new();
    let backing = env.tmp.path().join("backing");
    std::fs::create_dir_all(backing.join(".git")).expect("backing");
    std::fs::write(backing.join("a.txt"), "alpha_before\n").expect("a.txt");
    let mounted = Command::new("bindfs")
        .arg(&backing)
        .arg(&env.project)
        .status()
        .expect("bindfs is installed by scripts/setup-tests");
    assert!(mounted.success(), "bindfs mount failed");
    let _mount = Mount(env.project.clone());
    assert_eq!(found(&env, "alpha_before"), "a.txt:alpha_before");
    // Whatever the daemon decided (an index, or none), it has decided.
    assert!(wait_until(Duration::from_secs(60), || {
        let status = env.json(&["search", "--status"]);
        status["ready"] == true || status["refused"].is_string()
    }));
    // Behind the mount: inotify on the mount never hears of it.
    std::fs::write(backing.join("a.txt"), "alpha_after\n").expect("edit behind the mount");
    assert_eq!(found(&env, "alpha_after"), "a.txt:alpha_after");
    let status = env.json(&["search", "--status"]);
    assert!(
        status["refused"]
            .as_str()
            .is_some_and(|r| r.contains("fuse file system")),
        "{status}"
    );
    let (warm, rg) = both(&env, &["alpha"]);
    assert_eq!(warm, rg);
}

/// The index builds at nice 10, but the watcher's thread, which drains the kernel's event
/// queue while the build opens every file, runs at the daemon's own priority: a thread takes
/// its creator's nice value, and the watcher used to be created after the indexer thread
/// lowered its own.
#[test]
fn the_watchers_thread_is_not_niced_with_the_build() {
    let env = TestEnv::new();
    small_project(&env);
    wait_for_index(&env);
    let pid = env.json(&["-s", "search", "status"])["pid"]
        .as_u64()
        .expect("daemon pid");
    let mut nice = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).expect("comm");
        let stat = std::fs::read_to_string(task.path().join("stat")).expect("stat");
        let value: i64 = proc_stat_field(&stat, 19)
            .and_then(|n| n.parse().ok())
            .expect("nice");
        nice.insert(comm.trim().to_owned(), value);
    }
    assert_eq!(nice.get("warm-search-ind"), Some(&10), "{nice:?}");
    let watcher = nice
        .iter()
        .find(|(comm, _)| comm.starts_with("notify-rs"))
        .map(|(_, n)| *n);
    assert_eq!(watcher, Some(0), "{nice:?}");
}
