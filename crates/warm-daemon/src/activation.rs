//! Socket activation: a daemon started by a service manager (systemd, or anything speaking
//! its protocol) on the first connection to a socket the manager listens on.
//!
//! The manager passes the listening socket as descriptor 3 with `LISTEN_FDS`/`LISTEN_PID`
//! (sd_listen_fds(3)); the daemon serves it instead of binding its own, and, because the
//! socket is the manager's, leaves it in place when it exits: connections that arrive while
//! it stops stay queued in it, and the manager starts the next daemon for them. Readiness and
//! status go to the manager through `NOTIFY_SOCKET` (sd_notify(3)); without one, notes are
//! not sent.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;

use sd_notify::NotifyState;

/// Why a passed socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("socket activation: {0}")]
    Environment(#[source] std::io::Error),
    #[error("socket activation passed {0} sockets; a warm daemon serves exactly one")]
    Count(usize),
    #[error("socket activation: descriptor 3 is not a listening Unix stream socket ({0})")]
    NotAListener(String),
}

/// Takes the listening socket a service manager passed to this process, if any, and removes
/// `LISTEN_*` from the environment so the daemon's workers never see them.
///
/// Call it first thing in `main`, before any thread starts: it edits the environment.
///
/// # Errors
/// [`ActivationError`] when the manager passed something other than one listening Unix
/// stream socket.
pub fn take_listener() -> Result<Option<Arc<UnixListener>>, ActivationError> {
    // SAFETY: called before any other thread exists (see above), so nothing reads the
    // environment while it changes.
    let fds: Vec<_> = unsafe { sd_notify::listen_fds_with_names_and_unset_env() }
        .map_err(ActivationError::Environment)?
        .collect();
    let fd = match fds.as_slice() {
        [] => return Ok(None),
        [(fd, _name)] => *fd,
        more => return Err(ActivationError::Count(more.len())),
    };
    // SAFETY: the manager passed this descriptor to this process for its sole use (the
    // LISTEN_PID check), and nothing else in the process has taken it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let is_listener = rustix::net::sockopt::socket_type(&owned)
        .map_err(|e| ActivationError::NotAListener(e.to_string()))?
        == rustix::net::SocketType::STREAM
        && rustix::net::sockopt::socket_acceptconn(&owned).unwrap_or(false)
        && matches!(
            rustix::net::getsockname(&owned),
            Ok(address) if address.address_family() == rustix::net::AddressFamily::UNIX
        );
    if !is_listener {
        return Err(ActivationError::NotAListener(
            "another kind of descriptor".into(),
        ));
    }
    Ok(Some(Arc::new(UnixListener::from(owned))))
}

/// Tells the service manager the daemon serves, and what it serves.
pub(crate) fn notify_ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager the daemon is stopping, and why.
pub(crate) fn notify_stopping(reason: &str) {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status(&format!("stopping: {reason}")),
    ]);
}

fn notify(states: &[NotifyState<'_>]) {
    // A manager that went away has nobody left to tell.
    if let Err(error) = sd_notify::notify(states) {
        tracing::debug!(%error, "the service manager was not told");
    }
}
