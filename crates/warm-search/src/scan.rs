//! The client side of `warm search`: matching and printing as ripgrep does, with ripgrep's own
//! crates (`grep-regex`, `grep-searcher`, `grep-printer`), over the files the index selected
//! or, without a daemon, over a walk of the tree by the same rules.
//!
//! Files are searched in parallel and printed in path order, so output is deterministic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use grep_printer::{ColorSpecs, JSONBuilder, StandardBuilder, Stats, SummaryBuilder, SummaryKind};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder};
use termcolor::Buffer;

/// What to search for and how to print it: ripgrep's common flags.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub patterns: Vec<String>,
    pub fixed_strings: bool,
    pub ignore_case: bool,
    pub smart_case: bool,
    pub word: bool,
    /// `-g` globs (`!` negates), matched against paths relative to the search root.
    pub globs: Vec<String>,
    /// `-t` file types (ripgrep's default type definitions).
    pub types: Vec<String>,
    pub files_with_matches: bool,
    pub count: bool,
    pub max_count: Option<u64>,
    pub after_context: usize,
    pub before_context: usize,
    pub hidden: bool,
    pub no_ignore: bool,
    pub json: bool,
    pub color: bool,
    pub heading: bool,
    /// Where the files searched came from, reported in the `--json` summary.
    pub source: Source,
}

/// Where a search's files came from: the index, or a walk (and why), so that a test or a user
/// can tell a fallback from the path they meant (`data.warm` of the `--json` summary).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// `index` or `scan`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Source {
    pub fn index() -> Source {
        Source {
            source: "index",
            why: None,
        }
    }

    pub fn scan(why: &str) -> Source {
        Source {
            source: "scan",
            why: Some(why.to_owned()),
        }
    }
}

/// A file to search: where to open it, and the path to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub open: PathBuf,
    pub shown: PathBuf,
}

/// How a search ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub matched: bool,
    /// Files that could not be read, with why (ripgrep reports them and exits 2).
    pub errors: Vec<String>,
}

impl Options {
    /// The matcher ripgrep would build for these flags.
    ///
    /// # Errors
    /// The regex error, worded by the regex crate.
    pub fn matcher(&self) -> Result<RegexMatcher, String> {
        let mut builder = RegexMatcherBuilder::new();
        builder
            .case_insensitive(self.ignore_case)
            .case_smart(self.smart_case && !self.ignore_case)
            .word(self.word)
            .fixed_strings(self.fixed_strings)
            .line_terminator(Some(b'\n'))
            .unicode(true)
            .octal(false);
        builder
            .build_many(&self.patterns)
            .map_err(|e| e.to_string())
    }

    fn searcher(&self) -> Searcher {
        SearcherBuilder::new()
            .line_number(true)
            .binary_detection(BinaryDetection::quit(b'\x00'))
            .after_context(self.after_context)
            .before_context(self.before_context)
            .build()
    }

    /// The glob and type filters, rooted at `root`.
    ///
    /// # Errors
    /// A bad glob or an unknown type.
    pub fn filters(&self, root: &Path) -> Result<Filters, String> {
        let mut overrides = ignore::overrides::OverrideBuilder::new(root);
        for glob in &self.globs {
            overrides.add(glob).map_err(|e| e.to_string())?;
        }
        let mut types = ignore::types::TypesBuilder::new();
        types.add_defaults();
        for name in &self.types {
            types.select(name);
        }
        Ok(Filters {
            overrides: overrides.build().map_err(|e| e.to_string())?,
            types: types.build().map_err(|e| e.to_string())?,
        })
    }

