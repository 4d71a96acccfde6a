//! Which language server answers for a file: one declared in `.warm.toml`
//! (`[services.NAME] framing = "lsp"` with `languages` or `files`), else the first server of
//! a built-in table of well-known ones that is installed (found on `PATH`, and runs: see
//! [`probe`](crate::probe)).
//!
//! Each server runs in its own daemon. A configured server's daemon is its service `NAME`; a
//! built-in one's is `lsp-ID` (e.g. `lsp-pylsp`), so `warm status -s lsp-pylsp` finds it.

use std::path::{Path, PathBuf};

use warm_protocol::Framing;
use warm_runtime::config::{Config, ResolvedService, ServiceConfig};

use crate::probe::Probe;

/// A well-known language server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinServer {
    pub id: &'static str,
    pub languages: &'static [&'static str],
    pub command: &'static [&'static str],
    /// How to install it, for the message shown when no server is found.
    pub install: &'static str,
    /// Arguments that make it print its version and exit, proving it runs; `None` for a
    /// server with no such flag (it is taken as installed when found on `PATH`).
    pub version: Option<&'static [&'static str]>,
    /// Words of the log message it sends once it has read the project, or of the title of
    /// the work-done progress that ends then (`ready_message` of `.warm.toml`).
    pub ready_message: Option<&'static str>,
}

/// Prefix of the service name of a built-in server's daemon.
pub const BUILTIN_PREFIX: &str = "lsp-";

/// The built-in servers, in order of preference for each language.
pub const BUILTIN_SERVERS: &[BuiltinServer] = &[
    BuiltinServer {
        id: "pylsp",
        languages: &["python"],
        command: &["pylsp"],
        install: "pip install python-lsp-server",
        version: Some(&["--version"]),
        ready_message: None,
    },
    BuiltinServer {
        id: "basedpyright",
        languages: &["python"],
        command: &["basedpyright-langserver", "--stdio"],
        install: "pip install basedpyright",
        version: Some(&["--version"]),
        ready_message: None,
    },
    BuiltinServer {
        id: "pyright",
        languages: &["python"],
        command: &["pyright-langserver", "--stdio"],
        install: "npm install -g pyright",
        version: None,
        ready_message: None,
    },
    BuiltinServer {
        id: "rust-analyzer",
        languages: &["rust"],
        command: &["rust-analyzer"],
        install: "rustup component add rust-analyzer",
        version: Some(&["--version"]),
        ready_message: None,
    },
    BuiltinServer {
        id: "gopls",
        languages: &["go"],
        command: &["gopls"],
        install: "go install golang.org/x/tools/gopls@latest",
        version: Some(&["version"]),
        ready_message: None,
    },
    BuiltinServer {
        id: "typescript-language-server",
        languages: &[
            "typescript",
            "typescriptreact",
            "javascript",
            "javascriptreact",
        ],
        command: &["typescript-language-server", "--stdio"],
        install: "npm install -g typescript-language-server typescript",
        version: Some(&["--version"]),
        // It loads the project when a file is first opened, with this progress; until it
        // ends, a definition in another file is answered with the import line.
        ready_message: Some("Initializing JS/TS language features"),
    },
    BuiltinServer {
        id: "clangd",
        languages: &["c", "cpp"],
        command: &["clangd"],
        install: "apt install clangd",
        version: Some(&["--version"]),
        ready_message: None,
    },
    BuiltinServer {
        id: "bash-language-server",
        languages: &["shellscript"],
        command: &["bash-language-server", "start"],
        install: "npm install -g bash-language-server",
        version: Some(&["--version"]),
        // Its background analysis of the project's scripts, which definitions in other
        // files need.
        ready_message: Some("BackgroundAnalysis: Completed"),
    },
];

impl BuiltinServer {
    pub fn service_name(&self) -> String {
        format!("{BUILTIN_PREFIX}{}", self.id)
    }

