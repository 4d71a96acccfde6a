//! Every flag of ripgrep 15.2.0 (the release whose `grep-*` and `ignore` crates warm uses), and
//! how `warm search` answers it: from the index, by scanning the tree in process, or by handing
//! the whole command to the real ripgrep.
//!
//! The table is the command line's contract: the parser accepts exactly these names (rg's
//! negations and aliases included), and `docs/search.md`'s compatibility table is checked
//! against it.

/// Whether a flag takes a value (`-A 3`, `--glob=x`) or is a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Switch,
    Value,
}

/// How warm answers a search that uses a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Answered from the index when every other flag allows it.
    Index,
    /// Answered in process by walking the tree: the flag changes which files are searched or
    /// how they are read in a way the index does not record.
    Scan,
    /// Handed to the real ripgrep on `PATH` (warm does not implement it).
    Delegate,
}

impl Support {
    pub fn word(self) -> &'static str {
        match self {
            Support::Index => "index",
            Support::Scan => "scan",
            Support::Delegate => "rg",
        }
    }
}

/// One flag of ripgrep's command line.
#[derive(Debug)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub arity: Arity,
    /// The `--no-...` (or `--...`) form that undoes it.
    pub negated: Option<&'static str>,
    pub aliases: &'static [&'static str],
    pub support: Support,
}

const fn flag(
    long: &'static str,
    short: Option<char>,
    arity: Arity,
    negated: Option<&'static str>,
    support: Support,
) -> Flag {
    Flag {
        long,
        short,
        arity,
        negated,
        aliases: &[],
        support,
    }
}

use Arity::{Switch, Value};
use Support::{Delegate, Index, Scan};

