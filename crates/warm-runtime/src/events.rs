//! `events.jsonl`: one JSON object per line, `{ts, event, ...fields}`.
//!
//! Both the daemon and its clients append (a client records `client.spawned` and
//! `stale.cleaned`). Each line goes out in one `write` on an `O_APPEND` descriptor, so lines
//! from several processes never interleave. Only the daemon rotates, once the file passes the
//! size cap, keeping one previous generation (`events.jsonl.1`).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Size past which the daemon rotates the event log.
pub const EVENTS_MAX_BYTES: u64 = 1024 * 1024;

/// Appends events to one `events.jsonl`.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    pub fn new(path: impl Into<PathBuf>) -> EventLog {
        EventLog { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `event` with `fields` (an object; other values are stored under `data`).
    /// Failures are ignored: telemetry must never break the thing it observes (a full disk
    /// must not stop the daemon from answering).
    pub fn record(&self, event: &str, fields: Value) {
        let mut object = Map::new();
        object.insert("ts".into(), Value::from(unix_time_secs_f64()));
        object.insert("event".into(), Value::from(event));
        match fields {
            Value::Object(map) => object.extend(map),
            Value::Null => {}
            other => {
                object.insert("data".into(), other);
            }
        }
        let Ok(mut line) = serde_json::to_vec(&Value::Object(object)) else {
            return;
        };
        line.push(b'\n');
        // O_NOFOLLOW: a symlink planted in the daemon's directory must not redirect events.
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&self.path)
        {
            let _ = file.write_all(&line);
        }
    }

    /// Rotates the log when it is over [`EVENTS_MAX_BYTES`]. Called by the daemon only.
    pub fn rotate_if_large(&self) {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return;
        };
        if meta.len() > EVENTS_MAX_BYTES {
            let mut old = self.path.as_os_str().to_owned();
            old.push(".1");
            let _ = std::fs::rename(&self.path, old);
        }
    }
}

/// Seconds since the Unix epoch, with milliseconds.
#[allow(clippy::disallowed_methods)] // a timestamp for events, never a timing decision
pub fn unix_time_secs_f64() -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_millis() as f64) / 1000.0
}

/// Whole seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // a timestamp (e.g. a daemon's start), never a timing decision
pub fn unix_time_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lines_and_rotates_past_the_cap() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = EventLog::new(tmp.path().join("events.jsonl"));
        log.record("a.b", serde_json::json!({ "k": 1 }));
        let text = std::fs::read_to_string(log.path()).expect("read");
        let event: Value = serde_json::from_str(text.trim()).expect("json line");
        assert_eq!(event["event"], "a.b");
        assert_eq!(event["k"], 1);
        assert!(event["ts"].as_f64().is_some());
        log.rotate_if_large();
        assert!(log.path().exists(), "rotated below the cap");
        std::fs::write(log.path(), vec![b'x'; EVENTS_MAX_BYTES as usize + 1]).expect("fill");
        log.rotate_if_large();
        assert!(!log.path().exists());
        assert!(tmp.path().join("events.jsonl.1").exists());
        log.record("after", Value::Null);
        assert!(log.path().exists(), "a fresh file is started");
    }
}