    /// The server's program, if it is on `PATH`.
    pub fn installed(&self) -> Option<PathBuf> {
        find_on_path(self.command[0])
    }

    /// Whether the server is on `PATH` and runs (its version probe, cached).
    pub fn probe(&self) -> Probe {
        match (self.installed(), self.version) {
            (None, _) => Probe::Missing,
            (Some(path), None) => Probe::Works(path),
            (Some(path), Some(args)) => crate::probe::probe(&path, args),
        }
    }

    /// Makes `service` (the built-in server's service, `lsp-ID`, as `.warm.toml` resolves
    /// it: TTL, limits, `max_rss`) run this server: its command, LSP framing, and
    /// [`default_max_rss`] unless `.warm.toml` sets one (`0`: none).
    pub fn configure(&self, service: &mut ResolvedService) {
        let max_rss = service.config.max_rss.take();
        if max_rss.is_none() {
            service.max_rss = Some(default_max_rss());
        }
        service.config = ServiceConfig {
            max_rss,
            ..self.service_config()
        };
        service.framing = Framing::Lsp;
    }

    /// The `.warm.toml` table this server would have if it were configured.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            command: Some(self.command.iter().map(|s| (*s).to_owned()).collect()),
            framing: Some("lsp".into()),
            languages: self.languages.iter().map(|s| (*s).to_owned()).collect(),
            ready_message: self.ready_message.map(str::to_owned),
            ..ServiceConfig::default()
        }
    }
}

/// The memory cap of a built-in language server that `.warm.toml` gives none: a quarter of
/// the machine's memory, at least 2 GiB. Servers are known to grow without end (users report
/// rust-analyzer at 9 GB); one past this is replaced between queries, none of them failing.
pub fn default_max_rss() -> u64 {
    (warm_worker::memory::physical_memory() / 4).max(2 << 30)
}

/// The built-in server whose daemon is the service `name` (`lsp-ID`).
pub fn builtin_for_service(name: &str) -> Option<&'static BuiltinServer> {
    let id = name.strip_prefix(BUILTIN_PREFIX)?;
    BUILTIN_SERVERS.iter().find(|s| s.id == id)
}

/// The LSP language id of a file, from its extension (or name).
pub fn language_of(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or(name);
    Some(match extension {
        "py" | "pyi" => "python",
        "rs" => "rust",
        "go" => "go",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "typescriptreact",
        "js" | "mjs" | "cjs" => "javascript",
        "jsx" => "javascriptreact",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "sh" | "bash" | ".bashrc" | ".bash_profile" => "shellscript",
        _ => return None,
    })
}

/// The LSP language id of a language named as people type it (`bash` and `sh` are
/// `shellscript`, `py` is `python`, `ts` is `typescript`, `c++` is `cpp`, ...); other names
/// are taken as they are.
pub fn language_id(name: &str) -> &str {
    match name {
        "bash" | "sh" | "zsh" | "shell" => "shellscript",
        "py" | "python3" => "python",
        "ts" => "typescript",
        "js" | "node" => "javascript",
        "tsx" => "typescriptreact",
        "jsx" => "javascriptreact",
        "c++" | "cxx" | "cc" | "hpp" => "cpp",
        "h" => "c",
        "rs" => "rust",
        "golang" => "go",
        other => other,
    }
}

/// The server chosen for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A `[services.NAME]` of `.warm.toml`.
    Configured(String),
    Builtin(&'static BuiltinServer),
}

impl Choice {
    /// The service whose daemon runs the server.
    pub fn service_name(&self) -> String {
        match self {
            Choice::Configured(name) => name.clone(),
            Choice::Builtin(server) => server.service_name(),
        }
    }
}

