//! [`ServerWork`]: what the server says of its own work — its work-done progress, shown to
//! every query waiting on it, and whether it has read the project yet.
//!
//! A server that is still reading the project answers partly (bash-language-server: "no
//! definition" until its analysis ends; typescript-language-server: the import line while it
//! loads the project). A query waits until every work-done progress has ended and, for a
//! query about a file, until the server's ready message (words of a `window/logMessage`, or
//! the title of a progress that ended) has come.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;
use tokio::sync::watch;
use warm_daemon::Progress;
use warm_runtime::sync::Recover;

pub struct ServerWork {
    /// Progress reporters of the queries waiting now: the server's work-done progress is
    /// shown to all of them.
    waiting: Mutex<HashMap<u64, Progress>>,
    next_waiter: AtomicU64,
    /// Titles of the server's open work-done progress, by token.
    titles: Mutex<HashMap<String, String>>,
    /// How many work-done progresses are open.
    open: watch::Sender<usize>,
    /// The words that say the server has read the project, if it sends them, and the server
    /// process that sent them.
    ready_message: Option<String>,
    ready_pid: watch::Sender<Option<u32>>,
}

impl ServerWork {
    pub fn new(ready_message: Option<String>) -> ServerWork {
        ServerWork {
            waiting: Mutex::new(HashMap::new()),
            next_waiter: AtomicU64::new(0),
            titles: Mutex::new(HashMap::new()),
            open: watch::channel(0).0,
            ready_message,
            ready_pid: watch::channel(None).0,
        }
    }

    /// Waits until server `pid` has read the project (its ready message, when a query about
    /// a file asks, `for_file`: some servers read the project only once a file is opened)
    /// and its work-done progress has ended, at most until `deadline`. False when it was not
    /// ready by then: answers given meanwhile may be partial.
    pub async fn wait_ready(
        &self,
        pid: u32,
        for_file: bool,
        deadline: tokio::time::Instant,
    ) -> bool {
        if for_file && self.ready_message.is_some() {
            let mut ready = self.ready_pid.subscribe();
            let logged = ready.wait_for(|ready| *ready == Some(pid));
            if tokio::time::timeout_at(deadline, logged).await.is_err() {
                return false;
            }
        }
        let mut open = self.open.subscribe();
        let ended = tokio::time::timeout_at(deadline, open.wait_for(|n| *n == 0)).await;
        ended.is_ok()
    }

    /// A `window/logMessage` of server `pid`.
    pub fn logged(&self, pid: u32, message: &str) {
        self.note_ready(pid, message);
    }

    /// Notes that server `pid` has read the project when `text` (a log message, or the title
    /// of a work-done progress that ended) holds its ready message.
    fn note_ready(&self, pid: u32, text: &str) {
        if self
            .ready_message
            .as_deref()
            .is_some_and(|ready| text.contains(ready))
        {
            self.ready_pid.send_replace(Some(pid));
        }
    }

    /// A work-done progress notification of server `pid` (`{token, value: {kind, title,
    /// message, percentage}}`): counted, and shown to every waiting query.
    pub fn progress(&self, pid: u32, params: &Value) {
        let token = params
            .get("token")
            .map(Value::to_string)
            .unwrap_or_default();
        let Some(value) = params.get("value") else {
            return;
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let title = {
            let mut titles = self.titles.recover();
            let title = match value.get("kind").and_then(Value::as_str) {
                Some("begin") => {
                    let title = text("title").unwrap_or_default();
                    titles.insert(token, title.clone());
                    title
                }
                Some("end") => {
                    let title = titles.remove(&token).unwrap_or_default();
                    self.note_ready(pid, &title);
                    title
                }
                _ => titles.get(&token).cloned().unwrap_or_default(),
            };
            self.open.send_replace(titles.len());
            title
        };
        let message = match (title.is_empty(), text("message")) {
            (false, Some(message)) => format!("{title}: {message}"),
            (true, Some(message)) => message,
            (_, None) => title,
        };
        let percentage = value.get("percentage").and_then(Value::as_u64);
        let waiting: Vec<Progress> = self.waiting.recover().values().cloned().collect();
        for progress in waiting {
            progress.try_report(Some(message.clone()), percentage, percentage.map(|_| 100));
        }
    }

    /// Shows the server's progress to a query's reporter while the returned guard lives.
    pub fn watch(self: &Arc<Self>, progress: &Progress) -> Watching {
        let key = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        self.waiting.recover().insert(key, progress.clone());
        Watching {
            work: Arc::downgrade(self),
            key,
        }
    }
}

/// A query watching the server's progress; it stops when this is dropped.
pub struct Watching {
    work: Weak<ServerWork>,
    key: u64,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(work) = self.work.upgrade() {
            work.waiting.recover().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(50)
    }

    #[tokio::test]
    async fn ready_once_progress_ends_and_the_ready_message_came_from_this_server() {
        let work = ServerWork::new(Some("Loading done".into()));
        assert!(work.wait_ready(7, false, soon()).await, "no progress open");
        assert!(
            !work.wait_ready(7, true, soon()).await,
            "no ready message yet"
        );
        work.progress(
            7,
            &json!({ "token": 1, "value": { "kind": "begin", "title": "Loading done" } }),
        );
        assert!(
            !work.wait_ready(7, false, soon()).await,
            "a progress is open"
        );
        work.progress(7, &json!({ "token": 1, "value": { "kind": "end" } }));
        assert!(
            work.wait_ready(7, true, soon()).await,
            "its title was the ready message"
        );
        assert!(
            !work.wait_ready(8, true, soon()).await,
            "another server is not ready"
        );
        work.logged(8, "12:00 INFO Loading done after 3s");
        assert!(work.wait_ready(8, true, soon()).await);
    }
}
