//! `warm logs`: the daemon's log or its event stream.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use warm_runtime::DaemonPaths;

use super::{project_daemons, service_choices};
use crate::cli::LogsArgs;
use crate::context::Context;
use crate::failure::{CommandResult, Failure};

pub fn run(context: &Context, args: &LogsArgs) -> CommandResult {
    let paths = log_paths(context)?;
    let path = if args.events {
        &paths.events
    } else {
        &paths.log
    };
    let mut file = File::open(path).map_err(|e| Failure::Unavailable {
        reason: format!(
            "no {} for the {} daemon of {} ({}: {e})",
            if args.events { "events" } else { "log" },
            context.identity.service,
            context.root.display(),
            path.display()
        ),
        log_tail: None,
    })?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", path.display())))?;
    let shown = match args.lines {
        Some(n) => tail(&text, n),
        None => &text[..],
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(shown);
    let _ = stdout.flush();
    if !args.follow {
        return Ok(());
    }
    let mut offset = text.len() as u64;
    loop {
        // Following a file is polling by nature; 200 ms is quick enough for a human.
        std::thread::sleep(Duration::from_millis(200));
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            // Rotated or truncated: start over on the new file.
            file = File::open(path).map_err(|e| Failure::Other(e.to_string()))?;
            offset = 0;
        }
        if len > offset {
            let _ = file.seek(SeekFrom::Start(offset));
            let mut chunk = Vec::new();
            let _ = file.read_to_end(&mut chunk);
            offset += chunk.len() as u64;
            if stdout.write_all(&chunk).is_err() {
                return Ok(());
            }
            let _ = stdout.flush();
        }
    }
}

/// The implied daemon's files; without `-s`, when it has none and the project has exactly one
/// other daemon, that one's (several: a usage error naming them).
fn log_paths(context: &Context) -> Result<DaemonPaths, Failure> {
    let paths = DaemonPaths::new(&context.runtime_dir, &context.identity)?;
    if paths.log.exists() {
        return Ok(paths);
    }
    let mut others = project_daemons(context)?;
    match others.len() {
        0 => Ok(paths),
        1 => {
            let only = others.remove(0);
            errln!(
                "warm: no {} daemon; showing the {} daemon's (choose with -s)",
                context.identity.service,
                only.status.service
            );
            Ok(only.paths)
        }
        _ => Err(Failure::Usage(format!(
            "no {} daemon; this project has several, choose one: {}",
            context.identity.service,
            service_choices(&others)
        ))),
    }
}

fn tail(text: &[u8], lines: usize) -> &[u8] {
    let mut seen = 0;
    let end = if text.ends_with(b"\n") {
        text.len() - 1
    } else {
        text.len()
    };
    for (i, b) in text[..end].iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return &text[i + 1..];
            }
        }
    }
    text
}
