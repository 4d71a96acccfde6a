//! `warm trust`: let a project's `.warm.toml` run its commands (workers, language servers),
//! for its current content; `--revoke` takes that back, `--list` shows what is trusted.

use std::path::{Path, PathBuf};

use serde_json::json;
use warm_runtime::config::{Config, CONFIG_FILE};

use super::print_json;
use crate::cli::TrustArgs;
use crate::failure::{CommandResult, Failure};

pub fn run(cwd: &Path, args: &TrustArgs, json_output: bool) -> CommandResult {
    if args.list {
        let trusted = warm_client::trust::list();
        if json_output {
            print_json(&json!({ "trusted": trusted }));
        } else {
            for path in trusted {
                outln!("{}", path.display());
            }
        }
        return Ok(());
    }
    let dir = args
        .dir
        .as_ref()
        .map_or_else(|| cwd.to_path_buf(), |d| cwd.join(d));
    let file = config_file(&dir)?;
    if args.revoke {
        let revoked = warm_client::trust::revoke(&file)?;
        if json_output {
            print_json(&json!({ "revoked": revoked, "file": file }));
        } else if revoked {
            outln!("no longer trusted: {}", file.display());
        } else {
            errln!("{} was not trusted", file.display());
        }
        return Ok(());
    }
    let content = std::fs::read(&file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    // Trusting a file warm would refuse anyway helps nobody: say what is wrong instead.
    let config = Config::parse(&file, &String::from_utf8_lossy(&content))?;
    let store = warm_client::trust::trust(&file, &content)?;
    if json_output {
        print_json(&json!({ "trusted": file, "store": store }));
        return Ok(());
    }
    outln!("trusted {} as it is now", file.display());
    for (name, service) in &config.file.services {
        if let Some(command) = &service.command {
            outln!("  [services.{name}] may run: {}", command.join(" "));
        }
    }
    errln!(
        "(an edit to the file needs `warm trust` again; recorded in {})",
        store.display()
    );
    Ok(())
}

/// The `.warm.toml` of `dir` (the nearest one above it), canonical.
fn config_file(dir: &Path) -> Result<PathBuf, Failure> {
    let dir = dir
        .canonicalize()
        .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
    dir.ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|f| f.is_file())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no {CONFIG_FILE} in {} or above it: nothing to trust",
                dir.display()
            ))
        })
}
