//! `warm restart`: stop the daemon gracefully (if it runs) and start a fresh one, e.g. after
//! changing a worker's code (`watch` globs in `.warm.toml` do this by themselves).

use warm_client::{Client, StopOutcome};

use crate::cli::StartArgs;
use crate::context::Context;
use crate::failure::CommandResult;

pub fn run(context: &Context, args: &StartArgs) -> CommandResult {
    let mut client = Client::new(context.spec(&[])?)?;
    if let StopOutcome::Stopped { pid } = client.stop("warm restart")? {
        errln!("stopped {} (pid {pid})", context.identity.service);
    }
    super::start::run(context, args)
}
