//! ripgrep's command line: the flags of the release warm follows ([`flags`]), parsed by
//! ripgrep's rules ([`args`]), and turned here into a [`Search`]: ripgrep's defaults resolved
//! (line numbers and headings only on a terminal, file names only when more than one file can
//! be searched, standard input when no path is given and it is not a terminal) and the way to
//! answer it decided: from the index, by a scan in process, or by the real ripgrep.

pub mod args;
pub mod flags;

use std::path::{Path, PathBuf};

pub use args::{Args, UsageError};
use args::{Binary, Boundary, Case, ColorChoice, Mode, PatternSource, SortKind};
pub use flags::Support;

/// The release whose flags, defaults and output warm follows.
pub const RIPGREP_VERSION: &str = "15.2.0";

/// What the process is attached to: ripgrep's defaults depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    pub stdout_is_terminal: bool,
    /// Standard input is a file, a pipe or a socket (`grep_cli::is_readable_stdin`).
    pub stdin_is_readable: bool,
}

impl Terminal {
    pub fn detect() -> Terminal {
        use std::io::IsTerminal;
        Terminal {
            stdout_is_terminal: std::io::stdout().is_terminal(),
            stdin_is_readable: grep_cli::is_readable_stdin(),
        }
    }
}

/// A search, with ripgrep's defaults resolved.
#[derive(Debug, Clone)]
pub struct Search {
    pub args: Args,
    pub patterns: Vec<String>,
    /// What to search; `-` is standard input. An implicit path (none given) is `./`, printed
    /// without that prefix.
    pub paths: Vec<PathBuf>,
    pub implicit_path: bool,
    pub is_one_file: bool,
    pub mode: Mode,
    pub with_filename: bool,
    pub heading: bool,
    pub line_number: bool,
    pub column: bool,
    pub color: bool,
    /// How this search can be answered at best: [`Support::Index`] or [`Support::Scan`]
    /// (with why).
    pub support: (Support, String),
}

/// How to answer a command line.
#[derive(Debug)]
pub enum Plan {
    Search(Box<Search>),
    /// Only the real ripgrep can answer: the flag that needs it.
    Delegate(String),
}

impl Plan {
    /// Decides how to answer `args`.
    ///
    /// # Errors
    /// What ripgrep would refuse (no pattern, a pattern file that cannot be read).
    pub fn new(args: Args, terminal: Terminal) -> Result<Plan, UsageError> {
        if let Some(flag) = args.delegated.first() {
            return Ok(Plan::Delegate(flag.clone()));
        }
        if matches!(args.sort, Some(sort) if sort.kind != SortKind::Path) {
            return Ok(Plan::Delegate("--sort by time".into()));
        }
        Search::new(args, terminal).map(|search| Plan::Search(Box::new(search)))
    }
}

impl Search {
    fn new(mut args: Args, terminal: Terminal) -> Result<Search, UsageError> {
        let mut mode = args.mode;
        // As ripgrep: `-v --count-matches` counts lines; `-o --count` counts matches.
        if mode == Mode::CountMatches && args.invert_match {
            mode = Mode::Count;
        } else if mode == Mode::Count && args.only_matching {
            mode = Mode::CountMatches;
        }
        let mut stdin_consumed = false;
        let patterns = if mode == Mode::Files {
            Vec::new()
        } else {
            patterns(&mut args, &mut stdin_consumed)?
        };
        let mut paths: Vec<PathBuf> = args.positional.drain(..).map(PathBuf::from).collect();
        if stdin_consumed && paths.iter().any(|p| p == Path::new("-")) {
            return Err(UsageError(
                "error: attempted to read patterns from stdin while also searching stdin".into(),
            ));
        }
        let implicit_path = paths.is_empty();
        let is_one_file = if implicit_path {
            let stdin = terminal.stdin_is_readable && !stdin_consumed && mode != Mode::Files;
            paths.push(PathBuf::from(if stdin { "-" } else { "./" }));
            stdin
        } else {
            paths.len() == 1 && (paths[0] == Path::new("-") || !paths[0].is_dir())
        };
        let only_stdin = paths.len() == 1 && paths[0] == Path::new("-");
        let column = args.column.unwrap_or(args.vimgrep);
        let heading = match args.heading {
            None => !args.vimgrep && terminal.stdout_is_terminal,
            Some(heading) => heading && !args.vimgrep,
        };
        let line_number = args.line_number.unwrap_or(match mode {
            _ if args.quiet => false,
            Mode::Json => true,
            Mode::Standard => {
                (terminal.stdout_is_terminal && !only_stdin) || column || args.vimgrep
            }
            _ => false,
        });
        let with_filename = args.with_filename.unwrap_or(args.vimgrep || !is_one_file);
        let color = match args.color {
            ColorChoice::Never => false,
            ColorChoice::Always | ColorChoice::Ansi => true,
            ColorChoice::Auto => {
                terminal.stdout_is_terminal
                    && std::env::var_os("NO_COLOR").is_none()
                    && std::env::var_os("TERM").is_some_and(|t| t != "dumb")
            }
        };
        let support = support(&args, mode, &paths);
        Ok(Search {
            args,
            patterns,
            paths,
            implicit_path,
            is_one_file,
            mode,
            with_filename,
            heading,
            line_number,
            column,
            color,
            support,
        })
    }

