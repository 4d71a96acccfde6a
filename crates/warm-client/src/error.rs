//! The client's error type: every way a call can fail, as a variant the caller can act on.

use warm_protocol::ErrorObject;

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The method ran and returned a JSON-RPC error.
    #[error("{0}")]
    Rpc(ErrorObject),
    /// No daemon could be reached or started; the caller may fall back to doing the work
    /// itself.
    #[error("daemon unavailable: {reason}")]
    Unavailable {
        reason: String,
        /// The last lines of `daemon.log`, when a start was attempted.
        log_tail: Option<String>,
    },
    /// A deadline passed (the daemon accepted the request but did not answer in time).
    #[error("timed out: {0}")]
    Timeout(String),
    /// The runtime directory is unsafe to use.
    #[error("{0}")]
    UnsafeRuntimeDir(String),
    /// Bad arguments or environment (service name, root, socket path length).
    #[error("{0}")]
    Setup(String),
    /// The daemon sent something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection broke after the request was sent, so it may or may not have run.
    #[error("connection to the daemon was lost while the request was in flight: {0}")]
    ConnectionLost(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<warm_runtime::PathError> for Error {
    fn from(error: warm_runtime::PathError) -> Error {
        match error {
            warm_runtime::PathError::UnsafeRuntimeDir(reason) => Error::UnsafeRuntimeDir(reason),
            warm_runtime::PathError::Setup(reason) => Error::Setup(reason),
        }
    }
}
