//! The files a search reads: named by the index when it can choose them (the daemon's
//! `search/candidates`, filtered by the paths, globs and types given), else found by ripgrep's
//! walk in process; and how each search was answered, for `--debug`, `--json` and the
//! suite's log.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warm_client::Client;
use warm_search::output::message;
use warm_search::protocol::{Candidates, CandidatesParams, ExcludedEntry, WirePath, CANDIDATES};
use warm_search::rg::{Search, Support};
use warm_search::scan::{self, Target};

use crate::cli::GlobalArgs;
use crate::context::{project, Context};
use crate::failure::Failure;

/// Where a search's files came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Index,
    Scan(String),
}

impl Source {
    /// `data.warm` of the `--json` summary, so that a test or a user can tell a fallback
    /// from the path they meant.
    pub fn to_json(&self) -> Value {
        match self {
            Source::Index => json!({ "source": "index" }),
            Source::Scan(why) => json!({ "source": "scan", "why": why }),
        }
    }
}

/// Appends where the search's files came from to `WARM_SEARCH_LOG`, when set: how the
/// ripgrep test suite counts the searches the index answered.
pub fn log_source(source: &Source) {
    let Some(path) = std::env::var_os("WARM_SEARCH_LOG") else {
        return;
    };
    let line = match source {
        Source::Index => "index\n".to_owned(),
        Source::Scan(why) => format!("scan\t{why}\n"),
    };
    append_log(Path::new(&path), &line);
}

