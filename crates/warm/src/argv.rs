//! Command lines warm reads without clap: `warm search` and the `rg` shim (ripgrep's syntax,
//! not clap's), and the hot commands, `call` and `ping`, whose one-shot calls would otherwise
//! spend a third of their instructions building clap's command tree. A hot command line
//! that is not plainly one of them (help, an unknown or repeated flag, a value that looks
//! like a flag, ...) goes to clap, which parses it, or explains what is wrong, as ever.

use std::ffi::OsString;

use crate::cli::{CallArgs, Cli, Command, GlobalArgs, PingArgs};
use crate::commands::search::Invocation;

/// The arguments of a search: everything after `search` (warm's global options before it
/// taken), or everything when warm was called as `rg`.
pub fn search_command_line(
    mut argv: Vec<std::ffi::OsString>,
) -> Option<(GlobalArgs, Vec<std::ffi::OsString>, Invocation)> {
    let mut global = GlobalArgs {
        service: None,
        root: None,
        json: false,
    };
    let program = argv.first().map(std::path::PathBuf::from)?;
    if program.file_name().is_some_and(|name| name == "rg") {
        argv.remove(0);
        return Some((global, argv, Invocation::Shim));
    }
    let mut rest = argv.into_iter().skip(1);
    loop {
        let arg = rest.next()?;
        let text = arg.to_str()?;
        match text {
            "search" => return Some((global, rest.collect(), Invocation::Warm)),
            "--json" => global.json = true,
            "--root" => global.root = Some(rest.next()?.into()),
            "-s" | "--service" => global.service = Some(rest.next()?.into_string().ok()?),
            _ => {
                if let Some(root) = text.strip_prefix("--root=") {
                    global.root = Some(root.into());
                } else if let Some(service) = text.strip_prefix("--service=") {
                    global.service = Some(service.to_owned());
                } else {
                    return None;
                }
            }
        }
    }
}

/// `warm [GLOBAL] call METHOD [PARAMS] [--timeout D] [--no-fallback]` or `warm [GLOBAL] ping`,
/// with the global options (`-s S`, `--service S`, `--root R`, their `=` forms, `--json`)
/// before or after the command, each at most once; `None` for anything else.
pub fn hot_command_line(argv: &[OsString]) -> Option<Cli> {
    let mut args = argv.iter().skip(1).map(|arg| arg.to_str());
    let mut global = GlobalArgs {
        service: None,
        root: None,
        json: false,
    };
    let command = loop {
        let arg = args.next()??;
        if !take_global(arg, &mut args, &mut global)? {
            break arg;
        }
    };
    let command = match command {
        "call" => Command::Call(call_args(&mut args, &mut global)?),
        "ping" => {
            while let Some(arg) = args.next() {
                if !take_global(arg?, &mut args, &mut global)? {
                    return None;
                }
            }
            Command::Ping(PingArgs { every: None })
        }
        _ => return None,
    };
    Some(Cli { global, command })
}

fn call_args<'a>(
    args: &mut impl Iterator<Item = Option<&'a str>>,
    global: &mut GlobalArgs,
) -> Option<CallArgs> {
    // Options may come before, between or after the two positionals, as clap allows
    // (`warm call --root DIR daemon/ping` is how scripts and the benchmarks call it).
    let mut method: Option<&str> = None;
    let mut call = CallArgs {
        method: String::new(),
        params: None,
        timeout: None,
        no_fallback: false,
    };
    while let Some(arg) = args.next() {
        let arg = arg?;
        if arg == "--timeout" {
            let value = value(args.next()??)?;
            call.timeout
                .replace(value.to_owned())
                .is_none()
                .then_some(())?;
        } else if let Some(value) = arg.strip_prefix("--timeout=") {
            call.timeout
                .replace(self::value(value)?.to_owned())
                .is_none()
                .then_some(())?;
        } else if arg == "--no-fallback" {
            (!call.no_fallback).then_some(())?;
            call.no_fallback = true;
        } else if take_global(arg, args, global)? {
        } else if method.is_none() && !arg.starts_with('-') {
            method = Some(arg);
        } else if method.is_some() && call.params.is_none() && (arg == "-" || !arg.starts_with('-'))
        {
            call.params = Some(arg.to_owned());
        } else {
            return None;
        }
    }
    call.method = method?.to_owned();
    Some(call)
}

