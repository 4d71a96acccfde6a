//! `warm init`: write a commented starter `.warm.toml`.

use std::ffi::OsString;
use std::path::Path;

use warm_runtime::config::{Config, CONFIG_FILE};

use crate::cli::InitArgs;
use crate::failure::{CommandResult, Failure};

pub fn run(dir: &Path, args: &InitArgs) -> CommandResult {
    warm_runtime::paths::validate_service_name(&args.name)
        .map_err(|e| Failure::Usage(format!("--name: {e}")))?;
    let path = dir.join(CONFIG_FILE);
    if path.exists() && !args.force {
        return Err(Failure::Usage(format!(
            "{} already exists; edit it, or pass --force to replace it",
            path.display()
        )));
    }
    let text = starter(&args.name, args.lsp, &args.command);
    // The starter must pass the same validation as any hand-written file.
    Config::parse(&path, &text)
        .map_err(|e| Failure::Other(format!("internal: starter config is invalid: {e}")))?;
    std::fs::write(&path, &text)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))?;
    errln!("wrote {}", path.display());
    if args.command.is_empty() {
        errln!(
            "next: uncomment [services.{}] and set its command",
            args.name
        );
    } else {
        errln!("next: warm -s {} call METHOD '{{...}}'", args.name);
    }
    Ok(())
}

/// Prints the `mcpServers` entry that runs `warm mcp` for `root`, with this binary's path, so
/// it works from an agent whose PATH lacks warm.
pub fn print_mcp_config(root: &Path) -> CommandResult {
    let warm = std::env::current_exe()
        .map_err(|e| Failure::Other(format!("cannot find the warm executable: {e}")))?;
    // Structs, not `json!`, to keep the keys in the order agents' documentation shows them.
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        #[serde(rename = "mcpServers")]
        servers: Servers<'a>,
    }
    #[derive(serde::Serialize)]
    struct Servers<'a> {
        warm: Server<'a>,
    }
    #[derive(serde::Serialize)]
    struct Server<'a> {
        command: &'a str,
        args: [&'a str; 3],
    }
    let (warm, root) = (warm.to_string_lossy(), root.to_string_lossy());
    let entry = Entry {
        servers: Servers {
            warm: Server {
                command: &warm,
                args: ["mcp", "--root", &root],
            },
        },
    };
    // Pretty even into a pipe: it is meant to be pasted.
    let text = serde_json::to_string_pretty(&entry)
        .map_err(|e| Failure::Other(format!("internal: {e}")))?;
    outln!("{text}");
    errln!("add this to the agent's MCP configuration (docs/agents.md says where for each agent)");
    Ok(())
}

fn toml_string(text: &str) -> String {
    // A TOML basic string has JSON's escapes.
    serde_json::Value::from(text).to_string()
}

fn starter(name: &str, lsp: bool, command: &[OsString]) -> String {
    let (framing, timeout, comment) = if lsp {
        ("lsp", "30s", "a language server, spoken to in LSP framing")
    } else {
        (
            "ndjson",
            "60s",
            "a worker reading JSON-RPC on stdin, one JSON value per line",
        )
    };
    let command_line = if command.is_empty() {
        "command = [\"python3\", \"-m\", \"mytool.worker\"]".to_owned()
    } else {
        let words: Vec<String> = command
            .iter()
            .map(|w| toml_string(&w.to_string_lossy()))
            .collect();
        format!("command = [{}]", words.join(", "))
    };
    let table = format!(
        "[services.{name}]\n\
         # {comment}\n\
         {command_line}\n\
         framing = \"{framing}\"\n\
         # Idle time before the daemon exits; \"0\" keeps it forever.\n\
         ttl = \"10m\"\n\
         # Worker processes sharing the load.\n\
         workers = 1\n\
         # Methods that must run alone (they wait for others and hold new ones back).\n\
         exclusive = []\n\
         # A request without an answer after this is failed (-32001) and the worker replaced.\n\
         request_timeout = \"{timeout}\"\n\
         # Restarts allowed per window before the service is reported unavailable.\n\
         restart = {{ attempts = 2, window = \"60s\" }}\n\
         # Extra environment for the workers.\n\
         env = {{}}\n\
         \n\
         # Offer a method to coding agents as a `warm mcp` tool (docs/agents.md):\n\
         # [services.{name}.tools.TOOL]\n\
         # description = \"What it does and answers, written for the model.\"\n\
         # method = \"METHOD\"\n"
    );
    let table = if command.is_empty() {
        // Commented out until a real command is filled in, so the file is valid as written.
        table
            .lines()
            .map(|l| {
                if l.starts_with('#') {
                    l.to_owned()
                } else {
                    format!("# {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    } else {
        table
    };
    format!(
        "# warm configuration (every key: docs/configuration.md in the warm repository).\n\
         # Each [services.NAME] table is a daemon per project: `warm -s NAME call METHOD PARAMS`.\n\n\
         {table}\n\
         [client]\n\
         # Pauses between retries when the daemon is busy or unreachable.\n\
         retry_delays = [\"100ms\", \"500ms\", \"1s\", \"2s\"]\n\
         # Daemon starts allowed per call before giving up.\n\
         max_restarts = 2\n\
         # When no daemon can be reached, run the worker directly for that call.\n\
         fallback = true\n"
    )
}
