//! `warm status`: one daemon's state.

use warm_client::Client;
use warm_protocol::methods::{self, Status};

use super::{connect_running, human_secs, print_json};
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

pub fn run(context: &Context) -> CommandResult {
    let mut client = connect_running(context)?;
    let status = fetch_status(&mut client)?;
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

/// `  worker 0  pid 4242  running  up 3m02s  requests 120  in flight 1  restarts 0`
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
    if let Some(exit) = worker["last_exit"].as_str() {
        line.push_str(&format!("  last exit: {exit}"));
    }
    if let Some(why) = worker["service_unavailable"].as_str() {
        line.push_str(&format!("\n  {why}"));
    }
    line
}
