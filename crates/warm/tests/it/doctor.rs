//! `warm doctor`: each check reported, problems named with their fix, nothing changed.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::{stderr_of, TestEnv};

/// `warm doctor --json`: its exit code and the checks by name.
fn doctor(env: &TestEnv, trust_all: bool) -> (i32, Vec<Value>) {
    let mut command = env.warm();
    if !trust_all {
        command.env_remove("WARM_TRUST_ALL");
    }
    let output = command
        .args(["doctor", "--json"])
        .output()
        .expect("run doctor");
    let checks: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&output)));
    (output.status.code().unwrap_or(-1), checks)
}

fn find<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

#[test]
fn a_healthy_setup_passes_and_every_check_is_reported() {
    let env = TestEnv::new();
    env.ok(&["-s", "echo", "start"]);
    let (code, checks) = doctor(&env, true);
    assert_eq!(code, 0, "{checks:?}");
    for name in [
        "runtime directory",
        "daemons",
        "free space",
        "inotify",
        "ripgrep (for the shim)",
        "lsp pylsp",
        "project",
    ] {
        let check = find(&checks, name);
        assert_ne!(check["verdict"], "fail", "{check}");
    }
    assert_eq!(find(&checks, "daemons")["detail"], "1 running");
    let text = env.ok(&["doctor"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok    runtime directory")),
        "{text}"
    );
}

#[test]
fn problems_are_named_with_their_fix_and_nothing_is_changed() {
    let env = TestEnv::new();
    // A dead daemon's directory, an untrusted .warm.toml, then an open runtime directory.
    let stale = env.runtime_dir.join("default-0123456789abcdef");
    std::fs::create_dir(&stale).expect("stale dir");
    std::fs::write(stale.join("lock"), "").expect("lock");
    env.write_config("[services.tool]\ncommand = [\"true\"]\n");
    let (code, checks) = doctor(&env, false);
    assert_eq!(code, 0, "notes do not fail: {checks:?}");
    let stale_check = find(&checks, "stale daemon files");
    assert_eq!(stale_check["verdict"], "info");
    assert!(stale_check["fix"]
        .as_str()
        .unwrap_or("")
        .contains("warm list"));
    assert!(stale.exists(), "doctor removes nothing");
    let project = find(&checks, "project");
    assert!(
        project["fix"].as_str().unwrap_or("").contains("warm trust"),
        "{project}"
    );

    env.write_config("[services.tool]\nttll = 1\n");
    let (code, checks) = doctor(&env, true);
    assert_eq!(code, 1);
    let project = find(&checks, "project");
    assert_eq!(project["verdict"], "fail");
    assert!(
        project["detail"].as_str().unwrap_or("").contains("ttll"),
        "{project}"
    );

    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(&env.runtime_dir, open).expect("chmod 755");
    let (code, checks) = doctor(&env, true);
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(&env.runtime_dir, private).expect("chmod 700");
    assert_eq!(code, 1);
    let runtime = find(&checks, "runtime directory");
    assert_eq!(runtime["verdict"], "fail", "{runtime}");
    assert!(
        runtime["fix"].as_str().unwrap_or("").contains("chmod 700"),
        "{runtime}"
    );
}

#[test]
fn systemd_units_are_listed_and_one_naming_a_gone_binary_is_named_with_its_fix() {
    let env = TestEnv::new();
    let (_, checks) = doctor(&env, true);
    assert_eq!(find(&checks, "systemd units")["verdict"], "info");
    // In the test's own XDG_CONFIG_HOME.
    let installed: Value =
        serde_json::from_str(&env.ok(&["-s", "echo", "systemd", "install", "--json"]))
            .expect("json");
    let unit = installed["unit"].as_str().expect("unit").to_owned();
    let (_, checks) = doctor(&env, true);
    let check = find(&checks, "systemd units");
    assert_eq!(check["verdict"], "ok", "{check}");
    assert_eq!(check["detail"], unit.as_str());

    let service = env
        .tmp
        .path()
        .join(format!("config/systemd/user/{unit}.service"));
    let text = std::fs::read_to_string(&service).expect("the service unit");
    let moved = text.replace("ExecStart=\"", "ExecStart=\"/gone");
    std::fs::write(&service, moved).expect("edit the unit");
    let (code, checks) = doctor(&env, true);
    assert_eq!(code, 0, "a warning does not fail");
    let check = find(&checks, "systemd units");
    assert_eq!(check["verdict"], "warn", "{check}");
    assert!(
        check["fix"]
            .as_str()
            .unwrap_or("")
            .contains("warm systemd install"),
        "{check}"
    );
}
