//! [`Outstanding`]: a client's request to a worker, from its registration to its end.

use std::time::Duration;

use super::WorkerProcess;

/// A client's request to a worker from registration to its end, so that however
/// [`WorkerProcess::call`] ends (answered, timed out, cancelled, or its future dropped) the
/// request is never left registered for an answer nobody awaits.
pub(super) struct Outstanding<'a> {
    worker: &'a WorkerProcess,
    id: i64,
    forget_after: Duration,
    state: OutstandingState,
}

enum OutstandingState {
    /// Registered, not yet written: forgetting it is enough.
    Unwritten,
    /// Written: the worker is working on it.
    Written,
    /// Answered, or dealt with otherwise.
    Settled,
}

impl<'a> Outstanding<'a> {
    /// A request just registered under `id`; if written, its late answer is expected for
    /// `forget_after` once abandoned.
    pub fn registered(worker: &'a WorkerProcess, id: i64, forget_after: Duration) -> Self {
        Outstanding {
            worker,
            id,
            forget_after,
            state: OutstandingState::Unwritten,
        }
    }

    /// The request is on its way to the worker.
    pub fn written(&mut self) {
        self.state = OutstandingState::Written;
    }

    /// Its answer arrived (or its waiter learnt the worker is gone): nothing left to undo.
    pub fn answered(&mut self) {
        self.state = OutstandingState::Settled;
    }

    /// Forgets it without telling the worker (which is being replaced).
    pub fn forget(&mut self) {
        self.worker.take_pending(self.id);
        self.state = OutstandingState::Settled;
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        match self.state {
            OutstandingState::Unwritten => {
                self.worker.take_pending(self.id);
            }
            OutstandingState::Written => self.worker.abandon(self.id, self.forget_after),
            OutstandingState::Settled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;
    use warm_daemon::Progress;
    use warm_protocol::Framing;
    use warm_runtime::sync::Recover;
    use warm_runtime::EventLog;

    use crate::config::WorkerConfig;
    use crate::process::WorkerProcess;

    /// A worker that reads every request and answers none.
    fn mute(dir: &std::path::Path) -> WorkerConfig {
        WorkerConfig {
            service: "mute".into(),
            program: "sh".into(),
            args: vec!["-c".into(), "while read -r line; do :; done".into()],
            env: BTreeMap::new(),
            cwd: dir.to_owned(),
            framing: Framing::Ndjson,
            workers: 1,
            exclusive: Vec::new(),
            request_timeout: Duration::from_secs(30),
            restart: Default::default(),
            shutdown: Default::default(),
            max_frame_bytes: 1 << 20,
            dialect: None,
            watch: Vec::new(),
            max_rss: None,
        }
    }

    #[tokio::test]
    async fn a_dropped_call_is_forgotten_and_its_late_answer_expected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let events = EventLog::new(dir.path().join("events.jsonl"));
        let worker = WorkerProcess::spawn(&mute(dir.path()), 0, events, None, None).expect("spawn");
        let call = worker.call(
            "slow".into(),
            None,
            Progress::none(),
            CancellationToken::new(),
            Duration::from_secs(30),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), call)
                .await
                .is_err(),
            "the mute worker answered"
        );
        assert!(worker.pending.recover().is_empty(), "nothing awaits it");
        assert_eq!(worker.in_flight(), 1, "its answer is still expected");
        worker.stop().await;
    }

    /// A request registered just after its worker was retired (the worker exited between
    /// being chosen and the request) is answered at once, not after its whole timeout.
    #[tokio::test]
    async fn a_request_registered_after_the_worker_retired_is_failed_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let events = EventLog::new(dir.path().join("events.jsonl"));
        let worker = WorkerProcess::spawn(&mute(dir.path()), 0, events, None, None).expect("spawn");
        worker.retire("exited (signal 9)");
        let (_, answer) = worker.register(Progress::none());
        let answer = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .expect("answered at once")
            .expect("an answer");
        let error = answer.expect_err("a failure");
        assert_eq!(error.kind(), warm_protocol::ErrorCode::WorkerUnavailable);
        assert!(error.message.contains("signal 9"), "{}", error.message);
        assert!(worker.pending.recover().is_empty());
        worker.stop().await;
    }
}
