//! `warm systemd install` and socket activation: the units it writes are checked by
//! `systemd-analyze verify`, and their command runs under the real activation protocol
//! (`systemd-socket-activate`, which execs the service once), and under a manager that keeps
//! the socket across the daemon's exits (tests/it/workers/socket_manager.py), as systemd does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// What the units of one daemon say: the socket systemd listens on, the command and the
/// environment it runs the daemon with.
struct Units {
    socket: PathBuf,
    exec: Vec<String>,
    environment: Vec<(String, String)>,
}

fn install(env: &TestEnv, service: &str) -> Units {
    let unit_dir = env.tmp.path().join("units");
    let unit_dir_text = unit_dir.display().to_string();
    let answer = env.json(&[
        "-s",
        service,
        "systemd",
        "install",
        "--unit-dir",
        &unit_dir_text,
    ]);
    let files: Vec<PathBuf> = answer["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| PathBuf::from(f.as_str().expect("a path")))
        .collect();
    let unit = |suffix: &str| {
        let file = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == suffix))
            .unwrap_or_else(|| panic!("no .{suffix} in {files:?}"));
        std::fs::read_to_string(file).expect("read the unit")
    };
    let value = |text: &str, key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in\n{text}"))
            .to_owned()
    };
    let socket_unit = unit("socket");
    let service_unit = unit("service");
    let socket = PathBuf::from(value(&socket_unit, "ListenStream").replace("%%", "%"));
    assert_eq!(json!(socket), answer["socket"]);
    let exec = systemd_words(&value(&service_unit, "ExecStart"));
    let environment = systemd_words(&value(&service_unit, "Environment"))
        .into_iter()
        .map(|word| {
            let (name, value) = word.split_once('=').expect("NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    Units {
        socket,
        exec,
        environment,
    }
}

/// The words of a unit's command line or assignment list, as systemd splits and unquotes
/// them (systemd.syntax(7): double quotes, backslash escapes, `%%` and `$$`).
fn systemd_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        while chars.next_if(|c| *c == ' ').is_some() {}
        let Some(first) = chars.next() else { break };
        let mut word = String::new();
        if first == '"' {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => word.push(chars.next().expect("an escaped character")),
                    c => word.push(c),
                }
            }
        } else {
            word.push(first);
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                word.push(c);
            }
        }
        words.push(word.replace("%%", "%").replace("$$", "$"));
    }
    words
}

/// A process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where systemd would create the socket: its directory, private.
fn socket_dir(units: &Units) {
    let dir = units.socket.parent().expect("the socket's directory");
    std::fs::create_dir_all(dir).expect("the daemon's directory");
    std::fs::set_permissions(
        dir,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
    )
    .expect("chmod");
}

fn wait_for_socket(socket: &Path) {
    assert!(
        wait_until(Duration::from_secs(10), || socket.exists()),
        "nothing listens on {}",
        socket.display()
    );
}

#[test]
fn the_units_pass_systemd_analyze_verify_whatever_the_project_path() {
    let env = TestEnv::new();
    // A root that needs quoting and escaping in a unit file.
    let root = env.project.join("my 100% \"app\"");
    std::fs::create_dir(&root).expect("root");
    std::fs::create_dir(root.join(".git")).expect(".git");
    let mut install = env.warm();
    install.current_dir(&root);
    let unit_dir = env.tmp.path().join("units");
    let output = install
        .args(["-s", "search", "systemd", "install", "--unit-dir"])
        .arg(&unit_dir)
        .output()
        .expect("warm systemd install");
    let text = stdout_if_exited(&output, 0, "warm systemd install");
    assert!(
        text.contains("systemctl --user enable --now warm-search-"),
        "{text}"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(&unit_dir)
        .expect("units")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
        .expect("systemd-analyze (apt install systemd)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        stderr_of(&verify)
    );
    let service = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "service"))
        .expect("a service unit");
    let exec = systemd_words(
        std::fs::read_to_string(service)
            .expect("read")
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart"),
    );
    assert_eq!(exec[1..4], ["serve", "--service", "search"]);
    assert_eq!(exec[5], root.display().to_string());

    let mut uninstall = env.warm();
    uninstall.current_dir(&root);
    let output = uninstall
        .args(["-s", "search", "systemd", "uninstall", "--unit-dir"])
        .arg(&unit_dir)
        .output()
        .expect("warm systemd uninstall");
    let text = stdout_if_exited(&output, 0, "warm systemd uninstall");
    assert!(text.contains("disable --now"), "{text}");
    assert!(files.iter().all(|f| !f.exists()), "{files:?}");
}

