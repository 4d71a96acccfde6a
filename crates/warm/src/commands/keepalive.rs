//! `warm keepalive -- CMD`: hold a lease while CMD runs.
//!
//! The lease lives on this process's connection: if we die, the connection closes and the
//! daemon releases the lease, so a crashed caller can never keep a daemon alive forever.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use warm_client::Client;
use warm_protocol::methods;

use crate::cli::KeepaliveArgs;
use crate::context::Context;
use crate::failure::Failure;

pub fn run(context: &Context, args: &KeepaliveArgs) -> Result<u8, Failure> {
    let mut client = Client::new(context.spec(&[])?)?;
    client.call(methods::LEASE, None)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Failure::Usage("keepalive needs a command after --".into()))?;
    let status = Command::new(program)
        .args(rest)
        .status()
        .map_err(|e| Failure::Usage(format!("cannot run {}: {e}", program.to_string_lossy())))?;
    drop(client);
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
        _ => 1,
    })
}
