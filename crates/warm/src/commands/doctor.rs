//! `warm doctor`: checks what warm depends on in the user's system (its runtime directory,
//! the daemons in it, the inotify limits, the language servers, ripgrep for the shim, the
//! systemd user units, the project's `.warm.toml`) and says what to do about each problem.
//! It changes nothing.

use std::path::Path;

use serde::Serialize;
use warm_lsp::probe::Probe;
use warm_runtime::config::Config;

use super::list::{scan, Found};
use crate::cli::GlobalArgs;
use crate::failure::Failure;

/// Free space below which the runtime directory (daemon logs, event logs) is reported.
const LOW_SPACE: u64 = 100 << 20;
/// The limits `sysctl` lines suggest when inotify runs short (what large editors ask for).
const SUGGESTED_INSTANCES: u64 = 512;
const SUGGESTED_WATCHES: u64 = 524_288;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Ok,
    /// Worth knowing; nothing is wrong (e.g. a language server that is not installed).
    Info,
    /// Works, but not as well as it could (e.g. close to the inotify limit).
    Warn,
    /// Something warm needs is broken.
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    verdict: Verdict,
    detail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn new(check: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            verdict,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs every check and prints them; exit code 1 when one failed.
pub fn run(global: &GlobalArgs) -> Result<u8, Failure> {
    let runtime_dir = warm_runtime::runtime_dir_location();
    let mut checks = vec![runtime_dir_check(&runtime_dir)];
    checks.extend(daemon_checks(&runtime_dir));
    checks.push(free_space_check(&runtime_dir));
    checks.push(inotify_check());
    checks.push(ripgrep_check());
    checks.extend(language_server_checks());
    checks.push(systemd_check());
    checks.push(project_check(global));
    if global.json {
        super::print_json(&checks);
    } else {
        let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for check in &checks {
            let verdict = format!("{:?}", check.verdict).to_lowercase();
            outln!("{verdict:<5} {:<width$}  {}", check.check, check.detail);
            if let Some(fix) = &check.fix {
                outln!("{:<indent$}fix: {fix}", "", indent = width + 8);
            }
        }
    }
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    Ok(u8::from(failed))
}

fn runtime_dir_check(dir: &Path) -> Check {
    const NAME: &str = "runtime directory";
    if std::fs::symlink_metadata(dir).is_err() {
        return Check::new(
            NAME,
            Verdict::Ok,
            format!("{} (created, 0700, on first use)", dir.display()),
        );
    }
    match warm_runtime::paths::check_private_dir(dir) {
        Ok(()) => Check::new(NAME, Verdict::Ok, format!("{} (private)", dir.display())),
        Err(error) => Check::new(NAME, Verdict::Fail, error.to_string()).fix(format!(
            "chmod 700 {} (or set WARM_RUNTIME_DIR)",
            dir.display()
        )),
    }
}

/// The daemons in the runtime directory: running ones of another version, and the files of
/// dead ones (which `warm list` removes; this command only reports them).
fn daemon_checks(runtime_dir: &Path) -> Vec<Check> {
    let Ok(scan) = scan(runtime_dir, None) else {
        return vec![Check::new(
            "daemons",
            Verdict::Info,
            "cannot read the runtime directory",
        )];
    };
    let other_versions: Vec<String> = scan
        .daemons
        .iter()
        .filter_map(|(_, found)| match found {
            Found::Running(status) if status.version != crate::context::version() => {
                Some(format!("{} ({})", status.service, status.version))
            }
            _ => None,
        })
        .collect();
    let mut running = format!("{} running", scan.daemons.len());
    if !scan.activatable.is_empty() {
        running.push_str(&format!(
            ", {} started by a service manager on the next call",
            scan.activatable.len()
        ));
    }
    let mut checks = vec![Check::new("daemons", Verdict::Ok, running)];
    if !scan.dead.is_empty() {
        checks.push(
            Check::new(
                "stale daemon files",
                Verdict::Info,
                format!(
                    "{} directories of daemons no longer running",
                    scan.dead.len()
                ),
            )
            .fix("warm list (removes them)"),
        );
    }
    if !other_versions.is_empty() {
        checks.push(
            Check::new(
                "daemon versions",
                Verdict::Info,
                format!(
                    "running from another warm version: {}; each is replaced when next used",
                    other_versions.join(", ")
                ),
            )
            .fix("warm stop --all (to replace them now)"),
        );
    }
    checks
}

fn free_space_check(runtime_dir: &Path) -> Check {
    const NAME: &str = "free space";
    // The nearest directory that exists: the runtime directory may not yet.
    let Some(existing) = runtime_dir.ancestors().find(|d| d.exists()) else {
        return Check::new(NAME, Verdict::Info, "cannot tell");
    };
    match rustix::fs::statvfs(existing) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let detail = format!("{} MiB free under {}", free >> 20, existing.display());
            if free < LOW_SPACE {
                Check::new(NAME, Verdict::Warn, detail)
                    .fix("free some space: daemon logs and event logs are written there")
            } else {
                Check::new(NAME, Verdict::Ok, detail)
            }
        }
        Err(error) => Check::new(NAME, Verdict::Info, format!("cannot tell: {error}")),
    }
}

