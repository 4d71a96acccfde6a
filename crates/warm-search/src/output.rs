//! Matching and printing as ripgrep does, with ripgrep's own crates (`grep-regex`,
//! `grep-searcher`, `grep-printer`), over the files [`crate::scan`] or the index chose.
//!
//! Files are searched in parallel and printed in the order of [`crate::scan::order`], each
//! file's output whole, so that the output is deterministic and equal to a single-threaded
//! ripgrep's.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Instant;

use grep_matcher::LineTerminator;
use grep_printer::{
    ColorSpecs, JSONBuilder, PathPrinterBuilder, StandardBuilder, Stats, SummaryBuilder,
    SummaryKind, UserColorSpec,
};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Encoding, MmapChoice, Searcher, SearcherBuilder};
use termcolor::Buffer;

use crate::rg::args::{Binary, Case, Mode};
use crate::rg::Search;
use crate::scan::Target;

/// The name messages begin with (`rg` for the shim, `warm` otherwise).
static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// Sets the name messages begin with; the first call wins.
pub fn set_program(name: &'static str) {
    let _ = PROGRAM.set(name);
}

/// Prints a message on stderr as ripgrep does (`rg: ...`).
pub fn message(text: &str) {
    let program = PROGRAM.get().copied().unwrap_or("warm");
    let _ = writeln!(std::io::stderr().lock(), "{program}: {text}");
}

/// How a search ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub matched: bool,
    /// A file could not be read (ripgrep reports it and exits 2).
    pub errored: bool,
}

/// The matcher ripgrep builds for the search's flags.
///
/// # Errors
/// The pattern the regex engine refused.
pub fn matcher(search: &Search) -> Result<RegexMatcher, PatternError> {
    let args = &search.args;
    let mut builder = RegexMatcherBuilder::new();
    builder
        .multi_line(true)
        .unicode(!args.no_unicode)
        .octal(false)
        .fixed_strings(args.fixed_strings);
    match search.case() {
        Case::Sensitive => builder.case_insensitive(false),
        Case::Insensitive => builder.case_insensitive(true),
        Case::Smart => builder.case_smart(true),
    };
    builder.word(search.word()).whole_line(search.line());
    if args.multiline {
        builder.dot_matches_new_line(args.multiline_dotall);
        if args.crlf {
            builder.crlf(true).line_terminator(None);
        }
    } else {
        builder
            .line_terminator(Some(b'\n'))
            .dot_matches_new_line(false);
        if args.crlf {
            builder.crlf(true);
        }
        if args.null_data {
            builder.line_terminator(Some(b'\x00'));
        }
    }
    if let Some(limit) = args.regex_size_limit {
        builder.size_limit(limit);
    }
    if let Some(limit) = args.dfa_size_limit {
        builder.dfa_size_limit(limit);
    }
    if !binary_is_none(search) {
        builder.ban_byte(Some(b'\x00'));
    }
    builder.build_many(&search.patterns).map_err(PatternError)
}

