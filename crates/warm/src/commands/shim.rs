//! `warm shim`: a link named `rg` to the warm binary, so that every `rg` a person, a script
//! or an agent runs is answered from the project's warm index (see `main`, which looks at
//! the name it was called by).

use std::path::Path;

use crate::cli::ShimCommand;
use crate::failure::Failure;

pub fn run(command: &ShimCommand) -> Result<(), Failure> {
    let warm = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Failure::Other(format!("cannot find the warm executable: {e}")))?;
    match command {
        ShimCommand::Install { dir } => install(&warm, dir),
        ShimCommand::Remove { dir } => remove(&warm, dir),
    }
}

fn install(warm: &Path, dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let link = dir.join("rg");
    match link.symlink_metadata() {
        Ok(_) if points_to(&link, warm) => {}
        Ok(_) => {
            return Err(Failure::Usage(format!(
                "{} exists and is not a link to warm: remove it first, or choose another directory",
                link.display()
            )))
        }
        Err(_) => std::os::unix::fs::symlink(warm, &link)
            .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", link.display())))?,
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    outln!("{} -> {}", link.display(), warm.display());
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .next()
            .is_some_and(|first| first == dir)
    });
    if !on_path {
        outln!(
            "Put it first on PATH, e.g. in ~/.bashrc:\n  export PATH={}:$PATH",
            dir.display()
        );
    }
    // The same search as a delegated call makes (the link itself is warm, never a candidate).
    if super::search::real_ripgrep().is_none() {
        outln!("No other rg is on PATH: the few flags warm hands to ripgrep (--pre, -P, --stats, ...) will fail until it is installed (cargo install ripgrep --version {}).", warm_search::rg::RIPGREP_VERSION);
    }
    Ok(())
}

fn remove(warm: &Path, dir: &Path) -> Result<(), Failure> {
    let link = dir.join("rg");
    if !points_to(&link, warm) {
        return Err(Failure::Usage(format!(
            "{} is not a link to warm",
            link.display()
        )));
    }
    std::fs::remove_file(&link)
        .map_err(|e| Failure::Other(format!("cannot remove {}: {e}", link.display())))?;
    outln!("removed {}", link.display());
    Ok(())
}

fn points_to(link: &Path, target: &Path) -> bool {
    link.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && link.canonicalize().is_ok_and(|p| p == target)
}
