//! `warm start`: make sure the daemon runs.

use serde_json::json;
use warm_client::Client;
use warm_protocol::methods;
use warm_runtime::duration::parse_duration;

use super::{print_json, status::fetch_status};
use crate::cli::StartArgs;
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

pub fn run(context: &Context, args: &StartArgs) -> CommandResult {
    let mut serve_args = Vec::new();
    let ttl = match &args.ttl {
        Some(text) => {
            let ttl = parse_duration(text).map_err(|e| Failure::Usage(format!("--ttl: {e}")))?;
            serve_args.extend(["--ttl".to_owned(), text.clone()]);
            Some(ttl)
        }
        None => None,
    };
    let mut client = Client::new(context.spec(&serve_args)?)?;
    client.ensure_running()?;
    // A daemon that was already running keeps its TTL unless one was asked for.
    if let Some(ttl) = ttl {
        client.call(methods::SET_TTL, Some(json!({ "ttl_secs": ttl.as_secs() })))?;
    }
    let status = fetch_status(&mut client)?;
    if context.json {
        print_json(&status);
    } else {
        outln!("pid {} socket {}", status.pid, status.socket);
    }
    Ok(())
}
