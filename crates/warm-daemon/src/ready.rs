//! [`ReadyReporter`]: the daemon's end of the readiness pipe opened by the spawning client.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use rustix::io::FdFlags;
use warm_runtime::READY_FD_ENV;

/// Reports `ready` or the reason for failure, once, to whoever spawned the daemon.
#[derive(Debug)]
pub struct ReadyReporter {
    pipe: Option<File>,
}

impl ReadyReporter {
    /// Takes the pipe named by `WARM_READY_FD`, if any, and removes the variable so that
    /// processes the daemon starts never see a stale descriptor number.
    ///
    /// Must be called before any other thread starts (it edits the environment).
    pub fn from_env() -> ReadyReporter {
        let fd = std::env::var(READY_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|fd| *fd > 2);
        std::env::remove_var(READY_FD_ENV);
        let Some(fd) = fd else {
            return ReadyReporter { pipe: None };
        };
        // SAFETY: borrowing a number is harmless; fcntl tells whether it is an open descriptor.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        // Mark it close-on-exec at once so worker processes never inherit it.
        if rustix::io::fcntl_setfd(borrowed, FdFlags::CLOEXEC).is_err() {
            return ReadyReporter { pipe: None };
        }
        // SAFETY: the descriptor is open (fcntl succeeded) and was handed to this process
        // for its sole use by the spawner; nothing else in the process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        ReadyReporter {
            pipe: Some(File::from(owned)),
        }
    }

    /// A reporter that reports nowhere (the daemon was started by hand).
    pub fn none() -> ReadyReporter {
        ReadyReporter { pipe: None }
    }

    pub fn ready(&mut self) {
        self.send("ready");
    }

    pub fn fail(&mut self, reason: &str) {
        let one_line = reason.replace('\n', " ");
        self.send(&format!("error: {one_line}"));
    }

    fn send(&mut self, line: &str) {
        if let Some(mut pipe) = self.pipe.take() {
            // The spawner may have given up already; nothing to do about it then.
            let _ = pipe.write_all(format!("{line}\n").as_bytes());
        }
    }
}