/// ripgrep 15.2.0's flags, in the order of its `--help`.
pub static FLAGS: &[Flag] = &[
    flag("after-context", Some('A'), Value, None, Index),
    flag(
        "auto-hybrid-regex",
        None,
        Switch,
        Some("no-auto-hybrid-regex"),
        Delegate,
    ),
    flag("before-context", Some('B'), Value, None, Index),
    flag("binary", None, Switch, Some("no-binary"), Scan),
    flag(
        "block-buffered",
        None,
        Switch,
        Some("no-block-buffered"),
        Index,
    ),
    flag(
        "byte-offset",
        Some('b'),
        Switch,
        Some("no-byte-offset"),
        Index,
    ),
    flag("case-sensitive", Some('s'), Switch, None, Index),
    flag("color", None, Value, None, Index),
    flag("colors", None, Value, None, Index),
    flag("column", None, Switch, Some("no-column"), Index),
    flag("context", Some('C'), Value, None, Index),
    flag(
        "context-separator",
        None,
        Value,
        Some("no-context-separator"),
        Index,
    ),
    flag("count", Some('c'), Switch, None, Index),
    flag("count-matches", None, Switch, None, Index),
    flag("crlf", None, Switch, Some("no-crlf"), Index),
    flag("debug", None, Switch, None, Index),
    flag("dfa-size-limit", None, Value, None, Index),
    flag("encoding", Some('E'), Value, Some("no-encoding"), Scan),
    flag("engine", None, Value, None, Index),
    flag("field-context-separator", None, Value, None, Index),
    flag("field-match-separator", None, Value, None, Index),
    flag("file", Some('f'), Value, None, Index),
    flag("files", None, Switch, None, Index),
    flag("files-with-matches", Some('l'), Switch, None, Index),
    flag("files-without-match", None, Switch, None, Scan),
    flag(
        "fixed-strings",
        Some('F'),
        Switch,
        Some("no-fixed-strings"),
        Index,
    ),
    flag("follow", Some('L'), Switch, Some("no-follow"), Scan),
    flag("generate", None, Value, None, Delegate),
    flag("glob", Some('g'), Value, None, Index),
    flag(
        "glob-case-insensitive",
        None,
        Switch,
        Some("no-glob-case-insensitive"),
        Index,
    ),
    flag("heading", None, Switch, Some("no-heading"), Index),
    flag("help", Some('h'), Switch, None, Delegate),
    flag("hidden", Some('.'), Switch, Some("no-hidden"), Scan),
    flag("hostname-bin", None, Value, None, Delegate),
    flag("hyperlink-format", None, Value, None, Delegate),
    flag("iglob", None, Value, None, Index),
    flag("ignore-case", Some('i'), Switch, None, Index),
    flag("ignore-file", None, Value, None, Scan),
    flag(
        "ignore-file-case-insensitive",
        None,
        Switch,
        Some("no-ignore-file-case-insensitive"),
        Scan,
    ),
    flag("include-zero", None, Switch, Some("no-include-zero"), Index),
    flag(
        "invert-match",
        Some('v'),
        Switch,
        Some("no-invert-match"),
        Scan,
    ),
    flag("json", None, Switch, Some("no-json"), Index),
    flag(
        "line-buffered",
        None,
        Switch,
        Some("no-line-buffered"),
        Index,
    ),
    flag("line-number", Some('n'), Switch, None, Index),
    flag("no-line-number", Some('N'), Switch, None, Index),
    flag("line-regexp", Some('x'), Switch, None, Index),
    flag("max-columns", Some('M'), Value, None, Index),
    flag(
        "max-columns-preview",
        None,
        Switch,
        Some("no-max-columns-preview"),
        Index,
    ),
    flag("max-count", Some('m'), Value, None, Index),
    Flag {
        aliases: &["maxdepth"],
        ..flag("max-depth", Some('d'), Value, None, Scan)
    },
    flag("max-filesize", None, Value, None, Scan),
    flag("mmap", None, Switch, Some("no-mmap"), Index),
    flag("multiline", Some('U'), Switch, Some("no-multiline"), Scan),
    flag(
        "multiline-dotall",
        None,
        Switch,
        Some("no-multiline-dotall"),
        Scan,
    ),
    flag("no-config", None, Switch, None, Index),
    flag("no-ignore", None, Switch, Some("ignore"), Scan),
    flag("no-ignore-dot", None, Switch, Some("ignore-dot"), Scan),
    flag(
        "no-ignore-exclude",
        None,
        Switch,
        Some("ignore-exclude"),
        Scan,
    ),
    flag("no-ignore-files", None, Switch, Some("ignore-files"), Scan),
    flag(
        "no-ignore-global",
        None,
        Switch,
        Some("ignore-global"),
        Scan,
    ),
    flag(
        "no-ignore-messages",
        None,
        Switch,
        Some("ignore-messages"),
        Index,
    ),
    flag(
        "no-ignore-parent",
        None,
        Switch,
        Some("ignore-parent"),
        Scan,
    ),
    flag("no-ignore-vcs", None, Switch, Some("ignore-vcs"), Scan),
    flag("no-messages", None, Switch, Some("messages"), Index),
    flag(
        "no-pcre2-unicode",
        None,
        Switch,
        Some("pcre2-unicode"),
        Index,
    ),
    flag("no-require-git", None, Switch, Some("require-git"), Scan),
    flag("no-unicode", None, Switch, Some("unicode"), Index),
    flag("null", Some('0'), Switch, None, Index),
    flag("null-data", None, Switch, None, Scan),
    flag(
        "one-file-system",
        None,
        Switch,
        Some("no-one-file-system"),
        Scan,
    ),
    flag("only-matching", Some('o'), Switch, None, Index),
    flag("path-separator", None, Value, None, Index),
    Flag {
        aliases: &["passthrough"],
        ..flag("passthru", None, Switch, None, Index)
    },
    flag("pcre2", Some('P'), Switch, Some("no-pcre2"), Delegate),
    flag("pcre2-version", None, Switch, None, Delegate),
    flag("pre", None, Value, Some("no-pre"), Delegate),
    flag("pre-glob", None, Value, None, Delegate),
    flag("pretty", Some('p'), Switch, None, Index),
    flag("quiet", Some('q'), Switch, None, Index),
    flag("regex-size-limit", None, Value, None, Index),
    flag("regexp", Some('e'), Value, None, Index),
    flag("replace", Some('r'), Value, None, Index),
    flag(
        "search-zip",
        Some('z'),
        Switch,
        Some("no-search-zip"),
        Delegate,
    ),
    flag("smart-case", Some('S'), Switch, None, Index),
    flag("sort-files", None, Switch, Some("no-sort-files"), Index),
    flag("sort", None, Value, None, Index),
    flag("sortr", None, Value, None, Index),
    flag("stats", None, Switch, Some("no-stats"), Delegate),
    flag("stop-on-nonmatch", None, Switch, None, Index),
    flag("text", Some('a'), Switch, Some("no-text"), Scan),
    flag("threads", Some('j'), Value, None, Index),
    flag("trace", None, Switch, None, Index),
    flag("trim", None, Switch, Some("no-trim"), Index),
    flag("type", Some('t'), Value, None, Index),
    flag("type-add", None, Value, None, Index),
    flag("type-clear", None, Value, None, Index),
    flag("type-not", Some('T'), Value, None, Index),
    flag("type-list", None, Switch, None, Delegate),
    flag("unrestricted", Some('u'), Switch, None, Scan),
    flag("version", Some('V'), Switch, None, Delegate),
    flag("vimgrep", None, Switch, None, Index),
    flag("with-filename", Some('H'), Switch, None, Index),
    flag("no-filename", Some('I'), Switch, None, Index),
    flag("word-regexp", Some('w'), Switch, None, Index),
];

