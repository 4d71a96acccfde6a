//! ripgrep's command line, parsed by ripgrep's rules: the last of two contradicting flags
//! wins, every flag has its negation, short flags cluster (`-iw`, `-A1`, `-uuu`), a flag's
//! value may start with `-` (`-e -test`), `--` ends the flags, and `RIPGREP_CONFIG_PATH`'s
//! arguments come first unless `--no-config` is given.
//!
//! Parsing records what was asked; [`super::plan`] decides how to answer it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::flags::{self, Arity, Flag, Support};

/// Where patterns come from, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternSource {
    Regexp(String),
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Case {
    #[default]
    Sensitive,
    Insensitive,
    Smart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    Word,
    Line,
}

/// What is printed: matching lines (standard), a summary per file, JSON, or file names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Standard,
    FilesWithMatches,
    FilesWithoutMatch,
    Count,
    CountMatches,
    Json,
    Files,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Binary {
    /// Walked files stop at the first NUL; named files are searched whole.
    #[default]
    Auto,
    /// `--binary`: walked files are searched whole too, their matches suppressed.
    SearchAndSuppress,
    /// `-a`: every file is text.
    AsText,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColorChoice {
    Never,
    #[default]
    Auto,
    Always,
    Ansi,
}

/// Whether files are read through memory maps, which changes how much of a file with a NUL
/// byte ripgrep searches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mmap {
    /// When at most ten paths are given and all are files.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    Path,
    Modified,
    Accessed,
    Created,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub kind: SortKind,
    pub reverse: bool,
}

/// A change to the file types, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeChange {
    Select(String),
    Negate(String),
    Add(String),
    Clear(String),
}

/// Context lines: `-C` sets both sides, `-A`/`-B` one side whatever their order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    pub passthru: bool,
    pub before: Option<usize>,
    pub after: Option<usize>,
    pub both: Option<usize>,
}

impl Context {
    /// (before, after).
    pub fn get(&self) -> (usize, usize) {
        let both = self.both.unwrap_or(0);
        (self.before.unwrap_or(both), self.after.unwrap_or(both))
    }
}

/// Everything a ripgrep command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub patterns: Vec<PatternSource>,
    pub positional: Vec<OsString>,
    pub mode: Mode,
    pub case: Case,
    pub boundary: Option<Boundary>,
    pub fixed_strings: bool,
    pub invert_match: bool,
    pub context: Context,
    pub context_separator: Option<Vec<u8>>,
    pub field_context_separator: Vec<u8>,
    pub field_match_separator: Vec<u8>,
    pub path_separator: Option<u8>,
    pub max_count: Option<u64>,
    pub max_columns: Option<u64>,
    pub max_columns_preview: bool,
    pub line_number: Option<bool>,
    pub with_filename: Option<bool>,
    pub heading: Option<bool>,
    pub column: Option<bool>,
    pub byte_offset: bool,
    pub only_matching: bool,
    pub vimgrep: bool,
    pub null: bool,
    pub trim: bool,
    pub include_zero: bool,
    pub quiet: bool,
    pub replace: Option<Vec<u8>>,
    pub color: ColorChoice,
    pub colors: Vec<String>,
    pub globs: Vec<String>,
    pub iglobs: Vec<String>,
    pub glob_case_insensitive: bool,
    pub types: Vec<TypeChange>,
    pub hidden: bool,
    pub no_ignore_dot: bool,
    pub no_ignore_exclude: bool,
    pub no_ignore_files: bool,
    pub no_ignore_global: bool,
    pub no_ignore_parent: bool,
    pub no_ignore_vcs: bool,
    pub no_ignore_messages: bool,
    pub no_messages: bool,
    pub no_require_git: bool,
    pub ignore_files: Vec<PathBuf>,
    pub ignore_file_case_insensitive: bool,
    pub follow: bool,
    pub max_depth: Option<usize>,
    pub max_filesize: Option<u64>,
    pub one_file_system: bool,
    pub binary: Binary,
    pub crlf: bool,
    pub null_data: bool,
    pub multiline: bool,
    pub multiline_dotall: bool,
    pub no_unicode: bool,
    /// `Some(None)`: `--no-encoding`; `Some(Some(label))`: `-E label`.
    pub encoding: Option<Option<String>>,
    pub sort: Option<Sort>,
    pub stop_on_nonmatch: bool,
    pub regex_size_limit: Option<usize>,
    pub dfa_size_limit: Option<usize>,
    pub debug: bool,
    pub no_config: bool,
    pub unrestricted: u8,
    pub mmap: Mmap,
    /// Flags only the real ripgrep implements (or that warm answers by handing over), first
    /// one given first.
    pub delegated: Vec<String>,
}

