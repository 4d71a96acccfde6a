//! Tests that run warm as a dedicated user (nobody): the inotify budget (one user's search
//! daemons in 200 projects never take more than their share of the user's inotify instances,
//! another program of that user can always create one, every answer still equals ripgrep's),
//! so that the count is theirs alone whatever the tests beside them hold; and files that user
//! cannot read, which root always can.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::support::*;

const NOBODY: u32 = 65534;

/// Inotify instances held by processes of `uid`.
fn instances_of(uid: u32) -> usize {
    use std::os::unix::fs::MetadataExt;
    let mut count = 0;
    for process in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if !process.metadata().is_ok_and(|m| m.uid() == uid) {
            continue;
        }
        for fd in std::fs::read_dir(process.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:inotify") {
                count += 1;
            }
        }
    }
    count
}

/// Whether a program of `uid` can create an inotify instance now (`inotify_init1`, syscall 294
/// on x86_64, from perl: a program that is not warm).
fn another_program_can_watch(uid: u32) -> bool {
    let mut command = Command::new("/usr/bin/perl");
    command
        .args(["-e", "exit(syscall(294, 0) >= 0 ? 0 : 1)"])
        .uid(uid)
        .gid(uid);
    command.status().expect("run perl").success()
}

fn max_user_instances() -> usize {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .expect("inotify limit")
        .trim()
        .parse()
        .expect("a number")
}

#[test]
#[cfg(target_arch = "x86_64")]
fn two_hundred_projects_never_exhaust_the_users_inotify_instances() {
    let env = TestEnv::new();
    let world = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(env.tmp.path(), world.clone()).expect("chmod tmp");
    // Runnable by nobody wherever the workspace lives.
    let warm = env.tmp.path().join("warm");
    std::fs::copy(WARM, &warm).expect("copy warm");
    // The test's own runtime dir, handed to nobody: whatever happens, the TestEnv kills every
    // process started with it.
    let runtime = env.runtime_dir.clone();
    std::os::unix::fs::chown(&runtime, Some(NOBODY), Some(NOBODY)).expect("chown: needs root");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let budget = max_user_instances() - (max_user_instances() / 4).max(8);
    let search = |project: &Path, args: &[&str]| {
        Command::new(&warm)
            .current_dir(project)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("WARM_RUNTIME_DIR", &runtime)
            .env("HOME", project)
            // No cap on the number of daemons: the instance budget alone must hold.
            .env("WARM_MAX_SEARCH_DAEMONS", "100000")
            .arg("search")
            .args(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run warm search as nobody")
    };
    let mut most = 0;
    for i in 0..200 {
        let project = env.tmp.path().join(format!("p{i}"));
        std::fs::create_dir_all(project.join(".git")).expect("project");
        std::fs::write(project.join("a.txt"), format!("needle {i}\nhay\n")).expect("a.txt");
        std::fs::set_permissions(&project, world.clone()).expect("chmod project");
        let output = search(&project, &["-n", "needle"]);
        let expected = Command::new(crate::support::reference_rg())
            .current_dir(&project)
            .args(["-n", "needle"])
            .output()
            .expect("rg");
        assert_eq!(
            stdout_of(&output),
            stdout_of(&expected),
            "project {i}: {}",
            stderr_of(&output)
        );
        let held = instances_of(NOBODY);
        most = most.max(held);
        assert!(
            held <= budget,
            "project {i}: {held} instances, over the budget of {budget}"
        );
        assert!(
            another_program_can_watch(NOBODY),
            "project {i}: inotify_init failed for the user"
        );
    }
    // The last project's daemon watches (its peers were evicted to make room), and says so.
    let last = env.tmp.path().join("p199");
    let status: serde_json::Value =
        serde_json::from_slice(&search(&last, &["--status", "--json"]).stdout).expect("status");
    assert_eq!(status["watching"], true, "{status}");
    assert!(
        status["inotify"]["max_instances"].as_u64().is_some(),
        "{status}"
    );
    assert_eq!(most, budget, "the daemons filled the budget, and no more");
    // Stop them all (as nobody: the runtime dir is theirs).
    let _ = Command::new(&warm)
        .env("WARM_RUNTIME_DIR", &runtime)
        .args(["stop", "--all"])
        .uid(NOBODY)
        .gid(NOBODY)
        .output();
}

/// A world-readable copy of warm, a runtime dir owned by nobody and a project dir for nobody.
fn nobody_setup(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    let world = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(env.tmp.path(), world.clone()).expect("chmod tmp");
    let warm = env.tmp.path().join("warm");
    std::fs::copy(WARM, &warm).expect("copy warm");
    std::os::unix::fs::chown(&env.runtime_dir, Some(NOBODY), Some(NOBODY)).expect("chown");
    std::os::unix::fs::chown(&env.project, Some(NOBODY), Some(NOBODY)).expect("chown");
    std::fs::set_permissions(&env.project, world).expect("chmod project");
    (warm, env.runtime_dir.clone())
}

#[test]
fn an_unreadable_file_is_reported_as_rg_reports_it_and_found_once_readable() {
    let env = TestEnv::new();
    let (warm, runtime) = nobody_setup(&env);
    let p = &env.project;
    std::fs::create_dir(p.join(".git")).expect(".git");
    for (name, mode) in [("open.txt", 0o644), ("secret.txt", 0o000)] {
        std::fs::write(p.join(name), "needle\n").expect("write");
        std::os::unix::fs::chown(p.join(name), Some(NOBODY), Some(NOBODY)).expect("chown");
        std::fs::set_permissions(p.join(name), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    let as_nobody = |program: &Path, args: &[&str]| {
        Command::new(program)
            .current_dir(p)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("WARM_RUNTIME_DIR", &runtime)
            .env("HOME", p)
            .args(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run as nobody")
    };
    let status = || -> serde_json::Value {
        serde_json::from_slice(&as_nobody(&warm, &["search", "--status", "--json"]).stdout)
            .unwrap_or_default()
    };
    as_nobody(&warm, &["search", "needle"]);
    assert!(
        wait_until(std::time::Duration::from_secs(30), || status()["ready"]
            == true),
        "{}",
        status()
    );
    // The reference ripgrep, copied where nobody can run it.
    let rg = env.tmp.path().join("rg");
    std::fs::copy(crate::support::reference_rg(), &rg).expect("copy rg");
    let compare = |round: &str| {
        let warm_out = as_nobody(&warm, &["search", "needle"]);
        let rg_out = as_nobody(&rg, &["needle"]);
        assert_eq!(
            warm_out.status.code(),
            rg_out.status.code(),
            "{round}: {}",
            stderr_of(&warm_out)
        );
        // rg prints files in no fixed order.
        let sorted = |output: &std::process::Output| {
            let mut lines: Vec<String> = stdout_of(output).lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&warm_out), sorted(&rg_out), "{round}");
        warm_out
    };
    let from_index = |status: serde_json::Value| status["queries"]["index"].as_u64().unwrap_or(0);
    let before = from_index(status());
    let output = compare("unreadable");
    assert!(
        stderr_of(&output).contains("secret.txt"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(output.status.code(), Some(2));
    std::fs::set_permissions(p.join("secret.txt"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod 644");
    let output = compare("readable again");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        from_index(status()),
        before + 2,
        "both from the index: {}",
        status()
    );
}
