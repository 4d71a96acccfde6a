//! `warm lsp`: one language-server query per command, answered by the project's warm server.
//!
//! This module finds the file, the server and its daemon, and sends the query; `print` turns
//! the answer into lines. Document sync, positions and retries happen in the daemon
//! (`warm_lsp::service`).

mod print;

use std::cell::RefCell;
use std::collections::hash_map::{Entry, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use warm_client::Client;
use warm_lsp::probe::Probe;
use warm_lsp::protocol::{
    DiagnosticsAnswer, DiagnosticsParams, LineColumn, QueryAnswer as Answer, QueryParams,
    DIAGNOSTICS, REQUEST,
};
use warm_lsp::servers::{self, Target};
use warm_lsp::Encoding;
use warm_protocol::ErrorCode;
use warm_runtime::config::Config;
use warm_runtime::duration::parse_duration;

use crate::cli::{GlobalArgs, LspArgs, LspCommand};
use crate::context::{project, Context};
use crate::failure::Failure;

/// Runs one `warm lsp` command; returns its exit code.
pub fn run(global: &GlobalArgs, args: &LspArgs) -> Result<u8, Failure> {
    let (root, config) = project(global)?;
    let session = Session {
        global,
        root: root.canonicalize().unwrap_or(root),
        config,
        timeout: args
            .timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| Failure::Usage(format!("--timeout: {e}")))?,
        cwd: std::env::current_dir()
            .map_err(|e| Failure::Usage(format!("cannot read the current directory: {e}")))?,
        clients: RefCell::new(HashMap::new()),
    };
    match &args.command {
        LspCommand::Hover { location } => print::hover(&session, &session.at(location)?),
        LspCommand::Definition { location } => print::locations(
            &session,
            &session.at(location)?,
            "textDocument/definition",
            None,
        ),
        LspCommand::TypeDefinition { location } => print::locations(
            &session,
            &session.at(location)?,
            "textDocument/typeDefinition",
            None,
        ),
        LspCommand::Implementation { location } => print::locations(
            &session,
            &session.at(location)?,
            "textDocument/implementation",
            None,
        ),
        LspCommand::References {
            location,
            no_declaration,
        } => print::locations(
            &session,
            &session.at(location)?,
            "textDocument/references",
            Some(json!({ "context": { "includeDeclaration": !no_declaration } })),
        ),
        LspCommand::Symbols { file } => print::symbols(&session, &session.file(file)?),
        LspCommand::WorkspaceSymbols { query, language } => {
            print::workspace_symbols(&session, query, language.as_deref())
        }
        LspCommand::Diagnostics { files, wait } => {
            let wait = parse_duration(wait).map_err(|e| Failure::Usage(format!("--wait: {e}")))?;
            let files = files
                .iter()
                .map(|f| session.file(f))
                .collect::<Result<Vec<_>, _>>()?;
            print::diagnostics(&session, &files, wait)
        }
        LspCommand::Rename {
            location,
            new_name,
            apply,
        } => print::rename(&session, &session.at(location)?, new_name, *apply),
        LspCommand::Format { file } => print::format(&session, &session.file(file)?),
        LspCommand::Raw {
            method,
            params,
            language,
        } => raw(&session, method, params.as_deref(), language.as_deref()),
        LspCommand::Servers => print::servers(&session),
    }
}

/// What every query of one command shares.
pub struct Session<'a> {
    global: &'a GlobalArgs,
    root: PathBuf,
    config: Config,
    timeout: Option<Duration>,
    cwd: PathBuf,
    /// One connection per server daemon, reused by every query of the command (e.g.
    /// diagnostics of many files).
    clients: RefCell<HashMap<String, Client>>,
}

/// `FILE:LINE:COL`, resolved.
pub struct At {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl Session<'_> {
    fn json(&self) -> bool {
        self.global.json
    }

    /// A file named on the command line: absolute, existing, inside the project.
    fn file(&self, file: &Path) -> Result<PathBuf, Failure> {
        let path = self.cwd.join(file);
        let path = path
            .canonicalize()
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
        if !path.starts_with(&self.root) {
            return Err(Failure::Usage(format!(
                "{} is outside the project root {}; run warm from inside its project, or pass --root",
                file.display(),
                self.root.display()
            )));
        }
        Ok(path)
    }

    /// `FILE:LINE:COL` (the file name may itself hold colons).
    fn at(&self, location: &str) -> Result<At, Failure> {
        let usage = || {
            Failure::Usage(format!(
                "{location:?} is not a location: write FILE:LINE:COL, e.g. src/app.py:12:8 (1-based)"
            ))
        };
        let mut parts = location.rsplitn(3, ':');
        let (Some(column), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(usage());
        };
        let (Ok(line), Ok(column)) = (line.parse::<u32>(), column.parse::<u32>()) else {
            return Err(usage());
        };
        if line == 0 || column == 0 {
            return Err(Failure::Usage(format!(
                "{location}: lines and columns start at 1"
            )));
        }
        Ok(At {
            file: self.file(Path::new(file))?,
            line,
            column,
        })
    }

    /// The service whose daemon runs the server for `target` (or the one named with -s).
    fn service(&self, target: Target<'_>) -> Result<String, Failure> {
        match &self.global.service {
            Some(service) => {
                self.check_installed(service)?;
                Ok(service.clone())
            }
            None => match servers::choose(&self.config, &self.root, target)
                .map_err(|e| Failure::Usage(e.to_string()))?
            {
                // `choose` has just found it installed and running.
                servers::Choice::Builtin(server) => Ok(server.service_name()),
                servers::Choice::Configured(name) => {
                    self.check_installed(&name)?;
                    Ok(name)
                }
            },
        }
    }

