//! The tasks that serve one worker: its stdin writer, stdout reader, stderr reader, and the
//! reaper that alone owns the child.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use warm_protocol::{encode, FrameDecoder, Framing, Incoming, Limits, Message};
use warm_runtime::sync::Recover;

use super::{ExitInfo, WorkerProcess, STDERR_TAIL_LINES};

/// How long a worker whose stdout closed is given to exit before it is retired.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

pub(super) async fn write_loop(
    mut stdin: ChildStdin,
    framing: Framing,
    mut stdin_rx: mpsc::Receiver<Message>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    while let Some(message) = stdin_rx.recv().await {
        encode(framing, &message, &mut buf);
        while let Ok(more) = stdin_rx.try_recv() {
            encode(framing, &more, &mut buf);
        }
        // A closed pipe (the worker died) is an error here, never a crash: Rust ignores
        // SIGPIPE, and the reader side notices the exit.
        if stdin.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
    // Dropping stdin here closes the worker's input: EOF is its cue to exit.
}

pub(super) async fn read_loop(worker: Arc<WorkerProcess>, mut stdout: ChildStdout, limits: Limits) {
    let mut decoder = FrameDecoder::new(worker.framing, &limits);
    let mut buf = BytesMut::with_capacity(8192);
    let reason = loop {
        match stdout.read_buf(&mut buf).await {
            Ok(0) => break "closed its stdout".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("stdout read failed: {e}"),
        }
        let mut fatal = None;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => match payload.parse() {
                    Ok(Incoming::Single(Ok(message))) => worker.handle(message),
                    Ok(Incoming::Batch(items)) => {
                        for message in items.into_iter().flatten() {
                            worker.handle(message);
                        }
                    }
                    Ok(Incoming::Single(Err(invalid))) => {
                        fatal = Some(format!(
                            "wrote an invalid message: {}",
                            invalid.error.message
                        ));
                        break;
                    }
                    Err(error) => {
                        fatal = Some(format!("wrote a frame it cannot parse: {}", error.message));
                        break;
                    }
                },
                Ok(None) => break,
                Err(error) => {
                    fatal = Some(format!("wrote a bad frame: {error}"));
                    break;
                }
            }
        }
        if let Some(reason) = fatal {
            break reason;
        }
    };
    // A worker that closes its stdout is usually exiting: give the reaper a moment, so that
    // the retirement (and any "service unavailable" error built from it) carries the exit.
    if reason == "closed its stdout" {
        let _ = tokio::time::timeout(EXIT_GRACE, worker.exited.cancelled()).await;
        let _ = tokio::time::timeout(EXIT_GRACE, worker.stderr_closed.cancelled()).await;
    }
    worker.retire(&reason);
}

pub(super) async fn stderr_loop(worker: Arc<WorkerProcess>, stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(service = %worker.service, pid = worker.pid, "worker: {line}");
        {
            let mut tail = worker.stderr_tail.recover();
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    worker.stderr_closed.cancel();
}

/// Owns the child: reaps it, and delivers signals only while it is unreaped.
pub(super) async fn reap(
    worker: Arc<WorkerProcess>,
    mut child: Child,
    mut signal_rx: mpsc::Receiver<rustix::process::Signal>,
    exited_tx: Option<mpsc::UnboundedSender<usize>>,
) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(signal) = signal_rx.recv() => {
                if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
        }
    };
    // The pipe ends once every holder of it is gone (a grandchild may keep it): the exit's
    // report waits a moment for the last lines, not for the grandchild.
    let _ = tokio::time::timeout(EXIT_GRACE, worker.stderr_closed.cancelled()).await;
    let info = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            ExitInfo {
                code: status.code(),
                signal: status.signal(),
            }
        }
        Err(_) => ExitInfo {
            code: None,
            signal: None,
        },
    };
    worker.record_exit(info.clone());
    worker.exited.cancel();
    worker.retire(&format!("exited ({info})"));
    // The pool replaces the worker now, not when the next request finds it gone: a
    // replacement loads its state while nobody waits.
    if let Some(exited_tx) = exited_tx {
        let _ = exited_tx.send(worker.slot);
    }
}
