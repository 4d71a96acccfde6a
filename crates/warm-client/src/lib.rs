//! The warm client: find or start a project's daemon and call it, with blocking std I/O only.
//!
//! The runtime directory, identities, lock files and settings it works with are
//! `warm-runtime`'s, shared with the daemon.
//!
//! Small enough for any command-line tool to depend on: no async runtime on the call path, so
//! a one-shot call costs a connect, two small writes and two small reads.
//!
//! ```no_run
//! use warm_client::{Client, DaemonSpec, SpawnCommand};
//! use warm_runtime::{ClientSettings, Identity};
//! # fn main() -> Result<(), warm_client::Error> {
//! let spec = DaemonSpec {
//!     identity: Identity::new("default", std::path::Path::new("."))?,
//!     runtime_dir: warm_runtime::runtime_dir_location(),
//!     spawn: SpawnCommand::new("warm").arg("serve"),
//!     version: env!("CARGO_PKG_VERSION").into(),
//!     config_hash: None,
//!     settings: ClientSettings::default(),
//!     framing: warm_protocol::Framing::Ndjson,
//! };
//! let mut client = Client::new(spec)?;
//! let ttl = client.call("daemon/ping", None)?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`client`]: [`Client`], connect-or-start, hello, retries and restarts.
//! - [`connection`]: [`Connection`], one blocking framed connection.
//! - [`spawn`]: starting a daemon detached and waiting on its readiness pipe.
//! - [`trust`]: which `.warm.toml` files the user trusts to run their commands.

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod connection;
pub mod error;
pub mod spawn;
pub mod trust;

pub use client::{Client, DaemonSpec, StopOutcome};
pub use connection::{Connection, RequestFailure};
pub use error::Error;
pub use spawn::SpawnCommand;