    /// Files under `paths` by ripgrep's walk rules and these options (the plain scan). An
    /// empty path is the current directory, its files printed without a `./` prefix.
    ///
    /// # Errors
    /// A bad glob or type.
    pub fn walk(&self, paths: &[PathBuf]) -> Result<Vec<Target>, String> {
        let implicit = paths.iter().any(|p| p.as_os_str().is_empty());
        let mut builder = self.walker(paths)?;
        let found = std::sync::Mutex::new(Vec::new());
        builder.threads(std::thread::available_parallelism().map_or(2, |n| n.get()));
        builder.build_parallel().run(|| {
            let found = &found;
            Box::new(move |entry| {
                if let Ok(entry) = entry {
                    if entry.file_type().is_some_and(|t| t.is_file()) {
                        let shown = match entry.path().strip_prefix("./") {
                            Ok(inside) if implicit => inside.to_owned(),
                            _ => entry.path().to_owned(),
                        };
                        let target = Target {
                            open: entry.path().to_owned(),
                            shown,
                        };
                        if let Ok(mut found) = found.lock() {
                            found.push(target);
                        }
                    }
                }
                ignore::WalkState::Continue
            })
        });
        let mut targets = found.into_inner().unwrap_or_default();
        targets.sort_by(|a, b| a.shown.cmp(&b.shown));
        Ok(targets)
    }

    /// Whether the walk of [`Options::walk`] reaches any file at all (stopping at the first):
    /// rg reports a search that reached none as an error, even when the index had no
    /// candidate to read.
    ///
    /// # Errors
    /// A bad glob or type.
    pub fn any_file(&self, paths: &[PathBuf]) -> Result<bool, String> {
        Ok(self
            .walker(paths)?
            .build()
            .flatten()
            .any(|entry| entry.file_type().is_some_and(|t| t.is_file())))
    }

    /// ripgrep's walk of `paths` with these options' rules and filters.
    fn walker(&self, paths: &[PathBuf]) -> Result<ignore::WalkBuilder, String> {
        let walked: Vec<&Path> = paths
            .iter()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p.as_path()
                }
            })
            .collect();
        let (first, rest) = walked.split_first().ok_or("nothing to search")?;
        let mut builder = ignore::WalkBuilder::new(first);
        for path in rest {
            builder.add(path);
        }
        let filters = self.filters(Path::new("."))?;
        builder
            .add_custom_ignore_filename(".rgignore")
            .hidden(!self.hidden)
            .overrides(filters.overrides)
            .types(filters.types);
        if self.no_ignore {
            builder
                .ignore(false)
                .git_ignore(false)
                .git_global(false)
                .git_exclude(false)
                .parents(false);
            builder.add_custom_ignore_filename("");
        }
        Ok(builder)
    }
}

/// `-g` and `-t`, applied to candidates as ripgrep's walk would have applied them.
pub struct Filters {
    overrides: ignore::overrides::Override,
    types: ignore::types::Types,
}

impl Filters {
    /// Whether the walk would have reached `relative` (a file path relative to the search
    /// root): no excluded directory above it, and the file itself admitted.
    pub fn admits(&self, relative: &Path) -> bool {
        let mut dir = relative.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if self.overrides.matched(d, true).is_ignore() {
                return false;
            }
            dir = d.parent();
        }
        match self.overrides.matched(relative, false) {
            ignore::Match::Ignore(_) => false,
            ignore::Match::Whitelist(_) => true,
            ignore::Match::None => {
                // As in ripgrep's walk: a hidden file is searched only when a file type
                // selects it.
                let hidden = relative
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
                match self.types.matched(relative, false) {
                    ignore::Match::Ignore(_) => false,
                    ignore::Match::Whitelist(_) => true,
                    ignore::Match::None => !hidden,
                }
            }
        }
    }
}

