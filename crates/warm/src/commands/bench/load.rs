//! A load generator for any warm daemon, in the spirit of redis-benchmark: many connections,
//! optional pipelining or a new connection per request, any method and framing; every request
//! timed, every answer counted (a result, or an error by its code).
//!
//! Used by `warm bench`, which points it at any daemon, embedded ones included.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use warm_protocol::{Framing, Incoming, Message, RequestId};

use warm_client::Connection;

/// What to send and how.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub socket: PathBuf,
    pub connections: usize,
    /// Total requests (shared by the connections); ignored when `duration` is set.
    pub requests: u64,
    pub duration: Option<Duration>,
    /// Requests in flight per connection.
    pub pipeline: usize,
    pub method: String,
    pub params: Option<Value>,
    pub framing: Framing,
    /// A new connection for every request.
    pub one_shot: bool,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub requests: u64,
    pub ok: u64,
    /// Error responses, by JSON-RPC code.
    pub errors: BTreeMap<i64, u64>,
    /// Requests sent without an answer (the connection was lost, or a timeout).
    pub lost: u64,
    pub elapsed_secs: f64,
    pub requests_per_sec: f64,
    pub latency_us: Percentiles,
    /// Latencies grouped by power of two of microseconds: (upper bound µs, count).
    pub histogram: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// One connection's tally.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    errors: BTreeMap<i64, u64>,
    lost: u64,
}

/// Runs the load and returns the report.
///
/// # Errors
/// The first connection error, when no connection could be made at all.
pub fn run(options: &LoadOptions) -> std::io::Result<LoadReport> {
    // Fail early, and clearly, when there is nothing to connect to.
    Connection::connect(&options.socket, options.framing)?;
    let budget = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = options.duration.map(|d| started + d);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.connections.max(1))
            .map(|_| scope.spawn(|| drive(options, &budget, deadline)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    Ok(report(tallies, started.elapsed()))
}

/// Takes the next request from the shared budget; false when the run is over.
fn take(options: &LoadOptions, budget: &AtomicU64, deadline: Option<Instant>) -> bool {
    match deadline {
        Some(deadline) => Instant::now() < deadline,
        None => budget.fetch_add(1, Ordering::Relaxed) < options.requests,
    }
}

fn drive(options: &LoadOptions, budget: &AtomicU64, deadline: Option<Instant>) -> Tally {
    let mut tally = Tally::default();
    if options.one_shot {
        while take(options, budget, deadline) {
            let started = Instant::now();
            match Connection::connect(&options.socket, options.framing) {
                Ok(mut connection) => {
                    let answer =
                        connection.request(&options.method, options.params.as_ref(), &mut |_| {});
                    tally.record(answer.map_err(|_| ()), started);
                }
                Err(_) => tally.lost += 1,
            }
        }
        return tally;
    }
    let Ok(mut connection) = Connection::connect(&options.socket, options.framing) else {
        tally.lost += 1;
        return tally;
    };
    let _ = connection.set_timeout(Some(Duration::from_secs(30)));
    let mut in_flight: HashMap<RequestId, Instant> = HashMap::new();
    loop {
        while in_flight.len() < options.pipeline.max(1) && take(options, budget, deadline) {
            // Timed from before the write: the answer may be back before the write returns.
            let sent_at = Instant::now();
            match connection.send_request(&options.method, options.params.as_ref()) {
                Ok(id) => {
                    in_flight.insert(id, sent_at);
                }
                Err(_) => {
                    tally.lost += 1 + in_flight.len() as u64;
                    return tally;
                }
            }
        }
        if in_flight.is_empty() {
            return tally;
        }
        match connection.recv() {
            Ok(Some(Incoming::Single(Ok(Message::Response(response))))) => {
                if let Some(started) = in_flight.remove(&response.id) {
                    tally.record(Ok(response.result), started);
                }
            }
            Ok(Some(_)) => {}
            // The connection ended, timed out or spoke nonsense: what it had in flight is lost.
            Ok(None) | Err(_) => {
                tally.lost += in_flight.len() as u64;
                return tally;
            }
        }
    }
}

impl Tally {
    fn record(
        &mut self,
        answer: Result<Result<Value, warm_protocol::ErrorObject>, ()>,
        started: Instant,
    ) {
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        match answer {
            Ok(Ok(_)) => {
                self.ok += 1;
                self.latencies_us.push(micros);
            }
            Ok(Err(error)) => {
                *self.errors.entry(error.code).or_default() += 1;
                self.latencies_us.push(micros);
            }
            Err(()) => self.lost += 1,
        }
    }
}

fn report(tallies: Vec<Tally>, elapsed: Duration) -> LoadReport {
    let mut latencies: Vec<u32> = Vec::new();
    let (mut ok, mut lost, mut errors) = (0, 0, BTreeMap::new());
    for tally in tallies {
        latencies.extend(tally.latencies_us);
        ok += tally.ok;
        lost += tally.lost;
        for (code, count) in tally.errors {
            *errors.entry(code).or_default() += count;
        }
    }
    latencies.sort_unstable();
    let answered = latencies.len() as u64;
    let at = |q: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        u64::from(latencies[index])
    };
    let latency_us = Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: latencies.last().map_or(0, |l| u64::from(*l)),
        mean: if latencies.is_empty() {
            0.0
        } else {
            latencies.iter().map(|l| f64::from(*l)).sum::<f64>() / latencies.len() as f64
        },
    };
    let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
    for latency in &latencies {
        let bound = u64::from(*latency).max(1).next_power_of_two();
        *histogram.entry(bound).or_default() += 1;
    }
    LoadReport {
        requests: answered + lost,
        ok,
        errors,
        lost,
        elapsed_secs: elapsed.as_secs_f64(),
        requests_per_sec: answered as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_us,
        histogram: histogram.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_histogram_come_from_every_latency() {
        let tally = Tally {
            latencies_us: (1..=1000).collect(),
            ok: 990,
            errors: BTreeMap::from([(-32001, 10)]),
            lost: 2,
        };
        let report = report(vec![tally, Tally::default()], Duration::from_secs(1));
        assert_eq!(report.requests, 1002);
        assert_eq!(report.latency_us.p50, 500);
        assert_eq!(report.latency_us.p99, 990);
        assert_eq!(report.latency_us.p999, 999);
        assert_eq!(report.latency_us.max, 1000);
        assert_eq!(report.errors[&-32001], 10);
        assert_eq!(report.histogram.iter().map(|(_, n)| n).sum::<u64>(), 1000);
        assert_eq!(report.histogram.first(), Some(&(1, 1)));
    }
}