/// A pattern the regex engine refused: printed in the regex crate's words, with ripgrep's hint
/// where ripgrep gives one.
#[derive(Debug, thiserror::Error)]
#[error("{}", with_hint(.0.to_string()))]
pub struct PatternError(#[source] grep_regex::Error);

/// ripgrep's hints after two regex errors: a literal new line (multiline mode allows it) and
/// a NUL byte (text mode allows it).
fn with_hint(message: String) -> String {
    if message.contains("the literal") && message.contains("not allowed") {
        format!("{message}\n\nConsider enabling multiline mode with the --multiline flag (or -U for short).\nWhen multiline mode is enabled, new line characters can be matched.")
    } else if message.contains("pattern contains \"\\0\"") {
        format!("{message}\n\nConsider enabling text mode with the --text flag (or -a for short). Otherwise,\nbinary detection is enabled and matching a NUL byte is impossible.")
    } else {
        message
    }
}

fn binary_is_none(search: &Search) -> bool {
    search.args.binary == Binary::AsText || search.args.null_data
}

/// How a NUL byte is treated: in files named on the command line, and in walked files.
fn binary_detection(search: &Search, explicit: bool) -> BinaryDetection {
    if binary_is_none(search) {
        BinaryDetection::none()
    } else if explicit || search.args.binary == Binary::SearchAndSuppress {
        BinaryDetection::convert(b'\x00')
    } else {
        BinaryDetection::quit(b'\x00')
    }
}

fn searcher(search: &Search) -> Result<Searcher, grep_searcher::ConfigError> {
    let args = &search.args;
    let terminator = if args.crlf {
        LineTerminator::crlf()
    } else if args.null_data {
        LineTerminator::byte(b'\x00')
    } else {
        LineTerminator::byte(b'\n')
    };
    let mut builder = SearcherBuilder::new();
    builder
        .max_matches(args.max_count)
        .line_terminator(terminator)
        .invert_match(args.invert_match)
        .line_number(search.line_number)
        .multi_line(args.multiline)
        .memory_map(mmap_choice(search))
        .stop_on_nonmatch(args.stop_on_nonmatch);
    if args.context.passthru {
        builder.passthru(true);
    } else {
        let (before, after) = args.context.get();
        builder.before_context(before).after_context(after);
    }
    match &args.encoding {
        None => {}
        Some(Some(label)) => {
            builder.encoding(Some(Encoding::new(label)?));
        }
        Some(None) => {
            builder.bom_sniffing(false);
        }
    }
    Ok(builder.build())
}

fn mmap_choice(search: &Search) -> MmapChoice {
    if search.mmap() {
        // SAFETY: as in ripgrep, whose choice this is (it changes what is searched in a file
        // with a NUL byte): the map is only read, never kept past the search of its file,
        // and a file truncated meanwhile can at worst end this short-lived client process,
        // as it would end ripgrep; never the daemon, which does not search.
        unsafe { MmapChoice::auto() }
    } else {
        MmapChoice::never()
    }
}

fn colors(search: &Search) -> ColorSpecs {
    let mut specs = grep_printer::default_color_specs();
    specs.extend(
        search
            .args
            .colors
            .iter()
            .filter_map(|spec| spec.parse::<UserColorSpec>().ok()),
    );
    ColorSpecs::new(&specs)
}

/// What is printed between two files' outputs: a blank line under headings, the context
/// separator between context groups.
fn file_separator(search: &Search) -> Option<Vec<u8>> {
    if search.mode != Mode::Standard {
        return None;
    }
    if search.heading {
        return Some(Vec::new());
    }
    let (before, after) = search.args.context.get();
    if !search.args.context.passthru && (before > 0 || after > 0) {
        return search.args.context_separator.clone();
    }
    None
}

/// Searches `targets` and writes ripgrep's output for them to `out`. `summary_extra` is
/// added to the `data` of the `--json` summary (warm's note of where the files came from).
///
/// # Errors
/// Building the searcher failed, or writing to `out` did (a closed pipe ends the search
/// early without an error).
pub fn search(
    search: &Search,
    matcher: &RegexMatcher,
    targets: &[Target],
    summary_extra: Option<(&str, serde_json::Value)>,
    out: &mut dyn Write,
) -> std::io::Result<Outcome> {
    let started = Instant::now();
    // Checked before any thread starts, so that a bad encoding is one error, not one per file.
    searcher(search).map_err(std::io::Error::other)?;
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(targets.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let quit_after_match = search.args.quiet && search.mode != Mode::Json;
    let (tx, rx) = mpsc::sync_channel::<(usize, FileResult)>(256);
    let mut outcome = Outcome::default();
    let mut stats = Stats::new();
    let mut write_error = None;
    let separator = file_separator(search);
    // Parsed once: every file's printer gets a copy.
    let colors = &colors(search);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                let Ok(mut searcher) = searcher(search) else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(target) = targets.get(i) else {
                        return;
                    };
                    let result = search_one(search, matcher, colors, &mut searcher, target);
                    if quit_after_match && result.matched {
                        stop.store(true, Ordering::Relaxed);
                    }
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
                    outcome.errored = true;
                    if !search.args.no_messages {
                        message(&error);
                    }
                }
                if result.output.is_empty() {
                    continue;
                }
                let mut write = |bytes: &[u8]| out.write_all(bytes);
                let written = match (&separator, printed_any) {
                    (Some(separator), true) => write(separator).and_then(|()| write(b"\n")),
                    _ => Ok(()),
                }
                .and_then(|()| write(&result.output));
                printed_any = true;
                if let Err(error) = written {
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
    if search.args.mode == Mode::Json {
        let elapsed = started.elapsed();
        let mut data = serde_json::json!({
            "elapsed_total": {
                "human": format!("{:0.6}s", elapsed.as_secs_f64()),
                "nanos": elapsed.subsec_nanos(),
                "secs": elapsed.as_secs(),
            },
            "stats": stats,
        });
        if let (Some((key, value)), Some(map)) = (summary_extra, data.as_object_mut()) {
            map.insert(key.to_owned(), value);
        }
        let summary = serde_json::json!({ "data": data, "type": "summary" });
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

fn buffer(search: &Search) -> Buffer {
    if search.color {
        Buffer::ansi()
    } else {
        Buffer::no_color()
    }
}

fn summary_kind(search: &Search) -> Option<SummaryKind> {
    if search.args.quiet {
        return Some(if search.mode == Mode::FilesWithoutMatch {
            SummaryKind::QuietWithoutMatch
        } else {
            SummaryKind::QuietWithMatch
        });
    }
    match search.mode {
        Mode::FilesWithMatches => Some(SummaryKind::PathWithMatch),
        Mode::FilesWithoutMatch => Some(SummaryKind::PathWithoutMatch),
        Mode::Count => Some(SummaryKind::Count),
        Mode::CountMatches => Some(SummaryKind::CountMatches),
        Mode::Standard | Mode::Json | Mode::Files => None,
    }
}

fn search_one(
    search: &Search,
    matcher: &RegexMatcher,
    colors: &ColorSpecs,
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
    let args = &search.args;
    if search.mode == Mode::Files && args.quiet {
        result.matched = true;
        return result;
    }
    if search.mode == Mode::Files {
        let mut output = buffer(search);
        let written = PathPrinterBuilder::new()
            .color_specs(colors.clone())
            .separator(args.path_separator)
            .terminator(if args.null { b'\x00' } else { b'\n' })
            .build(&mut output)
            .write(path);
        result.matched = true;
        if let Err(error) = written {
            result.error = Some(format!("{}: {error}", path.display()));
        }
        result.output = output.into_inner();
        return result;
    }
    searcher.set_binary_detection(binary_detection(search, target.explicit));
    let terminator = args.null.then_some(b'\x00');
    // The printers' sinks share no trait: one macro serves them all.
    macro_rules! search_into {
        ($printer:ident) => {{
            let done = {
                let mut sink = $printer.sink_with_path(matcher, path);
                let done = if target.is_stdin() {
                    searcher.search_reader(matcher, std::io::stdin().lock(), &mut sink)
                } else {
                    searcher.search_path(matcher, &target.open, &mut sink)
                };
                result.matched = sink.has_match();
                if let Some(stats) = sink.stats() {
                    result.stats = stats.clone();
                }
                done
            };
            done
        }};
    }
    let done = if let Some(kind) = summary_kind(search) {
        let mut printer = SummaryBuilder::new()
            .color_specs(colors.clone())
            .exclude_zero(!args.include_zero)
            .kind(kind)
            .path(search.with_filename)
            .path_terminator(terminator)
            .separator_field(b":".to_vec())
            .separator_path(args.path_separator)
            .stats(args.mode == Mode::Json)
            .build(buffer(search));
        let done = search_into!(printer);
        result.output = printer.into_inner().into_inner();
        done
    } else if search.mode == Mode::Json {
        let mut printer = JSONBuilder::new()
            .pretty(false)
            .always_begin_end(false)
            .replacement(args.replace.clone())
            .build(Vec::new());
        let done = {
            let mut sink = printer.sink_with_path(matcher, path);
            let done = if target.is_stdin() {
                searcher.search_reader(matcher, std::io::stdin().lock(), &mut sink)
            } else {
                searcher.search_path(matcher, &target.open, &mut sink)
            };
            result.matched = sink.has_match();
            result.stats = sink.stats().clone();
            done
        };
        result.output = printer.into_inner();
        done
    } else {
        let mut printer = StandardBuilder::new()
            .byte_offset(args.byte_offset)
            .color_specs(colors.clone())
            .column(search.column)
            .heading(search.heading)
            .max_columns_preview(args.max_columns_preview)
            .max_columns(args.max_columns)
            .only_matching(args.only_matching)
            .path(search.with_filename)
            .path_terminator(terminator)
            .per_match_one_line(true)
            .per_match(args.vimgrep)
            .replacement(args.replace.clone())
            .separator_context(args.context_separator.clone())
            .separator_field_context(args.field_context_separator.clone())
            .separator_field_match(args.field_match_separator.clone())
            .separator_path(args.path_separator)
            .stats(false)
            .trim_ascii(args.trim)
            .build(buffer(search));
        let done = search_into!(printer);
        result.output = printer.into_inner().into_inner();
        done
    };
    if let Err(error) = done {
        result.error = Some(format!("{}: {error}", path.display()));
    }
    result
}
