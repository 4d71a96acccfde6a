//! `warm list`: every daemon of this user; directories of dead daemons are removed.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warm_client::Connection;
use warm_protocol::methods::{self, Status};
use warm_protocol::Framing;
use warm_runtime::{DaemonPaths, LockFile, Meta};

use super::{human_secs, print_json};
use crate::failure::{CommandResult, Failure};

/// A daemon directory found in the runtime directory.
pub enum Found {
    /// Holds its lock and answers.
    Running(Box<Status>),
    /// Holds its lock but does not answer (starting or draining).
    Unresponsive(Option<Box<Meta>>),
}

/// A running daemon of the current project (see `project_daemons`).
pub struct ProjectDaemon {
    pub paths: DaemonPaths,
    pub status: Status,
}

/// What is in the runtime directory.
pub struct Scan {
    /// The daemons that hold their lock.
    pub daemons: Vec<(DaemonPaths, Found)>,
    /// Directories of daemons that no longer run.
    pub dead: Vec<DaemonPaths>,
    /// Directories whose daemon is not running but whose socket a service manager listens
    /// on (systemd socket activation): it starts the daemon on the next connection.
    pub activatable: Vec<DaemonPaths>,
}

/// Looks at every daemon directory (only `root`'s daemons' with `Some(root)`, canonical),
/// asking each daemon that holds its lock for its status. Changes nothing.
pub fn scan(runtime_dir: &Path, root: Option<&Path>) -> Result<Scan, Failure> {
    let entries = match std::fs::read_dir(runtime_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Scan {
                daemons: Vec::new(),
                dead: Vec::new(),
                activatable: Vec::new(),
            })
        }
        Err(e) => {
            return Err(Failure::Other(format!(
                "cannot read {}: {e}",
                runtime_dir.display()
            )))
        }
    };
    let suffix = root.map(|root| format!("-{}", warm_runtime::paths::root_tag(root)));
    let mut scan = Scan {
        daemons: Vec::new(),
        dead: Vec::new(),
        activatable: Vec::new(),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_daemon_dir = entry.file_type().is_ok_and(|t| t.is_dir())
            && warm_runtime::paths::is_daemon_dir_name(&name)
            && suffix
                .as_ref()
                .is_none_or(|suffix| name.ends_with(suffix.as_str()));
        if !is_daemon_dir {
            continue;
        }
        let Ok(paths) = DaemonPaths::from_dir(entry.path()) else {
            continue;
        };
        if LockFile::is_held(&paths.lock).unwrap_or(false) {
            let state = match query_status(&paths.sock) {
                Some(status) => Found::Running(Box::new(status)),
                None => Found::Unresponsive(Meta::read(&paths.meta).map(Box::new)),
            };
            scan.daemons.push((paths, state));
        } else if warm_runtime::paths::socket_is_listening(&paths.sock) {
            scan.activatable.push(paths);
        } else {
            scan.dead.push(paths);
        }
    }
    Ok(scan)
}

/// Looks at every daemon directory; removes those of dead daemons (reported on stderr).
pub fn discover(runtime_dir: &Path) -> Result<Vec<(DaemonPaths, Found)>, Failure> {
    Ok(discover_all(runtime_dir)?.daemons)
}

/// [`discover`], with the directories a service manager starts daemons for.
fn discover_all(runtime_dir: &Path) -> Result<Scan, Failure> {
    let mut scan = scan(runtime_dir, None)?;
    for paths in std::mem::take(&mut scan.dead) {
        if let Ok(true) = paths.remove_if_dead() {
            errln!(
                "warm: removed the files of a daemon that is no longer running: {}",
                paths.dir.display()
            );
        }
    }
    Ok(scan)
}

/// The status of the daemon listening on `sock`, if it answers within 5 s.
pub fn query_status(sock: &Path) -> Option<Status> {
    let mut connection = Connection::connect(sock, Framing::Ndjson).ok()?;
    connection.set_timeout(Some(Duration::from_secs(5))).ok()?;
    let value = connection
        .request(methods::STATUS, None, &mut |_| {})
        .ok()?
        .ok()?;
    serde_json::from_value(value).ok()
}

pub fn run(runtime_dir: &Path, json_output: bool) -> CommandResult {
    let Scan {
        daemons: found,
        activatable,
        ..
    } = discover_all(runtime_dir)?;
    if json_output {
        let mut items: Vec<Value> = found.iter().map(|(p, f)| entry_json(p, f)).collect();
        items.extend(activatable.iter().map(
            |paths| json!({ "state": "activatable", "dir": paths.dir, "socket": paths.sock }),
        ));
        print_json(&items);
        return Ok(());
    }
    if found.is_empty() && activatable.is_empty() {
        errln!("no daemons running");
        return Ok(());
    }
    outln!(
        "{:<12} {:>8} {:>8} {:>9} {:>9}  ROOT",
        "SERVICE",
        "PID",
        "UPTIME",
        "TTL LEFT",
        "REQUESTS"
    );
    for (paths, daemon) in &found {
        match daemon {
            Found::Running(s) => outln!(
                "{:<12} {:>8} {:>8} {:>9} {:>9}  {}",
                s.service,
                s.pid,
                human_secs(s.uptime_secs),
                s.ttl_remaining_secs.map_or("never".into(), human_secs),
                s.requests,
                s.root
            ),
            Found::Unresponsive(meta) => outln!(
                "{:<12} {:>8} {:>8} {:>9} {:>9}  {}",
                meta.as_ref().map_or("?".into(), |m| m.service.clone()),
                meta.as_ref().map_or("?".into(), |m| m.pid.to_string()),
                "-",
                "-",
                "(busy: starting or stopping)",
                meta.as_ref()
                    .map_or(paths.dir.display().to_string(), |m| m.root.clone())
            ),
        }
    }
    for paths in &activatable {
        let name = paths.dir.file_name().unwrap_or_default().to_string_lossy();
        outln!(
            "{:<12} {:>8} {:>8} {:>9} {:>9}  (not running: a service manager starts it on the next call)",
            name.rsplit_once('-').map_or(&*name, |(service, _)| service),
            "-",
            "-",
            "-",
            "-",
        );
    }
    Ok(())
}

fn entry_json(paths: &DaemonPaths, found: &Found) -> Value {
    match found {
        Found::Running(status) => {
            let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
            value["state"] = json!("running");
            value
        }
        Found::Unresponsive(meta) => json!({
            "state": "unresponsive",
            "dir": paths.dir.display().to_string(),
            "socket": paths.sock.display().to_string(),
            "service": meta.as_ref().map(|m| m.service.clone()),
            "root": meta.as_ref().map(|m| m.root.clone()),
            "pid": meta.as_ref().map(|m| m.pid),
            "version": meta.as_ref().map(|m| m.version.clone()),
        }),
    }
}

/// Waits until the daemon behind `paths` has released its lock.
pub fn wait_released(paths: &DaemonPaths, timeout: Duration) -> bool {
    LockFile::acquire_until(&paths.lock, Instant::now() + timeout)
        .map(|lock| lock.is_some())
        .unwrap_or(false)
}
