//! `warm mcp`: a Model Context Protocol server on stdio, so that coding agents reach the
//! project's warm search index and language servers through the interface they speak.
//!
//! It holds no index and runs no language server of its own: every tool is answered by the
//! project's warm daemons, through the same commands a person types (`warm search`, `warm
//! lsp`), so an agent gets exactly their answers, with their freshness, and four agent
//! sessions in one project share one index and one language server. While the session lives,
//! `warm mcp` holds a lease on the project's search daemon (started, and so indexing, as soon
//! as the session begins); the lease ends with the session's connection, even on `kill -9`.
//!
//! stdout carries only MCP messages; logs go to stderr.

mod stdio;
mod tools;

use std::path::PathBuf;

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
    // The lease lives on this connection: it is released when this process ends, however.
    let lease = hold_search_lease(&search);
    if let Err(failure) = &lease {
        errln!(
            "warm mcp: the search daemon is not held for this session ({}); search still works",
            failure.message()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the async runtime: {e}")))?;
    let served = runtime.block_on(serve(root));
    drop(lease);
    served.map(|()| 0)
}

fn hold_search_lease(context: &Context) -> Result<Client, Failure> {
    let mut client = Client::new(context.spec(&[])?)?;
    client.call(methods::LEASE, None)?;
    Ok(client)
}

async fn serve(root: PathBuf) -> Result<(), Failure> {
    let server = tools::WarmTools::new(root);
    let running = server
        .serve(stdio::checked())
        .await
        .map_err(|e| Failure::Other(format!("MCP session failed to start: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Failure::Other(format!("MCP session ended with an error: {e}")))?;
    Ok(())
}