#[test]
fn fifty_first_calls_through_an_activated_socket_share_one_daemon() {
    let env = TestEnv::new();
    let units = install(&env, "echo");
    socket_dir(&units);
    let mut activate = Command::new("systemd-socket-activate");
    activate.arg("-l").arg(&units.socket);
    for (name, value) in &units.environment {
        activate.arg("-E").arg(format!("{name}={value}"));
    }
    let _manager = Killed(
        activate
            .args(&units.exec)
            .env("WARM_RUNTIME_DIR", &env.runtime_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-socket-activate (apt install systemd)"),
    );
    wait_for_socket(&units.socket);
    let outputs = run_concurrently(50, || {
        let mut call = env.warm();
        call.args(["-s", "echo", "call", "echo", "[\"first\"]"]);
        call
    });
    for output in &outputs {
        assert_eq!(stdout_if_exited(output, 0, "a first call"), "[\"first\"]\n");
    }
    env.only_daemon();
    assert_eq!(env.spawn_count("echo"), 0, "a client started a daemon");
    let ready = env.events("echo");
    assert!(
        ready
            .iter()
            .any(|e| e["event"] == "daemon.ready" && e["activated"] == true),
        "{ready:?}"
    );
}

/// The socket manager of tests/it/workers/socket_manager.py, running the units' command.
struct Manager {
    _process: Killed,
    log: PathBuf,
}

impl Manager {
    fn start(env: &TestEnv, units: &Units) -> Manager {
        Manager::dropping(env, units, 0)
    }

    /// A manager whose first `drops` connections are closed unanswered.
    fn dropping(env: &TestEnv, units: &Units, drops: usize) -> Manager {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/workers/socket_manager.py");
        let log = env.tmp.path().join("manager.jsonl");
        let process = Command::new(python())
            .arg(script)
            .arg(&units.socket)
            .args(&units.exec)
            .envs(units.environment.iter().cloned())
            .env("NOTIFY_PATH", env.tmp.path().join("notify"))
            .env("DROP_CONNECTIONS", drops.to_string())
            .stdout(std::fs::File::create(&log).expect("manager log"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the socket manager");
        wait_for_socket(&units.socket);
        Manager {
            _process: Killed(process),
            log,
        }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    fn starts(&self) -> Vec<Value> {
        self.of("start")
    }

    fn of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// Whether `pid` sent a note with the line `line`.
    fn noted(&self, pid: &Value, line: &str) -> bool {
        self.of("notify").iter().any(|e| {
            &e["pid"] == pid
                && e["lines"]
                    .as_array()
                    .is_some_and(|l| l.contains(&json!(line)))
        })
    }
}

fn call_echo(env: &TestEnv, word: &str) {
    let output = env.run(&["-s", "echo", "call", "echo", &format!("[\"{word}\"]")]);
    assert_eq!(
        stdout_if_exited(&output, 0, "warm call"),
        format!("[\"{word}\"]\n")
    );
}

#[test]
fn after_an_idle_exit_or_warm_stop_the_next_call_reactivates_the_daemon() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\nttl = 1\n");
    let units = install(&env, "echo");
    let manager = Manager::start(&env, &units);

    call_echo(&env, "one");
    let first = manager.starts()[0]["pid"].clone();
    assert!(
        wait_until(Duration::from_secs(5), || manager.noted(&first, "READY=1")),
        "{:?}",
        manager.events()
    );
    // Idle for its TTL, it exits cleanly and says so; the socket stays the manager's.
    assert!(
        wait_until(Duration::from_secs(10), || manager
            .of("exit")
            .iter()
            .any(|e| e["pid"] == first && e["code"] == 0)),
        "{:?}",
        manager.events()
    );
    assert!(
        manager.noted(&first, "STOPPING=1"),
        "{:?}",
        manager.events()
    );
    assert!(units.socket.exists());
    // Not a dead daemon's files: listed as such, kept, and not started by being looked at.
    let listed = env.json(&["list"]);
    assert_eq!(listed[0]["state"], "activatable", "{listed}");
    let doctor = env.json(&["doctor"]);
    let stale = doctor
        .as_array()
        .is_some_and(|checks| checks.iter().any(|c| c["check"] == "stale daemon files"));
    assert!(!stale, "{doctor}");
    env.ok(&["stop", "--all"]);
    assert!(units.socket.exists());
    assert_eq!(manager.starts().len(), 1, "{:?}", manager.events());

    call_echo(&env, "two");
    let starts = manager.starts();
    assert_eq!(starts.len(), 2, "{starts:?}");
    let second = starts[1]["pid"].clone();
    assert_ne!(second, first);

    let stop = env.run(&["-s", "echo", "stop"]);
    stdout_if_exited(&stop, 0, "warm stop");
    assert!(wait_until(Duration::from_secs(10), || manager
        .of("exit")
        .iter()
        .any(|e| e["pid"] == second && e["code"] == 0)));
    // Stopped, it is not started again until someone connects.
    assert!(!wait_until(Duration::from_secs(2), || manager
        .starts()
        .len()
        > 2));
    call_echo(&env, "three");
    assert_eq!(manager.starts().len(), 3);
    assert_eq!(env.spawn_count("echo"), 0, "a client started a daemon");
}

#[test]
fn calls_racing_idle_exits_are_all_answered_by_reactivated_daemons() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\nttl = \"300ms\"\n");
    let units = install(&env, "echo");
    let manager = Manager::start(&env, &units);
    // Calls spaced around the TTL (the pauses are the workload, not a wait for anything):
    // some arrive as the daemon decides to exit.
    for (i, pause_ms) in [250u64, 300, 320, 280, 340, 300, 310, 290, 330, 305]
        .into_iter()
        .enumerate()
    {
        call_echo(&env, &format!("call {i}"));
        std::thread::sleep(Duration::from_millis(pause_ms));
    }
    assert!(manager.starts().len() >= 2, "{:?}", manager.events());
    assert_eq!(env.spawn_count("echo"), 0, "a client started a daemon");
}

#[test]
fn a_client_finding_no_daemon_behind_a_managed_socket_waits_for_the_manager_to_start_one() {
    let env = TestEnv::new();
    let units = install(&env, "echo");
    // Two connections dropped: the client's first look, and its second under spawn.lock.
    // Then, with the daemon's lock free, the socket file looks like a dead daemon's; it is
    // not, and the manager starts the daemon for the client's next connection.
    let manager = Manager::dropping(&env, &units, 2);
    let start = env.json(&["-s", "echo", "start"]);
    assert_eq!(manager.of("dropped").len(), 2, "{:?}", manager.events());
    assert_eq!(manager.starts().len(), 1, "{:?}", manager.events());
    assert_eq!(start["pid"], manager.starts()[0]["pid"]);
    assert_eq!(env.spawn_count("echo"), 0, "a client started a daemon");
    assert!(units.socket.exists());
}

#[test]
fn a_daemon_started_by_hand_leaves_a_socket_a_manager_listens_on_alone() {
    let env = TestEnv::new();
    let units = install(&env, "echo");
    socket_dir(&units);
    let _listening = std::os::unix::net::UnixListener::bind(&units.socket).expect("bind");
    let output = env.run(&["-s", "echo", "serve"]);
    assert_exit(&output, 3, "a service manager listens on");
    assert!(units.socket.exists());
}
