//! [`Context`]: the validated view of the global arguments — project root, configuration,
//! service and how to reach its daemon — shared by every command.

use std::path::PathBuf;

use warm_client::{DaemonSpec, SpawnCommand};
use warm_protocol::Framing;
use warm_runtime::config::{Config, ResolvedService, BUILTIN_SERVICES};
use warm_runtime::{runtime_dir_location, ClientSettings, Identity};

use crate::cli::GlobalArgs;
use crate::failure::Failure;

/// The version this binary reports. `WARM_VERSION_OVERRIDE` exists for tests that simulate an
/// upgrade (a daemon of another version must be replaced by the next client).
pub fn version() -> String {
    std::env::var("WARM_VERSION_OVERRIDE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
}

pub struct Context {
    pub json: bool,
    /// The service was named with `-s` (not implied by `.warm.toml` or the default):
    /// `status`, `logs` and `stop` then stick to it instead of showing the project's others.
    pub explicit_service: bool,
    pub root: PathBuf,
    pub service: ResolvedService,
    pub identity: Identity,
    pub runtime_dir: PathBuf,
    pub settings: ClientSettings,
    /// Why this service's daemon may not be started: its command comes from a `.warm.toml`
    /// the user has not trusted (see [`warm_client::trust`]).
    pub untrusted: Option<String>,
}

impl Context {
    /// Resolves root, configuration and service from the global arguments.
    ///
    /// # Errors
    /// A usage failure for a bad `.warm.toml`, an unknown service or a bad environment.
    pub fn resolve(global: &GlobalArgs) -> Result<Context, Failure> {
        let (root, config) = project(global)?;
        Context::for_service(global, root, &config, global.service.as_deref())
    }

    /// Like [`Context::resolve`], for the service `requested` (or the one the configuration
    /// implies) of a project already located.
    ///
    /// # Errors
    /// A usage failure for an unknown service or a bad environment.
    pub fn for_service(
        global: &GlobalArgs,
        root: PathBuf,
        config: &Config,
        requested: Option<&str>,
    ) -> Result<Context, Failure> {
        let name = pick_service(requested, config)?;
        let identity = Identity::new(&name, &root).map_err(Failure::from)?;
        let settings = config
            .client_settings()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let mut service = config.service(&name);
        // Only an `lsp-*` name can be a built-in language server: any other call resolves
        // without asking the LSP crate.
        let builtin_server = name
            .starts_with(warm_lsp::servers::BUILTIN_PREFIX)
            .then(|| warm_lsp::servers::builtin_for_service(&name))
            .flatten();
        if let Some(server) = builtin_server {
            server.configure(&mut service);
        }
        let untrusted = match (&config.path, &service.config.command, builtin_server) {
            (Some(path), Some(command), None) => untrusted(path, &name, command),
            _ => None,
        };
        Ok(Context {
            untrusted,
            json: global.json,
            explicit_service: requested.is_some(),
            service,
            root: identity.root.clone(),
            identity,
            runtime_dir: runtime_dir_location(),
            settings,
        })
    }

    /// How to reach (and start) this context's daemon; `serve_args` are added to
    /// `warm serve` when a daemon has to be started.
    ///
    /// # Errors
    /// A usage failure when the service's command comes from an untrusted `.warm.toml`.
    pub fn spec(&self, serve_args: &[String]) -> Result<DaemonSpec, Failure> {
        if let Some(why) = &self.untrusted {
            return Err(Failure::Usage(why.clone()));
        }
        self.running_spec(serve_args)
    }

    /// Like [`Context::spec`], without the trust check: for commands that only reach a daemon
    /// already running (`status`, `stop`), which an edited `.warm.toml` must not lock out.
    pub fn running_spec(&self, serve_args: &[String]) -> Result<DaemonSpec, Failure> {
        let exe = std::env::current_exe()
            .map_err(|e| Failure::Other(format!("cannot find the warm executable: {e}")))?;
        let mut spawn = SpawnCommand::new(exe)
            .arg("serve")
            .arg("--service")
            .arg(&self.identity.service)
            .arg("--root")
            .arg(&self.identity.root);
        for arg in serve_args {
            spawn = spawn.arg(arg);
        }
        Ok(DaemonSpec {
            identity: self.identity.clone(),
            runtime_dir: self.runtime_dir.clone(),
            spawn,
            version: version(),
            config_hash: self.service.config_hash.clone(),
            settings: self.settings.clone(),
            framing: Framing::Ndjson,
        })
    }
}

/// The project root and its `.warm.toml`, from the global arguments.
///
/// # Errors
/// A usage failure for an unreadable directory or a bad `.warm.toml`.
pub fn project(global: &GlobalArgs) -> Result<(PathBuf, Config), Failure> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::Usage(format!("cannot read the current directory: {e}")))?;
    let root = match &global.root {
        Some(root) => cwd.join(root),
        None => warm_runtime::find_root(&cwd, true),
    };
    let config = Config::load_from_root(&root)?;
    Ok((root, config))
}

/// The message for a service whose `command` comes from an untrusted `.warm.toml`, or `None`
/// when the user trusts the file as it is.
fn untrusted(config_path: &std::path::Path, service: &str, command: &[String]) -> Option<String> {
    if warm_client::trust::is_file_trusted(config_path) {
        return None;
    }
    let path = config_path.canonicalize().ok()?;
    let dir = path.parent().unwrap_or(&path);
    Some(format!(
        "{} is not trusted, and its service {service} would run: {}
         A repository's .warm.toml runs nothing until you trust it. Read it, then run:
           warm trust {}
         (WARM_TRUST_ALL=1 trusts every project: for CI and throwaway containers)",
        path.display(),
        command.join(" "),
        dir.display()
    ))
}

fn pick_service(requested: Option<&str>, config: &Config) -> Result<String, Failure> {
    let configured = config.service_names();
    if let Some(name) = requested {
        if BUILTIN_SERVICES.contains(&name)
            || configured.iter().any(|c| c == name)
            || warm_lsp::servers::builtin_for_service(name).is_some()
        {
            return Ok(name.to_owned());
        }
        let servers = warm_lsp::servers::BUILTIN_SERVERS;
        if let Some(server) = servers.iter().find(|s| s.id == name) {
            return Err(Failure::Usage(format!(
                "unknown service {name:?}: the language server {name} is the service {}",
                server.service_name()
            )));
        }
        let mut known: Vec<String> = BUILTIN_SERVICES.iter().map(|s| (*s).to_owned()).collect();
        known.extend(configured.iter().cloned());
        known.extend(servers.iter().map(|s| s.service_name()));
        return Err(Failure::Usage(format!(
            "unknown service {name:?}: known services are {}; add [services.{name}] to .warm.toml to define it",
            known.join(", ")
        )));
    }
    match configured.as_slice() {
        [] => Ok("default".to_owned()),
        [only] => Ok(only.clone()),
        many => Err(Failure::Usage(format!(
            ".warm.toml defines several services ({}); choose one with -s",
            many.join(", ")
        ))),
    }
}
