//! [`WorkerConfig`]: how to run and supervise one service's workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use warm_client::duration::parse_duration;
use warm_daemon::config::ResolvedService;
use warm_protocol::Framing;

/// Restarts allowed: `attempts` within any `window`; past that the service is unavailable
/// until the window has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub attempts: u32,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            attempts: 2,
            window: Duration::from_secs(60),
        }
    }
}

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

#[derive(Debug, Clone, PartialEq)]
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
    /// For LSP workers: what the handshake sends.
    pub lsp: Option<LspInit>,
    /// Globs (relative to `cwd`) of files whose change replaces the workers.
    pub watch: Vec<String>,
}

/// What an LSP worker is told when it starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LspInit {
    pub initialization_options: Option<serde_json::Value>,
    pub settings: Option<serde_json::Value>,
}

impl WorkerConfig {
    /// The worker configuration of a service, if it declares a `command`.
    pub fn from_service(service: &ResolvedService, root: PathBuf) -> Option<WorkerConfig> {
        let config = &service.config;
        let (program, args) = config.command.as_ref()?.split_first()?;
        // Values were validated when `.warm.toml` was loaded.
        let duration = |text: &Option<String>, default: Duration| {
            text.as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(default)
        };
        let restart = config
            .restart
            .as_ref()
            .map_or_else(RestartPolicy::default, |r| RestartPolicy {
                attempts: r.attempts,
                window: parse_duration(&r.window).unwrap_or(Duration::from_secs(60)),
            });
        Some(WorkerConfig {
            service: service.name.clone(),
            program: program.clone(),
            args: args.to_vec(),
            env: config.env.clone(),
            cwd: root,
            framing: match config.framing.as_deref() {
                Some("lsp") => Framing::Lsp,
                _ => Framing::Ndjson,
            },
            workers: config.workers.map_or(1, |w| w.max(1) as usize),
            exclusive: config.exclusive.clone(),
            request_timeout: duration(&config.request_timeout, Duration::from_secs(60)),
            restart,
            shutdown: ShutdownDeadlines::default(),
            max_frame_bytes: service.limits.max_frame_bytes,
            watch: config.watch.clone(),
            lsp: (config.framing.as_deref() == Some("lsp")).then(|| LspInit {
                initialization_options: config
                    .initialization_options
                    .as_ref()
                    .and_then(|v| serde_json::to_value(v).ok()),
                settings: config
                    .settings
                    .as_ref()
                    .and_then(|v| serde_json::to_value(v).ok()),
            }),
        })
    }
}
