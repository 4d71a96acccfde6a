//! `warm serve`: run a daemon in the foreground.

use std::path::PathBuf;
use std::sync::Arc;

use warm_daemon::echo::EchoService;
use warm_daemon::{DaemonOptions, NoService, ReadyReporter, Service};
use warm_lsp::LspService;
use warm_protocol::Framing;
use warm_runtime::config::ResolvedService;
use warm_runtime::duration::parse_duration;
use warm_runtime::EventLog;
use warm_runtime::{ensure_runtime_dir, DaemonPaths};
use warm_search::SearchService;
use warm_worker::{WorkerConfig, WorkerService};

use crate::cli::ServeArgs;
use crate::context::{version, Context};
use crate::failure::{CommandResult, Failure};

/// Runs the daemon; `ready` was taken from the environment first thing in `main`, so that
/// any failure here still reaches the client that spawned us.
/// `activated` is the socket a service manager passed, if one did (systemd socket activation).
pub fn run(
    context: Result<Context, Failure>,
    args: &ServeArgs,
    mut ready: ReadyReporter,
    activated: Option<crate::Activated>,
) -> CommandResult {
    // For tests only: a daemon slow to start widens the window in which racing clients find
    // none, so that a test can prove that spawning is serialised (never two daemons).
    if let Some(ms) = std::env::var("WARM_TEST_START_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
    }
    let activated = activated.transpose().map_err(|e| Failure::Unavailable {
        reason: e.to_string(),
        log_tail: None,
    });
    let prepared = activated.and_then(|activated| {
        let context = context?;
        let mut options = options(&context, args)?;
        options.activated = activated;
        Ok((context, options))
    });
    let (context, options) = match prepared {
        Ok(prepared) => prepared,
        Err(failure) => {
            ready.fail(&failure.message());
            return Err(failure);
        }
    };
    let service = context.service.clone();
    let root = context.root.clone();
    let events = warm_runtime::EventLog::new(&options.paths.events);
    let peers = warm_search::budget::Peers {
        runtime_dir: context.runtime_dir.clone(),
        own_dir: options.paths.dir.clone(),
    };
    let report = warm_daemon::serve_blocking(options, ready, move |shutdown| {
        make_service(&service, root, events, peers, shutdown)
    })
    .map_err(|e| Failure::Unavailable {
        reason: e.to_string(),
        log_tail: None,
    })?;
    if report.drain_overran {
        tracing::warn!("requests were still running at the drain deadline");
    }
    Ok(())
}

fn options(context: &Context, args: &ServeArgs) -> Result<DaemonOptions, Failure> {
    // Checked here too, where the command would run: whoever spawned this daemon.
    if let Some(why) = &context.untrusted {
        return Err(Failure::Usage(why.clone()));
    }
    ensure_runtime_dir(&context.runtime_dir)?;
    let paths = DaemonPaths::new(&context.runtime_dir, &context.identity)?;
    let service = &context.service;
    let mut options = DaemonOptions::new(context.identity.clone(), paths, version());
    options.ttl = match &args.ttl {
        Some(text) => parse_duration(text).map_err(|e| Failure::Usage(format!("--ttl: {e}")))?,
        None => service.ttl,
    };
    options.limits = service.limits.clone();
    options.drain_timeout = service.drain_timeout;
    options.config_hash = service.config_hash.clone();
    Ok(options)
}

fn make_service(
    service: &ResolvedService,
    root: PathBuf,
    events: EventLog,
    peers: warm_search::budget::Peers,
    shutdown: warm_daemon::Shutdown,
) -> Arc<dyn Service> {
    if let Some(config) = WorkerConfig::from_service(service, root.clone()) {
        if config.framing == Framing::Lsp {
            let init = warm_lsp::dialect::LspInit::from_service(service);
            return Arc::new(LspService::start(config, init, events));
        }
        return Arc::new(WorkerService::start(config, events));
    }
    match service.name.as_str() {
        "echo" => Arc::new(EchoService),
        "search" => Arc::new(SearchService::start(
            root,
            events,
            Some(peers),
            Some(shutdown),
        )),
        // "default", and configured services without a command, answer only daemon/*.
        _ => Arc::new(NoService),
    }
}
