//! `warm bench`: load-test the service's daemon (started if needed) and print throughput,
//! latency percentiles, errors by code and a latency histogram.

mod load;

use serde_json::{json, Value};
use warm_client::Client;
use warm_protocol::Framing;
use warm_runtime::duration::parse_duration;

use load::{LoadOptions, LoadReport};

use super::print_json;
use crate::cli::BenchArgs;
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

pub fn run(context: &Context, args: &BenchArgs) -> CommandResult {
    let options = options(context, args)?;
    let report = load::run(&options).map_err(|e| {
        Failure::Other(format!(
            "cannot connect to {}: {e}",
            options.socket.display()
        ))
    })?;
    if context.json {
        print_json(&json!({
            "service": context.identity.service,
            "method": options.method,
            "connections": options.connections,
            "pipeline": options.pipeline,
            "one_shot": options.one_shot,
            "framing": args.framing,
            "report": report,
        }));
    } else {
        print_report(&options, &args.framing, &report);
    }
    if report.lost > 0 {
        return Err(Failure::Other(format!(
            "{} request(s) got no answer",
            report.lost
        )));
    }
    Ok(())
}

fn options(context: &Context, args: &BenchArgs) -> Result<LoadOptions, Failure> {
    let framing = match args.framing.as_str() {
        "ndjson" => Framing::Ndjson,
        "lsp" => Framing::Lsp,
        "binary" => Framing::Binary,
        other => {
            return Err(Failure::Usage(format!(
                "--framing {other:?}: use ndjson, lsp or binary"
            )))
        }
    };
    let mut params: Option<Value> = match &args.params {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| Failure::Usage(format!("--params is not valid JSON: {e}")))?,
        ),
        None => None,
    };
    if let Some(bytes) = args.payload_bytes {
        let object = params.get_or_insert_with(|| json!({}));
        let Some(object) = object.as_object_mut() else {
            return Err(Failure::Usage(
                "--payload-bytes needs --params to be an object".into(),
            ));
        };
        object.insert("payload".into(), Value::String("x".repeat(bytes)));
    }
    let duration = args
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--duration: {e}")))?;
    // The daemon runs (and is this version) before the clock starts.
    let mut client = Client::new(context.spec(&[])?)?;
    client.ensure_running()?;
    Ok(LoadOptions {
        socket: client.paths().sock.clone(),
        connections: args.connections.max(1),
        requests: args.requests,
        duration,
        pipeline: args.pipeline.max(1),
        method: args.method.clone(),
        params,
        framing,
        one_shot: args.one_shot,
    })
}

fn print_report(options: &LoadOptions, framing: &str, report: &LoadReport) {
    let mode = if options.one_shot {
        "one-shot".to_owned()
    } else {
        format!("pipeline {}", options.pipeline)
    };
    outln!(
        "{} x {}: {} requests in {:.2}s = {:.0} req/s ({} connections, {mode}, {framing})",
        options.method,
        options.connections,
        report.requests,
        report.elapsed_secs,
        report.requests_per_sec,
        options.connections,
    );
    let l = &report.latency_us;
    outln!(
        "latency: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
        micros(l.p50),
        micros(l.p90),
        micros(l.p99),
        micros(l.p999),
        micros(l.max),
        micros(l.mean as u64)
    );
    if report.errors.is_empty() && report.lost == 0 {
        outln!("errors: none");
    } else {
        let mut parts: Vec<String> = report
            .errors
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        if report.lost > 0 {
            parts.push(format!("no answer: {}", report.lost));
        }
        outln!("errors: {}", parts.join(", "));
    }
    let most = report.histogram.iter().map(|(_, n)| *n).max().unwrap_or(1);
    for (bound, count) in &report.histogram {
        let bar = "#".repeat(((*count as f64 / most as f64) * 50.0).ceil() as usize);
        outln!("  <= {:>9} {:>9}  {bar}", micros(*bound), count);
    }
}

fn micros(us: u64) -> String {
    match us {
        u if u < 1_000 => format!("{u}µs"),
        u if u < 1_000_000 => format!("{:.2}ms", u as f64 / 1e3),
        u => format!("{:.2}s", u as f64 / 1e6),
    }
}
