//! `warm stop`: graceful stop of one daemon, or of all with `--all`.

use std::time::{Duration, Instant};

use serde_json::json;
use warm_client::{Client, Connection, StopOutcome};
use warm_protocol::methods;
use warm_protocol::Framing;
use warm_runtime::meta::wait_process_exit;
use warm_runtime::{DaemonPaths, Meta};

use super::list::{discover, wait_released};
use super::{print_json, project_daemons};
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub fn run(context: &Context, all: bool) -> CommandResult {
    if all {
        return stop_all(context);
    }
    let mut client = Client::new(context.running_spec(&[])?)?;
    let outcome = client.stop("warm stop")?;
    if matches!(outcome, StopOutcome::NotRunning) {
        let others = project_daemons(context)?;
        if !others.is_empty() {
            // `warm stop` in a project means "stop what runs for it".
            return stop_some(context, others.into_iter().map(|d| d.paths).collect());
        }
    }
    match (outcome, context.json) {
        (StopOutcome::Stopped { pid }, true) => print_json(&json!({ "stopped": [pid] })),
        (StopOutcome::Stopped { pid }, false) => {
            outln!("stopped {} (pid {pid})", context.identity.service)
        }
        (StopOutcome::NotRunning, true) => print_json(&json!({ "stopped": [] })),
        (StopOutcome::NotRunning, false) => errln!(
            "no {} daemon running for {}",
            context.identity.service,
            context.root.display()
        ),
    }
    Ok(())
}

fn stop_all(context: &Context) -> CommandResult {
    let found = discover(&context.runtime_dir)?;
    stop_some(context, found.into_iter().map(|(paths, _)| paths).collect())
}

/// Asks every daemon of `daemons` to stop, then waits for them all: their drains overlap
/// instead of adding up.
fn stop_some(context: &Context, daemons: Vec<DaemonPaths>) -> CommandResult {
    let mut asked = Vec::new();
    for paths in daemons {
        // Read before asking: the daemon's files go when it exits.
        let pid = Meta::read(&paths.meta).map(|m| m.pid);
        if let Ok(mut connection) = Connection::connect(&paths.sock, Framing::Ndjson) {
            let _ = connection.set_timeout(Some(Duration::from_secs(5)));
            let _ = connection.request(
                methods::SHUTDOWN,
                Some(&json!({ "reason": "warm stop --all" })),
                &mut |_| {},
            );
        }
        asked.push((paths, pid));
    }
    let mut stopped = Vec::new();
    let mut stuck = Vec::new();
    for (paths, pid) in asked {
        let exited = wait_released(&paths, STOP_TIMEOUT)
            && pid.is_none_or(|pid| wait_process_exit(pid, Instant::now() + STOP_TIMEOUT));
        if exited {
            let _ = paths.remove_if_dead();
            stopped.extend(pid);
        } else {
            stuck.push(paths.dir.display().to_string());
        }
    }
    if context.json {
        print_json(&json!({ "stopped": stopped, "still_running": stuck }));
    } else {
        outln!(
            "stopped {} daemon{}",
            stopped.len(),
            if stopped.len() == 1 { "" } else { "s" }
        );
    }
    if stuck.is_empty() {
        Ok(())
    } else {
        Err(Failure::Timeout(format!(
            "these daemons did not stop within {}s: {}",
            STOP_TIMEOUT.as_secs(),
            stuck.join(", ")
        )))
    }
}