/// The flag a long name (without `--`) names, and whether it is the negated form.
pub fn by_long(name: &str) -> Option<(&'static Flag, bool)> {
    FLAGS.iter().find_map(|flag| {
        if flag.long == name || flag.aliases.contains(&name) {
            Some((flag, false))
        } else if flag.negated == Some(name) {
            Some((flag, true))
        } else {
            None
        }
    })
}

/// The flag a short name names.
pub fn by_short(name: char) -> Option<&'static Flag> {
    FLAGS.iter().find(|flag| flag.short == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolve_to_their_flag() {
        let mut names = std::collections::HashSet::new();
        let mut shorts = std::collections::HashSet::new();
        for flag in FLAGS {
            for name in std::iter::once(flag.long)
                .chain(flag.negated)
                .chain(flag.aliases.iter().copied())
            {
                assert!(names.insert(name), "--{name} twice");
                assert!(std::ptr::eq(
                    by_long(name).map(|(f, _)| f).expect("resolves"),
                    flag
                ));
            }
            if let Some(short) = flag.short {
                assert!(shorts.insert(short), "-{short} twice");
                assert!(std::ptr::eq(by_short(short).expect("resolves"), flag));
            }
        }
        assert_eq!(FLAGS.len(), 104, "ripgrep 15.2.0 has 104 flags");
        assert_eq!(
            by_long("no-heading").map(|(f, n)| (f.long, n)),
            Some(("heading", true))
        );
        assert_eq!(
            by_long("ignore").map(|(f, n)| (f.long, n)),
            Some(("no-ignore", true))
        );
    }

    /// docs/search.md's table of every flag says how each is answered, as this table does.
    #[test]
    fn the_docs_table_matches_this_table() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/search.md"))
                .expect("docs/search.md");
        let mut rows = 0;
        for flag in FLAGS {
            let start = format!("| `--{}", flag.long);
            let row = docs
                .lines()
                .find(|line| {
                    line.strip_prefix(&start)
                        .is_some_and(|rest| rest.starts_with('`'))
                })
                .unwrap_or_else(|| panic!("docs/search.md has no row for --{}", flag.long));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(
                cells.get(3).copied(),
                Some(flag.support.word()),
                "--{}: {row}",
                flag.long
            );
            let short = flag.short.map(|c| format!("`-{c}`")).unwrap_or_default();
            assert_eq!(
                cells.get(2).copied(),
                Some(short.as_str()),
                "--{}: {row}",
                flag.long
            );
            rows += 1;
        }
        assert_eq!(rows, 104);
    }
}