pub fn append_log(path: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// The files to search and whether finding them failed somewhere (rg then exits 2).
#[derive(Debug, Default)]
pub struct Targets {
    pub targets: Vec<Target>,
    pub errored: bool,
}

/// The files to search: from the index when it can choose them, else from a walk.
pub fn targets(
    global: &GlobalArgs,
    search: &Search,
    no_daemon: bool,
) -> Result<(Targets, Source), String> {
    let why_scan = match &search.support {
        _ if no_daemon => Some("--no-daemon".to_owned()),
        (Support::Index, _) => None,
        (_, why) => Some(why.clone()),
    };
    if why_scan.is_none() {
        match indexed_targets(global, search) {
            Ok(targets) => return Ok((targets, Source::Index)),
            Err(why) => return walk(search).map(|t| (t, Source::Scan(why))),
        }
    }
    let why = why_scan.unwrap_or_default();
    walk(search).map(|t| (t, Source::Scan(why)))
}

fn walk(search: &Search) -> Result<Targets, String> {
    let walked = scan::walk(search).map_err(|e| e.to_string())?;
    for error in &walked.errors {
        if !search.args.no_messages {
            message(error);
        }
    }
    Ok(Targets {
        errored: !walked.errors.is_empty(),
        targets: walked.targets,
    })
}

/// The files to search, from the index; `Err(why)` when the index cannot serve this search (a
/// path outside the project, the index still building, no watcher, no daemon), which then
/// scans.
fn indexed_targets(global: &GlobalArgs, search: &Search) -> Result<Targets, String> {
    let (root, config) = project(global).map_err(|f| broken(search, f.message()))?;
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let cwd = std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?;
    let mut scopes: Vec<Scope> = Vec::new();
    let mut found = Targets::default();
    for (index, path) in search.paths.iter().enumerate() {
        let Ok(absolute) = cwd.join(path).canonicalize() else {
            // Not there (or not readable): the walk says so in ripgrep's words.
            return Err(format!("{} cannot be read", path.display()));
        };
        let Ok(relative) = absolute.strip_prefix(&root) else {
            return Err(format!("{} is outside the project", path.display()));
        };
        if absolute.is_dir() {
            scopes.push((index, relative.to_owned(), path.clone()));
        } else {
            // Named files are searched whatever the ignore rules say, as rg does.
            found.targets.push(Target {
                root: index,
                shown: path.clone(),
                open: path.clone(),
                explicit: true,
            });
        }
    }
    if !scopes.is_empty() {
        let context = Context::for_service(global, root.clone(), &config, Some("search"))
            .map_err(|f| broken(search, f.message()))?;
        let dirs: Vec<&Path> = scopes.iter().map(|(_, scope, _)| scope.as_path()).collect();
        let (files, excluded) = candidates(&context, search, &dirs)?;
        let filters = scan::filters(search, Path::new(".")).map_err(|e| e.to_string())?;
        excluded_targets(search, &filters, &scopes, &excluded, &mut found)?;
        for file in &files {
            for (index, scope, given) in &scopes {
                let Ok(inside) = file.strip_prefix(scope) else {
                    continue;
                };
                let shown = shown_path(search, given, inside);
                // Under every path given that holds it: rg searches a file once per path
                // it is reached by (`rg x src .`).
                if filters.admits(&shown) {
                    found.targets.push(Target {
                        root: *index,
                        open: root.join(file),
                        shown,
                        explicit: false,
                    });
                }
            }
        }
    }
    // No duplicates to drop: each path argument's targets carry its index (rg searches a file
    // once per argument that reaches it).
    scan::order(search, &mut found.targets);
    Ok(found)
}

/// A path argument that names a directory the index holds: its number, the directory
/// (relative to the root), and the path as given.
type Scope = (usize, PathBuf, PathBuf);

/// The files the search's filters admit among the entries the index leaves out (see
/// `warm_search::excluded`), found by walking by ripgrep's rules only the directories that
/// hold one: an ignored directory a glob names, whole; the directory of an ignored file a glob
/// names, or of a hidden file of a selected type, at depth 1.
fn excluded_targets(
    search: &Search,
    filters: &scan::Filters,
    scopes: &[Scope],
    excluded: &[ExcludedEntry],
    found: &mut Targets,
) -> Result<(), String> {
    // (path argument, directory as the walk spells it) -> depth, and the files wanted from
    // the depth-1 walks.
    let mut walks: BTreeMap<(usize, PathBuf), Option<usize>> = BTreeMap::new();
    let mut wanted: HashSet<(usize, PathBuf)> = HashSet::new();
    for entry in excluded {
        for (index, scope, given) in scopes {
            let Ok(inside) = entry.path.0.strip_prefix(scope) else {
                continue;
            };
            let shown = shown_path(search, given, inside);
            if !filters.may_admit_excluded(&shown, entry.dir) {
                continue;
            }
            let spelled = given.join(inside);
            if entry.dir {
                walks.insert((*index, spelled), None);
            } else if let Some(dir) = spelled.parent() {
                walks.entry((*index, dir.to_owned())).or_insert(Some(1));
                wanted.insert((*index, shown));
            }
        }
    }
    for ((index, dir), depth) in walks {
        if dir.symlink_metadata().is_err() {
            // Gone since the daemon answered: a walk now would not reach it either.
            continue;
        }
        let walked = scan::walk_below(search, index, &dir, depth).map_err(|e| e.to_string())?;
        for error in &walked.errors {
            if !search.args.no_messages {
                message(error);
            }
        }
        found.errored |= !walked.errors.is_empty();
        found
            .targets
            .extend(walked.targets.into_iter().filter(|target| {
                depth.is_none() || wanted.contains(&(target.root, target.shown.clone()))
            }));
    }
    Ok(())
}

/// How ripgrep prints a path it reached at `inside` under the path argument `given`.
fn shown_path(search: &Search, given: &Path, inside: &Path) -> PathBuf {
    if search.implicit_path {
        inside.to_owned()
    } else {
        given.join(inside)
    }
}

/// The files that may match and the excluded entries asked for, from the daemon;
/// `Err(why)` when it cannot say.
fn candidates(
    context: &Context,
    search: &Search,
    scopes: &[&Path],
) -> Result<(Vec<PathBuf>, Vec<ExcludedEntry>), String> {
    let mut client = Client::new(context.spec(&[]).map_err(|f| broken(search, f.message()))?)
        .map_err(|e| broken(search, format!("no daemon: {e}")))?;
    let params = CandidatesParams {
        patterns: search.patterns.clone(),
        fixed_strings: search.args.fixed_strings,
        scopes: scopes.iter().map(|s| WirePath::from(*s)).collect(),
        excluded: search.may_admit_excluded(),
    };
    let params = serde_json::to_value(params).map_err(|e| broken(search, e.to_string()))?;
    // For tests and benchmarks: wait for the index rather than scan while it builds.
    let wait = std::env::var_os("WARM_SEARCH_WAIT").is_some();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = client
            .call(CANDIDATES, Some(params.clone()))
            .map_err(|e| broken(search, format!("no daemon: {}", Failure::from(e).message())))?;
        let answer: Candidates = serde_json::from_value(answer).map_err(|e| {
            broken(
                search,
                format!("the daemon's answer is not understood: {e}"),
            )
        })?;
        match answer {
            Candidates::Files {
                files, excluded, ..
            } => return Ok((files.into_iter().map(|file| file.0).collect(), excluded)),
            Candidates::Building { .. } if wait && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Candidates::Building { building } => {
                note(&format!(
                    "indexing in the background ({} files, {:.1} MB so far); this search scans",
                    building.files,
                    building.bytes as f64 / 1e6
                ));
                return Err("the index is building".into());
            }
            Candidates::Unindexed { unindexed } => {
                let dirs: Vec<String> = unindexed
                    .iter()
                    .map(|dir| dir.0.display().to_string())
                    .collect();
                return Err(format!(
                    "{} is not in the index (ignored or hidden)",
                    dirs.join(", ")
                ));
            }
            Candidates::Unwatched { unwatched } => {
                note(&format!("{unwatched}; this search scans"));
                return Err(unwatched);
            }
        }
    }
}

/// Why the index cannot answer when something is wrong (a bad `.warm.toml`, no daemon): said
/// on stderr, where it can be fixed, and the search scans; nothing about the daemon makes a
/// search fail.
fn broken(search: &Search, why: String) -> String {
    if !search.args.no_messages {
        message(&format!("{why}; searching without the index"));
    }
    why
}

/// A note about the index on stderr, where people see it: on a terminal, or when
/// `WARM_PROGRESS` is set; never in the way of scripts.
fn note(text: &str) {
    if std::io::stderr().is_terminal() || std::env::var_os("WARM_PROGRESS").is_some() {
        message(text);
    }
}