    /// Whether the search's filters may admit files that ripgrep's default rules leave out: a
    /// positive glob admits ignored ones, a selected type hidden ones (`.eslintrc.js` for `-t
    /// js`). The index then also names those entries, and the client reads the few its
    /// filters admit (see [`crate::excluded`]).
    pub fn may_admit_excluded(&self) -> bool {
        let positive = |g: &String| !g.starts_with('!');
        self.args.globs.iter().any(positive)
            || self.args.iglobs.iter().any(positive)
            || self
                .args
                .types
                .iter()
                .any(|t| matches!(t, args::TypeChange::Select(_)))
    }

    /// Whether files are read through memory maps: ripgrep's choice, because it changes how
    /// much of a file with a NUL byte is searched.
    pub fn mmap(&self) -> bool {
        match self.args.mmap {
            args::Mmap::Always => true,
            args::Mmap::Never => false,
            args::Mmap::Auto => self.paths.len() <= 10 && self.paths.iter().all(|p| p.is_file()),
        }
    }

    pub fn case(&self) -> Case {
        self.args.case
    }

    pub fn word(&self) -> bool {
        self.args.boundary == Some(Boundary::Word)
    }

    pub fn line(&self) -> bool {
        self.args.boundary == Some(Boundary::Line)
    }
}

/// The patterns, in ripgrep's order, duplicates dropped: `-e` and `-f` if any, else the
/// first positional argument.
fn patterns(args: &mut Args, stdin_consumed: &mut bool) -> Result<Vec<String>, UsageError> {
    if args.patterns.is_empty() {
        if args.positional.is_empty() {
            return Err(UsageError(
                "ripgrep requires at least one pattern to execute a search".into(),
            ));
        }
        let first = args.positional.remove(0);
        return first
            .into_string()
            .map(|p| vec![p])
            .map_err(|_| UsageError("pattern given is not valid UTF-8".into()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut patterns = Vec::new();
    let mut add = |pattern: String| {
        if seen.insert(pattern.clone()) {
            patterns.push(pattern);
        }
    };
    for source in std::mem::take(&mut args.patterns) {
        match source {
            PatternSource::Regexp(pattern) => add(pattern),
            PatternSource::File(path) if path == Path::new("-") => {
                if *stdin_consumed {
                    return Err(UsageError(
                        "error reading -f/--file from stdin: stdin has already been consumed"
                            .into(),
                    ));
                }
                let read =
                    grep_cli::patterns_from_stdin().map_err(|e| UsageError(e.to_string()))?;
                read.into_iter().for_each(&mut add);
                *stdin_consumed = true;
            }
            PatternSource::File(path) => {
                let read =
                    grep_cli::patterns_from_path(&path).map_err(|e| UsageError(e.to_string()))?;
                read.into_iter().for_each(&mut add);
            }
        }
    }
    Ok(patterns)
}

/// Whether the index can choose this search's files, and if not, why.
fn support(args: &Args, mode: Mode, paths: &[PathBuf]) -> (Support, String) {
    let reasons = [
        (args.hidden, "--hidden"),
        (
            args.no_ignore_dot
                || args.no_ignore_exclude
                || args.no_ignore_files
                || args.no_ignore_global
                || args.no_ignore_parent
                || args.no_ignore_vcs,
            "--no-ignore",
        ),
        (args.no_require_git, "--no-require-git"),
        (!args.ignore_files.is_empty(), "--ignore-file"),
        (
            args.ignore_file_case_insensitive,
            "--ignore-file-case-insensitive",
        ),
        (args.follow, "--follow"),
        (args.max_depth.is_some(), "--max-depth"),
        (args.max_filesize.is_some(), "--max-filesize"),
        (args.one_file_system, "--one-file-system"),
        (mode == Mode::FilesWithoutMatch, "--files-without-match"),
        (args.invert_match, "--invert-match"),
        (args.multiline, "--multiline"),
        (args.null_data, "--null-data"),
        (args.binary != Binary::Auto, "--text or --binary"),
        (args.encoding.is_some(), "--encoding"),
        // Every file is printed, with a count of 0 where nothing matched.
        (
            args.include_zero && matches!(mode, Mode::Count | Mode::CountMatches),
            "--include-zero",
        ),
        // Through a map, a file is searched past a NUL byte, where the index stops.
        (args.mmap == args::Mmap::Always, "--mmap"),
        (paths.iter().any(|p| p == Path::new("-")), "standard input"),
    ];
    match reasons.into_iter().find(|(given, _)| *given) {
        Some((_, why)) => (Support::Scan, why.to_owned()),
        None => (Support::Index, String::new()),
    }
}