/// Searches `targets` and writes ripgrep's output for them to `out`.
///
/// # Errors
/// Writing to `out` failed (a closed pipe ends the search early without an error).
pub fn search(
    options: &Options,
    matcher: &RegexMatcher,
    targets: &[Target],
    out: &mut dyn Write,
) -> std::io::Result<Outcome> {
    let started = Instant::now();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(targets.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<(usize, FileResult)>(256);
    let mut outcome = Outcome::default();
    let mut stats = Stats::new();
    let mut write_error = None;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                let mut searcher = options.searcher();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(target) = targets.get(i) else {
                        return;
                    };
                    let result = search_one(options, matcher, &mut searcher, target);
                    if tx.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut next_to_print = 0;
        let mut printed_any = false;
        for (i, result) in rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&next_to_print) {
                next_to_print += 1;
                if write_error.is_some() {
                    continue;
                }
                outcome.matched |= result.matched;
                stats += &result.stats;
                if let Some(error) = result.error {
                    outcome.errors.push(error);
                }
                if result.output.is_empty() {
                    continue;
                }
                // Between files: a blank line under headings, `--` between context groups.
                let separator: &[u8] = match (printed_any, options.heading, options.json) {
                    (true, true, false) if !options.files_with_matches && !options.count => b"\n",
                    (true, false, false) if options.after_context + options.before_context > 0 => {
                        b"--\n"
                    }
                    _ => b"",
                };
                printed_any = true;
                if let Err(error) = out
                    .write_all(separator)
                    .and_then(|()| out.write_all(&result.output))
                {
                    stop.store(true, Ordering::Relaxed);
                    write_error = Some(error);
                }
            }
        }
    });
    match write_error {
        Some(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(outcome),
        Some(error) => return Err(error),
        None => {}
    }
    if options.json {
        let elapsed = started.elapsed();
        let summary = serde_json::json!({
            "data": {
                "elapsed_total": {
                    "human": format!("{:.6}s", elapsed.as_secs_f64()),
                    "nanos": elapsed.subsec_nanos(),
                    "secs": elapsed.as_secs(),
                },
                "stats": stats,
                "warm": options.source,
            },
            "type": "summary",
        });
        writeln!(out, "{summary}")?;
    }
    out.flush()?;
    Ok(outcome)
}

struct FileResult {
    output: Vec<u8>,
    matched: bool,
    stats: Stats,
    error: Option<String>,
}

fn search_one(
    options: &Options,
    matcher: &RegexMatcher,
    searcher: &mut Searcher,
    target: &Target,
) -> FileResult {
    let mut result = FileResult {
        output: Vec::new(),
        matched: false,
        stats: Stats::new(),
        error: None,
    };
    let path = &target.shown;
    // The summary and standard printers share no trait for their sinks: one macro serves both.
    macro_rules! search_into {
        ($printer:ident) => {{
            let done = {
                let mut sink = $printer.sink_with_path(matcher, path);
                let done = searcher.search_path(matcher, &target.open, &mut sink);
                result.matched = sink.has_match();
                done
            };
            result.output = $printer.get_mut().as_slice().to_vec();
            done
        }};
    }
    let outcome: Result<(), std::io::Error> = if options.json {
        let mut printer = JSONBuilder::new()
            .max_matches(options.max_count)
            .build(Vec::new());
        let done = {
            let mut sink = printer.sink_with_path(matcher, path);
            let done = searcher.search_path(matcher, &target.open, &mut sink);
            result.matched = sink.has_match();
            result.stats = sink.stats().clone();
            done
        };
        result.output = std::mem::take(printer.get_mut());
        done
    } else if options.files_with_matches || options.count {
        let kind = if options.files_with_matches {
            SummaryKind::PathWithMatch
        } else {
            SummaryKind::Count
        };
        let mut printer = SummaryBuilder::new()
            .kind(kind)
            .max_matches(options.max_count)
            .color_specs(colors(options))
            .build(buffer(options));
        search_into!(printer)
    } else {
        let mut printer = StandardBuilder::new()
            .heading(options.heading)
            .path(true)
            .max_matches(options.max_count)
            .color_specs(colors(options))
            .build(buffer(options));
        search_into!(printer)
    };
    if let Err(error) = outcome {
        result.error = Some(format!("{}: {error}", target.shown.display()));
    }
    result
}

fn colors(options: &Options) -> ColorSpecs {
    if options.color {
        ColorSpecs::default_with_color()
    } else {
        ColorSpecs::default()
    }
}

fn buffer(options: &Options) -> Buffer {
    if options.color {
        Buffer::ansi()
    } else {
        Buffer::no_color()
    }
}
