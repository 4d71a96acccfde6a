//! Runs one `warm` command for a tool call: in the project root, killed when the agent
//! cancels the call, with MCP progress notifications while it takes long (a language server
//! still reading the project, a slow worker method).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use warm_protocol::methods::ProgressParams;

use rmcp::model::{ErrorCode, ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use crate::commands::PROGRESS_AS_JSON;

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
/// While it runs, a call that asked for progress (a `progressToken`) hears what the daemon
/// reports (a worker's `$/progress`, read as JSON lines from the command's stderr), and,
/// every second without such news, what it waits for (`waiting`). A cancelled call kills
/// the command at once (it is a client of the daemons: they see its connection close and
/// drop its request) and returns `RequestCancelled`, which rmcp does not send: a cancelled
/// request is not answered.
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
    let failed =
        |e: std::io::Error| ErrorData::internal_error(format!("cannot run warm: {e}"), None);
    let mut child = spawn(root, args).map_err(failed)?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(failed(std::io::ErrorKind::BrokenPipe.into()));
    };
    let read_stdout = async move {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.map(|_| out)
    };
    tokio::pin!(read_stdout);
    let mut stderr_lines = BufReader::new(stderr).lines();
    let mut progress = Progress::new(context, waiting);
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let (mut said, mut out, mut stderr_open) = (String::new(), None, true);
    loop {
        tokio::select! {
            read = &mut read_stdout, if out.is_none() => out = Some(read.map_err(failed)?),
            line = stderr_lines.next_line(), if stderr_open => match line.map_err(failed)? {
                Some(line) => match reported_progress(&line) {
                    Some(reported) => {
                        progress.send(reported).await;
                        ticks.reset();
                    }
                    None => {
                        said.push_str(&line);
                        said.push('\n');
                    }
                },
                None => stderr_open = false,
            },
            () = context.ct.cancelled() => {
                return Err(ErrorData::new(REQUEST_CANCELLED, "the call was cancelled", None));
            }
            _ = ticks.tick(), if progress.wanted() => progress.waiting().await,
        }
        if let (Some(stdout), false) = (&out, stderr_open) {
            let status = child.wait().await.map_err(failed)?;
            return Ok(Ran {
                code: status.code().unwrap_or(2),
                stdout: String::from_utf8_lossy(stdout).into_owned(),
                stderr: said,
            });
        }
    }
}

/// `warm ARGS` in `root`, its progress as JSON lines on stderr; killed when dropped (a
/// cancelled call).
fn spawn(root: &Path, args: &[String]) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(std::env::current_exe()?)
        .args(args)
        .current_dir(root)
        .env("WARM_PROGRESS", PROGRESS_AS_JSON)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

/// The message of a progress line (`{"progress": {...}}`) the command wrote on stderr.
fn reported_progress(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let params: ProgressParams = serde_json::from_value(value.get("progress")?.clone()).ok()?;
    let counts = match (params.done, params.total) {
        (Some(done), Some(total)) => format!("[{done}/{total}] "),
        (Some(done), None) => format!("[{done}] "),
        _ => String::new(),
    };
    Some(format!("{counts}{}", params.message.unwrap_or_default()))
}

/// The progress notifications of one tool call: none unless it asked for them (a
/// `progressToken`); numbered in order, as the specification wants progress to rise.
struct Progress<'a> {
    context: &'a RequestContext<RoleServer>,
    token: Option<ProgressToken>,
    waiting: &'a str,
    started: Instant,
    sent: u32,
}

impl<'a> Progress<'a> {
    fn new(context: &'a RequestContext<RoleServer>, waiting: &'a str) -> Progress<'a> {
        Progress {
            token: context.meta.get_progress_token(),
            context,
            waiting,
            started: Instant::now(),
            sent: 0,
        }
    }

    fn wanted(&self) -> bool {
        self.token.is_some()
    }

    /// Says how long the call has waited, and for what.
    async fn waiting(&mut self) {
        let seconds = self.started.elapsed().as_secs();
        let message = format!("{} ({seconds} s)", self.waiting);
        self.send(message).await;
    }

    async fn send(&mut self, message: String) {
        let Some(token) = self.token.clone() else {
            return;
        };
        self.sent += 1;
        let note =
            ProgressNotificationParam::new(token, f64::from(self.sent)).with_message(message);
        // A client gone away ends the session anyway; nothing to do here.
        let _ = self.context.peer.notify_progress(note).await;
    }
}
