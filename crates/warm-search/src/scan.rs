//! Which files a search reads: ripgrep's walk of the paths given, by ripgrep's rules and the
//! search's flags, or, for candidates the index chose, the same filters applied to each
//! path. Searching and printing them is [`crate::output`]'s job.

use std::path::{Path, PathBuf};

use ignore::overrides::{Override, OverrideBuilder};
use ignore::types::{Types, TypesBuilder};

use crate::rg::args::{SortKind, TypeChange};
use crate::rg::Search;

/// A file to search: where to open it, the path to print, and whether it was named on the
/// command line (ripgrep then searches it whatever its type, and a NUL byte does not end it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The index of the path argument it was found under: output follows their order.
    pub root: usize,
    pub shown: PathBuf,
    pub open: PathBuf,
    pub explicit: bool,
}

impl Target {
    pub fn is_stdin(&self) -> bool {
        self.explicit && self.open == Path::new("-")
    }
}

/// A `-g`/`--iglob` glob or a `--type-add` definition that does not parse, in the `ignore`
/// crate's words (ripgrep's).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FilterError(#[from] ignore::Error);

/// The files a walk reached, and what it could not read (ripgrep prints those and exits 2).
#[derive(Debug, Default)]
pub struct Walked {
    pub targets: Vec<Target>,
    pub errors: Vec<String>,
}

/// The `-g` globs and the file types of a search, rooted at `root`.
///
/// # Errors
/// A bad glob or type definition, in the `ignore` crate's words.
pub fn filters(search: &Search, root: &Path) -> Result<Filters, FilterError> {
    Ok(Filters {
        overrides: overrides(search, root)?,
        types: types(search)?,
    })
}

fn overrides(search: &Search, root: &Path) -> Result<Override, FilterError> {
    let args = &search.args;
    let mut builder = OverrideBuilder::new(root);
    builder.case_insensitive(args.glob_case_insensitive)?;
    for glob in &args.globs {
        builder.add(glob)?;
    }
    builder.case_insensitive(true)?;
    for glob in &args.iglobs {
        builder.add(glob)?;
    }
    Ok(builder.build()?)
}

fn types(search: &Search) -> Result<Types, FilterError> {
    let mut builder = TypesBuilder::new();
    builder.add_defaults();
    for change in &search.args.types {
        match change {
            TypeChange::Select(name) => {
                builder.select(name);
            }
            TypeChange::Negate(name) => {
                builder.negate(name);
            }
            TypeChange::Clear(name) => {
                builder.clear(name);
            }
            TypeChange::Add(def) => builder.add_def(def)?,
        }
    }
    Ok(builder.build()?)
}

/// ripgrep's walk of the search's paths.
///
/// # Errors
/// A bad glob or type.
pub fn walk(search: &Search) -> Result<Walked, FilterError> {
    let mut walked = Walked::default();
    for (root, path) in search.paths.iter().enumerate() {
        if path == Path::new("-") {
            walked.targets.push(Target {
                root,
                shown: PathBuf::from("<stdin>"),
                open: PathBuf::from("-"),
                explicit: true,
            });
            continue;
        }
        walk_path(search, walker(search, path)?, root, &mut walked);
    }
    order(search, &mut walked.targets);
    Ok(walked)
}

/// The files ripgrep's walk of the search's path number `root` reaches below `dir` (a path
/// it reaches, as the walk would spell it): all of them, or with `depth` 1 those directly
/// in `dir`. `dir` itself is not matched against the filters; the caller knows the walk
/// enters it.
///
/// # Errors
/// A bad glob or type.
pub fn walk_below(
    search: &Search,
    root: usize,
    dir: &Path,
    depth: Option<usize>,
) -> Result<Walked, FilterError> {
    let mut builder = walker(search, dir)?;
    builder.max_depth(depth);
    let mut walked = Walked::default();
    walk_path(search, builder, root, &mut walked);
    walked.targets.retain(|t| !t.explicit);
    Ok(walked)
}

fn walk_path(search: &Search, builder: ignore::WalkBuilder, root: usize, walked: &mut Walked) {
    for entry in builder.build() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                walked.errors.push(error.to_string());
                continue;
            }
        };
        if let Some(error) = entry.error() {
            if !search.args.no_ignore_messages {
                walked.errors.push(error.to_string());
            }
        }
        // A link to a directory named on the command line is walked, not searched.
        let is_dir = entry
            .file_type()
            .is_some_and(|t| t.is_dir() || (t.is_symlink() && entry.path().is_dir()));
        let explicit = entry.depth() == 0 && !is_dir;
        if !explicit && !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let shown = match entry.path().strip_prefix("./") {
            Ok(inside) if search.implicit_path => inside.to_owned(),
            _ => entry.path().to_owned(),
        };
        walked.targets.push(Target {
            root,
            shown,
            open: entry.path().to_owned(),
            explicit,
        });
    }
}

