//! [`Published`]: the diagnostics a language server pushed (`textDocument/publishDiagnostics`),
//! and waiting for the ones that belong to a given content of a document.
//!
//! A server lints after it receives a change, often after a debounce, so the diagnostics for
//! the content a query just synced arrive some time later, and ones for the previous content
//! may still arrive in between. A notification is current when it names the synced document
//! version (from servers that send no version: any) and arrived after the server was told of
//! the last change of anything (this document, another open one, a watched file): an error
//! in one file can come from another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use warm_runtime::sync::Recover;

struct Entry {
    pid: u32,
    version: Option<i64>,
    /// The documents' sync counter when this arrived.
    arrived_at: u64,
    diagnostics: Value,
}

/// What the caller is waiting for: diagnostics of `uri` from server `pid` for the content
/// with `version`, published after the sync counter reached `fresh_after` (the server's last
/// change).
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub pid: u32,
    pub uri: &'a str,
    pub version: i32,
    pub fresh_after: u64,
    /// The server sends versions: one without a version is then not for this content (a
    /// server clears a closed document's diagnostics without one).
    pub versioned: bool,
}

pub struct Published {
    latest: Mutex<HashMap<String, Entry>>,
    /// Bumped on every notification, to wake waiters.
    changed: watch::Sender<u64>,
}

impl Default for Published {
    fn default() -> Published {
        Published {
            latest: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl Published {
    /// Records a `publishDiagnostics` notification's params from server `pid`.
    pub fn record(&self, pid: u32, params: Value, sync_counter: u64) {
        let Some(uri) = params.get("uri").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        let entry = Entry {
            pid,
            version: params.get("version").and_then(Value::as_i64),
            arrived_at: sync_counter,
            diagnostics: params.get("diagnostics").cloned().unwrap_or(Value::Null),
        };
        self.latest.recover().insert(uri, entry);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The diagnostics for the wanted content, waiting up to `timeout` for them. `None` when
    /// none arrived in time.
    ///
    /// # Cancellation safety
    /// Safe to drop: it only watches.
    pub async fn wait(&self, wanted: &Wanted<'_>, timeout: Duration) -> Option<Value> {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.current(wanted) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// The last diagnostics of a document, whatever content they were for.
    pub fn last(&self, uri: &str) -> Option<Value> {
        let latest = self.latest.recover();
        latest.get(uri).map(|e| e.diagnostics.clone())
    }

    /// The diagnostics for the wanted content, if they have arrived.
    pub fn current(&self, wanted: &Wanted<'_>) -> Option<Value> {
        let latest = self.latest.recover();
        let entry = latest.get(wanted.uri).filter(|e| e.pid == wanted.pid)?;
        let matches = entry.arrived_at >= wanted.fresh_after
            && match entry.version {
                Some(version) => version == i64::from(wanted.version),
                None => !wanted.versioned,
            };
        matches.then(|| entry.diagnostics.clone())
    }

    /// Whether the server sends document versions with its diagnostics (as far as what it
    /// has published shows).
    pub fn versioned(&self, pid: u32) -> bool {
        let latest = self.latest.recover();
        latest.values().any(|e| e.pid == pid && e.version.is_some())
    }

    /// Marks the last diagnostics of `uri` from server `pid` as current when the sync counter
    /// is `counter`, as if published again then: for a server that says nothing when a list
    /// stays the same.
    pub fn confirm(&self, pid: u32, uri: &str, counter: u64) {
        if let Some(entry) = self.latest.recover().get_mut(uri).filter(|e| e.pid == pid) {
            entry.arrived_at = entry.arrived_at.max(counter);
        }
    }

    /// Whether the server has published diagnostics of `uri` at all.
    pub fn has(&self, pid: u32, uri: &str) -> bool {
        self.latest.recover().get(uri).is_some_and(|e| e.pid == pid)
    }

    /// Waits until no diagnostics of `uri` arrived for `quiet`, at most `timeout`; the last
    /// ones. For servers that publish a document's diagnostics in parts (syntax first, types
    /// later) and say nothing of which is the last.
    ///
    /// # Cancellation safety
    /// Safe to drop: it only watches.
    pub async fn settle(&self, uri: &str, quiet: Duration, timeout: Duration) -> Option<Value> {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let quiet_until = (tokio::time::Instant::now() + quiet).min(deadline);
            match tokio::time::timeout_at(quiet_until, changes.changed()).await {
                Ok(Ok(())) if tokio::time::Instant::now() < deadline => {}
                _ => return self.last(uri),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wanted(version: i32, fresh_after: u64) -> Wanted<'static> {
        Wanted {
            pid: 7,
            uri: "file:///a.py",
            version,
            fresh_after,
            versioned: false,
        }
    }

    #[tokio::test]
    async fn versioned_diagnostics_match_their_version_only() {
        let published = Published::default();
        published.record(
            7,
            json!({ "uri": "file:///a.py", "version": 1, "diagnostics": [1] }),
            5,
        );
        assert_eq!(published.current(&wanted(1, 5)), Some(json!([1])));
        assert_eq!(published.current(&wanted(2, 1)), None);
        // For its version, but from before the server heard of a later change elsewhere.
        assert_eq!(published.current(&wanted(1, 9)), None);
        assert_eq!(
            published
                .wait(&wanted(2, 1), Duration::from_millis(10))
                .await,
            None
        );
    }

    #[tokio::test]
    async fn unversioned_diagnostics_count_when_they_arrive_after_the_sync() {
        let published = Published::default();
        published.record(7, json!({ "uri": "file:///a.py", "diagnostics": [] }), 3);
        assert_eq!(published.current(&wanted(4, 4)), None);
        assert_eq!(published.current(&wanted(4, 3)), Some(json!([])));
        // A server of another process does not answer for this one.
        published.record(8, json!({ "uri": "file:///a.py", "diagnostics": [2] }), 9);
        assert_eq!(published.current(&wanted(4, 3)), None);
    }

    #[test]
    fn a_list_confirmed_by_silence_is_current_until_the_next_change() {
        let published = Published::default();
        published.record(7, json!({ "uri": "file:///a.py", "diagnostics": [] }), 3);
        assert_eq!(
            published.current(&wanted(4, 5)),
            None,
            "from before the change"
        );
        published.confirm(7, "file:///a.py", 5);
        assert_eq!(published.current(&wanted(4, 5)), Some(json!([])));
        assert_eq!(published.current(&wanted(4, 6)), None, "a later change");
        // Another server's silence confirms nothing of this one's.
        published.confirm(8, "file:///a.py", 9);
        assert_eq!(published.current(&wanted(4, 9)), None);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_its_diagnostics_arrive() {
        let published = std::sync::Arc::new(Published::default());
        let waiter = {
            let published = published.clone();
            tokio::spawn(
                async move { published.wait(&wanted(2, 0), Duration::from_secs(30)).await },
            )
        };
        tokio::task::yield_now().await;
        published.record(
            7,
            json!({ "uri": "file:///a.py", "version": 1, "diagnostics": [1] }),
            1,
        );
        published.record(
            7,
            json!({ "uri": "file:///a.py", "version": 2, "diagnostics": [2] }),
            2,
        );
        assert_eq!(waiter.await.expect("waiter"), Some(json!([2])));
    }
}
