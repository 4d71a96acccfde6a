//! The `search/*` methods, typed on both sides: the daemon's service builds these values and
//! the CLI reads them; the JSON between them stays as `docs/search.md` describes it.
//!
//! - [`CANDIDATES`] takes [`CandidatesParams`] and answers [`Candidates`].
//! - [`STATUS`] answers the index's numbers (an open-ended JSON object, shown as it is).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const CANDIDATES: &str = "search/candidates";
pub const STATUS: &str = "search/status";

/// A path on the wire: a string when it is UTF-8, else the array of its bytes, so that no
/// name is changed on the way (see [`crate::wire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePath(pub PathBuf);

impl Serialize for WirePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::wire::to_json(&self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WirePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WirePath, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        crate::wire::from_json(&value)
            .map(WirePath)
            .ok_or_else(|| serde::de::Error::custom("a path is a string or an array of bytes"))
    }
}

impl From<&Path> for WirePath {
    fn from(path: &Path) -> WirePath {
        WirePath(path.to_owned())
    }
}

/// `search/candidates`: which files may match these patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidatesParams {
    pub patterns: Vec<String>,
    #[serde(default)]
    pub fixed_strings: bool,
    /// Directories (relative to the root) the search walks: those the index does not hold
    /// (ignored or hidden, which ripgrep still walks when they are named) are answered in
    /// [`Candidates::Unindexed`], and the client scans.
    #[serde(default)]
    pub scopes: Vec<WirePath>,
    /// Also the ignored and hidden entries of the directories the index holds, under the
    /// scopes ([`Candidates::Files`]' `excluded`): for a search whose `-g` or `-t` may admit
    /// some of them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excluded: bool,
}

/// An entry ripgrep's default walk leaves out (ignored or hidden), in a directory it enters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedEntry {
    pub path: WirePath,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

/// The answer to `search/candidates`. Every answer but `Files` tells the client to scan,
/// and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Candidates {
    /// The files (relative to `root`, in path order) that may match, for the file system as
    /// it was when the request arrived; `all` when the patterns have no usable trigram.
    Files {
        root: String,
        files: Vec<WirePath>,
        all: bool,
        /// When asked for: the excluded entries under the scopes, in path order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        excluded: Vec<ExcludedEntry>,
    },
    /// The first build is running: a scan answers at ripgrep's speed meanwhile.
    Building { building: BuildProgress },
    /// These scopes are not in the index (ignored or hidden directories named on the
    /// command line).
    Unindexed { unindexed: Vec<WirePath> },
    /// The index cannot be trusted for this query (no watcher, a lagging one, a root that is
    /// gone, a file system inotify does not see): why.
    Unwatched { unwatched: String },
}

/// How far the first build has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildProgress {
    pub files: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use serde_json::json;

    use super::*;

    #[test]
    fn answers_keep_their_wire_shape() {
        let odd = PathBuf::from(OsString::from_vec(b"x\xff".to_vec()));
        let cases = [
            (
                Candidates::Files {
                    root: "/p".into(),
                    files: vec![WirePath("a.rs".into()), WirePath(odd)],
                    all: false,
                    excluded: Vec::new(),
                },
                json!({"root": "/p", "files": ["a.rs", [120, 255]], "all": false}),
            ),
            (
                Candidates::Files {
                    root: "/p".into(),
                    files: vec![],
                    all: true,
                    excluded: vec![
                        ExcludedEntry {
                            path: WirePath(".env".into()),
                            dir: false,
                        },
                        ExcludedEntry {
                            path: WirePath("target".into()),
                            dir: true,
                        },
                    ],
                },
                json!({"root": "/p", "files": [], "all": true,
                       "excluded": [{"path": ".env"}, {"path": "target", "dir": true}]}),
            ),
            (
                Candidates::Building {
                    building: BuildProgress { files: 3, bytes: 9 },
                },
                json!({"building": {"files": 3, "bytes": 9}}),
            ),
            (
                Candidates::Unindexed {
                    unindexed: vec![WirePath("target".into())],
                },
                json!({"unindexed": ["target"]}),
            ),
            (
                Candidates::Unwatched {
                    unwatched: "why".into(),
                },
                json!({"unwatched": "why"}),
            ),
        ];
        for (answer, wire) in cases {
            assert_eq!(serde_json::to_value(&answer).expect("to json"), wire);
            assert_eq!(
                serde_json::from_value::<Candidates>(wire).expect("from json"),
                answer
            );
        }
        assert!(serde_json::from_value::<Candidates>(json!({"other": 1})).is_err());
    }
}
