//! The warm daemon runtime: one daemon per (service, project root), shared by every client.
//!
//! Embed it to make any Rust tool its own daemon: implement [`Service`], then call
//! [`serve_blocking`] from the process the client spawns (see `examples/embedded` in the
//! repository).
//!
//! # Layout
//! - [`server`]: [`Daemon`] — lock, socket, accept loop, the shutdown sequence.
//! - [`connection`]: one client connection (framing detection, reading, writing).
//! - [`dispatch`]: what each message becomes: an answer, a service request, a cancellation.
//! - [`session`]: what the daemon keeps per connection (requests in flight, leases, queued
//!   answers).
//! - [`builtin`]: the `daemon/*` methods.
//! - [`service`]: the [`Service`] trait a daemon serves, [`Call`] and [`Progress`].
//! - [`unwind`]: a service's panic answered as that request's error.
//! - [`activity`]: idle TTL, in-flight requests and leases.
//! - [`shutdown`]: [`Shutdown`], the explicit stop switch every loop watches.
//! - [`drain`]: [`drain::Drain`], what a stopping daemon waits for, in order.
//! - [`state`]: the state connection tasks share, and `daemon/status`.
//! - [`ready`]: the readiness pipe back to the spawning client.
//! - [`activation`]: a socket passed by a service manager (systemd), and notes to it.
//! - [`echo`]: the built-in `echo` service.
//! - [`memory`]: [`memory::MemoryDaemon`], a daemon over in-memory pipes, for fast tests.

// A library never writes to the terminal of the program that embeds it: it logs (tracing)
// or returns what it has to say.
#![warn(clippy::print_stdout, clippy::print_stderr)]
// Every duration, count and size in the daemon can come from a request or a config: no
// arithmetic on them may overflow (a `daemon/set_ttl` of u64::MAX once made `Instant + ttl`
// panic on every later ping).
#![deny(clippy::arithmetic_side_effects)]

pub mod activation;
pub mod activity;
pub mod builtin;
pub mod connection;
pub mod dispatch;
pub mod drain;
pub mod echo;
pub mod memory;
pub mod options;
pub mod ready;
pub mod server;
pub mod service;
pub mod session;
pub mod shutdown;
pub mod state;
pub mod unwind;

use std::sync::Arc;

pub use options::DaemonOptions;
pub use ready::ReadyReporter;
pub use server::{Daemon, ExitReport, StartError};
pub use service::{BoxFuture, Call, NoService, Progress, Service};
pub use shutdown::Shutdown;

/// Runs a daemon in this process until it shuts down, reporting readiness (or the reason it
/// could not start) on the pipe named by `WARM_READY_FD` when a client spawned it.
///
/// Take `ready` with [`ReadyReporter::from_env`] first thing in `main` (before any thread
/// starts), so that even a failure before this call can be reported to the spawner. The
/// service is built inside the runtime (by `make_service`), so it may spawn tasks.
///
/// # Errors
/// The reason the daemon could not start; it has also been reported on the readiness pipe.
pub fn serve_blocking<F>(
    options: DaemonOptions,
    mut ready: ReadyReporter,
    make_service: F,
) -> Result<ExitReport, StartError>
where
    F: FnOnce(Shutdown) -> Arc<dyn Service>,
{
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("warm-daemon")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            let error = StartError::Io {
                context: "cannot start the async runtime".into(),
                source,
            };
            ready.fail(&error.to_string());
            return Err(error);
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = Shutdown::new();
        // The service may keep the switch, to stop the daemon when what it serves is gone.
        let service = make_service(shutdown.clone());
        let daemon = match Daemon::start(options, service, shutdown) {
            Ok(daemon) => daemon,
            Err(error) => {
                tracing::error!(%error, "daemon could not start");
                ready.fail(&error.to_string());
                return Err(error);
            }
        };
        ready.ready();
        Ok(daemon.run().await)
    });
    // Tasks still blocked (a stuck service) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// Lifts the soft open-file limit to the hard one: every connection costs a descriptor, and
/// the default soft limit (often 1024) is far below the 4096 connections allowed.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let _ = setrlimit(Resource::Nofile, raised);
    }
}
