//! From regular expressions to trigram queries: which trigrams a file must contain to possibly
//! match (in the manner of Russ Cox's "Regular Expression Matching with a Trigram Index").
//!
//! The pattern is parsed case-insensitively whatever the search's case mode, because the index
//! folds case: the query then selects a superset of the files that can match, and the real
//! matcher verifies them. Every step errs on the side of selecting more, never fewer: a part of
//! a pattern that cannot be summarised becomes [`Query::All`].

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::trigram;

/// Files to consider: those containing trigrams, combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Every file (no usable trigram).
    All,
    Trigram(u32),
    And(Vec<Query>),
    Or(Vec<Query>),
}

impl Query {
    /// The query for a search with these patterns (any of them may match).
    pub fn for_patterns(patterns: &[String], fixed_strings: bool) -> Query {
        let queries = patterns
            .iter()
            .map(|pattern| {
                let pattern = if fixed_strings {
                    regex_syntax::escape(pattern)
                } else {
                    pattern.clone()
                };
                regex_syntax::ParserBuilder::new()
                    .case_insensitive(true)
                    .utf8(false)
                    .build()
                    .parse(&pattern)
                    .map_or(Query::All, |hir| analyze(&hir).into_query())
            })
            .collect();
        or(queries)
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Query::All)
    }
}

/// Exact sets larger than this are summarised as a query instead.
const MAX_EXACT: usize = 64;
/// Classes larger than this are not expanded into their characters.
const MAX_CLASS: usize = 16;

/// What is known of the strings a part of a pattern matches.
struct Info {
    /// The part matches exactly one of these (folded) strings.
    exact: Option<Vec<Vec<u8>>>,
    /// Otherwise, what a file must contain for it to match.
    query: Query,
}

impl Info {
    fn exact(strings: Vec<Vec<u8>>) -> Info {
        Info {
            exact: Some(strings),
            query: Query::All,
        }
    }

    fn query(query: Query) -> Info {
        Info { exact: None, query }
    }

    fn into_query(self) -> Query {
        match self.exact {
            Some(strings) => exact_query(&strings),
            None => self.query,
        }
    }
}

fn analyze(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::exact(vec![Vec::new()]),
        HirKind::Literal(literal) => Info::exact(vec![fold(&literal.0)]),
        HirKind::Class(class) => class_strings(class).map_or(Info::query(Query::All), Info::exact),
        HirKind::Capture(capture) => analyze(&capture.sub),
        HirKind::Repetition(repetition) => match (repetition.min, repetition.max) {
            (0, _) => Info::query(Query::All),
            (1, Some(1)) => analyze(&repetition.sub),
            _ => Info::query(analyze(&repetition.sub).into_query()),
        },
        HirKind::Concat(parts) => concat(parts),
        HirKind::Alternation(branches) => {
            let infos: Vec<Info> = branches.iter().map(analyze).collect();
            if infos.iter().all(|i| i.exact.is_some()) {
                let mut union: Vec<Vec<u8>> = infos
                    .into_iter()
                    .flat_map(|i| i.exact.unwrap_or_default())
                    .collect();
                union.sort();
                union.dedup();
                if union.len() <= MAX_EXACT {
                    return Info::exact(union);
                }
                return Info::query(exact_query(&union));
            }
            Info::query(or(infos.into_iter().map(Info::into_query).collect()))
        }
    }
}

/// A concatenation: adjacent exact parts are joined (so trigrams spanning them count), the
/// rest is ANDed.
fn concat(parts: &[Hir]) -> Info {
    let mut current: Option<Vec<Vec<u8>>> = Some(vec![Vec::new()]);
    let mut required = Vec::new();
    let mut all_exact = true;
    for part in parts {
        let info = analyze(part);
        match info.exact {
            Some(strings) => {
                let joined = cross(current.take().unwrap_or_else(|| vec![Vec::new()]), &strings);
                if joined.len() > MAX_EXACT {
                    required.push(exact_query(&joined));
                    all_exact = false;
                    current = Some(vec![Vec::new()]);
                } else {
                    current = Some(joined);
                }
            }
            None => {
                all_exact = false;
                if let Some(strings) = current.take() {
                    required.push(exact_query(&strings));
                }
                required.push(info.query);
                current = Some(vec![Vec::new()]);
            }
        }
    }
    match current {
        Some(strings) if all_exact => Info::exact(strings),
        Some(strings) => {
            required.push(exact_query(&strings));
            Info::query(and(required))
        }
        None => Info::query(and(required)),
    }
}

