//! `warm systemd install|uninstall`: user units that let systemd start a project's daemon on
//! first use (socket activation; the daemon's side is `warm_daemon::activation`).
//!
//! One pair per daemon, named after its runtime directory (`warm-search-<16 hex>`): a
//! `.socket` listening at the very path where clients look for the daemon's socket, so that
//! clients need nothing to use it, and a `.service` running `warm serve` for it.

use std::path::{Path, PathBuf};

use serde_json::json;
use warm_runtime::DaemonPaths;

use crate::cli::{SystemdArgs, SystemdCommand};
use crate::context::Context;
use crate::failure::Failure;

pub fn run(context: &Context, args: &SystemdArgs) -> Result<(), Failure> {
    let unit_dir = match &args.unit_dir {
        Some(dir) => dir.clone(),
        None => default_unit_dir()?,
    };
    let units = Units::of(context, &unit_dir)?;
    match args.command {
        SystemdCommand::Install => install(context, &units),
        SystemdCommand::Uninstall => uninstall(context, &units),
    }
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub(crate) fn default_unit_dir() -> Result<PathBuf, Failure> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            Failure::Usage("neither XDG_CONFIG_HOME nor HOME is set: pass --unit-dir DIR".into())
        })?;
    Ok(config.join("systemd/user"))
}

/// The daemon services `warm systemd install` wrote in `unit_dir`: each unit's name, and the
/// warm binary it runs.
pub(crate) fn installed(unit_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(unit_dir) else {
        return Vec::new();
    };
    let mut units: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unit = name.strip_prefix("warm-")?.strip_suffix(".service")?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let exec = text.lines().find_map(|l| l.strip_prefix("ExecStart=\""))?;
            let program = first_quoted_word(exec);
            Some((format!("warm-{unit}"), PathBuf::from(program)))
        })
        .collect();
    units.sort();
    units
}

/// The rest of a word opened by `"`, unquoted ([`quote`] in reverse).
fn first_quoted_word(text: &str) -> String {
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => word.extend(chars.next()),
            c => word.push(c),
        }
    }
    word.replace("%%", "%").replace("$$", "$")
}

/// The unit files of one daemon.
struct Units {
    /// `warm-SERVICE-<16 hex>`, the name both units share.
    name: String,
    socket_file: PathBuf,
    service_file: PathBuf,
    paths: DaemonPaths,
}

impl Units {
    fn of(context: &Context, unit_dir: &Path) -> Result<Units, Failure> {
        let paths = DaemonPaths::new(&context.runtime_dir, &context.identity)?;
        let dir_name = paths
            .dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = format!("warm-{dir_name}");
        Ok(Units {
            socket_file: unit_dir.join(format!("{name}.socket")),
            service_file: unit_dir.join(format!("{name}.service")),
            name,
            paths,
        })
    }

    fn files(&self) -> [&Path; 2] {
        [&self.socket_file, &self.service_file]
    }
}

fn install(context: &Context, units: &Units) -> Result<(), Failure> {
    // The units run the service's command whenever anyone connects: only a trusted one.
    if let Some(why) = &context.untrusted {
        return Err(Failure::Usage(why.clone()));
    }
    let warm = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Failure::Other(format!("cannot find the warm executable: {e}")))?;
    let unit_dir = units.socket_file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(unit_dir)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", unit_dir.display())))?;
    let path = std::env::var("PATH").unwrap_or_default();
    let texts = [
        socket_unit(context, &units.paths),
        service_unit(context, units, &warm, &path),
    ];
    for (file, text) in units.files().into_iter().zip(texts) {
        warm_runtime::meta::write_atomic(file, text.as_bytes())
            .map_err(|e| Failure::Other(format!("cannot write {}: {e}", file.display())))?;
    }
    let enable = format!(
        "systemctl --user daemon-reload && systemctl --user enable --now {}.socket",
        units.name
    );
    if context.json {
        outln!(
            "{}",
            json!({
                "unit": units.name,
                "files": units.files(),
                "socket": units.paths.sock,
                "enable": enable,
            })
        );
    } else {
        for file in units.files() {
            outln!("wrote {}", file.display());
        }
        outln!("Start listening now and at every login:\n  {enable}");
    }
    Ok(())
}

fn uninstall(context: &Context, units: &Units) -> Result<(), Failure> {
    let mut removed = Vec::new();
    for file in units.files() {
        match std::fs::remove_file(file) {
            Ok(()) => removed.push(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::Other(format!(
                    "cannot remove {}: {e}",
                    file.display()
                )))
            }
        }
    }
    let disable = format!(
        "systemctl --user disable --now {name}.socket {name}.service; systemctl --user daemon-reload",
        name = units.name
    );
    if context.json {
        outln!(
            "{}",
            json!({ "unit": units.name, "removed": removed, "disable": disable })
        );
        return Ok(());
    }
    if removed.is_empty() {
        outln!("no units of {} in {}", units.name, parent(units));
    }
    for file in removed {
        outln!("removed {}", file.display());
    }
    outln!("If systemd still runs them:\n  {disable}");
    Ok(())
}

fn parent(units: &Units) -> String {
    units
        .socket_file
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn socket_unit(context: &Context, paths: &DaemonPaths) -> String {
    format!(
        "# Written by `warm systemd install`; `warm systemd uninstall` removes it.\n\
         [Unit]\n\
         Description=warm: socket of the {service} daemon of {root}\n\
         \n\
         [Socket]\n\
         ListenStream={sock}\n\
         SocketMode=0600\n\
         DirectoryMode=0700\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n",
        service = context.identity.service,
        root = escape(&context.root.display().to_string()),
        sock = escape(&paths.sock.display().to_string()),
    )
}

fn service_unit(context: &Context, units: &Units, warm: &Path, path: &str) -> String {
    let root = context.root.display().to_string();
    format!(
        "# Written by `warm systemd install`; `warm systemd uninstall` removes it.\n\
         [Unit]\n\
         Description=warm: the {service} daemon of {root_text}\n\
         Requires={name}.socket\n\
         After={name}.socket\n\
         \n\
         [Service]\n\
         Type=notify\n\
         ExecStart={warm} serve --service {service} --root {root}\n\
         WorkingDirectory={root_text}\n\
         Environment={runtime_dir} {path}\n\
         # It exits when idle (its TTL) or on `warm stop`; the socket stays and the next\n\
         # connection starts it again, so it is never restarted in a loop.\n\
         Restart=no\n",
        service = context.identity.service,
        name = units.name,
        root_text = escape(&root),
        warm = exec_word(&warm.display().to_string()),
        root = exec_word(&root),
        runtime_dir = quote(&format!(
            "WARM_RUNTIME_DIR={}",
            context.runtime_dir.display()
        )),
        path = quote(&format!("PATH={path}")),
    )
}

/// A value as systemd reads it literally: `%` starts a specifier, so it is doubled.
fn escape(text: &str) -> String {
    text.replace('%', "%%")
}

/// One word of a command line or an `Environment=` assignment, double-quoted as systemd
/// reads it (systemd.syntax(7)).
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in escape(text).chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A word of `ExecStart=`, where `$` would also start a variable.
fn exec_word(text: &str) -> String {
    quote(text).replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_as_systemd_reads_them() {
        assert_eq!(quote("/a b/warm"), "\"/a b/warm\"");
        assert_eq!(quote("50%\"x\\"), "\"50%%\\\"x\\\\\"");
        assert_eq!(exec_word("/a$b"), "\"/a$$b\"");
    }
}
