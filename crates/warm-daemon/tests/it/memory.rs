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

/// The daemon's own answer to one request on `client`.
async fn ask(client: &mut Client, id: u64, method: &str, params: Value) -> Value {
    client.request(id, method, params).await;
    let answer = client.next().await;
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

#[tokio::test]
async fn a_client_expecting_another_daemon_has_its_service_requests_refused_unrun() {
    let mut options = MemoryDaemon::options();
    options.config_hash = Some("abc".into());
    let version = options.version.clone();
    let daemon = MemoryDaemon::new(Arc::new(Gated::default()), options);
    let hello = |version: &str, hash: Option<&str>| {
        let mut params = json!({ "version": version, "protocol": 1 });
        if let Some(hash) = hash {
            params["config_hash"] = json!(hash);
        }
        params
    };
    let cases = [
        (
            hello(&version, Some("abc")),
            true,
            "same version and configuration",
        ),
        (
            hello(&version, None),
            true,
            "a client that knows no configuration hash",
        ),
        (json!(null), true, "a hello without params"),
        (hello("0.0.0-other", Some("abc")), false, "another version"),
        (
            hello(&version, Some("other")),
            false,
            "another configuration",
        ),
    ];
    for (n, (params, served, why)) in cases.into_iter().enumerate() {
        let mut client = Client::new(&daemon);
        let id = n as u64 * 10;
        let answer = ask(&mut client, id, "daemon/hello", params).await;
        assert_eq!(answer["result"]["service"], "memory", "{why}: {answer}");
        assert_eq!(answer["result"]["config_hash"], "abc", "{why}");
        let echoed = ask(&mut client, id + 1, "echo", json!([why])).await;
        if served {
            assert_eq!(echoed["result"], json!([why]), "{why}: {echoed}");
        } else {
            assert_eq!(echoed["error"]["code"], -32003, "{why}: {echoed}");
            // Built-in methods still answer.
            let pong = ask(&mut client, id + 2, "daemon/ping", json!(null)).await;
            assert!(pong["result"].is_object(), "{why}: {pong}");
        }
    }
    daemon.shut_down("test").await;
}

#[tokio::test]
async fn leases_are_held_per_connection_and_released_by_id_all_at_once_or_by_closing() {
    let daemon = daemon(Arc::default(), 64);
    let mut client = Client::new(&daemon);
    let first = ask(&mut client, 1, "daemon/lease", json!(null)).await["result"].clone();
    let second = ask(&mut client, 2, "daemon/lease", json!(null)).await["result"].clone();
    assert_eq!(
        (first["leases"].clone(), second["leases"].clone()),
        (json!(1), json!(2))
    );
    assert_ne!(first["lease_id"], second["lease_id"]);
    let status = ask(&mut client, 3, "daemon/status", json!(null)).await;
    assert_eq!(status["result"]["leases"], 2, "{status}");

    let released = ask(
        &mut client,
        4,
        "daemon/release",
        json!({ "lease_id": first["lease_id"] }),
    )
    .await;
    assert_eq!(
        released["result"],
        json!({ "released": [first["lease_id"]], "leases": 1 })
    );
    let again = ask(
        &mut client,
        5,
        "daemon/release",
        json!({ "lease_id": first["lease_id"] }),
    )
    .await;
    assert_eq!(again["error"]["code"], -32602, "not held any more: {again}");
    let all = ask(&mut client, 6, "daemon/release", json!({})).await;
    assert_eq!(
        all["result"],
        json!({ "released": [second["lease_id"]], "leases": 0 })
    );

    // A lease held by another connection is not this one's to release; closing releases it.
    let mut other = Client::new(&daemon);
    let held = ask(&mut other, 7, "daemon/lease", json!(null)).await["result"].clone();
    let theirs = ask(
        &mut client,
        8,
        "daemon/release",
        json!({ "lease_id": held["lease_id"] }),
    )
    .await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    drop(other);
    until("the closed connection's lease released", || {
        daemon.shared().activity().leases() == 0
    })
    .await;
    daemon.shut_down("test").await;
}

#[tokio::test]
async fn the_ttl_is_set_within_ten_years_and_reported() {
    let daemon = daemon(Arc::default(), 64);
    let mut client = Client::new(&daemon);
    let set = ask(&mut client, 1, "daemon/set_ttl", json!({ "ttl_secs": 5 })).await;
    assert_eq!(set["result"]["ttl_secs"], 5, "{set}");
    let ten_years = 10 * 365 * 24 * 3600_u64;
    let longest = ask(
        &mut client,
        2,
        "daemon/set_ttl",
        json!({ "ttl_secs": ten_years }),
    )
    .await;
    assert_eq!(longest["result"]["ttl_secs"], ten_years, "{longest}");
    let longer = ask(
        &mut client,
        3,
        "daemon/set_ttl",
        json!({ "ttl_secs": ten_years + 1 }),
    )
    .await;
    assert_eq!(longer["error"]["code"], -32602, "{longer}");
    let pong = ask(&mut client, 4, "daemon/ping", json!(null)).await;
    assert_eq!(
        pong["result"]["ttl_secs"], ten_years,
        "the refused value changed nothing"
    );
    let status = ask(&mut client, 5, "daemon/status", json!(null)).await;
    assert_eq!(status["result"]["ttl_secs"], ten_years, "{status}");
    assert_eq!(status["result"]["service"], "memory", "{status}");
    daemon.shut_down("test").await;
}

#[tokio::test]
async fn a_batch_is_answered_as_one_array_in_order() {
    let daemon = daemon(Arc::default(), 64);
    let mut client = Client::new(&daemon);
    client
        .send(json!([
            {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["a"]},
            {"jsonrpc": "2.0", "method": "echo", "params": ["a notification: no answer"]},
            {"jsonrpc": "2.0", "id": 2, "method": "daemon/ping"},
            {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        ]))
        .await;
    let answers = client.next().await;
    let ids: Vec<Value> = answers
        .as_array()
        .expect("one array")
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3)], "{answers}");
    assert_eq!(answers[0]["result"], json!(["a"]));
    assert_eq!(answers[2]["error"]["code"], -32601);
    daemon.shut_down("test").await;
}

/// The idle TTL counts from the last message of any client: a request or a notification
/// renews it. Time is paused and moved by hand.
#[tokio::test(start_paused = true)]
async fn every_message_renews_the_idle_ttl() {
    let mut options = MemoryDaemon::options();
    options.ttl = Duration::from_secs(100);
    let daemon = MemoryDaemon::new(Arc::new(Gated::default()), options);
    let remaining = || daemon.shared().activity().remaining();
    let mut client = Client::new(&daemon);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(remaining(), Some(Duration::from_secs(40)));
    let pong = ask(&mut client, 1, "daemon/ping", json!(null)).await;
    assert_eq!(
        pong["result"]["ttl_remaining_secs"], 100,
        "a request renews it"
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    client
        .send(json!({"jsonrpc": "2.0", "method": "some/notification"}))
        .await;
    until("a notification renews it", || {
        remaining() == Some(Duration::from_secs(100))
    })
    .await;
    daemon.shut_down("test").await;
}