/// A command line ripgrep would refuse: ripgrep's own words, to print as `rg: ...` (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `args` (without the program name), after the arguments of `RIPGREP_CONFIG_PATH`'s
/// file unless `--no-config` is among them. Complaints about the config file are returned
/// beside the result, to print as ripgrep does, without failing the search.
pub fn parse(args: Vec<OsString>) -> (Result<Args, UsageError>, Vec<String>) {
    let cli = match parse_raw(args.clone()) {
        Ok(cli) => cli,
        Err(error) => return (Err(error), Vec::new()),
    };
    if cli.no_config {
        return (Ok(cli), Vec::new());
    }
    let (mut config, messages) = config_args();
    if config.is_empty() {
        return (Ok(cli), messages);
    }
    config.extend(args);
    (parse_raw(config), messages)
}

/// The arguments of the file `RIPGREP_CONFIG_PATH` names (one per line; blank lines and
/// `#` comments skipped), and complaints about it.
fn config_args() -> (Vec<OsString>, Vec<String>) {
    let Some(path) = std::env::var_os("RIPGREP_CONFIG_PATH").filter(|p| !p.is_empty()) else {
        return (Vec::new(), Vec::new());
    };
    let path = PathBuf::from(path);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) => {
            return (
                Vec::new(),
                vec![format!(
                    "failed to read the file specified in RIPGREP_CONFIG_PATH: {}: {error}",
                    path.display()
                )],
            )
        }
    };
    let mut args = Vec::new();
    let mut messages = Vec::new();
    for (number, line) in bstr::ByteSlice::lines(text.as_slice()).enumerate() {
        let line = bstr::ByteSlice::trim(line);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        match bstr::ByteSlice::to_os_str(line) {
            Ok(arg) => args.push(arg.to_owned()),
            Err(error) => messages.push(format!("{}:{}: {error}", path.display(), number + 1)),
        }
    }
    (args, messages)
}

/// Parses one command line, without the config file.
pub fn parse_raw(args: Vec<OsString>) -> Result<Args, UsageError> {
    let mut parsed = Args {
        context_separator: Some(b"--".to_vec()),
        field_context_separator: b"-".to_vec(),
        field_match_separator: b":".to_vec(),
        ..Args::default()
    };
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        let arg = parser.next().map_err(|e| UsageError(e.to_string()))?;
        let Some(arg) = arg else { break };
        let long = matches!(arg, lexopt::Arg::Long(_));
        let (flag, negated, shown) = match arg {
            lexopt::Arg::Value(value) => {
                parsed.positional.push(value);
                continue;
            }
            lexopt::Arg::Short(name) => match flags::by_short(name) {
                Some(flag) => (flag, false, format!("-{name}")),
                None => return Err(unknown(&format!("-{name}"))),
            },
            lexopt::Arg::Long(name) => match flags::by_long(name) {
                Some((flag, negated)) => (flag, negated, format!("--{name}")),
                None => return Err(unknown(&format!("--{name}"))),
            },
        };
        let value = match flag.arity {
            Arity::Switch => {
                // `--count=3`; in a cluster of shorts (`-iw`) the rest are more flags.
                if let Some(value) = long.then(|| parser.optional_value()).flatten() {
                    return Err(UsageError(format!(
                        "unexpected argument for {shown}: {}",
                        value.to_string_lossy()
                    )));
                }
                None
            }
            Arity::Value if negated => None,
            Arity::Value => Some(
                parser
                    .value()
                    .map_err(|_| UsageError(format!("missing value for flag {shown}")))?,
            ),
        };
        apply(&mut parsed, flag, negated, value.as_deref())
            .map_err(|e| UsageError(format!("error parsing flag {shown}: {e}")))?;
        if flag.support == Support::Delegate && !negated {
            parsed.delegated.push(shown);
        }
    }
    Ok(parsed)
}

fn unknown(shown: &str) -> UsageError {
    UsageError(format!("unrecognized flag {shown}"))
}

fn text(value: Option<&OsStr>) -> Result<String, String> {
    let value = value.ok_or("missing value")?;
    value
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| "value is not valid UTF-8".to_owned())
}

fn number<T: std::str::FromStr>(value: Option<&OsStr>) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let value = text(value)?;
    value
        .parse()
        .map_err(|e| format!("invalid number {value:?}: {e}"))
}

