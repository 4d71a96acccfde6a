//! The runtime's dispatch, backpressure, cancellation and drain, over in-memory connections
//! ([`MemoryDaemon`]): no socket, no runtime directory, no process; each test runs in
//! milliseconds. Requests wait on a gate the test opens, so no outcome depends on timing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::Semaphore;
use warm_daemon::memory::MemoryDaemon;
use warm_daemon::{BoxFuture, Call, Service};
use warm_protocol::{ErrorCode, ErrorObject};

/// `wait` holds until the test opens the gate (one permit per request) or the request is
/// cancelled; `echo` answers at once.
struct Gated {
    gate: Arc<Semaphore>,
    started: AtomicU64,
    cancelled: Arc<AtomicU64>,
}

impl Default for Gated {
    fn default() -> Gated {
        Gated {
            gate: Arc::new(Semaphore::new(0)),
            started: AtomicU64::new(0),
            cancelled: Arc::default(),
        }
    }
}

impl Service for Gated {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        let (gate, cancelled) = (self.gate.clone(), self.cancelled.clone());
        if call.method == "wait" {
            self.started.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async move {
            match call.method.as_str() {
                "echo" => Ok(call.params.unwrap_or(Value::Null)),
                "wait" => tokio::select! {
                    permit = gate.acquire_owned() => {
                        permit.map_err(|_| ErrorObject::shutting_down())?.forget();
                        Ok(json!("opened"))
                    }
                    _ = call.cancel.cancelled() => {
                        cancelled.fetch_add(1, Ordering::SeqCst);
                        Err(ErrorObject::new(ErrorCode::Cancelled, "cancelled"))
                    }
                },
                other => Err(ErrorObject::method_not_found(other)),
            }
        })
    }
}

/// One client connection speaking newline-delimited JSON.
struct Client {
    lines: tokio::io::Lines<BufReader<ReadHalf<DuplexStream>>>,
    writer: WriteHalf<DuplexStream>,
}

impl Client {
    fn new(daemon: &MemoryDaemon) -> Client {
        let (reader, writer) = tokio::io::split(daemon.connect());
        Client {
            lines: BufReader::new(reader).lines(),
            writer,
        }
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await.expect("send");
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
    }

    /// The next message, within a deadline (a hang fails the test instead of stalling it).
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("an answer within 10 s")
            .expect("read")
            .expect("the daemon closed the connection");
        serde_json::from_str(&line).expect("json")
    }
}

fn daemon(service: Arc<Gated>, max_in_flight: usize) -> MemoryDaemon {
    let mut options = MemoryDaemon::options();
    options.limits.max_in_flight = max_in_flight;
    options.drain_timeout = Duration::from_secs(5);
    MemoryDaemon::new(service, options)
}

/// Waits until `condition` holds, within a deadline (`what` names it if it never does).
async fn until(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never: {what}"));
}

/// Waits until the service has started `n` gated requests.
async fn started(service: &Gated, n: u64) {
    until("the requests started", || {
        service.started.load(Ordering::SeqCst) >= n
    })
    .await;
}

#[tokio::test]
async fn answers_keep_their_ids_and_built_ins_answer_beside_the_service() {
    let daemon = daemon(Arc::default(), 64);
    let mut client = Client::new(&daemon);
    client.request(7, "echo", json!({"a": 1})).await;
    assert_eq!(
        client.next().await,
        json!({"jsonrpc": "2.0", "id": 7, "result": {"a": 1}})
    );
    client.request(8, "daemon/ping", json!(null)).await;
    let pong = client.next().await;
    assert_eq!(pong["id"], 8);
    assert!(pong["result"]["ttl_remaining_secs"].is_number(), "{pong}");
    client.request(9, "nope", json!(null)).await;
    assert_eq!(client.next().await["error"]["code"], -32601);
    daemon.shut_down("test").await;
}

#[tokio::test]
async fn past_max_in_flight_a_request_is_answered_busy_not_queued() {
    let service = Arc::new(Gated::default());
    let daemon = daemon(service.clone(), 2);
    let mut holder = Client::new(&daemon);
    holder.request(1, "wait", json!(null)).await;
    holder.request(2, "wait", json!(null)).await;
    started(&service, 2).await;

    let mut late = Client::new(&daemon);
    late.request(3, "echo", json!(["late"])).await;
    let busy = late.next().await;
    assert_eq!(busy["error"]["code"], -32000, "{busy}");
    assert!(
        busy["error"]["data"]["retry_after_ms"].as_u64() > Some(0),
        "{busy}"
    );
    // Built-in methods are never refused as busy.
    late.request(4, "daemon/ping", json!(null)).await;
    assert!(late.next().await["result"].is_object());

    service.gate.add_permits(2);
    let answers = [holder.next().await, holder.next().await];
    assert!(
        answers.iter().all(|a| a["result"] == "opened"),
        "{answers:?}"
    );
    late.request(5, "echo", json!(["again"])).await;
    assert_eq!(
        late.next().await["result"],
        json!(["again"]),
        "a freed slot is taken again"
    );
    assert_eq!(daemon.shared().stats().busy.load(Ordering::Relaxed), 1);
    daemon.shut_down("test").await;
}

#[tokio::test]
async fn a_cancelled_request_is_answered_and_a_closed_connection_cancels_the_rest() {
    let service = Arc::new(Gated::default());
    let daemon = daemon(service.clone(), 64);
    let mut client = Client::new(&daemon);
    client.request(1, "wait", json!(null)).await;
    started(&service, 1).await;
    client
        .send(json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}))
        .await;
    let answer = client.next().await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["error"]["code"], -32005, "{answer}");

    client.request(2, "wait", json!(null)).await;
    client.request(3, "wait", json!(null)).await;
    started(&service, 3).await;
    drop(client);
    until("both requests of the closed connection cancelled", || {
        service.cancelled.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(daemon.shared().activity().in_flight(), 0);
    daemon.shut_down("test").await;
}

#[tokio::test]
async fn shutdown_drains_running_requests_and_refuses_new_ones() {
    let service = Arc::new(Gated::default());
    let daemon = Arc::new(daemon(service.clone(), 64));
    let mut client = Client::new(&daemon);
    client.request(1, "wait", json!(null)).await;
    started(&service, 1).await;

    let stopping = tokio::spawn({
        let daemon = daemon.clone();
        async move { daemon.shut_down("test").await }
    });
    // Once stopping, a new request is refused unrun, with the code that makes a client
    // resend it to the next daemon.
    until("shutdown started", || {
        daemon.shared().shutdown().is_triggered()
    })
    .await;
    client.request(2, "echo", json!(null)).await;
    let refused = client.next().await;
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!(2), json!(-32003))
    );

    // The running request is waited for, and its answer written before the connection closes.
    service.gate.add_permits(1);
    assert_eq!(
        client.next().await,
        json!({"jsonrpc": "2.0", "id": 1, "result": "opened"})
    );
    let overran = stopping.await.expect("shutdown");
    assert!(!overran, "drained before the deadline");
    assert_eq!(service.cancelled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_request_overrunning_the_drain_deadline_is_cancelled_with_an_answer() {
    let service = Arc::new(Gated::default());
    let mut options = MemoryDaemon::options();
    options.drain_timeout = Duration::from_millis(50);
    let daemon = MemoryDaemon::new(service.clone(), options);
    let mut client = Client::new(&daemon);
    client.request(1, "wait", json!(null)).await;
    started(&service, 1).await;
    assert!(daemon.shut_down("test").await, "the drain deadline passed");
    let answer = client.next().await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
}
