//! `warm search`: ripgrep's matches and output, with the file walk and the reading of files
//! that cannot match replaced by the project's warm trigram index.
//!
//! The daemon answers which files may match (`search/candidates`); this process filters them
//! by the paths, globs and types asked for, then matches and prints them with ripgrep's own
//! crates. Without a daemon (`--no-daemon`, `--hidden`, `--no-ignore`, or when it cannot
//! start) the same search runs over a walk of the tree, so the command never fails for daemon
//! reasons.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use warm_client::Client;
use warm_search::scan::{self, Options, Source, Target};
use warm_search::service::{CANDIDATES, STATUS};

use crate::cli::{GlobalArgs, SearchArgs};
use crate::context::{project, Context};
use crate::failure::Failure;

/// Exit codes of ripgrep.
const MATCH: u8 = 0;
const NO_MATCH: u8 = 1;
const ERROR: u8 = 2;

pub fn run(global: &GlobalArgs, args: &SearchArgs) -> Result<u8, Failure> {
    let (root, config) = project(global)?;
    let root = root.canonicalize().unwrap_or(root);
    if args.status {
        let context = Context::for_service(global, root, &config, Some("search"))?;
        return status(&context);
    }
    let (options, paths) = options(global, args)?;
    let matcher = options.matcher().map_err(|e| usage(&e))?;
    let cwd = std::env::current_dir()
        .map_err(|e| usage(&format!("cannot read the current directory: {e}")))?;
    // A positive glob admits even ignored files (rg's globs override every other rule), which
    // the index does not hold: those searches scan.
    let whitelist_glob = options.globs.iter().any(|g| !g.starts_with('!'));
    let bypass = [
        (args.no_daemon, "--no-daemon"),
        (args.hidden, "--hidden"),
        (args.no_ignore, "--no-ignore"),
        (
            whitelist_glob,
            "a positive -g glob (it may select ignored files)",
        ),
    ]
    .into_iter()
    .find_map(|(given, why)| given.then_some(why));
    let mut options = options;
    let targets = match bypass {
        Some(why) => {
            options.source = Source::scan(why);
            scan_targets(&options, &paths)?
        }
        None => {
            let context = Context::for_service(global, root.clone(), &config, Some("search"))?;
            match indexed_targets(&context, &options, &root, &cwd, &paths)? {
                Ok(targets) => {
                    options.source = Source::index();
                    targets
                }
                Err(why) => {
                    options.source = Source::scan(&why);
                    scan_targets(&options, &paths)?
                }
            }
        }
    };
    // As rg: a search of the current directory in which every file was filtered out is an
    // error (exit 2), not "no match".
    let implicit_path = paths.len() == 1 && paths[0].as_os_str().is_empty();
    // Checked only when nothing is to be read: an index with no candidate still had files.
    if implicit_path && targets.is_empty() && !options.any_file(&paths).map_err(|e| usage(&e))? {
        errln!("warm: No files were searched, which means warm probably applied a filter you didn't expect.");
        return Ok(ERROR);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let outcome = match scan::search(&options, &matcher, &targets, &mut out) {
        Ok(outcome) => outcome,
        // The reader has all it wanted (`| head`): as rg, stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => return Err(Failure::Other(format!("cannot write the results: {e}"))),
    };
    drop(out);
    for error in &outcome.errors {
        errln!("warm: {error}");
    }
    Ok(match (outcome.errors.is_empty(), outcome.matched) {
        (false, _) => ERROR,
        (true, true) => MATCH,
        (true, false) => NO_MATCH,
    })
}

fn usage(message: &str) -> Failure {
    Failure::Usage(message.to_owned())
}

/// The options, and the paths to search (`.` when none are given).
fn options(global: &GlobalArgs, args: &SearchArgs) -> Result<(Options, Vec<PathBuf>), Failure> {
    let mut paths = args.paths.clone();
    let patterns = if args.regexp.is_empty() {
        vec![args
            .pattern
            .clone()
            .ok_or_else(|| usage("no pattern given"))?]
    } else {
        if let Some(first) = &args.pattern {
            paths.insert(0, PathBuf::from(first));
        }
        args.regexp.clone()
    };
    let terminal = std::io::stdout().is_terminal();
    let color = match args.color.as_str() {
        "always" => true,
        "never" => false,
        "auto" => terminal && std::env::var_os("NO_COLOR").is_none(),
        other => {
            return Err(usage(&format!(
                "--color {other:?}: use auto, always or never"
            )))
        }
    };
    let context = args.context.unwrap_or(0);
    let options = Options {
        patterns,
        fixed_strings: args.fixed_strings,
        ignore_case: args.ignore_case,
        smart_case: args.smart_case,
        word: args.word_regexp,
        globs: args.globs.clone(),
        types: args.types.clone(),
        files_with_matches: args.files_with_matches,
        count: args.count,
        max_count: args.max_count,
        after_context: args.after_context.unwrap_or(context),
        before_context: args.before_context.unwrap_or(context),
        hidden: args.hidden,
        no_ignore: args.no_ignore,
        json: global.json,
        color,
        heading: terminal,
        source: Source::scan("no index asked for"),
    };
    // No path: the current directory, printed without a `./` prefix (as rg does).
    if paths.is_empty() {
        paths.push(PathBuf::new());
    }
    Ok((options, paths))
}

fn scan_targets(options: &Options, paths: &[PathBuf]) -> Result<Vec<Target>, Failure> {
    options.walk(paths).map_err(|e| usage(&e))
}

/// The files to search, from the index; `Err(why)` when the index cannot serve this search (a
/// path outside the project, the index still building, no watcher, no daemon), which then
/// scans.
fn indexed_targets(
    context: &Context,
    options: &Options,
    root: &Path,
    cwd: &Path,
    paths: &[PathBuf],
) -> Result<Result<Vec<Target>, String>, Failure> {
    let mut scopes = Vec::new();
    let mut explicit_files = Vec::new();
    for path in paths {
        let absolute = cwd
            .join(path)
            .canonicalize()
            .map_err(|e| usage(&format!("{}: {e}", path.display())))?;
        let Ok(relative) = absolute.strip_prefix(root) else {
            return Ok(Err(format!("{} is outside the project", path.display())));
        };
        if absolute.is_dir() {
            scopes.push((relative.to_owned(), path.clone()));
        } else {
            // Named files are searched whatever the ignore rules say, as rg does.
            explicit_files.push(Target {
                open: absolute.clone(),
                shown: path.clone(),
            });
        }
    }
    let filters = options.filters(Path::new(".")).map_err(|e| usage(&e))?;
    let mut targets = explicit_files;
    if !scopes.is_empty() {
        let answer = match candidates(context, options) {
            Ok(answer) => answer,
            Err(failure) => {
                // The search never fails for daemon reasons.
                errln!("warm: {}; searching without the index", failure.message());
                return Ok(Err(format!("no daemon: {}", failure.message())));
            }
        };
        if let Some(building) = answer.get("building") {
            note(&format!(
                "warm: indexing in the background ({} files, {:.1} MB so far); this search scans",
                building["files"],
                building["bytes"].as_f64().unwrap_or(0.0) / 1e6
            ));
            return Ok(Err("the index is building".into()));
        }
        if let Some(reason) = answer.get("unwatched").and_then(Value::as_str) {
            note(&format!("warm: {reason}; this search scans"));
            return Ok(Err(reason.to_owned()));
        }
        let files = answer
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for file in files.iter().filter_map(Value::as_str).map(Path::new) {
            for (scope, given) in &scopes {
                let Ok(inside) = file.strip_prefix(scope) else {
                    continue;
                };
                let shown = given.join(inside);
                if filters.admits(&shown) {
                    targets.push(Target {
                        open: root.join(file),
                        shown,
                    });
                }
                break;
            }
        }
    }
    targets.sort_by(|a, b| a.shown.cmp(&b.shown));
    targets.dedup();
    Ok(Ok(targets))
}

fn candidates(context: &Context, options: &Options) -> Result<Value, Failure> {
    let mut client = Client::new(context.spec(&[])?)?;
    let params = json!({ "patterns": options.patterns, "fixed_strings": options.fixed_strings });
    client.call(CANDIDATES, Some(params)).map_err(Failure::from)
}

/// A note about the index on stderr, where people see it: on a terminal, or when
/// `WARM_PROGRESS` is set; never in the way of scripts.
fn note(message: &str) {
    if std::io::stderr().is_terminal() || std::env::var_os("WARM_PROGRESS").is_some() {
        errln!("{message}");
    }
}

fn status(context: &Context) -> Result<u8, Failure> {
    let mut client = Client::new(context.spec(&[])?)?;
    let status = client.call(STATUS, None).map_err(Failure::from)?;
    if context.json {
        super::print_json(&status);
        return Ok(MATCH);
    }
    let number = |key: &str| status.get(key).and_then(Value::as_u64).unwrap_or(0);
    outln!(
        "root:       {}",
        status["root"].as_str().unwrap_or_default()
    );
    if let Some(reason) = status["refused"].as_str() {
        outln!("index:      none ({reason})");
        return Ok(MATCH);
    }
    if status["ready"] != true {
        outln!(
            "index:      building ({} files, {:.1} MB so far)",
            status["building"]["files"],
            status["building"]["bytes"].as_f64().unwrap_or(0.0) / 1e6
        );
        return Ok(MATCH);
    }
    outln!("files:      {}", number("files"));
    outln!("bytes:      {:.1} MB", number("bytes") as f64 / 1e6);
    outln!(
        "index:      {:.1} MB ({:.2}x the bytes indexed), {} trigrams",
        number("index_bytes") as f64 / 1e6,
        number("index_bytes") as f64 / number("bytes").max(1) as f64,
        number("trigrams")
    );
    let age = status["updated_at"]
        .as_f64()
        .map(|t| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(t);
            format!("{:.1}s ago", (now - t).max(0.0))
        })
        .unwrap_or_default();
    outln!("updated:    {age}");
    match status["watch_error"].as_str() {
        Some(error) => outln!("watching:   no ({error}); queries scan"),
        None => outln!("watching:   yes"),
    }
    let inotify = &status["inotify"];
    if let Some(max) = inotify["max_instances"].as_u64() {
        outln!(
            "inotify:    {} of your {max} instances in use (warm leaves {} free for other programs; to raise the limit: sudo sysctl fs.inotify.max_user_instances={})",
            inotify["instances"],
            inotify["reserve"],
            (max * 4).max(1024)
        );
    }
    Ok(MATCH)
}