fn inotify_check() -> Check {
    let usage = warm_search::budget::Usage::now();
    let detail = format!(
        "{}/{} instances (warm leaves {} to other programs), {}/{} watches",
        usage.instances,
        usage.max_instances,
        warm_search::budget::reserve(usage.max_instances),
        usage.watches,
        usage.max_watches
    );
    let raise = format!(
        "sudo sysctl fs.inotify.max_user_instances={SUGGESTED_INSTANCES} fs.inotify.max_user_watches={SUGGESTED_WATCHES} \
         (to keep it: the same lines in /etc/sysctl.d/90-inotify.conf)"
    );
    let watches_short = usage.watches.saturating_mul(5) > usage.max_watches.saturating_mul(4);
    if !usage.has_room() || watches_short {
        Check::new(
            "inotify",
            Verdict::Warn,
            format!("{detail}: close to the limit; new search daemons scan instead of indexing"),
        )
        .fix(raise)
    } else {
        Check::new("inotify", Verdict::Ok, detail)
    }
}

fn ripgrep_check() -> Check {
    const NAME: &str = "ripgrep (for the shim)";
    match super::search::delegate::real_ripgrep() {
        Some(rg) => Check::new(NAME, Verdict::Ok, rg.display().to_string()),
        None => Check::new(
            NAME,
            Verdict::Info,
            "no rg found: `rg` through the shim answers what warm implements and fails on the rest",
        )
        .fix("install ripgrep (apt install ripgrep, or cargo install ripgrep), or set WARM_RG"),
    }
}

fn language_server_checks() -> Vec<Check> {
    warm_lsp::servers::BUILTIN_SERVERS
        .iter()
        .map(|server| {
            let name = format!("lsp {}", server.id);
            let serves = server.languages.join(", ");
            match server.probe() {
                Probe::Works(path) => {
                    Check::new(name, Verdict::Ok, format!("{} ({serves})", path.display()))
                }
                Probe::Missing => {
                    Check::new(name, Verdict::Info, format!("not installed ({serves})"))
                        .fix(server.install)
                }
                Probe::Broken { output, .. } => Check::new(
                    name,
                    Verdict::Warn,
                    format!("installed but does not run: {output}"),
                )
                .fix(server.install),
            }
        })
        .collect()
}

fn systemd_check() -> Check {
    const NAME: &str = "systemd units";
    let Ok(unit_dir) = super::systemd::default_unit_dir() else {
        return Check::new(NAME, Verdict::Info, "no HOME: no user units to look at");
    };
    let units = super::systemd::installed(&unit_dir);
    let gone: Vec<&str> = units
        .iter()
        .filter(|(_, warm)| !warm.exists())
        .map(|(name, _)| name.as_str())
        .collect();
    if !gone.is_empty() {
        return Check::new(
            NAME,
            Verdict::Warn,
            format!("{} run a warm binary that is gone", gone.join(", ")),
        )
        .fix("run `warm systemd install` again for each (same -s and --root), or `warm systemd uninstall`");
    }
    match units.len() {
        0 => Check::new(
            NAME,
            Verdict::Info,
            "none (daemons start on first use, by their clients)",
        )
        .fix("to have systemd start them instead: warm systemd install -s SERVICE"),
        _ => Check::new(
            NAME,
            Verdict::Ok,
            units
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

fn project_check(global: &GlobalArgs) -> Check {
    const NAME: &str = "project";
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(error) => {
            return Check::new(
                NAME,
                Verdict::Info,
                format!("no current directory: {error}"),
            )
        }
    };
    let root = match &global.root {
        Some(root) => cwd.join(root),
        None => warm_runtime::find_root(&cwd, true),
    };
    match Config::load_from_root(&root) {
        Ok(config) => match &config.path {
            None => Check::new(
                NAME,
                Verdict::Ok,
                format!("{} (no .warm.toml)", root.display()),
            ),
            Some(path) if warm_client::trust::is_file_trusted(path) => Check::new(
                NAME,
                Verdict::Ok,
                format!("{} (.warm.toml valid, trusted)", root.display()),
            ),
            Some(path) => Check::new(
                NAME,
                Verdict::Info,
                format!(
                    "{} (.warm.toml valid, not trusted: its services do not run)",
                    root.display()
                ),
            )
            .fix(format!(
                "read it, then: warm trust {}",
                path.parent().unwrap_or(path).display()
            )),
        },
        Err(error) => Check::new(NAME, Verdict::Fail, error.to_string())
            .fix("fix the key it names (docs/configuration.md lists them)"),
    }
}
