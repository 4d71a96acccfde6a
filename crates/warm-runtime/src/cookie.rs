//! Barrier cookies: the empty files a daemon creates (and at once removes) in a project's root
//! to learn that its file watcher has seen every change made before a query, in the manner of
//! watchman's cookies. The search and the lsp daemons of one project both make them, so both
//! must recognise them as their own kind and never as a change to the project.

use std::path::Path;

/// The start of every cookie's name (hidden, so never indexed, searched or shown).
pub const COOKIE_PREFIX: &str = ".warm-cookie-";

/// A fresh cookie name for this process: `.warm-cookie-PID-N`.
pub fn cookie_name(n: u64) -> String {
    format!("{COOKIE_PREFIX}{}-{n}", std::process::id())
}

/// The cookie's name when `path` is a cookie directly in `root` (any daemon's).
pub fn as_cookie<'a>(root: &Path, path: &'a Path) -> Option<&'a str> {
    let name = path.file_name()?.to_str()?;
    (path.parent() == Some(root) && name.starts_with(COOKIE_PREFIX)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cookie_in_the_root_is_one() {
        let root = Path::new("/p");
        let name = cookie_name(7);
        assert_eq!(as_cookie(root, &root.join(&name)), Some(name.as_str()));
        assert_eq!(as_cookie(root, &root.join("sub").join(&name)), None);
        assert_eq!(as_cookie(root, &root.join("a.py")), None);
    }
}
