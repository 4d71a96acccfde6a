//! Starting a daemon in the background and waiting for it to say it is ready.
//!
//! The spawned process gets a new session (no controlling terminal, not killed with the
//! caller's process group), stdin from `/dev/null`, stdout and stderr appended to
//! `daemon.log`, and the write end of a pipe whose number is in `WARM_READY_FD`. The daemon
//! writes `ready` or `error: <reason>` on it once, then closes it. The pipe is close-on-exec
//! in the parent, so concurrently spawned children of the caller never hold it; only the
//! daemon's copy is made inheritable, and the daemon marks it close-on-exec again at once so
//! its own workers never hold it either. EOF without a line means the daemon died.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::FdFlags;
use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::Error;
use warm_runtime::{DaemonPaths, READY_FD_ENV};

/// How to start the daemon: a program and its arguments (for the `warm` CLI,
/// `warm serve -s S --root R`; for an embedding tool, itself with a serve flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

impl SpawnCommand {
    pub fn new(program: impl Into<PathBuf>) -> SpawnCommand {
        SpawnCommand {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> SpawnCommand {
        self.args.push(arg.into());
        self
    }
}

/// Spawns the daemon and waits until it reports ready.
///
/// # Errors
/// [`Error::Unavailable`] with the daemon's own reason (or what happened to it) and the tail
/// of its log.
pub fn spawn_daemon(
    command: &SpawnCommand,
    paths: &DaemonPaths,
    working_dir: &Path,
    ready_timeout: Duration,
) -> Result<u32, Error> {
    let (ready_rx, ready_tx) = pipe_with(PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("cannot create the readiness pipe", e.into()))?;
    // O_NOFOLLOW: a symlink planted in the daemon's directory must not redirect its log.
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&paths.log)
        .map_err(|e| Error::io(format!("cannot open {}", paths.log.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io("cannot duplicate the log descriptor", e))?;

    let ready_fd = ready_tx.as_raw_fd();
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .env(READY_FD_ENV, ready_fd.to_string())
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    // SAFETY: the closure runs in the forked child before exec and only makes two raw system
    // calls (setsid, fcntl), both async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid()?;
            let fd = std::os::fd::BorrowedFd::borrow_raw(ready_fd);
            rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::Unavailable {
        reason: format!("cannot start {}: {e}", command.program.display()),
        log_tail: None,
    })?;
    // Our copy of the write end must go, or we would never see EOF if the daemon dies.
    drop(ready_tx);
    let pid = child.id();

    let outcome = read_ready_line(&ready_rx, ready_timeout);
    let failure = match outcome {
        Ok(Some(line)) if line == "ready" => None,
        Ok(Some(line)) => Some(line.strip_prefix("error: ").unwrap_or(&line).to_owned()),
        Ok(None) => Some(match child.try_wait() {
            Ok(Some(status)) => format!("the daemon exited before it was ready ({status})"),
            _ => "the daemon closed its readiness pipe without reporting".to_owned(),
        }),
        Err(ReadyError::Timeout) => {
            // It is our own unreaped child, so the pid cannot have been reused.
            let _ = child.kill();
            Some(format!(
                "the daemon was not ready after {:.1}s and was killed",
                ready_timeout.as_secs_f64()
            ))
        }
        Err(ReadyError::Io(e)) => Some(format!("reading the readiness pipe failed: {e}")),
    };
    // Reap the daemon whenever it exits, so a long-lived caller never collects zombies.
    std::thread::spawn(move || child.wait());
    match failure {
        None => Ok(pid),
        Some(reason) => Err(Error::Unavailable {
            reason,
            log_tail: log_tail(&paths.log, 20),
        }),
    }
}

enum ReadyError {
    Timeout,
    Io(io::Error),
}

fn read_ready_line(fd: &OwnedFd, timeout: Duration) -> Result<Option<String>, ReadyError> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    let mut file = std::fs::File::from(fd.try_clone().map_err(ReadyError::Io)?);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadyError::Timeout);
        }
        let timespec = Timespec::try_from(left).map_err(|_| ReadyError::Timeout)?;
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timespec)) {
            Ok(0) => return Err(ReadyError::Timeout),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(ReadyError::Io(e.into())),
        }
        let mut chunk = [0u8; 512];
        match file.read(&mut chunk) {
            Ok(0) => {
                return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()))
            }
            Ok(n) => {
                line.extend_from_slice(&chunk[..n]);
                if let Some(end) = line.iter().position(|&b| b == b'\n') {
                    line.truncate(end);
                    return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadyError::Io(e)),
        }
    }
}

/// The last `lines` lines of a log file, if it has any.
pub fn log_tail(path: &Path, lines: usize) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}
