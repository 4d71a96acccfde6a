//! `.warm.toml`: per-service settings (`[services.NAME]`) and client behaviour (`[client]`).
//!
//! Unknown keys and bad values are errors that name the file, the key and what is allowed:
//! a typo must not silently fall back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warm_client::duration::parse_duration;
use warm_client::ClientSettings;
use warm_protocol::Limits;

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
    /// Idle TTL, e.g. `"10m"`; `"0"` means never.
    pub ttl: Option<String>,
    /// Worker pool size.
    pub workers: Option<u32>,
    /// Methods that run alone.
    #[serde(default)]
    pub exclusive: Vec<String>,
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
    pub partial_frame_timeout: Option<String>,
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
    /// Globs of files (relative to the root) whose change replaces the workers: the worker's
    /// own code, so an edit takes effect without `warm restart`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
}

/// `restart = { attempts = 2, window = "60s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    pub attempts: u32,
    pub window: String,
}

/// `[client]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
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
}

/// One service's settings, resolved with defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedService {
    pub name: String,
    pub ttl: Duration,
    pub limits: Limits,
    pub drain_timeout: Duration,
    /// Hash of the service's table, so a daemon started from an older `.warm.toml` is
    /// recognised and replaced.
    pub config_hash: Option<String>,
    pub config: ServiceConfig,
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
        for (name, service) in &file.services {
            warm_client::paths::validate_service_name(name)
                .map_err(|e| error(format!("[services.{name}]: {e}")))?;
            validate_service(name, service).map_err(error)?;
        }
        if let Some(delays) = &file.client.retry_delays {
            for delay in delays {
                parse_duration(delay).map_err(|e| error(format!("client.retry_delays: {e}")))?;
            }
        }
        Ok(Config {
            path: Some(path.to_path_buf()),
            file,
        })
    }

    /// Names of the configured services.
    pub fn service_names(&self) -> Vec<String> {
        self.file.services.keys().cloned().collect()
    }

    /// Settings for `name`: its table if configured, the defaults otherwise.
    pub fn service(&self, name: &str) -> ResolvedService {
        let config = self.file.services.get(name).cloned();
        let hash = config.as_ref().map(hash_service);
        let config = config.unwrap_or_default();
        let defaults = Limits::default();
        // Validated in `parse`, so the fallbacks below are never taken for a loaded file.
        let duration = |text: &Option<String>, default: Duration| {
            text.as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(default)
        };
        ResolvedService {
            name: name.to_owned(),
            ttl: duration(&config.ttl, Duration::from_secs(600)),
            limits: Limits {
                max_in_flight: config.max_in_flight.unwrap_or(defaults.max_in_flight),
                max_connections: config.max_connections.unwrap_or(defaults.max_connections),
                max_frame_bytes: config.max_frame_bytes.unwrap_or(defaults.max_frame_bytes),
                max_batch: config.max_batch.unwrap_or(defaults.max_batch),
                partial_frame_timeout: duration(
                    &config.partial_frame_timeout,
                    defaults.partial_frame_timeout,
                ),
                ..defaults
            },
            drain_timeout: duration(&config.drain_timeout, Duration::from_secs(10)),
            config_hash: hash,
            config,
        }
    }

    /// Client settings: defaults, then `[client]`, then `WARM_*` environment variables.
    ///
    /// # Errors
    /// A bad environment variable, named.
    pub fn client_settings(&self) -> Result<ClientSettings, String> {
        let mut settings = ClientSettings::default();
        let client = &self.file.client;
        if let Some(delays) = &client.retry_delays {
            settings.retry_delays = delays
                .iter()
                .filter_map(|d| parse_duration(d).ok())
                .collect();
        }
        if let Some(max) = client.max_restarts {
            settings.max_restarts = max;
        }
        if let Some(fallback) = client.fallback {
            settings.fallback = fallback;
        }
        settings.apply_env()
    }
}

fn validate_service(name: &str, service: &ServiceConfig) -> Result<(), String> {
    let key = |k: &str| format!("services.{name}.{k}");
    for (field, value) in [
        ("ttl", &service.ttl),
        ("request_timeout", &service.request_timeout),
        ("drain_timeout", &service.drain_timeout),
        ("partial_frame_timeout", &service.partial_frame_timeout),
    ] {
        if let Some(text) = value {
            parse_duration(text).map_err(|e| format!("{}: {e}", key(field)))?;
        }
    }
    if let Some(framing) = &service.framing {
        if framing != "ndjson" && framing != "lsp" {
            return Err(format!(
                "{}: unknown framing {framing:?}; allowed: \"ndjson\", \"lsp\"",
                key("framing")
            ));
        }
    }
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
    if let Some(restart) = &service.restart {
        parse_duration(&restart.window).map_err(|e| format!("{}: {e}", key("restart.window")))?;
    }
    Ok(())
}

fn hash_service(service: &ServiceConfig) -> String {
    let canonical = serde_json::to_vec(service).unwrap_or_default();
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
}