/// A size with an optional `K`, `M` or `G` suffix (ripgrep's `--max-filesize 2M`).
fn size(value: Option<&OsStr>) -> Result<u64, String> {
    let value = text(value)?;
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'K') => (&value[..value.len() - 1], 10),
        Some(b'M') => (&value[..value.len() - 1], 20),
        Some(b'G') => (&value[..value.len() - 1], 30),
        _ => (value.as_str(), 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|e| format!("invalid size {value:?}: {e}"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {value:?} is too big"))
}

/// Escapes such as `\t` and `\x00` in a separator, as ripgrep reads them.
fn unescape(value: Option<&OsStr>) -> Result<Vec<u8>, String> {
    Ok(grep_cli::unescape(&text(value)?))
}

fn apply(a: &mut Args, flag: &Flag, negated: bool, value: Option<&OsStr>) -> Result<(), String> {
    let on = !negated;
    if apply_matching(a, flag, on, value)?
        || apply_output(a, flag, on, value)?
        || apply_files(a, flag, on, value)?
        // Only the real ripgrep answers the others (recorded by the caller).
        || flag.support == Support::Delegate
    {
        return Ok(());
    }
    Err(format!("--{} is not handled", flag.long))
}

/// The flags of what matches and what is printed of it: patterns, case, context, modes. `Ok(false)`: not one of these.
fn apply_matching(
    a: &mut Args,
    flag: &Flag,
    on: bool,
    value: Option<&OsStr>,
) -> Result<bool, String> {
    match flag.long {
        "after-context" => {
            a.context.passthru = false;
            a.context.after = Some(number(value)?);
        }
        "before-context" => {
            a.context.passthru = false;
            a.context.before = Some(number(value)?);
        }
        "context" => {
            a.context.passthru = false;
            a.context.both = Some(number(value)?);
        }
        "passthru" => {
            a.context = Context {
                passthru: true,
                ..Context::default()
            }
        }
        "binary" => {
            a.binary = if on {
                Binary::SearchAndSuppress
            } else {
                Binary::Auto
            };
        }
        "text" => a.binary = if on { Binary::AsText } else { Binary::Auto },
        "case-sensitive" => a.case = Case::Sensitive,
        "ignore-case" => a.case = Case::Insensitive,
        "smart-case" => a.case = Case::Smart,
        "count" => a.mode = Mode::Count,
        "count-matches" => a.mode = Mode::CountMatches,
        "files-with-matches" => a.mode = Mode::FilesWithMatches,
        "files-without-match" => a.mode = Mode::FilesWithoutMatch,
        "crlf" => a.crlf = on,
        "dfa-size-limit" => a.dfa_size_limit = Some(usize_size(value)?),
        "regex-size-limit" => a.regex_size_limit = Some(usize_size(value)?),
        "encoding" => {
            // `auto` sniffs a byte-order mark; `none` (as --no-encoding) reads bytes as they are.
            let label = if on { text(value)? } else { "none".to_owned() };
            a.encoding = match label.as_str() {
                "none" => Some(None),
                "auto" => None,
                label => {
                    grep_searcher::Encoding::new(label).map_err(|e| e.to_string())?;
                    Some(Some(label.to_owned()))
                }
            }
        }
        "engine" => match text(value)?.as_str() {
            "default" => {}
            "pcre2" | "auto" => a.delegated.push(format!("--engine {}", text(value)?)),
            other => return Err(format!("unrecognized regex engine {other:?}")),
        },
        "file" => a.patterns.push(PatternSource::File(PathBuf::from(
            value.ok_or("missing value")?,
        ))),
        "regexp" => a.patterns.push(PatternSource::Regexp(text(value)?)),
        "fixed-strings" => a.fixed_strings = on,
        "invert-match" => a.invert_match = on,
        "line-regexp" => a.boundary = Some(Boundary::Line),
        "word-regexp" => a.boundary = Some(Boundary::Word),
        "max-count" => a.max_count = Some(number(value)?),
        "multiline" => a.multiline = on,
        "multiline-dotall" => a.multiline_dotall = on,
        "no-unicode" => a.no_unicode = on,
        "null-data" => a.null_data = true,
        "stop-on-nonmatch" => a.stop_on_nonmatch = true,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The flags of how it is printed. `Ok(false)`: not one of these.
fn apply_output(
    a: &mut Args,
    flag: &Flag,
    on: bool,
    value: Option<&OsStr>,
) -> Result<bool, String> {
    match flag.long {
        "byte-offset" => a.byte_offset = on,
        "color" => {
            a.color = match text(value)?.as_str() {
                "never" => ColorChoice::Never,
                "auto" => ColorChoice::Auto,
                "always" => ColorChoice::Always,
                "ansi" => ColorChoice::Ansi,
                other => return Err(format!("unrecognized color choice {other:?}")),
            }
        }
        "colors" => {
            let spec = text(value)?;
            spec.parse::<grep_printer::UserColorSpec>()
                .map_err(|e| e.to_string())?;
            a.colors.push(spec);
        }
        "pretty" => {
            a.color = ColorChoice::Always;
            a.heading = Some(true);
            a.line_number = Some(true);
        }
        "column" => a.column = Some(on),
        "context-separator" => a.context_separator = if on { Some(unescape(value)?) } else { None },
        "field-context-separator" => a.field_context_separator = unescape(value)?,
        "field-match-separator" => a.field_match_separator = unescape(value)?,
        "path-separator" => {
            let sep = unescape(value)?;
            a.path_separator = match sep.as_slice() {
                [] => None,
                [byte] => Some(*byte),
                _ => {
                    return Err(format!(
                        "A path separator must be exactly one byte, but the given \
                         separator is {} bytes: {}",
                        sep.len(),
                        String::from_utf8_lossy(&sep)
                    ))
                }
            }
        }
        "json" => {
            if on {
                a.mode = Mode::Json;
            } else if a.mode == Mode::Json {
                a.mode = Mode::Standard;
            }
        }
        "debug" | "trace" => a.debug = true,
        "heading" => a.heading = Some(on),
        "include-zero" => a.include_zero = on,
        "line-number" => a.line_number = Some(true),
        "no-line-number" => a.line_number = Some(false),
        "max-columns" => {
            let n: u64 = number(value)?;
            a.max_columns = (n > 0).then_some(n);
        }
        "max-columns-preview" => a.max_columns_preview = on,
        "null" => a.null = true,
        "only-matching" => a.only_matching = true,
        "quiet" => a.quiet = true,
        "replace" => a.replace = Some(value.ok_or("missing value")?.as_encoded_bytes().to_vec()),
        "sort-files" => {
            a.sort = on.then_some(Sort {
                kind: SortKind::Path,
                reverse: false,
            })
        }
        "sort" | "sortr" => {
            let kind = match text(value)?.as_str() {
                "path" => Some(SortKind::Path),
                "modified" => Some(SortKind::Modified),
                "accessed" => Some(SortKind::Accessed),
                "created" => Some(SortKind::Created),
                "none" => None,
                other => return Err(format!("choice {other:?} is unrecognized")),
            };
            a.sort = kind.map(|kind| Sort {
                kind,
                reverse: flag.long == "sortr",
            });
        }
        "trim" => a.trim = on,
        "vimgrep" => a.vimgrep = true,
        "with-filename" => a.with_filename = Some(true),
        "no-filename" => a.with_filename = Some(false),
        "mmap" => a.mmap = if on { Mmap::Always } else { Mmap::Never },
        // Accepted, and without effect on what is printed.
        "block-buffered" | "line-buffered" | "threads" | "no-pcre2-unicode" => {
            if flag.arity == Arity::Value {
                let _: usize = number(value)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The flags of which files are searched. `Ok(false)`: not one of these.
fn apply_files(a: &mut Args, flag: &Flag, on: bool, value: Option<&OsStr>) -> Result<bool, String> {
    match flag.long {
        "files" => a.mode = Mode::Files,
        "follow" => a.follow = on,
        "glob" => a.globs.push(text(value)?),
        "iglob" => a.iglobs.push(text(value)?),
        "glob-case-insensitive" => a.glob_case_insensitive = on,
        "hidden" => a.hidden = on,
        "ignore-file" => a
            .ignore_files
            .push(PathBuf::from(value.ok_or("missing value")?)),
        "ignore-file-case-insensitive" => a.ignore_file_case_insensitive = on,
        "max-depth" => a.max_depth = Some(number(value)?),
        "max-filesize" => a.max_filesize = Some(size(value)?),
        "no-config" => a.no_config = true,
        "no-ignore" => {
            // Not --ignore-file's files: only --no-ignore-files drops those.
            a.no_ignore_dot = on;
            a.no_ignore_exclude = on;
            a.no_ignore_global = on;
            a.no_ignore_parent = on;
            a.no_ignore_vcs = on;
        }
        "no-ignore-dot" => a.no_ignore_dot = on,
        "no-ignore-exclude" => a.no_ignore_exclude = on,
        "no-ignore-files" => a.no_ignore_files = on,
        "no-ignore-global" => a.no_ignore_global = on,
        "no-ignore-parent" => a.no_ignore_parent = on,
        "no-ignore-vcs" => a.no_ignore_vcs = on,
        "no-ignore-messages" => a.no_ignore_messages = on,
        "no-messages" => a.no_messages = on,
        "no-require-git" => a.no_require_git = on,
        "one-file-system" => a.one_file_system = on,
        "type" => a.types.push(TypeChange::Select(text(value)?)),
        "type-not" => a.types.push(TypeChange::Negate(text(value)?)),
        "type-add" => a.types.push(TypeChange::Add(text(value)?)),
        "type-clear" => a.types.push(TypeChange::Clear(text(value)?)),
        "unrestricted" => {
            // -u: --no-ignore; -uu: and --hidden; -uuu: and --binary.
            a.unrestricted += 1;
            match a.unrestricted {
                1 => apply(
                    a,
                    flags::by_long("no-ignore").ok_or("no --no-ignore")?.0,
                    false,
                    None,
                )?,
                2 => a.hidden = true,
                3 => a.binary = Binary::SearchAndSuppress,
                _ => return Err("flag can only be repeated up to 3 times".into()),
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn usize_size(value: Option<&OsStr>) -> Result<usize, String> {
    usize::try_from(size(value)?).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Args {
        parse_raw(line.iter().map(OsString::from).collect()).expect("parses")
    }

    #[test]
    fn the_last_of_contradicting_flags_wins() {
        assert_eq!(args(&["-i", "x", "-s"]).case, Case::Sensitive);
        assert_eq!(args(&["-s", "x", "-i"]).case, Case::Insensitive);
        assert_eq!(args(&["-C", "1", "x", "-C", "0"]).context.get(), (0, 0));
        assert_eq!(args(&["-A", "2", "-C", "1", "x"]).context.get(), (1, 2));
        assert_eq!(
            args(&["--heading", "--no-heading", "x"]).heading,
            Some(false)
        );
        assert_eq!(
            args(&["--ignore-case", "--ignore-case", "x"]).case,
            Case::Insensitive
        );
    }

    #[test]
    fn values_may_start_with_a_dash_and_shorts_cluster() {
        let parsed = args(&["-e", "-test", "-iwA1", "--", "-path"]);
        assert_eq!(parsed.patterns, vec![PatternSource::Regexp("-test".into())]);
        assert_eq!(parsed.case, Case::Insensitive);
        assert_eq!(parsed.boundary, Some(Boundary::Word));
        assert_eq!(parsed.context.after, Some(1));
        assert_eq!(parsed.positional, vec![OsString::from("-path")]);
        assert_eq!(args(&["--glob=*.rs", "x"]).globs, vec!["*.rs".to_owned()]);
    }

    #[test]
    fn encoding_auto_none_and_labels() {
        assert_eq!(args(&["-E", "none", "x"]).encoding, Some(None));
        assert_eq!(args(&["--no-encoding", "x"]).encoding, Some(None));
        assert_eq!(args(&["-E", "none", "-E", "auto", "x"]).encoding, None);
        assert_eq!(
            args(&["-E", "utf-16le", "x"]).encoding,
            Some(Some("utf-16le".into()))
        );
    }

    #[test]
    fn unrestricted_adds_one_level_per_letter() {
        let one = args(&["-u", "x"]);
        assert!(one.no_ignore_vcs && !one.hidden);
        assert!(!one.no_ignore_files, "-u keeps --ignore-file's files");
        let two = args(&["-uu", "x"]);
        assert!(two.no_ignore_vcs && two.hidden && two.binary == Binary::Auto);
        assert_eq!(args(&["-uuu", "x"]).binary, Binary::SearchAndSuppress);
        assert!(parse_raw(["-uuuu", "x"].map(OsString::from).to_vec()).is_err());
    }

    #[test]
    fn unknown_flags_and_bad_values_are_refused_in_rgs_words() {
        let refuse = |line: &[&str]| {
            parse_raw(line.iter().map(OsString::from).collect())
                .expect_err("refused")
                .0
        };
        assert_eq!(refuse(&["--no-such", "x"]), "unrecognized flag --no-such");
        assert!(refuse(&["-A", "x", "y"]).starts_with("error parsing flag -A"));
        assert!(refuse(&["--count=3", "x"]).contains("unexpected argument"));
    }

    #[test]
    fn flags_only_ripgrep_implements_are_recorded() {
        assert_eq!(
            args(&["--pre", "cat", "x"]).delegated,
            vec!["--pre".to_owned()]
        );
        assert!(args(&["--pre", "cat", "--no-pre", "x"]).delegated.len() == 1);
        assert!(args(&["-P", "x"]).delegated == vec!["-P".to_owned()]);
    }
}
