//! `warm ping`: renew the idle timeout and print what is left.

use std::time::Duration;

use warm_protocol::methods::{self, TtlReport};

use super::{connect_running, human_secs, print_json};
use crate::cli::PingArgs;
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

pub fn run(context: &Context, args: &PingArgs) -> CommandResult {
    let mut client = connect_running(context)?;
    let every = match args.every {
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(_) => {
            return Err(Failure::Usage(
                "--loop takes a positive number of seconds".into(),
            ))
        }
        None => None,
    };
    loop {
        let value = client.call(methods::PING, None)?;
        let report: TtlReport = serde_json::from_value(value)
            .map_err(|e| Failure::Other(format!("bad daemon/ping answer: {e}")))?;
        if context.json {
            print_json(&report);
        } else if report.ttl_secs == 0 {
            outln!("pid {}: ttl 0, never idles out", report.pid);
        } else {
            outln!(
                "pid {}: ttl {}, {} left",
                report.pid,
                human_secs(report.ttl_secs),
                human_secs(report.ttl_remaining_secs.unwrap_or(0))
            );
        }
        match every {
            // Pacing a keep-alive loop is the point of --loop, not synchronisation.
            Some(every) => std::thread::sleep(every),
            None => return Ok(()),
        }
    }
}
