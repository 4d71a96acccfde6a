//! `.warm.toml`: per-service settings (`[services.NAME]`) and client behaviour (`[client]`).
//!
//! Parsed and resolved once, when the file is loaded: every service becomes a
//! [`ResolvedService`] of typed values (durations, framing, limits, restart policy), and
//! nothing downstream reads the text again or falls back on its own. Unknown keys and bad
//! values are errors that name the file, the key and what is allowed: a typo must not
//! silently fall back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warm_protocol::{Framing, Limits};

use crate::agent_tools::ToolConfig;
use crate::duration::parse_duration;
use crate::settings::{ClientSettings, SettingsError};
use crate::size::parse_size;

/// The file name looked for in the project root.
pub const CONFIG_FILE: &str = ".warm.toml";

/// Services every warm binary has without configuration. A `.warm.toml` may set their TTL
/// and limits, never a command: a cloned repository must not be able to make a plain
/// `warm search` run something.
pub const BUILTIN_SERVICES: &[&str] = &["default", "echo", "search"];

/// A `.warm.toml` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    pub client: ClientConfig,
}

/// `[services.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The worker command (a stdio JSON-RPC server).
    pub command: Option<Vec<String>>,
    /// `"ndjson"` or `"lsp"`.
    pub framing: Option<String>,
    /// Idle TTL, e.g. `"10m"` or `600` (seconds); `"0"` means never.
    #[serde(default, deserialize_with = "crate::duration::deserialize_text")]
    pub ttl: Option<String>,
    /// Worker pool size.
    pub workers: Option<u32>,
    /// Methods that run alone.
    #[serde(default)]
    pub exclusive: Vec<String>,
    #[serde(default, deserialize_with = "crate::duration::deserialize_text")]
    pub request_timeout: Option<String>,
    pub restart: Option<RestartConfig>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub max_in_flight: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_frame_bytes: Option<usize>,
    /// Requests in one JSON-RPC batch.
    pub max_batch: Option<usize>,
    /// How long a partially received frame may take to complete.
    #[serde(default, deserialize_with = "crate::duration::deserialize_text")]
    pub partial_frame_timeout: Option<String>,
    #[serde(default, deserialize_with = "crate::duration::deserialize_text")]
    pub drain_timeout: Option<String>,
    /// LSP workers: `initializationOptions` sent with `initialize`.
    pub initialization_options: Option<toml::Value>,
    /// LSP workers: settings sent with `workspace/didChangeConfiguration` and used to answer
    /// `workspace/configuration`.
    pub settings: Option<toml::Value>,
    /// LSP workers: the language ids (`python`, `rust`, ...) `warm lsp` uses this server for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// LSP workers: globs of the files `warm lsp` uses this server for (e.g. `"*.py"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// LSP workers: words of the `window/logMessage` a server sends when it has read the
    /// project, or of the title of the work-done progress that ends then; queries about a
    /// file wait for it.
    pub ready_message: Option<String>,
    /// Largest resident memory of a worker (or language server) with its child processes,
    /// e.g. `"2G"`; past it the worker is replaced between requests. `0`: no cap.
    #[serde(
        default,
        deserialize_with = "crate::size::deserialize_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_rss: Option<String>,
    /// Globs of files (relative to the root) whose change replaces the workers: the worker's
    /// own code, so an edit takes effect without `warm restart`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
    /// Methods offered to coding agents as `warm mcp` tools, by tool name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolConfig>,
}

/// `restart = { attempts = 2, window = "60s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    pub attempts: u32,
    #[serde(deserialize_with = "crate::duration::deserialize_required")]
    pub window: String,
}

/// `[client]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    #[serde(default, deserialize_with = "crate::duration::deserialize_texts")]
    pub retry_delays: Option<Vec<String>>,
    pub max_restarts: Option<u32>,
    pub fallback: Option<bool>,
}

/// A bad `.warm.toml`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// A loaded and validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from; `None` when there is no `.warm.toml`.
    pub path: Option<PathBuf>,
    pub file: ConfigFile,
    /// Each configured service, resolved when the file was parsed.
    services: BTreeMap<String, ResolvedService>,
    client: ClientSettings,
}

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

