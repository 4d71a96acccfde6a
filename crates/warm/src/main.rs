//! `warm`: the command-line interface. Argument parsing and output only; behaviour lives in
//! the library crates (`warm-client`, `warm-daemon`, `warm-protocol`).

#[macro_use]
mod output;

mod cli;
mod commands;
mod context;
mod failure;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::failure::{code, Failure};

fn main() -> ExitCode {
    // Taken before anything else, so that even a usage error reaches a spawning client.
    let ready =
        std::env::var_os(warm_client::READY_FD_ENV).map(|_| warm_daemon::ReadyReporter::from_env());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            if let Some(mut ready) = ready {
                ready.fail(&error.to_string());
            }
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { code::USAGE } else { 0 });
        }
    };
    match run(cli, ready) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            errln!("warm: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli, ready: Option<warm_daemon::ReadyReporter>) -> Result<u8, Failure> {
    // These resolve their own service: from the files asked about, or `search`.
    if let Command::Lsp(args) = &cli.command {
        return commands::lsp::run(&cli.global, args);
    }
    if let Command::Search(args) = &cli.command {
        return commands::search::run(&cli.global, args);
    }
    let context = Context::resolve(&cli.global);
    if let Command::Serve(args) = &cli.command {
        init_daemon_logging();
        let ready = ready.unwrap_or_else(warm_daemon::ReadyReporter::none);
        return commands::serve::run(context, args, ready).map(|()| 0);
    }
    if let Command::Init(args) = &cli.command {
        let cwd = std::env::current_dir()
            .map_err(|e| Failure::Usage(format!("cannot read the current directory: {e}")))?;
        return commands::init::run(&cwd, args).map(|()| 0);
    }
    if let Command::Trust(args) = &cli.command {
        let cwd = std::env::current_dir()
            .map_err(|e| Failure::Usage(format!("cannot read the current directory: {e}")))?;
        return commands::trust::run(&cwd, args, cli.global.json).map(|()| 0);
    }
    if let Command::List = &cli.command {
        return commands::list::run(&warm_client::runtime_dir_location(), cli.global.json)
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
        Command::Serve(_)
        | Command::List
        | Command::Init(_)
        | Command::Trust(_)
        | Command::Lsp(_)
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