/// What to choose a server for: a file, or a language (for workspace-wide queries).
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    File(&'a Path),
    Language(&'a str),
    /// Whatever single server the project uses.
    Any,
}

/// Chooses the server for `target` in the project at `root`.
///
/// # Errors
/// What was looked for and what to install or declare.
pub fn choose(config: &Config, root: &Path, target: Target<'_>) -> Result<Choice, ChooseError> {
    let language = match target {
        Target::File(path) => language_of(path),
        Target::Language(language) => Some(language),
        Target::Any => None,
    };
    let configured = lsp_services(config);
    for (name, service) in &configured {
        if serves(service, root, target, language)? {
            return Ok(Choice::Configured(name.clone()));
        }
    }
    if let (Target::Any, [(name, _)]) = (target, configured.as_slice()) {
        return Ok(Choice::Configured(name.clone()));
    }
    let Some(language) = language else {
        return Err(match target {
            Target::File(path) => ChooseError::UnknownFileType(path.to_owned()),
            _ => ChooseError::NoLanguage,
        });
    };
    let candidates: Vec<&BuiltinServer> = BUILTIN_SERVERS
        .iter()
        .filter(|s| s.languages.contains(&language))
        .collect();
    let mut broken = Vec::new();
    for server in &candidates {
        match server.probe() {
            Probe::Works(_) => return Ok(Choice::Builtin(server)),
            Probe::Missing => {}
            Probe::Broken { output, .. } => {
                broken.push(format!("{} does not run: {output}", server.id))
            }
        }
    }
    match candidates.first() {
        None => Err(ChooseError::NoBuiltin(language.to_owned())),
        Some(first) => Err(ChooseError::NotInstalled {
            language: language.to_owned(),
            looked_for: candidates.iter().map(|s| s.command[0]).collect(),
            broken,
            install: first.install,
        }),
    }
}

/// Why no language server could be chosen: each says what to install or declare.
#[derive(Debug, thiserror::Error)]
pub enum ChooseError {
    #[error(
        "no language server is known for {}: declare one in .warm.toml \
         ([services.NAME] framing = \"lsp\", command = [...], files = [\"*.ext\"])",
        .0.display()
    )]
    UnknownFileType(PathBuf),
    #[error("say which language server to use: --language LANG (e.g. python), or -s SERVICE")]
    NoLanguage,
    #[error(
        "no built-in language server for {0}: declare one in .warm.toml \
         ([services.NAME] framing = \"lsp\", command = [...], languages = [\"{0}\"])"
    )]
    NoBuiltin(String),
    #[error(
        "no language server for {language} is installed: looked for {} on PATH{}; install \
         one (e.g. `{install}`) or declare one in .warm.toml",
        .looked_for.join(", "),
        broken_list(.broken)
    )]
    NotInstalled {
        language: String,
        looked_for: Vec<&'static str>,
        /// Servers found on `PATH` that do not run, with what they printed.
        broken: Vec<String>,
        install: &'static str,
    },
    #[error(".warm.toml: bad glob {pattern:?} in files: {source}")]
    BadGlob {
        pattern: String,
        source: globset::Error,
    },
}

fn broken_list(broken: &[String]) -> String {
    if broken.is_empty() {
        String::new()
    } else {
        format!(" ({})", broken.join("; "))
    }
}

/// `[services.*]` tables with `framing = "lsp"`, by name.
pub fn lsp_services(config: &Config) -> Vec<(String, ServiceConfig)> {
    config
        .services()
        .filter(|s| s.framing == Framing::Lsp && s.config.command.is_some())
        .map(|s| (s.name.clone(), s.config.clone()))
        .collect()
}

