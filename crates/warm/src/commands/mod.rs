//! One module per subcommand.

pub mod bench;
pub mod call;
pub mod doctor;
pub mod init;
pub mod keepalive;
pub mod list;
pub mod logs;
pub mod lsp;
pub mod mcp;
pub mod ping;
pub mod restart;
pub mod search;
pub mod serve;
pub mod shim;
pub mod start;
pub mod status;
pub mod stop;
pub mod systemd;
pub mod trust;

use serde::Serialize;
use warm_client::Client;

use crate::context::Context;
use crate::failure::Failure;

/// Prints `value` as JSON on stdout: pretty on a terminal, one line when piped.
pub fn print_json<T: Serialize>(value: &T) {
    use std::io::IsTerminal;
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    if let Ok(text) = text {
        outln!("{text}");
    }
}

/// The `WARM_PROGRESS` value that makes progress machine-readable on stderr.
pub const PROGRESS_AS_JSON: &str = "json";

/// Prints a request's progress on stderr, when stderr is a terminal or `WARM_PROGRESS` is
/// set: `[done/total] message` (or JSON, see [`PROGRESS_AS_JSON`]).
pub fn progress_printer() -> impl FnMut(warm_protocol::methods::ProgressParams) {
    use std::io::IsTerminal;
    let setting = std::env::var("WARM_PROGRESS").ok();
    // `json`: one `{"progress": {...}}` object per line, for a program reading stderr (`warm
    // mcp` forwards them to the agent).
    let as_json = setting.as_deref() == Some(PROGRESS_AS_JSON);
    let show = std::io::stderr().is_terminal() || setting.is_some();
    move |p| {
        if as_json {
            errln!("{}", serde_json::json!({ "progress": p }));
        } else if show {
            let counts = match (p.done, p.total) {
                (Some(done), Some(total)) => format!("[{done}/{total}] "),
                (Some(done), None) => format!("[{done}] "),
                _ => String::new(),
            };
            errln!("{counts}{}", p.message.unwrap_or_default());
        }
    }
}

/// A client connected to the running daemon, or the failure saying none runs.
pub fn connect_running(context: &Context) -> Result<Client, Failure> {
    let mut client = Client::new(context.running_spec(&[])?)?;
    if client.connect_existing()? {
        Ok(client)
    } else {
        Err(not_running(context))
    }
}

pub fn not_running(context: &Context) -> Failure {
    Failure::Unavailable {
        reason: format!(
            "no {} daemon is running for {} (start one with `warm{} start`)",
            context.identity.service,
            context.root.display(),
            if context.identity.service == "default" {
                String::new()
            } else {
                format!(" -s {}", context.identity.service)
            }
        ),
        log_tail: None,
    }
}

/// The running daemons of this context's project, of any service, when the service was not
/// named with `-s` (`warm status` in a project whose only daemons are `search` and
/// `lsp-pylsp` shows those instead of "no default daemon").
pub fn project_daemons(context: &Context) -> Result<Vec<list::ProjectDaemon>, Failure> {
    if context.explicit_service {
        return Ok(Vec::new());
    }
    let root = context.root.to_string_lossy();
    Ok(list::discover(&context.runtime_dir)?
        .into_iter()
        .filter_map(|(paths, found)| match found {
            list::Found::Running(status) if status.root == root => Some(list::ProjectDaemon {
                paths,
                status: *status,
            }),
            _ => None,
        })
        .collect())
}

/// `-s search -s lsp-pylsp`: how to name each of `daemons`, for a message.
pub fn service_choices(daemons: &[list::ProjectDaemon]) -> String {
    daemons
        .iter()
        .map(|d| format!("-s {}", d.status.service))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `90` → `1m30s`.
pub fn human_secs(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
