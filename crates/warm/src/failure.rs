//! [`Failure`]: every way a command can fail, mapped to its exit code in one place.

use warm_protocol::{ErrorCode, ErrorObject};

/// Exit codes of DESIGN section 6.
pub mod code {
    pub const METHOD_ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNAVAILABLE: u8 = 3;
    pub const TIMEOUT: u8 = 4;
}

/// A failed command: what to print and which code to exit with.
#[derive(Debug)]
pub enum Failure {
    /// The method answered with an error object.
    Method(ErrorObject),
    Usage(String),
    Unavailable {
        reason: String,
        log_tail: Option<String>,
    },
    Timeout(String),
    /// Anything else (I/O, protocol): reported as unavailable.
    Other(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Method(error) if error.kind() == ErrorCode::Timeout => code::TIMEOUT,
            Failure::Method(_) => code::METHOD_ERROR,
            Failure::Usage(_) => code::USAGE,
            Failure::Unavailable { .. } | Failure::Other(_) => code::UNAVAILABLE,
            Failure::Timeout(_) => code::TIMEOUT,
        }
    }

    /// The message for stderr.
    pub fn message(&self) -> String {
        match self {
            Failure::Method(error) => {
                format!(
                    "error {}: {}{}",
                    error.code,
                    error.message,
                    worker_report(error)
                )
            }
            Failure::Usage(message) | Failure::Timeout(message) | Failure::Other(message) => {
                message.clone()
            }
            Failure::Unavailable { reason, log_tail } => match log_tail {
                Some(tail) => format!(
                    "daemon unavailable: {reason}\n--- last lines of daemon.log ---\n{tail}"
                ),
                None => format!("daemon unavailable: {reason}"),
            },
        }
    }
}

/// For a worker's failure (-32002 with the service in `data`): the last lines of its stderr,
/// and the command that shows the rest.
fn worker_report(error: &ErrorObject) -> String {
    let Some(data) = error
        .data
        .as_ref()
        .filter(|_| error.kind() == ErrorCode::WorkerUnavailable)
    else {
        return String::new();
    };
    let Some(service) = data["service"].as_str() else {
        return String::new();
    };
    let mut report = String::new();
    let tail: Vec<&str> = data["stderr_tail"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|line| line.as_str())
        .collect();
    if !tail.is_empty() {
        report.push_str("\n--- last lines of the worker's stderr ---\n");
        report.push_str(&tail.join("\n"));
    }
    report.push_str(&format!(
        "\n(the daemon's log, with every line the worker wrote: `warm logs -s {service}`)"
    ));
    report
}

impl From<warm_client::Error> for Failure {
    fn from(error: warm_client::Error) -> Failure {
        use warm_client::Error;
        match error {
            Error::Rpc(error) => Failure::Method(error),
            Error::Unavailable { reason, log_tail } => Failure::Unavailable { reason, log_tail },
            Error::Timeout(message) => Failure::Timeout(message),
            Error::UnsafeRuntimeDir(message) | Error::Setup(message) => Failure::Usage(message),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<warm_runtime::PathError> for Failure {
    /// A bad service name or root, an unsafe runtime directory: the user's to fix.
    fn from(error: warm_runtime::PathError) -> Failure {
        Failure::Usage(error.to_string())
    }
}

impl From<warm_runtime::config::ConfigError> for Failure {
    fn from(error: warm_runtime::config::ConfigError) -> Failure {
        Failure::Usage(error.to_string())
    }
}

pub type CommandResult = Result<(), Failure>;
