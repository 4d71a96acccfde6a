//! `warm search` and the `rg` shim: ripgrep's command line and output, with the file walk and
//! the reading of files that cannot match replaced by the project's warm trigram index.
//!
//! The command line is ripgrep's ([`warm_search::rg`]). A search whose files the index can
//! choose asks the daemon which files may match (`search/candidates`), filters them by the
//! paths, globs and types given, and matches and prints them with ripgrep's own crates; one
//! the index cannot serve (`--hidden`, `--files`, standard input, ...) walks the tree in
//! process by the same rules; a flag only ripgrep implements (`--pre`, `-P`, `--stats`, ...),
//! and any command line ripgrep would refuse, is handed to the real ripgrep on `PATH`, so that
//! its answer, or its error, is ripgrep's own. Nothing about the daemon can make a search fail:
//! without it, the search scans.

pub mod delegate;
pub use delegate::real_ripgrep;
mod forget;
mod status;
mod targets;

use std::ffi::OsString;
use std::path::Path;

use warm_search::output::{self, message};
use warm_search::rg::args::Mode;
use warm_search::rg::{self, Plan, Search, Terminal};
use warm_search::scan::{self, Target};

use crate::cli::GlobalArgs;
use targets::Source;

/// Exit codes of ripgrep.
const MATCH: u8 = 0;
const NO_MATCH: u8 = 1;
const ERROR: u8 = 2;

/// How warm was called: as `warm search`, or as `rg` (a link to warm named `rg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    Warm,
    Shim,
}

/// warm's own options of `warm search`, which ripgrep does not have.
#[derive(Debug, Default)]
struct WarmOptions {
    no_daemon: bool,
    status: bool,
    forget_index: bool,
    help: bool,
}

pub fn run(global: &GlobalArgs, args: Vec<OsString>, invocation: Invocation) -> u8 {
    output::set_program(match invocation {
        Invocation::Warm => "warm",
        Invocation::Shim => "rg",
    });
    let (warm, mut rg_args) = match invocation {
        Invocation::Warm => warm_options(args),
        Invocation::Shim => (WarmOptions::default(), args),
    };
    if warm.help {
        outln!("{}", crate::cli::SEARCH_HELP);
        return MATCH;
    }
    if warm.status {
        return status::run(global, &rg_args);
    }
    if warm.forget_index {
        return forget::run(global, &rg_args);
    }
    if global.json {
        rg_args.insert(0, OsString::from("--json"));
    }
    let (parsed, config_messages) = rg::args::parse(rg_args.clone());
    for text in &config_messages {
        message(text);
    }
    let plan = parsed.and_then(|args| {
        let debug = args.debug;
        Plan::new(args, Terminal::detect()).map(|plan| (plan, debug))
    });
    match plan {
        Ok((Plan::Search(search), _)) => answer(global, &search, warm.no_daemon, invocation),
        Ok((Plan::Delegate(flag), debug)) => delegate::delegate(
            &rg_args,
            &format!("{flag} is answered by ripgrep itself"),
            debug,
        ),
        Err(error) => delegate::delegate_error(&rg_args, &error.to_string()),
    }
}

/// Runs a search warm answers itself, from the index or a scan; ripgrep's exit code.
fn answer(global: &GlobalArgs, search: &Search, no_daemon: bool, invocation: Invocation) -> u8 {
    let matcher = match output::matcher(search) {
        Ok(matcher) => matcher,
        Err(error) => {
            message(&error.to_string());
            return ERROR;
        }
    };
    let (found, source) = match targets::targets(global, search, no_daemon) {
        Ok(found) => found,
        Err(error) => {
            message(&error);
            return ERROR;
        }
    };
    if search.args.debug {
        match &source {
            Source::Index => message("answered from the warm index"),
            Source::Scan(why) => message(&format!("scanning in process: {why}")),
        }
    }
    targets::log_source(&source);
    let mut errored = found.errored;
    if nothing_searched(search, &found.targets) {
        if !search.args.no_messages {
            let program = match invocation {
                Invocation::Shim => "ripgrep",
                Invocation::Warm => "warm",
            };
            message(&format!(
                "No files were searched, which means {program} probably applied a filter you didn't expect.\nRunning with --debug will show why files are being skipped."
            ));
        }
        errored = true;
    }
    let extra = (invocation == Invocation::Warm).then(|| ("warm", source.to_json()));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let outcome = match output::search(search, &matcher, &found.targets, extra, &mut out) {
        Ok(outcome) => outcome,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return MATCH,
        Err(e) => {
            message(&e.to_string());
            return ERROR;
        }
    };
    drop(out);
    errored |= outcome.errored;
    if outcome.matched && (search.args.quiet || !errored) {
        MATCH
    } else if errored {
        ERROR
    } else {
        NO_MATCH
    }
}

