//! `warm`: the command-line interface. Argument parsing and output only; behaviour lives in
//! the library crates (`warm-client`, `warm-daemon`, `warm-protocol`).

#[macro_use]
mod output;

mod argv;
mod cli;
mod commands;
mod context;
mod failure;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::failure::{code, Failure};

/// What socket activation passed: a listener, or why it cannot be served.
type Activated = Result<
    std::sync::Arc<std::os::unix::net::UnixListener>,
    warm_daemon::activation::ActivationError,
>;

fn main() -> ExitCode {
    // Taken before anything else, so that even a usage error reaches a spawning client.
    let ready = std::env::var_os(warm_runtime::READY_FD_ENV)
        .map(|_| warm_daemon::ReadyReporter::from_env());
    // And the socket a service manager passed (`warm serve` under systemd), before any thread
    // starts: taking it edits the environment.
    let activated = std::env::var_os("LISTEN_FDS")
        .and_then(|_| warm_daemon::activation::take_listener().transpose());
    // ripgrep's command line is not clap's (`-s` is rg's, a pattern may start with `-`, the
    // last of two flags wins): `warm search` and the `rg` shim parse their own.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((global, args, invocation)) = argv::search_command_line(argv.clone()) {
        return ExitCode::from(commands::search::run(&global, args, invocation));
    }
    // The hot commands skip building clap's command tree, a third of a one-shot call's work;
    // what they do not recognise, clap parses (and explains).
    let parsed = match argv::hot_command_line(&argv) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(argv),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            if let Some(mut ready) = ready {
                ready.fail(&error.to_string());
            }
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { code::USAGE } else { 0 });
        }
    };
    match run(cli, ready, activated) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            errln!("warm: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(
    cli: Cli,
    ready: Option<warm_daemon::ReadyReporter>,
    activated: Option<Activated>,
) -> Result<u8, Failure> {
    // These resolve their own service: from the files asked about, or `search`.
    if let Command::Lsp(args) = &cli.command {
        return commands::lsp::run(&cli.global, args);
    }
    if let Command::Search(args) = &cli.command {
        let invocation = commands::search::Invocation::Warm;
        return Ok(commands::search::run(
            &cli.global,
            args.args.clone(),
            invocation,
        ));
    }
    if let Command::Mcp = &cli.command {
        return commands::mcp::run(&cli.global);
    }
    if let Command::Shim(args) = &cli.command {
        return commands::shim::run(&args.command).map(|()| 0);
    }
    let context = Context::resolve(&cli.global);
    if let Command::Serve(args) = &cli.command {
        init_daemon_logging();
        let ready = ready.unwrap_or_else(warm_daemon::ReadyReporter::none);
        return commands::serve::run(context, args, ready, activated).map(|()| 0);
    }
    if let Command::Init(args) = &cli.command {
        if args.mcp {
            let (root, _) = context::project(&cli.global)?;
            return commands::init::print_mcp_config(&root).map(|()| 0);
        }
        let cwd = std::env::current_dir()
            .map_err(|e| Failure::Usage(format!("cannot read the current directory: {e}")))?;
        return commands::init::run(&cwd, args).map(|()| 0);
    }
    if let Command::Trust(args) = &cli.command {
        let cwd = std::env::current_dir()
            .map_err(|e| Failure::Usage(format!("cannot read the current directory: {e}")))?;
        return commands::trust::run(&cwd, args, cli.global.json).map(|()| 0);
    }
    if let Command::Doctor = &cli.command {
        return commands::doctor::run(&cli.global);
    }
    if let Command::List = &cli.command {
        return commands::list::run(&warm_runtime::runtime_dir_location(), cli.global.json)
            .map(|()| 0);
    }
    let context = context?;
    match &cli.command {
        Command::Start(args) => commands::start::run(&context, args)?,
        Command::Restart(args) => commands::restart::run(&context, args)?,
        Command::Call(args) => commands::call::run(&context, args)?,
        Command::Ping(args) => commands::ping::run(&context, args)?,
        Command::Keepalive(args) => return commands::keepalive::run(&context, args),
        Command::Status => commands::status::run(&context)?,
        Command::Stop(args) => commands::stop::run(&context, args.all)?,
        Command::Logs(args) => commands::logs::run(&context, args)?,
        Command::Bench(args) => commands::bench::run(&context, args)?,
        Command::Systemd(args) => commands::systemd::run(&context, args)?,
        Command::Serve(_)
        | Command::List
        | Command::Doctor
        | Command::Init(_)
        | Command::Trust(_)
        | Command::Lsp(_)
        | Command::Shim(_)
        | Command::Mcp
        | Command::Search(_) => {}
    }
    Ok(0)
}

/// Daemon logs go to stderr, which a spawned daemon has pointed at `daemon.log`.
fn init_daemon_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WARM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // Its own complaint about a failed write goes to the same full disk, with eprintln,
        // which panics: a daemon must keep serving when it cannot log.
        .log_internal_errors(false)
        .try_init();
}
