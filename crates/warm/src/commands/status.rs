//! `warm status`: one daemon's state.

use warm_client::Client;
use warm_protocol::methods::{self, Status};

use super::{connect_running, human_secs, print_json, project_daemons};
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

/// Without `-s`, when the implied service has no daemon but the project has others (its
/// `search` or language-server daemons), shows those: one as `-s NAME` would, several as a
/// list (a JSON array with `--json`).
pub fn run(context: &Context) -> CommandResult {
    let status = match connect_running(context) {
        Ok(mut client) => fetch_status(&mut client)?,
        Err(not_running) => {
            let others = project_daemons(context)?;
            if others.is_empty() {
                return Err(not_running);
            }
            errln!(
                "warm: no {} daemon; this project's daemons:",
                context.identity.service
            );
            let statuses: Vec<Status> = others.into_iter().map(|d| d.status).collect();
            if context.json {
                match statuses.as_slice() {
                    [only] => print_json(only),
                    many => print_json(&many),
                }
            } else {
                for (i, status) in statuses.iter().enumerate() {
                    if i > 0 {
                        outln!();
                    }
                    print_human(status);
                }
            }
            return Ok(());
        }
    };
    if context.json {
        print_json(&status);
    } else {
        print_human(&status);
    }
    Ok(())
}

pub fn fetch_status(client: &mut Client) -> Result<Status, Failure> {
    let value = client.call(methods::STATUS, None)?;
    serde_json::from_value(value)
        .map_err(|e| Failure::Other(format!("bad daemon/status answer: {e}")))
}

fn print_human(status: &Status) {
    let ttl = if status.ttl_secs == 0 {
        "never (ttl 0)".to_owned()
    } else {
        format!(
            "{} ({} left)",
            human_secs(status.ttl_secs),
            human_secs(status.ttl_remaining_secs.unwrap_or(0))
        )
    };
    let rows = [
        ("service", status.service.clone()),
        ("root", status.root.clone()),
        ("pid", status.pid.to_string()),
        ("socket", status.socket.clone()),
        ("version", status.version.clone()),
        ("uptime", human_secs(status.uptime_secs)),
        ("idle ttl", ttl),
        ("connections", status.connections.to_string()),
        (
            "in flight",
            format!("{} (limit {})", status.in_flight, status.max_in_flight),
        ),
        ("requests", status.requests.to_string()),
        ("busy", status.busy.to_string()),
        ("leases", status.leases.to_string()),
        ("workers", status.workers.len().to_string()),
    ];
    for (name, value) in rows {
        outln!("{name:<12} {value}");
    }
    for worker in &status.workers {
        outln!("{}", worker_line(worker));
    }
}

/// `  worker 0  pid 4242  running  up 3m02s  requests 120  in flight 1  restarts 0  memory 41 MiB`
fn worker_line(worker: &serde_json::Value) -> String {
    let text = |key: &str| worker[key].as_str().unwrap_or("-").to_owned();
    let number = |key: &str| worker[key].as_u64().map_or("-".into(), |n| n.to_string());
    let mut line = format!(
        "  worker {}  pid {}  {}  up {}  requests {}  in flight {}  restarts {}",
        number("slot"),
        number("pid"),
        text("state"),
        worker["uptime_secs"]
            .as_u64()
            .map_or("-".into(), human_secs),
        number("requests"),
        number("in_flight"),
        number("restarts"),
    );
    if let Some(rss) = worker["rss_bytes"].as_u64() {
        line.push_str(&format!("  memory {} MiB", rss >> 20));
        if let Some(cap) = worker["max_rss_bytes"].as_u64() {
            line.push_str(&format!(
                " (cap {}, replaced {} times)",
                warm_runtime::size::format_size(cap),
                number("memory_restarts")
            ));
        }
    }
    if let Some(exit) = worker["last_exit"].as_str() {
        line.push_str(&format!("  last exit: {exit}"));
    }
    if let Some(why) = worker["service_unavailable"].as_str() {
        line.push_str(&format!("\n  {why}"));
    }
    if let Some(secs) = worker["retry_in_secs"].as_u64() {
        line.push_str(&format!(
            "\n  no new worker is started for {} (or until its command or .warm.toml changes)",
            human_secs(secs)
        ));
    }
    line
}