/// One service's settings, resolved with defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedService {
    pub name: String,
    pub ttl: Duration,
    pub limits: Limits,
    pub drain_timeout: Duration,
    /// How the worker speaks (`ndjson` unless `framing = "lsp"`).
    pub framing: Framing,
    /// Worker pool size.
    pub workers: usize,
    /// How long a worker may take to answer one request.
    pub request_timeout: Duration,
    pub restart: RestartPolicy,
    /// The workers' memory cap in bytes (`max_rss`), if any.
    pub max_rss: Option<u64>,
    /// Hash of the service's table, so a daemon started from an older `.warm.toml` is
    /// recognised and replaced.
    pub config_hash: Option<String>,
    /// The table as written, for what needs no resolving (command, env, LSP settings).
    pub config: ServiceConfig,
}

impl ResolvedService {
    /// A service that `.warm.toml` does not configure: every default.
    pub fn defaults(name: &str) -> ResolvedService {
        ResolvedService {
            name: name.to_owned(),
            ttl: Duration::from_secs(600),
            limits: Limits::default(),
            drain_timeout: Duration::from_secs(10),
            framing: Framing::Ndjson,
            workers: 1,
            request_timeout: Duration::from_secs(60),
            restart: RestartPolicy::default(),
            max_rss: None,
            config_hash: None,
            config: ServiceConfig::default(),
        }
    }

    /// Resolves a service's table into typed values: each key given, else its default.
    ///
    /// # Errors
    /// The key and what is wrong with its value.
    fn resolve(name: &str, table: &ServiceConfig) -> Result<ResolvedService, String> {
        let key = |k: &str| format!("services.{name}.{k}");
        let duration = |field: &str, text: &Option<String>, default: Duration| match text {
            Some(text) => parse_duration(text).map_err(|e| format!("{}: {e}", key(field))),
            None => Ok(default),
        };
        let defaults = ResolvedService::defaults(name);
        let framing = match table.framing.as_deref() {
            None => defaults.framing,
            Some("ndjson") => Framing::Ndjson,
            Some("lsp") => Framing::Lsp,
            Some(other) => {
                return Err(format!(
                    "{}: unknown framing {other:?}; allowed: \"ndjson\", \"lsp\"",
                    key("framing")
                ))
            }
        };
        let restart = match &table.restart {
            Some(restart) => RestartPolicy {
                attempts: restart.attempts,
                window: parse_duration(&restart.window)
                    .map_err(|e| format!("{}: {e}", key("restart.window")))?,
            },
            None => defaults.restart,
        };
        let limits = defaults.limits;
        Ok(ResolvedService {
            name: name.to_owned(),
            ttl: duration("ttl", &table.ttl, defaults.ttl)?,
            limits: Limits {
                max_in_flight: table.max_in_flight.unwrap_or(limits.max_in_flight),
                max_connections: table.max_connections.unwrap_or(limits.max_connections),
                max_frame_bytes: table.max_frame_bytes.unwrap_or(limits.max_frame_bytes),
                max_batch: table.max_batch.unwrap_or(limits.max_batch),
                partial_frame_timeout: duration(
                    "partial_frame_timeout",
                    &table.partial_frame_timeout,
                    limits.partial_frame_timeout,
                )?,
                ..limits
            },
            drain_timeout: duration(
                "drain_timeout",
                &table.drain_timeout,
                defaults.drain_timeout,
            )?,
            framing,
            workers: table
                .workers
                .map_or(defaults.workers, |w| w.max(1) as usize),
            request_timeout: duration(
                "request_timeout",
                &table.request_timeout,
                defaults.request_timeout,
            )?,
            restart,
            max_rss: match &table.max_rss {
                Some(text) => {
                    Some(parse_size(text).map_err(|e| format!("{}: {e}", key("max_rss")))?)
                        .filter(|bytes| *bytes > 0)
                }
                None => None,
            },
            config_hash: Some(hash_service(table)),
            config: table.clone(),
        })
    }
}