/// Output order: the paths in the order given, each one's files by path (ripgrep's
/// `--sort path`, which is also what a single-threaded ripgrep prints), reversed by
/// `--sortr path`.
pub fn order(search: &Search, targets: &mut [Target]) {
    targets.sort();
    if matches!(search.args.sort, Some(sort) if sort.reverse && sort.kind == SortKind::Path) {
        targets.sort_by(|a, b| b.shown.cmp(&a.shown));
    }
}

/// Whether the walk reaches any file at all (stopping at the first): ripgrep reports a
/// search that reached none as an error, even when the index had no candidate to read.
///
/// # Errors
/// A bad glob or type.
pub fn any_file(search: &Search) -> Result<bool, FilterError> {
    for path in &search.paths {
        if walker(search, path)?
            .build()
            .flatten()
            .any(|entry| entry.file_type().is_some_and(|t| t.is_file()))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// ripgrep's walk of one path with the search's rules and filters.
fn walker(search: &Search, path: &Path) -> Result<ignore::WalkBuilder, FilterError> {
    let args = &search.args;
    let mut builder = ignore::WalkBuilder::new(path);
    if !args.no_ignore_files {
        for file in &args.ignore_files {
            if let Some(error) = builder.add_ignore(file) {
                // As ripgrep: a bad ignore file is reported and the search goes on.
                if !args.no_ignore_messages && !args.no_messages {
                    crate::output::message(&error.to_string());
                }
            }
        }
    }
    builder
        .max_depth(args.max_depth)
        .follow_links(args.follow)
        .max_filesize(args.max_filesize)
        .same_file_system(args.one_file_system)
        .overrides(overrides(search, Path::new("."))?)
        .types(types(search)?)
        .hidden(!args.hidden)
        .parents(!args.no_ignore_parent)
        .ignore(!args.no_ignore_dot)
        .git_global(!args.no_ignore_vcs && !args.no_ignore_global)
        .git_ignore(!args.no_ignore_vcs)
        .git_exclude(!args.no_ignore_vcs && !args.no_ignore_exclude)
        .require_git(!args.no_require_git)
        .ignore_case_insensitive(args.ignore_file_case_insensitive);
    if !args.no_ignore_dot {
        builder.add_custom_ignore_filename(".rgignore");
    }
    if let Ok(cwd) = std::env::current_dir() {
        builder.current_dir(cwd);
    }
    Ok(builder)
}

/// `-g` and `-t`, applied to candidates as ripgrep's walk would have applied them.
pub struct Filters {
    overrides: Override,
    types: Types,
}

impl Filters {
    /// Whether the walk would have reached `relative` (a file path relative to the search
    /// root): no excluded directory above it, and the file itself admitted.
    pub fn admits(&self, relative: &Path) -> bool {
        if !self.admits_parents(relative) {
            return false;
        }
        match self.overrides.matched(relative, false) {
            ignore::Match::Ignore(_) => false,
            ignore::Match::Whitelist(_) => true,
            ignore::Match::None => !self.types.matched(relative, false).is_ignore(),
        }
    }

    /// Whether the walk may reach `relative`, an entry that ripgrep's default rules leave
    /// out (ignored or hidden; see [`crate::excluded`]) in a directory they enter: a glob
    /// admits any entry it matches, a directory included, and a selected type a hidden file
    /// that no ignore rule excludes. A walk of its directory by the search's rules decides.
    pub fn may_admit_excluded(&self, relative: &Path, is_dir: bool) -> bool {
        if !self.admits_parents(relative) {
            return false;
        }
        match self.overrides.matched(relative, is_dir) {
            ignore::Match::Whitelist(_) => true,
            ignore::Match::Ignore(_) => false,
            ignore::Match::None => {
                !is_dir && is_hidden(relative) && self.types.matched(relative, false).is_whitelist()
            }
        }
    }

    /// No directory above `relative` excluded by a glob.
    fn admits_parents(&self, relative: &Path) -> bool {
        let mut dir = relative.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if self.overrides.matched(d, true).is_ignore() {
                return false;
            }
            dir = d.parent();
        }
        true
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
}
