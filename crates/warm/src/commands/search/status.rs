//! `warm search --status`: the project's index, from its daemon.

use serde_json::Value;
use warm_client::Client;
use warm_search::protocol::STATUS;

use super::MATCH;
use crate::cli::GlobalArgs;
use crate::context::{project, Context};
use crate::failure::Failure;

/// `warm search --status [--json]` (`--json` among the arguments is warm's here).
pub fn run(global: &GlobalArgs, args: &[std::ffi::OsString]) -> u8 {
    let global = GlobalArgs {
        json: global.json || args.iter().any(|a| a == "--json"),
        service: global.service.clone(),
        root: global.root.clone(),
    };
    match status(&global) {
        Ok(code) => code,
        Err(failure) => {
            errln!("warm: {}", failure.message());
            failure.exit_code()
        }
    }
}

fn status(global: &GlobalArgs) -> Result<u8, Failure> {
    let (root, config) = project(global)?;
    let root = root.canonicalize().unwrap_or(root);
    let context = Context::for_service(global, root, &config, Some("search"))?;
    let mut client = Client::new(context.spec(&[])?)?;
    let status = client.call(STATUS, None).map_err(Failure::from)?;
    if context.json {
        crate::commands::print_json(&status);
        return Ok(MATCH);
    }
    print_status(&status);
    Ok(MATCH)
}

fn print_status(status: &Value) {
    let number = |key: &str| status.get(key).and_then(Value::as_u64).unwrap_or(0);
    outln!(
        "root:       {}",
        status["root"].as_str().unwrap_or_default()
    );
    if let Some(reason) = status["refused"].as_str() {
        outln!("index:      none ({reason})");
        return;
    }
    if status["ready"] != true {
        outln!(
            "index:      building ({} files, {:.1} MB so far)",
            status["building"]["files"],
            status["building"]["bytes"].as_f64().unwrap_or(0.0) / 1e6
        );
        return;
    }
    outln!(
        "files:      {} (and {} ignored or hidden entries, by name)",
        number("files"),
        number("excluded_entries")
    );
    outln!("bytes:      {:.1} MB", number("bytes") as f64 / 1e6);
    outln!(
        "index:      {:.1} MB ({:.2}x the bytes indexed), {} trigrams",
        number("index_bytes") as f64 / 1e6,
        number("index_bytes") as f64 / number("bytes").max(1) as f64,
        number("trigrams")
    );
    if let Some(path) = status["stored"]["path"].as_str() {
        let bytes = status["stored"]["bytes"].as_u64();
        match (bytes, number("mapped_bytes")) {
            (Some(bytes), mapped) => outln!(
                "stored:     {path} ({:.1} MB{})",
                bytes as f64 / 1e6,
                if mapped > 0 {
                    ", read through mmap"
                } else {
                    ""
                }
            ),
            (None, _) => outln!("stored:     not yet ({path})"),
        }
    }
    let age = status["updated_at"]
        .as_f64()
        .map(|t| {
            let now = warm_runtime::events::unix_time_secs_f64();
            format!("{:.1}s ago", (now - t).max(0.0))
        })
        .unwrap_or_default();
    outln!("updated:    {age}");
    match status["watch_error"].as_str() {
        Some(error) => outln!(
            "watching:   no ({error}); each query checks the index against the tree by metadata first"
        ),
        None => outln!("watching:   yes"),
    }
    let queries = &status["queries"];
    outln!(
        "queries:    {} from the index ({} checked by metadata); scanned: {} while building, {} unwatched, {} barrier timeouts",
        queries["index"],
        queries["validated"],
        queries["building"],
        queries["unwatched"],
        queries["barrier_timeouts"]
    );
    let work = &status["work"];
    outln!(
        "upkeep:     {} watch events, {} builds, {} loads of the stored index, {} stores, {} in-place updates, {} new-directory rescans, {} re-watches, {} compactions",
        work["events"],
        work["builds"],
        work["loads"],
        work["stores"],
        work["updates"],
        work["rescans"],
        work["rewatches"],
        work["compactions"]
    );
    let inotify = &status["inotify"];
    if let Some(max) = inotify["max_instances"].as_u64() {
        outln!(
            "inotify:    {} of your {max} instances in use (warm leaves {} free for other programs; to raise the limit: sudo sysctl fs.inotify.max_user_instances={})",
            inotify["instances"],
            inotify["reserve"],
            (max * 4).max(1024)
        );
    }
}
