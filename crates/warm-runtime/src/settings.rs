//! How a client behaves when the daemon is missing, busy or dying.

use std::time::Duration;

use crate::duration::{parse_duration, DurationError};

/// A client setting that cannot be used, with the variable or key it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}: {1}")]
    Duration(&'static str, DurationError),
    #[error("{0}: {1:?} is not a non-negative integer")]
    NotACount(&'static str, String),
    #[error("{0}: {1:?} is not one of 1, 0, true, false")]
    NotABoolean(&'static str, String),
}

/// Retry, restart and fallback behaviour. Defaults follow DESIGN section 3; `.warm.toml`'s
/// `[client]` table and `WARM_*` environment variables override them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Pauses between attempts after a connect failure or a busy answer (jittered ±20%).
    pub retry_delays: Vec<Duration>,
    /// How many times one call may start a daemon that died, before giving up.
    pub max_restarts: u32,
    /// Whether the caller should fall back to doing the work without the daemon.
    pub fallback: bool,
    /// How long to wait for a spawned daemon to report readiness.
    pub ready_timeout: Duration,
    /// How long to wait for another client's spawn, or for a stopping daemon to exit.
    pub lock_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> ClientSettings {
        ClientSettings {
            retry_delays: [100, 500, 1000, 2000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            max_restarts: 2,
            fallback: true,
            ready_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(15),
        }
    }
}

impl ClientSettings {
    /// Applies `WARM_RETRY_DELAYS` (comma-separated durations), `WARM_MAX_RESTARTS`,
    /// `WARM_FALLBACK` (`0`/`1`/`true`/`false`) and `WARM_READY_TIMEOUT`.
    ///
    /// # Errors
    /// [`SettingsError`], naming the variable and what it accepts.
    pub fn apply_env(mut self) -> Result<ClientSettings, SettingsError> {
        if let Ok(text) = std::env::var("WARM_RETRY_DELAYS") {
            self.retry_delays = text
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_duration)
                .collect::<Result<_, _>>()
                .map_err(|e| SettingsError::Duration("WARM_RETRY_DELAYS", e))?;
        }
        if let Ok(text) = std::env::var("WARM_MAX_RESTARTS") {
            self.max_restarts = text
                .trim()
                .parse()
                .map_err(|_| SettingsError::NotACount("WARM_MAX_RESTARTS", text.clone()))?;
        }
        if let Ok(text) = std::env::var("WARM_FALLBACK") {
            self.fallback = match text.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => {
                    return Err(SettingsError::NotABoolean(
                        "WARM_FALLBACK",
                        other.to_owned(),
                    ))
                }
            };
        }
        if let Ok(text) = std::env::var("WARM_READY_TIMEOUT") {
            self.ready_timeout = parse_duration(&text)
                .map_err(|e| SettingsError::Duration("WARM_READY_TIMEOUT", e))?;
        }
        Ok(self)
    }
}
