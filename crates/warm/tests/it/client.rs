//! The `warm-client` library against real daemons: a persistent client survives restarts.

use serde_json::json;
use warm_client::{Client, DaemonSpec, Error, SpawnCommand};
use warm_protocol::Framing;
use warm_runtime::{ClientSettings, Identity};

use crate::support::*;

fn client(env: &TestEnv, service: &str) -> Client {
    let spec = DaemonSpec {
        identity: Identity::new(service, &env.project).expect("identity"),
        runtime_dir: env.runtime_dir.clone(),
        spawn: SpawnCommand::new(WARM)
            .arg("serve")
            .arg("-s")
            .arg(service)
            .arg("--root")
            .arg(&env.project),
        version: env!("CARGO_PKG_VERSION").into(),
        config_hash: None,
        settings: ClientSettings::default(),
        framing: Framing::Binary,
    };
    Client::new(spec).expect("client")
}

#[test]
fn persistent_client_reconnects_after_the_daemon_is_killed() {
    let env = TestEnv::new();
    let mut client = client(&env, "echo");
    assert_eq!(
        client.call("echo", Some(json!([1]))).expect("first call"),
        json!([1])
    );
    let first = client.daemon().expect("connected").pid;
    // Gone, not merely signalled: a request written to a dying daemon is truly lost rather
    // than refused.
    kill_and_wait_gone(first);
    // The old connection is dead; the request could not be written, so it is resent to a
    // freshly started daemon.
    assert_eq!(
        client
            .call("echo", Some(json!([2])))
            .expect("after restart"),
        json!([2])
    );
    let second = client.daemon().expect("connected").pid;
    assert_ne!(first, second);
    assert_eq!(env.only_daemon(), second);
}

#[test]
fn persistent_client_follows_a_graceful_restart() {
    let env = TestEnv::new();
    let mut client = client(&env, "echo");
    client.call("echo", None).expect("first call");
    let first = client.daemon().expect("connected").pid;
    env.ok(&["-s", "echo", "stop"]);
    assert_eq!(
        client
            .call("echo", Some(json!({"k": 1})))
            .expect("after stop"),
        json!({"k": 1})
    );
    assert_ne!(client.daemon().expect("connected").pid, first);
}

#[test]
fn request_lost_in_flight_is_reported_not_resent() {
    let env = TestEnv::new();
    let mut client = client(&env, "echo");
    client.call("echo", None).expect("first call");
    let pid = client.daemon().expect("connected").pid;
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Kill once the daemon reports the request running.
            let running = env.wait_in_flight("echo", 1);
            kill(pid, "KILL");
            assert!(running, "the request never started");
        });
        client.call("sleep", Some(json!({ "ms": 10_000 })))
    });
    assert!(
        matches!(result, Err(Error::ConnectionLost(_))),
        "{result:?}"
    );
}

#[test]
fn a_request_refused_by_a_draining_daemon_is_resent_to_a_new_one() {
    let env = TestEnv::new();
    let mut client = client(&env, "echo");
    client.call("echo", None).expect("first call");
    let first = client.daemon().expect("connected").pid;
    // Another client's slow request keeps the old daemon draining for a while after it is
    // told to stop; meanwhile this client's connection stays open to it.
    let mut slow = env.slow_echo_call(1500);
    env.ok(&["-s", "echo", "call", "daemon/shutdown"]);
    // Sent on the open connection to the draining daemon: refused with -32003 (it did not
    // run), so the client waits for that daemon to exit, starts a new one and resends.
    assert_eq!(
        client
            .call("echo", Some(json!({"resent": true})))
            .expect("resent"),
        json!({"resent": true})
    );
    let second = client.daemon().expect("connected").pid;
    assert_ne!(first, second, "answered by a new daemon");
    assert!(
        slow.wait().expect("slow call").success(),
        "the drain answered the slow call"
    );
    let refused = env
        .events("echo")
        .iter()
        .filter(|e| e["event"] == "daemon.start")
        .count();
    assert_eq!(refused, 2, "exactly one replacement daemon");
}

#[test]
fn busy_answers_are_retried_by_the_client_until_every_call_succeeds() {
    let env = TestEnv::new();
    env.write_config("[services.echo]\nmax_in_flight = 1\n");
    env.ok(&["-s", "echo", "start"]);
    let first = env.slow_echo_call(400);
    // While the one slot is taken, four more calls through warm-client: each is refused
    // busy (-32000) at least once, and retried until it runs.
    let outputs = run_concurrently(4, || {
        let mut command = env.warm();
        command.args(["-s", "echo", "call", "sleep", r#"{"ms": 50}"#]);
        command
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr_of(output));
    }
    assert!(wait_output(first).status.success());
    let busy = env.json(&["-s", "echo", "status"])["busy"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        busy >= 4,
        "only {busy} busy answers: the limit was never hit"
    );
}
