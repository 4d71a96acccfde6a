//! `warm search --forget-index`: stops the project's search daemon and removes the index it
//! stored in the cache directory, so that the next query indexes the tree afresh.

use serde_json::json;
use warm_client::{Client, StopOutcome};

use super::MATCH;
use crate::cli::GlobalArgs;
use crate::context::{project, Context};
use crate::failure::Failure;

pub fn run(global: &GlobalArgs, args: &[std::ffi::OsString]) -> u8 {
    let json = global.json || args.iter().any(|a| a == "--json");
    match forget(global) {
        Ok((stopped, removed)) => {
            if json {
                crate::commands::print_json(&json!({ "stopped": stopped, "removed": removed }));
            } else {
                if let Some(pid) = stopped {
                    outln!("stopped search (pid {pid})");
                }
                match removed {
                    Some((path, bytes)) => {
                        outln!("removed {path} ({:.1} MB)", bytes as f64 / 1e6)
                    }
                    None => outln!("no stored index for this project"),
                }
            }
            MATCH
        }
        Err(failure) => {
            errln!("warm: {}", failure.message());
            failure.exit_code()
        }
    }
}

type Forgotten = (Option<u32>, Option<(String, u64)>);

fn forget(global: &GlobalArgs) -> Result<Forgotten, Failure> {
    let (root, config) = project(global)?;
    let root = root.canonicalize().unwrap_or(root);
    let context = Context::for_service(global, root, &config, Some("search"))?;
    // First the daemon: it stores its index when it stops.
    let mut client = Client::new(context.running_spec(&[])?)?;
    let stopped = match client
        .stop("warm search --forget-index")
        .map_err(Failure::from)?
    {
        StopOutcome::Stopped { pid } => Some(pid),
        StopOutcome::NotRunning => None,
    };
    let Some(path) = warm_search::store::location(&context.root) else {
        return Ok((stopped, None));
    };
    let bytes = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(_) => return Ok((stopped, None)),
    };
    std::fs::remove_file(&path)
        .map_err(|e| Failure::Other(format!("cannot remove {}: {e}", path.display())))?;
    Ok((stopped, Some((path.display().to_string(), bytes))))
}