/// Takes `arg` (and its value) when it is a global option: `Some(true)`; `Some(false)` when
/// it is not one; `None` when it is one that clap must judge (repeated, without a value).
fn take_global<'a>(
    arg: &str,
    args: &mut impl Iterator<Item = Option<&'a str>>,
    global: &mut GlobalArgs,
) -> Option<bool> {
    let (service, root) = match arg {
        "--json" => {
            (!global.json).then_some(())?;
            global.json = true;
            return Some(true);
        }
        "-s" | "--service" => (Some(value(args.next()??)?), None),
        "--root" => (None, Some(value(args.next()??)?)),
        _ => match (arg.strip_prefix("--service="), arg.strip_prefix("--root=")) {
            (Some(service), _) => (Some(value(service)?), None),
            (_, Some(root)) => (None, Some(value(root)?)),
            _ => return Some(false),
        },
    };
    if let Some(service) = service {
        global
            .service
            .replace(service.to_owned())
            .is_none()
            .then_some(())?;
    }
    if let Some(root) = root {
        global.root.replace(root.into()).is_none().then_some(())?;
    }
    Some(true)
}

/// An option's value, unless clap would read it otherwise (empty, or like a flag).
fn value(text: &str) -> Option<&str> {
    (!text.is_empty() && !text.starts_with('-')).then_some(text)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn argv(line: &[&str]) -> Vec<OsString> {
        std::iter::once("warm")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Whatever the fast path accepts, clap reads the same way.
    fn agrees_with_clap(line: &[&str]) -> bool {
        let argv = argv(line);
        match hot_command_line(&argv) {
            None => true,
            Some(fast) => match Cli::try_parse_from(&argv) {
                Ok(clap) => format!("{fast:?}") == format!("{clap:?}"),
                Err(_) => false,
            },
        }
    }

    #[test]
    fn the_plain_hot_command_lines_are_read_without_clap() {
        for line in [
            &["call", "daemon/ping"][..],
            &["-s", "echo", "call", "echo", "[1]"],
            &[
                "--service=echo",
                "--root",
                "/tmp",
                "call",
                "sleep",
                "-",
                "--timeout",
                "2s",
            ],
            &[
                "call",
                "echo",
                "{}",
                "--json",
                "--no-fallback",
                "--timeout=1",
            ],
            &["--json", "ping"],
            &["ping", "-s", "index", "--root=/p"],
            &["-s", "echo", "call", "--root", "/tmp", "daemon/ping"],
            &["call", "--timeout", "1s", "--no-fallback", "m", "{}"],
        ] {
            assert!(hot_command_line(&argv(line)).is_some(), "{line:?}");
            assert!(agrees_with_clap(line), "{line:?}");
        }
    }

    #[test]
    fn anything_else_goes_to_clap() {
        for line in [
            &[][..],
            &["call"],
            &["call", "--help"],
            &["call", "-h"],
            &["--help"],
            &["--version"],
            &["call", "m", "p", "extra"],
            &["call", "m", "-5"],
            &["call", "-m"],
            &["call", "m", "--timeout"],
            &["call", "m", "--timeout", "-1"],
            &["call", "m", "--timeout", "1", "--timeout", "2"],
            &["call", "m", "--no-fallback", "--no-fallback"],
            &["--json", "--json", "ping"],
            &["-s", "a", "-s", "b", "ping"],
            &["--service=", "ping"],
            &["-secho", "ping"],
            &["ping", "--loop", "1"],
            &["ping", "extra"],
            &["status"],
            &["pong"],
            &["call", "m", "--", "x"],
        ] {
            assert!(hot_command_line(&argv(line)).is_none(), "{line:?}");
        }
    }

    #[test]
    fn every_combination_of_these_words_is_read_as_clap_reads_it() {
        let words = [
            "call",
            "ping",
            "m",
            "-",
            "{}",
            "--json",
            "-s",
            "x",
            "--root",
            "/r",
            "--timeout",
            "1s",
            "--no-fallback",
            "--service=y",
            "-x",
        ];
        // Every line of up to four words: 15^4 + 15^3 + ... lines.
        let mut lines: Vec<Vec<&str>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<&str>> = lines
                .iter()
                .filter(|line| line.len() == lines.last().map_or(0, Vec::len))
                .flat_map(|line| {
                    words.iter().map(move |word| {
                        let mut longer = line.clone();
                        longer.push(*word);
                        longer
                    })
                })
                .collect();
            lines.extend(longer);
        }
        for line in &lines {
            assert!(agrees_with_clap(line), "{line:?}");
        }
        let fast = lines
            .iter()
            .filter(|line| hot_command_line(&argv(line)).is_some())
            .count();
        assert!(fast > 1000, "only {fast} lines took the fast path");
    }
}