/// Whether a configured server serves the target. One that declares neither `languages` nor
/// `files` serves every file.
fn serves(
    service: &ServiceConfig,
    root: &Path,
    target: Target<'_>,
    language: Option<&str>,
) -> Result<bool, ChooseError> {
    if service.languages.is_empty() && service.files.is_empty() {
        return Ok(!matches!(target, Target::Any));
    }
    if language.is_some_and(|l| service.languages.iter().any(|s| s == l)) {
        return Ok(true);
    }
    let Target::File(path) = target else {
        return Ok(false);
    };
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in &service.files {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .map_err(|source| ChooseError::BadGlob {
                pattern: pattern.clone(),
                source,
            })?;
        builder.add(glob);
    }
    let set = builder.build().map_err(|source| ChooseError::BadGlob {
        pattern: service.files.join(", "),
        source,
    })?;
    let relative = path.strip_prefix(root).unwrap_or(path);
    Ok(set.is_match(relative) || path.file_name().is_some_and(|n| set.is_match(n)))
}

/// Where `program` is on `PATH` (or itself, when it names a path).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::parse(Path::new("/p/.warm.toml"), toml).expect("valid config")
    }

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(language_of(Path::new("a/b.py")), Some("python"));
        assert_eq!(language_of(Path::new("x.tsx")), Some("typescriptreact"));
        assert_eq!(language_of(Path::new("README")), None);
    }

    #[test]
    fn a_configured_server_wins_by_language_or_glob() {
        let config = config(
            "[services.py]\ncommand = [\"my-pyls\"]\nframing = \"lsp\"\nlanguages = [\"python\"]\n\
             [services.tmpl]\ncommand = [\"tmpl-ls\"]\nframing = \"lsp\"\nfiles = [\"templates/**/*.html\"]\n",
        );
        let root = Path::new("/p");
        let choose_file =
            |f: &str| choose(&config, root, Target::File(Path::new(f))).map_err(|e| e.to_string());
        assert_eq!(choose_file("/p/a.py"), Ok(Choice::Configured("py".into())));
        assert_eq!(
            choose_file("/p/templates/x/y.html"),
            Ok(Choice::Configured("tmpl".into()))
        );
        assert!(choose_file("/p/other.html").is_err());
    }

    #[test]
    fn a_missing_server_is_named_with_how_to_install_it() {
        // A PATH with nothing on it, whatever this machine has installed. (The only test of
        // this crate that reads PATH.)
        let empty = tempfile::tempdir().expect("tempdir");
        std::env::set_var("PATH", empty.path());
        let error = choose(&Config::default(), Path::new("/p"), Target::Language("cpp"))
            .expect_err("nothing is installed")
            .to_string();
        assert!(error.contains("looked for clangd on PATH"), "{error}");
        assert!(error.contains("apt install clangd"), "{error}");
        let error = choose(
            &Config::default(),
            Path::new("/p"),
            Target::Language("cobol"),
        )
        .expect_err("no cobol server")
        .to_string();
        assert!(
            error.contains("no built-in language server for cobol"),
            "{error}"
        );
    }

    #[test]
    fn builtin_services_are_named_after_their_server() {
        let server = builtin_for_service("lsp-pylsp").expect("pylsp is built in");
        assert_eq!(server.command, &["pylsp"]);
        assert_eq!(server.service_name(), "lsp-pylsp");
        assert_eq!(builtin_for_service("pylsp"), None);
    }

    #[test]
    fn languages_are_understood_as_people_type_them() {
        for (typed, id) in [
            ("bash", "shellscript"),
            ("sh", "shellscript"),
            ("py", "python"),
            ("ts", "typescript"),
            ("js", "javascript"),
            ("c", "c"),
            ("cpp", "cpp"),
            ("c++", "cpp"),
            ("shellscript", "shellscript"),
            ("cobol", "cobol"),
        ] {
            assert_eq!(language_id(typed), id, "{typed}");
        }
        // `bash` finds the bash server: chosen where it is installed, named where it is not.
        match choose(
            &Config::default(),
            Path::new("/p"),
            Target::Language(language_id("bash")),
        ) {
            Ok(chosen) => assert_eq!(chosen.service_name(), "lsp-bash-language-server"),
            Err(missing) => assert!(
                missing.to_string().contains("bash-language-server"),
                "{missing}"
            ),
        }
    }
}
