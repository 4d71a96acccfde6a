//! Workspace trust: a cloned repository's `.warm.toml` runs nothing until the user trusts it,
//! for its exact content.

use std::path::Path;

use crate::support::*;

/// A repository whose `.warm.toml` would leave a marker file (and then serve, in Python).
fn cloned_repository() -> TestEnv {
    let env = TestEnv::new();
    std::fs::create_dir(env.project.join(".git")).expect(".git");
    std::fs::write(env.project.join("worker.py"), WORKER).expect("worker.py");
    std::fs::write(env.project.join("notes.txt"), "hello\n").expect("notes.txt");
    env.write_config(&config("marker"));
    env
}

const WORKER: &str = r#"import json, sys
for line in sys.stdin:
    request = json.loads(line)
    if "id" in request:
        print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "ran"}), flush=True)
"#;

fn config(marker: &str) -> String {
    format!(
        "[services.app]\ncommand = [\"sh\", \"-c\", \"touch {marker}; exec {} worker.py\"]\n\
         [services.ls]\ncommand = [\"sh\", \"-c\", \"touch {marker}-lsp; sleep 5\"]\nframing = \"lsp\"\nfiles = [\"*.txt\"]\n",
        python()
    )
}

/// `warm ARGS` as a user who trusts nothing yet.
fn untrusting(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.warm()
        .env_remove("WARM_TRUST_ALL")
        .args(args)
        .output()
        .expect("run warm")
}

fn markers(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("project")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("marker"))
        .collect();
    found.sort();
    found
}

#[test]
fn an_untrusted_warm_toml_runs_nothing_until_trusted_and_again_after_an_edit() {
    let env = cloned_repository();
    for args in [
        &["-s", "app", "call", "version"][..],
        &["-s", "app", "start"],
        &["-s", "app", "keepalive", "--", "true"],
        &["lsp", "hover", "notes.txt:1:1"],
    ] {
        let output = untrusting(&env, args);
        assert_exit(&output, 2, "is not trusted");
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains(&format!("warm trust {}", env.project.display()))
                && stderr.contains("touch marker"),
            "the message shows the command and the trust line: {stderr}"
        );
        assert_eq!(
            markers(&env.project),
            Vec::<String>::new(),
            "warm {args:?} ran a command"
        );
    }
    assert!(
        env.daemon_pids().is_empty(),
        "no daemon for an untrusted file"
    );

    let output = untrusting(&env, &["trust"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains("may run: sh -c touch marker"),
        "{}",
        stdout_of(&output)
    );
    let output = untrusting(&env, &["-s", "app", "call", "version"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).trim(), "\"ran\"");
    assert_eq!(markers(&env.project), ["marker"]);

    // An edit (a `git pull`) needs trust again: no new command runs meanwhile.
    env.write_config(&config("marker2"));
    let output = untrusting(&env, &["-s", "app", "call", "version"]);
    assert_exit(&output, 2, "is not trusted");
    assert_eq!(markers(&env.project), ["marker"]);
    // What runs already can still be looked at and stopped.
    assert!(untrusting(&env, &["-s", "app", "status"]).status.success());
    assert!(untrusting(&env, &["-s", "app", "stop"]).status.success());

    let output = untrusting(&env, &["trust", "--revoke"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(untrusting(&env, &["trust", "--list"]).stdout.is_empty());
}

#[test]
fn a_repository_cannot_give_a_built_in_service_a_command() {
    let env = cloned_repository();
    env.write_config("[services.search]\ncommand = [\"sh\", \"-c\", \"touch marker\"]\n");
    // The search answers (a search never fails for the daemon's sake: it scans), says why,
    // and runs nothing.
    let output = untrusting(&env, &["search", "hello"]);
    assert_exit(
        &output,
        0,
        "search is a built-in service and runs no command",
    );
    // Even a trusting user: the file is refused, not trusted into running.
    let output = env.run(&["search", "hello"]);
    assert_exit(&output, 0, "built-in service");
    assert_eq!(markers(&env.project), Vec::<String>::new());
    // Its TTL and limits remain the repository's to set.
    env.write_config("[services.search]\nttl = \"1h\"\n");
    let output = untrusting(&env, &["search", "hello"]);
    assert_eq!(
        stdout_of(&output),
        "notes.txt:hello\n",
        "{}",
        stderr_of(&output)
    );
}