    /// A server named with `-s`, or a configured one, that is not installed is a usage error
    /// with the install command, before any daemon is started for it (one would idle,
    /// unable to serve).
    fn check_installed(&self, service: &str) -> Result<(), Failure> {
        let program = match servers::builtin_for_service(service) {
            Some(builtin) => match builtin.probe() {
                Probe::Works(_) => return Ok(()),
                Probe::Missing => {
                    return Err(Failure::Usage(format!(
                        "{service}: {} is not installed; install it (`{}`) or choose another server (`warm lsp servers`)",
                        builtin.command[0], builtin.install
                    )))
                }
                Probe::Broken { output, .. } => {
                    return Err(Failure::Usage(format!(
                        "{service}: {} does not run: {output}",
                        builtin.command[0]
                    )))
                }
            },
            None => servers::lsp_services(&self.config)
                .into_iter()
                .find(|(name, _)| name == service)
                .and_then(|(_, config)| config.command)
                .and_then(|command| command.into_iter().next()),
        };
        // Workers run in the project root: a relative command is found from there.
        let found = |program: &str| {
            let path = Path::new(program);
            if program.contains('/') && path.is_relative() {
                servers::find_on_path(&self.root.join(path).to_string_lossy())
            } else {
                servers::find_on_path(program)
            }
        };
        match program {
            Some(program) if found(&program).is_none() => {
                Err(Failure::Usage(format!(
                    "{service}: its command {program:?} (.warm.toml) is not found on PATH; install it or fix the command"
                )))
            }
            _ => Ok(()),
        }
    }

    fn client(&self, service: &str) -> Result<Client, Failure> {
        let context =
            Context::for_service(self.global, self.root.clone(), &self.config, Some(service))?;
        let mut client = Client::new(context.spec(&[])?)?;
        if let Some(timeout) = self.timeout {
            client.set_timeout(Some(timeout).filter(|t| !t.is_zero()));
        }
        Ok(client)
    }

    /// Sends `method` through the service's `lsp/request`: for `at`'s file and position, or
    /// for `file`, or for neither.
    fn request(
        &self,
        target: Target<'_>,
        method: &str,
        position: Option<(u32, u32)>,
        params: Option<Value>,
    ) -> Result<Answer, Failure> {
        let request = QueryParams {
            method: method.to_owned(),
            file: match target {
                Target::File(file) => Some(file.to_owned()),
                _ => None,
            },
            position: position.map(|(line, column)| LineColumn { line, column }),
            params,
        };
        let answer: Answer = self.call(target, REQUEST, &request)?;
        if answer.partial {
            errln!("warm: the server was still reading the project when it answered; the answer may be partial");
        }
        Ok(answer)
    }

    fn diagnostics(
        &self,
        file: &Path,
        also: &[PathBuf],
        wait: Duration,
    ) -> Result<DiagnosticsAnswer, Failure> {
        let params = DiagnosticsParams {
            file: file.to_owned(),
            also: also.to_vec(),
            timeout_ms: Some(wait.as_millis() as u64),
        };
        self.call(Target::File(file), DIAGNOSTICS, &params)
    }

    /// Calls `method` of the target's service; its answer, typed.
    fn call<T: DeserializeOwned>(
        &self,
        target: Target<'_>,
        method: &str,
        params: &impl Serialize,
    ) -> Result<T, Failure> {
        let params = serde_json::to_value(params)
            .map_err(|e| Failure::Other(format!("cannot encode {method} params: {e}")))?;
        let service = self.service(target)?;
        let mut clients = self.clients.borrow_mut();
        let client = match clients.entry(service) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let client = self.client(entry.key())?;
                entry.insert(client)
            }
        };
        let mut on_progress = super::progress_printer();
        let answer = client
            .call_with_progress(method, Some(&params), &mut on_progress)
            .map_err(|error| match error {
                // The params come from the command line: a location past the end of a file,
                // a file that cannot be read. A usage error, as the checks made here are.
                warm_client::Error::Rpc(error) if error.kind() == ErrorCode::InvalidParams => {
                    Failure::Usage(error.message)
                }
                other => Failure::from(other),
            })?;
        serde_json::from_value(answer)
            .map_err(|e| Failure::Other(format!("unexpected answer to {method}: {e}")))
    }

    fn sources(&self, encoding: Encoding) -> warm_lsp::render::Sources {
        warm_lsp::render::Sources::new(self.cwd.clone(), encoding)
    }
}

/// `warm lsp raw METHOD [PARAMS]`: any request, forwarded as is; its answer printed as JSON.
fn raw(
    session: &Session<'_>,
    method: &str,
    params: Option<&str>,
    language: Option<&str>,
) -> Result<u8, Failure> {
    let params: Value = match params {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Failure::Usage(format!("params are not valid JSON: {e}")))?,
        None => json!({}),
    };
    let file = params
        .pointer("/textDocument/uri")
        .and_then(Value::as_str)
        .and_then(warm_lsp::uri::path_from_uri);
    let target = match (&file, language) {
        (Some(file), _) => Target::File(file),
        (None, Some(language)) => Target::Language(servers::language_id(language)),
        (None, None) => Target::Any,
    };
    let result: Value = session.call(target, method, &params)?;
    super::print_json(&result);
    Ok(0)
}
