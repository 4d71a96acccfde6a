//! Runs one `warm` command for a tool call: in the project root, killed when the agent
//! cancels the call, with MCP progress notifications while it takes long (a language server
//! still reading the project, a slow worker method).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::{ErrorCode, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

/// The longest argument passed on to `warm` (a pattern, a path, a worker's params).
pub const MAX_ARGUMENT: usize = 64 * 1024;
/// How often a call that has a progress token hears that it is still running.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// JSON-RPC's code for a request its sender cancelled (the LSP's `RequestCancelled`).
const REQUEST_CANCELLED: ErrorCode = ErrorCode(-32800);

/// What a `warm` command did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn refused(stderr: String) -> Ran {
        Ran {
            code: 2,
            stdout: String::new(),
            stderr,
        }
    }
}

/// Runs `warm ARGS` in `root` for the tool call of `context`.
///
/// While it runs, a call that asked for progress (a `progressToken`) gets a notification
/// every second saying what it waits for (`waiting`); a cancelled call kills the command at
/// once (it is a client of the daemons: they see its connection close and drop its request)
/// and returns `RequestCancelled`, which rmcp does not send: a cancelled request is not
/// answered.
///
/// # Errors
/// `RequestCancelled` for a cancelled call; an internal error when `warm` cannot be run.
pub async fn run_warm(
    root: &Path,
    args: &[String],
    waiting: &str,
    context: &RequestContext<RoleServer>,
) -> Result<Ran, ErrorData> {
    // The kernel refuses one argument over 128 KiB; say so in words, as a tool error.
    if let Some(long) = args.iter().find(|a| a.len() > MAX_ARGUMENT) {
        return Ok(Ran::refused(format!(
            "an argument of {} bytes is too long (at most {MAX_ARGUMENT})",
            long.len()
        )));
    }
    let program = std::env::current_exe()
        .map_err(|e| ErrorData::internal_error(format!("cannot find warm itself: {e}"), None))?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(root)
        .env_remove("WARM_PROGRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ErrorData::internal_error(format!("cannot run warm: {e}"), None))?;
    // Dropping this future drops the child, which kills it.
    let output = child.wait_with_output();
    tokio::pin!(output);
    let progress_token = context.meta.get_progress_token();
    let started = Instant::now();
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        tokio::select! {
            output = &mut output => {
                let output = output
                    .map_err(|e| ErrorData::internal_error(format!("warm failed: {e}"), None))?;
                return Ok(Ran {
                    code: output.status.code().unwrap_or(2),
                    stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                });
            }
            () = context.ct.cancelled() => {
                return Err(ErrorData::new(REQUEST_CANCELLED, "the call was cancelled", None));
            }
            _ = ticks.tick(), if progress_token.is_some() => {
                let Some(token) = progress_token.clone() else { continue };
                let seconds = started.elapsed().as_secs();
                let note = ProgressNotificationParam::new(token, seconds as f64)
                    .with_message(format!("{waiting} ({seconds} s)"));
                // A client gone away ends the session anyway; nothing to do here.
                let _ = context.peer.notify_progress(note).await;
            }
        }
    }
}
