//! Whether an installed language server actually runs: a program on `PATH` can be a stub
//! (rustup's `rust-analyzer` proxy without the component, a broken virtualenv's script) that
//! fails at every start. A server is probed once with its version flag before it is chosen or
//! listed as installed; a success is remembered by the program's identity (path, size, mtime,
//! inode) in the runtime directory, so a one-shot query pays for a probe only after an install
//! or upgrade.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a version probe may take (a Python server imports its plugins first).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// What probing a server found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// On `PATH`, and it runs.
    Works(PathBuf),
    /// Not on `PATH`.
    Missing,
    /// On `PATH`, but its version probe failed: what it said.
    Broken { path: PathBuf, output: String },
}

/// Runs `program args` (a version flag) unless a success for this very program is cached.
pub fn probe(program: &Path, args: &[&str]) -> Probe {
    let Some(marker) = cache_marker(program, args) else {
        return run(program, args);
    };
    if marker.exists() {
        return Probe::Works(program.to_path_buf());
    }
    let probe = run(program, args);
    if matches!(probe, Probe::Works(_)) {
        // Best effort: a cache that cannot be written only costs the next probe.
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&marker, b"ok\n"));
        }
    }
    probe
}

/// `<runtime dir>/probes/<sha256 of the program's identity>`, when the runtime dir is usable.
fn cache_marker(program: &Path, args: &[&str]) -> Option<PathBuf> {
    let meta = std::fs::metadata(program).ok()?;
    let runtime = warm_runtime::ensure_runtime_dir(&warm_runtime::runtime_dir_location()).ok()?;
    let mut hasher = Sha256::new();
    hasher.update(program.as_os_str().as_encoded_bytes());
    for arg in args {
        hasher.update([0]);
        hasher.update(arg.as_bytes());
    }
    let modified = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    hasher.update(format!("\0{}\0{}\0{}", meta.len(), modified, meta.ino()).as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(runtime.join("probes").join(hex))
}

fn run(program: &Path, args: &[&str]) -> Probe {
    let broken = |output: String| Probe::Broken {
        path: program.to_path_buf(),
        output,
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return broken(format!("cannot run: {e}")),
    };
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                // A short poll: the probe is one process, run once per install.
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return broken(format!(
                    "`{} {}` did not finish within {}s",
                    program.display(),
                    args.join(" "),
                    PROBE_TIMEOUT.as_secs()
                ));
            }
        }
    };
    if status.success() {
        return Probe::Works(program.to_path_buf());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let said = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    broken(format!(
        "`{} {}` failed ({status}): {}",
        program.display(),
        args.join(" "),
        said.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn a_stub_that_fails_is_broken_and_says_why() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stub = script(
            tmp.path(),
            "rust-analyzer",
            "echo \"error: Unknown binary 'rust-analyzer'\" >&2; exit 1",
        );
        match run(&stub, &["--version"]) {
            Probe::Broken { output, .. } => {
                assert!(
                    output.contains("Unknown binary 'rust-analyzer'"),
                    "{output}"
                )
            }
            other => panic!("expected Broken, got {other:?}"),
        }
        let works = script(tmp.path(), "good-ls", "echo 1.0");
        assert_eq!(run(&works, &["--version"]), Probe::Works(works.clone()));
    }
}
