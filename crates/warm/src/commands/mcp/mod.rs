//! `warm mcp`: a Model Context Protocol server on stdio, so that coding agents reach the
//! project's warm search index and language servers through the interface they speak.
//!
//! It holds no index and runs no language server of its own: every tool is answered by the
//! project's warm daemons, through the same commands a person types (`warm search`, `warm
//! lsp`), so an agent gets exactly their answers, with their freshness, and four agent
//! sessions in one project share one index and one language server. While the session lives,
//! `warm mcp` holds a lease on each of the project's daemons (see `leases`): the search daemon,
//! started (and so indexing) as soon as the session begins, and each language server's daemon
//! once a call has started it. Tools a `.warm.toml` declares call the project's own workers
//! (see `worker_tools`).
//!
//! stdout carries only MCP messages; logs go to stderr.

mod command;
mod leases;
mod stdio;
mod tools;
mod worker_tools;

use std::path::PathBuf;
use std::sync::Arc;

use leases::Leases;

use rmcp::ServiceExt;
use warm_client::Client;
use warm_protocol::methods;

use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::failure::Failure;

/// Runs the MCP server until the client closes stdin.
pub fn run(global: &GlobalArgs) -> Result<u8, Failure> {
    let (root, config) = crate::context::project(global)?;
    let search = Context::for_service(global, root.clone(), &config, Some("search"))?;
    // Started now, so the index is being built while the agent composes its first call.
    if let Err(failure) = start_daemon(&search) {
        errln!(
            "warm mcp: the search daemon could not be started ({}); each search will try again",
            failure.message()
        );
    }
    let leases = Leases::new(search.runtime_dir.clone(), &search.root);
    leases.hold_running();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the async runtime: {e}")))?;
    let worker_tools = worker_tools::declared(&config);
    runtime.block_on(serve(root, leases, worker_tools))?;
    Ok(0)
}

fn start_daemon(context: &Context) -> Result<(), Failure> {
    Client::new(context.spec(&[])?)?.call(methods::PING, None)?;
    Ok(())
}

async fn serve(
    root: PathBuf,
    leases: Arc<Leases>,
    worker_tools: Vec<worker_tools::WorkerTool>,
) -> Result<(), Failure> {
    let server = tools::WarmTools::new(root, leases, worker_tools);
    let running = match server.serve(stdio::checked()).await {
        Ok(running) => running,
        // stdin closed before any client spoke (`warm mcp < /dev/null`): nothing went wrong.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(error) => {
            return Err(Failure::Other(format!(
                "MCP session failed to start: {error}"
            )))
        }
    };
    running
        .waiting()
        .await
        .map_err(|e| Failure::Other(format!("MCP session ended with an error: {e}")))?;
    Ok(())
}