fn cross(prefixes: Vec<Vec<u8>>, suffixes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(prefixes.len() * suffixes.len());
    for prefix in &prefixes {
        for suffix in suffixes {
            let mut joined = prefix.clone();
            joined.extend_from_slice(suffix);
            out.push(joined);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The characters (or bytes) of a small class, each folded and encoded.
fn class_strings(class: &Class) -> Option<Vec<Vec<u8>>> {
    let mut strings = Vec::new();
    match class {
        Class::Unicode(class) => {
            let count: usize = class
                .ranges()
                .iter()
                .map(|r| (r.end() as usize) - (r.start() as usize) + 1)
                .sum();
            if count > MAX_CLASS {
                return None;
            }
            for range in class.ranges() {
                for c in range.start()..=range.end() {
                    let mut buf = [0; 4];
                    strings.push(fold(c.encode_utf8(&mut buf).as_bytes()));
                }
            }
        }
        Class::Bytes(class) => {
            let count: usize = class
                .ranges()
                .iter()
                .map(|r| usize::from(r.end()) - usize::from(r.start()) + 1)
                .sum();
            if count > MAX_CLASS {
                return None;
            }
            for range in class.ranges() {
                for b in range.start()..=range.end() {
                    strings.push(vec![b.to_ascii_lowercase()]);
                }
            }
        }
    }
    strings.sort();
    strings.dedup();
    Some(strings)
}

fn fold(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

/// A file matching one of `strings` contains all trigrams of that string.
fn exact_query(strings: &[Vec<u8>]) -> Query {
    if strings.iter().any(|s| s.len() < 3) {
        return Query::All;
    }
    or(strings
        .iter()
        .map(|s| {
            and(trigram::of_literal(s)
                .into_iter()
                .map(Query::Trigram)
                .collect())
        })
        .collect())
}

fn and(parts: Vec<Query>) -> Query {
    let mut flat = Vec::new();
    for part in parts {
        match part {
            Query::All => {}
            Query::And(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    flat.dedup();
    match flat.len() {
        0 => Query::All,
        1 => flat.pop().unwrap_or(Query::All),
        _ => Query::And(flat),
    }
}

fn or(parts: Vec<Query>) -> Query {
    let mut flat = Vec::new();
    for part in parts {
        match part {
            Query::All => return Query::All,
            Query::Or(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => Query::All,
        1 => flat.pop().unwrap_or(Query::All),
        _ => Query::Or(flat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigram::pack;

    fn query(pattern: &str) -> Query {
        Query::for_patterns(&[pattern.to_owned()], false)
    }

    fn trigrams(text: &str) -> Query {
        and(trigram::of_literal(text.as_bytes())
            .into_iter()
            .map(Query::Trigram)
            .collect())
    }

    #[test]
    fn literals_need_all_their_trigrams_case_folded() {
        assert_eq!(query("Hello"), trigrams("hello"));
        assert_eq!(
            query("abcd"),
            Query::And(vec![
                Query::Trigram(pack(b'a', b'b', b'c')),
                Query::Trigram(pack(b'b', b'c', b'd'))
            ])
        );
        assert_eq!(
            Query::for_patterns(&["a.c(".into()], true),
            trigrams("a.c(")
        );
    }

    #[test]
    fn patterns_without_three_literal_bytes_select_everything() {
        for pattern in ["ab", "a.c", r"\w+", "x*", "[a-z]+ing?", "(?s).*"] {
            assert!(query(pattern).is_all(), "{pattern}: {:?}", query(pattern));
        }
    }

    #[test]
    fn regexes_keep_their_required_literals() {
        assert_eq!(query(r"fn\s+read_\w+"), trigrams("read_"));
        assert_eq!(
            query("foo|barbaz"),
            or(vec![trigrams("barbaz"), trigrams("foo")])
        );
        assert_eq!(query("(?:abc)+"), trigrams("abc"));
        // A small class expands: `gr[ae]y` needs gray or grey.
        assert_eq!(
            query("gr[ae]y"),
            or(vec![trigrams("gray"), trigrams("grey")])
        );
    }

    #[test]
    fn unicode_case_folding_keeps_non_ascii_forms() {
        // (?i)k also matches the Kelvin sign (U+212A): files with it must stay candidates.
        let q = query("kelvin");
        let kelvin = "\u{212A}elvin".as_bytes().to_ascii_lowercase();
        let with_sign = trigrams(std::str::from_utf8(&kelvin).expect("utf8"));
        match q {
            Query::Or(branches) => assert!(branches.contains(&with_sign), "{branches:?}"),
            other => panic!("expected an OR over the forms of k: {other:?}"),
        }
    }
}