/// As rg: a search of the current directory in which every file was filtered out is an error
/// (exit 2), not "no match"; a `--files` listing that lists none is not. Walked only when
/// nothing is to be read: an index with no candidate still had files.
fn nothing_searched(search: &Search, targets: &[Target]) -> bool {
    search.implicit_path
        && search.mode != Mode::Files
        && targets.is_empty()
        && search.paths.iter().all(|p| p != Path::new("-"))
        && !matches!(scan::any_file(search), Ok(true))
}

/// Takes warm's own options out of `warm search`'s arguments: the rest is ripgrep's command
/// line. A value of a ripgrep flag (`-e --status`) and anything after `--` stay.
fn warm_options(args: Vec<OsString>) -> (WarmOptions, Vec<OsString>) {
    let mut warm = WarmOptions::default();
    let mut rest = Vec::with_capacity(args.len());
    let mut value_next = false;
    let mut flags_ended = false;
    for arg in args {
        if value_next || flags_ended {
            value_next = false;
            rest.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("--no-daemon") => warm.no_daemon = true,
            Some("--status") => warm.status = true,
            Some("--forget-index") => warm.forget_index = true,
            Some("--help" | "-h") => warm.help = true,
            Some("--") => {
                flags_ended = true;
                rest.push(arg);
            }
            Some(text) => {
                value_next = takes_separate_value(text);
                rest.push(arg);
            }
            None => rest.push(arg),
        }
    }
    (warm, rest)
}

/// Whether the argument is a flag whose value is the next argument (`-e`, `-iA`, `--glob`).
fn takes_separate_value(arg: &str) -> bool {
    use warm_search::rg::flags::{by_long, by_short, Arity};
    if let Some(long) = arg.strip_prefix("--") {
        return !long.contains('=')
            && by_long(long).is_some_and(|(flag, negated)| !negated && flag.arity == Arity::Value);
    }
    let Some(shorts) = arg.strip_prefix('-') else {
        return false;
    };
    // In a cluster, the first flag taking a value takes the rest of the cluster, if any.
    for (i, c) in shorts.char_indices() {
        if by_short(c).is_some_and(|flag| flag.arity == Arity::Value) {
            return i + c.len_utf8() == shorts.len();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[&str]) -> (bool, bool, Vec<String>) {
        let (warm, rest) = warm_options(line.iter().map(OsString::from).collect());
        let rest = rest
            .into_iter()
            .map(|a| a.into_string().expect("utf-8 test argument"))
            .collect();
        (warm.no_daemon, warm.status, rest)
    }

    #[test]
    fn warm_options_are_taken_out_but_never_from_a_flags_value() {
        assert_eq!(
            split(&["--no-daemon", "x"]),
            (true, false, vec!["x".into()])
        );
        assert_eq!(
            split(&["-e", "--status", "x"]),
            (
                false,
                false,
                vec!["-e".into(), "--status".into(), "x".into()]
            )
        );
        assert_eq!(
            split(&["-ie", "--no-daemon"]),
            (false, false, vec!["-ie".into(), "--no-daemon".into()])
        );
        assert_eq!(
            split(&["-A1", "--status"]),
            (false, true, vec!["-A1".into()])
        );
        assert_eq!(
            split(&["--", "--status"]),
            (false, false, vec!["--".into(), "--status".into()])
        );
    }
}
