//! Handing a search to the real ripgrep: for the flags warm does not implement, and for a flag
//! it does not know (a newer ripgrep may). The real ripgrep is `WARM_RG`, else the first `rg`
//! on `PATH` that is not warm itself (the shim is a link to warm named `rg`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use warm_search::output::message;
use warm_search::rg;

use super::targets::append_log;
use super::ERROR;

/// Hands the command line to the real ripgrep (it replaces this process), or, without one,
/// exits 2 saying what to install.
pub fn delegate(args: &[OsString], why: &str, debug: bool) -> u8 {
    let log = |line: &str| {
        if let Some(path) = std::env::var_os("WARM_SEARCH_LOG") {
            append_log(Path::new(&path), line);
        }
    };
    match real_ripgrep() {
        Some(rg) => {
            if debug {
                message(&format!("{why}: running {}", rg.display()));
            }
            log(&format!("rg\t{why}\n"));
            use std::os::unix::process::CommandExt;
            let error = std::process::Command::new(&rg).args(args).exec();
            message(&format!("cannot run {}: {error}", rg.display()));
            ERROR
        }
        None => {
            message(&format!(
                "{why}, and no ripgrep is installed: install ripgrep {} (cargo install ripgrep --version {}) to answer it",
                rg::RIPGREP_VERSION,
                rg::RIPGREP_VERSION
            ));
            ERROR
        }
    }
}

/// A command line warm's parser refuses: the real ripgrep, when there is one, answers it,
/// in its own words if it refuses it too (a flag of a newer release, or a value warm's parser
/// reads differently, then still gets an answer); else warm's words, as ripgrep's.
pub fn delegate_error(args: &[OsString], error: &str) -> u8 {
    if real_ripgrep().is_some() {
        return delegate(
            args,
            &format!("warm cannot parse this command line ({error})"),
            false,
        );
    }
    message(error);
    ERROR
}

/// The ripgrep to hand a search to: `WARM_RG`, else the first `rg` on `PATH` that is not
/// this program (the shim is a link to warm named `rg`).
pub fn real_ripgrep() -> Option<PathBuf> {
    if let Some(rg) = std::env::var_os("WARM_RG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(rg));
    }
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("rg"))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            let executable = candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            executable && candidate.canonicalize().ok() != me
        })
}
