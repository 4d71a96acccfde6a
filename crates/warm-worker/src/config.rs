//! [`WorkerConfig`]: how to run and supervise one service's workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use warm_protocol::Framing;
use warm_runtime::config::{ResolvedService, RestartPolicy};

use crate::dialect::Dialect;

/// Deadlines of the shutdown sequence, one per stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownDeadlines {
    /// After `shutdown`/`exit` (LSP) and closing stdin, before SIGTERM.
    pub after_close: Duration,
    /// After SIGTERM, before SIGKILL.
    pub after_term: Duration,
}

impl Default for ShutdownDeadlines {
    fn default() -> ShutdownDeadlines {
        ShutdownDeadlines {
            after_close: Duration::from_secs(2),
            after_term: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub service: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The project root: the workers' working directory.
    pub cwd: PathBuf,
    /// `Ndjson` or `Lsp` (binary framing is for clients, not workers).
    pub framing: Framing,
    pub workers: usize,
    pub exclusive: Vec<String>,
    pub request_timeout: Duration,
    pub restart: RestartPolicy,
    pub shutdown: ShutdownDeadlines,
    /// Largest frame accepted from a worker; a worker that sends more is cut off.
    pub max_frame_bytes: usize,
    /// What the worker's protocol adds to plain JSON-RPC (the LSP handshake, ...); set by the
    /// service that hosts it (`warm-lsp` for language servers).
    pub dialect: Option<Arc<dyn Dialect>>,
    /// Globs (relative to `cwd`) of files whose change replaces the workers.
    pub watch: Vec<String>,
    /// Resident memory (bytes, the worker's process tree) past which a worker is replaced
    /// between requests.
    pub max_rss: Option<u64>,
}

impl WorkerConfig {
    /// The worker configuration of a service, if it declares a `command`.
    pub fn from_service(service: &ResolvedService, root: PathBuf) -> Option<WorkerConfig> {
        let config = &service.config;
        let (program, args) = config.command.as_ref()?.split_first()?;
        Some(WorkerConfig {
            service: service.name.clone(),
            program: program.clone(),
            args: args.to_vec(),
            env: config.env.clone(),
            cwd: root,
            framing: service.framing,
            workers: service.workers,
            exclusive: config.exclusive.clone(),
            request_timeout: service.request_timeout,
            restart: service.restart.clone(),
            shutdown: ShutdownDeadlines::default(),
            max_frame_bytes: service.limits.max_frame_bytes,
            watch: config.watch.clone(),
            max_rss: service.max_rss,
            dialect: None,
        })
    }
}