impl Config {
    /// Reads `<root>/.warm.toml` if it exists.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the key and what is allowed.
    pub fn load_from_root(root: &Path) -> Result<Config, ConfigError> {
        let path = root.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(ConfigError {
                path,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Parses and validates configuration text read from `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and what is allowed.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| error(e.to_string().trim_end().to_owned()))?;
        let mut services = BTreeMap::new();
        for (name, service) in &file.services {
            crate::paths::validate_service_name(name)
                .map_err(|e| error(format!("[services.{name}]: {e}")))?;
            validate_service(name, service).map_err(error)?;
            let resolved = ResolvedService::resolve(name, service).map_err(error)?;
            services.insert(name.clone(), resolved);
        }
        validate_tool_names(&file.services).map_err(error)?;
        let client = client_settings(&file.client).map_err(error)?;
        Ok(Config {
            path: Some(path.to_path_buf()),
            file,
            services,
            client,
        })
    }

    /// Names of the configured services.
    pub fn service_names(&self) -> Vec<String> {
        self.file.services.keys().cloned().collect()
    }

    /// The configured services, resolved, by name.
    pub fn services(&self) -> impl Iterator<Item = &ResolvedService> {
        self.services.values()
    }

    /// Settings for `name`: its table if configured, the defaults otherwise.
    pub fn service(&self, name: &str) -> ResolvedService {
        self.services
            .get(name)
            .cloned()
            .unwrap_or_else(|| ResolvedService::defaults(name))
    }

    /// Client settings: defaults, then `[client]`, then `WARM_*` environment variables.
    ///
    /// # Errors
    /// A bad environment variable, named.
    pub fn client_settings(&self) -> Result<ClientSettings, SettingsError> {
        self.client.clone().apply_env()
    }
}

/// `[client]` over the defaults.
fn client_settings(client: &ClientConfig) -> Result<ClientSettings, String> {
    let mut settings = ClientSettings::default();
    if let Some(delays) = &client.retry_delays {
        settings.retry_delays = delays
            .iter()
            .map(|d| parse_duration(d).map_err(|e| format!("client.retry_delays: {e}")))
            .collect::<Result<_, _>>()?;
    }
    if let Some(max) = client.max_restarts {
        settings.max_restarts = max;
    }
    if let Some(fallback) = client.fallback {
        settings.fallback = fallback;
    }
    Ok(settings)
}

fn validate_service(name: &str, service: &ServiceConfig) -> Result<(), String> {
    // Durations and framing are checked as they are resolved (`ResolvedService::resolve`).
    let key = |k: &str| format!("services.{name}.{k}");
    if let Some(command) = &service.command {
        if BUILTIN_SERVICES.contains(&name) {
            return Err(format!(
                "{}: {name} is a built-in service and runs no command; name your own service \
                 differently (its TTL and limits may be set here)",
                key("command")
            ));
        }
        if command.is_empty() || command[0].is_empty() {
            return Err(format!(
                "{}: must name a program, e.g. [\"python3\", \"-m\", \"tool.worker\"]",
                key("command")
            ));
        }
    }
    for (field, value) in [
        ("workers", service.workers.map(|w| w as usize)),
        ("max_in_flight", service.max_in_flight),
        ("max_connections", service.max_connections),
        ("max_frame_bytes", service.max_frame_bytes),
        ("max_batch", service.max_batch),
    ] {
        if value == Some(0) {
            return Err(format!("{}: must be at least 1", key(field)));
        }
    }
    for (tool, table) in &service.tools {
        crate::agent_tools::validate(&key(&format!("tools.{tool}")), tool, table)?;
    }
    Ok(())
}

/// Agent tools' names must be unique across services: an agent calls a tool by name alone.
fn validate_tool_names(services: &BTreeMap<String, ServiceConfig>) -> Result<(), String> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (service, table) in services {
        for tool in table.tools.keys() {
            if let Some(first) = seen.insert(tool, service) {
                return Err(format!(
                    "services.{service}.tools.{tool}: the tool {tool} is also declared by \
                     [services.{first}]; tool names must be unique"
                ));
            }
        }
    }
    Ok(())
}

/// The hash leaves out what the daemon does not use (the agent tools' descriptions), so
/// editing them does not replace a running daemon.
fn hash_service(service: &ServiceConfig) -> String {
    let mut service = service.clone();
    service.tools.clear();
    let canonical = serde_json::to_vec(&service).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/p/.warm.toml"), text)
    }

    #[test]
    fn design_example_parses() {
        let config = parse(
            r#"
[services.index]
command = ["python3", "-m", "mytool.worker"]
framing = "ndjson"
ttl = "10m"
workers = 2
exclusive = ["reindex"]
request_timeout = "60s"
restart = { attempts = 2, window = "60s" }
env = { RUST_LOG = "info" }

[client]
retry_delays = ["100ms", "500ms", "1s", "2s"]
max_restarts = 2
fallback = true
"#,
        )
        .expect("parses");
        let service = config.service("index");
        assert_eq!(service.ttl, Duration::from_secs(600));
        assert!(service.config_hash.is_some());
        assert_eq!(config.service("other").config_hash, None);
    }

    #[test]
    fn each_service_is_resolved_once_into_typed_values() {
        let config = parse(
            r#"
[services.py]
command = ["pylsp"]
framing = "lsp"
workers = 3
request_timeout = "5s"
restart = { attempts = 4, window = "2m" }
[client]
retry_delays = ["50ms"]
"#,
        )
        .expect("parses");
        let py = config.service("py");
        assert_eq!(py.framing, Framing::Lsp);
        assert_eq!(py.workers, 3);
        assert_eq!(py.request_timeout, Duration::from_secs(5));
        assert_eq!(
            py.restart,
            RestartPolicy {
                attempts: 4,
                window: Duration::from_secs(120)
            }
        );
        let names: Vec<&str> = config.services().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["py"]);
        let other = config.service("other");
        assert_eq!((other.framing, other.workers), (Framing::Ndjson, 1));
        assert_eq!(other, ResolvedService::defaults("other"));
        assert_eq!(
            config.client.retry_delays,
            [Duration::from_millis(50)],
            "[client] resolved with the file"
        );
    }

    #[test]
    fn every_bad_value_is_an_error_naming_its_key() {
        for (text, key) in [
            (
                "[services.a]\nframing = \"xml\"\n",
                "services.a.framing: unknown framing",
            ),
            (
                "[services.a]\nrestart = { attempts = 1, window = \"soon\" }\n",
                "services.a.restart.window",
            ),
            (
                "[services.a]\nrequest_timeout = \"1 minute\"\n",
                "services.a.request_timeout",
            ),
            (
                "[client]\nretry_delays = [\"1s\", \"x\"]\n",
                "client.retry_delays",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_key_names_file_key_and_allowed() {
        let err = parse("[services.a]\nttll = \"1s\"\n").expect_err("unknown key");
        let text = err.to_string();
        assert!(text.starts_with("/p/.warm.toml"), "{text}");
        assert!(text.contains("ttll"), "{text}");
        assert!(text.contains("expected one of"), "{text}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let err = parse("[services.a]\nttl = \"ten minutes\"\n").expect_err("bad ttl");
        assert!(err.to_string().contains("services.a.ttl"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused() {
        let err = parse("[services.a]\nmax_in_flight = 0\n").expect_err("zero");
        assert!(
            err.to_string()
                .contains("services.a.max_in_flight: must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn hash_changes_with_the_table() {
        let a = parse("[services.a]\nttl = \"1s\"\n")
            .expect("a")
            .service("a");
        let b = parse("[services.a]\nttl = \"2s\"\n")
            .expect("b")
            .service("a");
        assert_ne!(a.config_hash, b.config_hash);
    }

    #[test]
    fn agent_tools_are_checked_unique_and_left_out_of_the_hash() {
        let with = |description: &str| {
            format!(
                "[services.a]\nttl = \"1s\"\n[services.a.tools.find]\ndescription = \"{description}\"\n"
            )
        };
        let one = parse(&with("Finds.")).expect("a tool").service("a");
        let other = parse(&with("Finds things.")).expect("a tool").service("a");
        assert_eq!(one.config.tools["find"].method_for("find"), "find");
        assert_eq!(
            one.config_hash, other.config_hash,
            "a description is not the daemon's"
        );
        let bare = parse("[services.a]\nttl = \"1s\"\n")
            .expect("bare")
            .service("a");
        assert_eq!(one.config_hash, bare.config_hash);
        let reserved = parse("[services.a.tools.search]\ndescription = \"d\"\n");
        let text = reserved.expect_err("reserved").to_string();
        assert!(text.contains("services.a.tools.search"), "{text}");
        let twice = "[services.a.tools.t]\ndescription = \"d\"\n[services.b.tools.t]\ndescription = \"d\"\n";
        let text = parse(twice).expect_err("twice").to_string();
        assert!(text.contains("also declared by [services.a]"), "{text}");
    }
}
