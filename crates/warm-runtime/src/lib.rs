//! What warm's client and daemon both need to agree on, with no I/O runtime and no protocol:
//! where a daemon's files live, how it is locked, what it says about itself, what it records.
//!
//! Both `warm-client` (which finds and starts daemons) and `warm-daemon` (which is one) build
//! on this crate; neither depends on the other.
//!
//! # Layout
//! - [`paths`]: the runtime directory, [`Identity`] and [`DaemonPaths`], project roots.
//! - [`lock`]: [`LockFile`], `flock` that survives a concurrent unlink.
//! - [`meta`]: `meta.json`, and what `/proc` says about a process.
//! - [`events`]: `events.jsonl`, the [`EventLog`] both sides append to.
//! - [`cookie`]: the barrier files daemons make to sync with their file watchers.
//! - [`config`]: `.warm.toml`, parsed once into typed values ([`config::ResolvedService`]).
//! - [`duration`]: the duration syntax of `.warm.toml` and `WARM_*` variables.
//! - [`size`]: amounts of memory (`max_rss`).
//! - [`settings`]: [`ClientSettings`], how a client retries, restarts and falls back.
//! - [`sync`]: locks that recover from poisoning instead of skipping their work.

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod agent_tools;
pub mod config;
pub mod cookie;
pub mod duration;
pub mod events;
pub mod lock;
pub mod meta;
pub mod paths;
pub mod settings;
pub mod size;
pub mod sync;

pub use events::EventLog;
pub use lock::LockFile;
pub use meta::Meta;
pub use paths::{
    ensure_runtime_dir, find_root, runtime_dir_location, DaemonPaths, Identity, PathError,
};
pub use settings::ClientSettings;

/// The environment variable through which a client tells the daemon it spawns which file
/// descriptor to report readiness on (see `warm_client::spawn` and `warm_daemon::ReadyReporter`).
pub const READY_FD_ENV: &str = "WARM_READY_FD";
