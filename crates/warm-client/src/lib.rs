//! The warm client: find or start a project's daemon and call it, with blocking std I/O only.
//!
//! Small enough for any command-line tool to depend on: no async runtime on the call path, so
//! a one-shot call costs a connect, two small writes and two small reads.
//!
//! ```no_run
//! use warm_client::{Client, DaemonSpec, Identity, SpawnCommand, ClientSettings};
//! # fn main() -> Result<(), warm_client::Error> {
//! let spec = DaemonSpec {
//!     identity: Identity::new("default", std::path::Path::new("."))?,
//!     runtime_dir: warm_client::runtime_dir_location(),
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
//! - [`paths`]: the runtime directory, [`Identity`] and [`DaemonPaths`]. (DESIGN puts paths in
//!   the daemon crate; they live here so that the client can find a daemon without depending on
//!   the async runtime, and the daemon re-exports them.)
//! - [`lock`]: [`LockFile`], `flock` that survives a concurrent unlink.
//! - [`load`]: a load generator for any daemon (`warm bench`).
//! - [`meta`], [`events`]: `meta.json` and `events.jsonl`.
//! - [`settings`], [`duration`]: retry/restart/fallback settings and duration syntax.
//! - [`trust`]: which `.warm.toml` files the user trusts to run their commands.

pub mod client;
pub mod connection;
pub mod duration;
pub mod error;
pub mod events;
pub mod load;
pub mod lock;
pub mod meta;
pub mod paths;
pub mod settings;
pub mod spawn;
pub mod trust;

pub use client::{Client, DaemonSpec, StopOutcome};
pub use connection::{Connection, RequestFailure};
pub use error::Error;
pub use events::EventLog;
pub use lock::LockFile;
pub use meta::Meta;
pub use paths::{ensure_runtime_dir, find_root, runtime_dir_location, DaemonPaths, Identity};
pub use settings::ClientSettings;
pub use spawn::{SpawnCommand, READY_FD_ENV};
