//! Command-line arguments (clap). Parsing only: commands turn these into core objects.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  warm call daemon/ping                 start the project's daemon if needed, ping it
  warm -s echo call echo '{\"hi\": 1}'    call a method of the built-in echo service
  warm start --ttl 30m                  make sure the daemon runs, idle timeout 30 minutes
  warm keepalive -- make test           keep the daemon alive while a command runs
  warm status --json                    one daemon's state, for scripts
  warm list                             every daemon of this user
  warm stop --all                       stop them all
  warm restart -s index                 a fresh daemon, after changing a worker's code
  warm init --name index -- python3 -m mytool.worker   host your own stdio JSON-RPC worker
  warm trust                            let this project's .warm.toml run its commands

Exit codes: 0 ok, 1 the method returned an error, 2 usage, 3 daemon unavailable, 4 timeout.
Environment: WARM_RUNTIME_DIR (where daemons live), WARM_RETRY_DELAYS, WARM_MAX_RESTARTS,
WARM_FALLBACK, WARM_READY_TIMEOUT, WARM_PROGRESS (progress on stderr even when it is not a
terminal; `json`: one JSON object per line), WARM_LOG (daemon log filter, e.g. debug), WARM_TRUST_ALL (1: trust every
.warm.toml, for CI and containers).";

/// Keep tools warm: one background daemon per project, shared by every client.
#[derive(Debug, Parser)]
#[command(name = "warm", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Service name: a built-in (default, echo) or one from .warm.toml.
    #[arg(short = 's', long = "service", global = true, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Project root (default: the nearest directory with .warm.toml, else the VCS root,
    /// else the nearest project manifest such as Cargo.toml or package.json, else the
    /// current directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a daemon in the foreground (what auto-start runs; also for systemd).
    Serve(ServeArgs),
    /// Make sure the daemon runs; print its pid and socket.
    Start(StartArgs),
    /// Call a method and print its result as JSON (progress goes to stderr).
    #[command(
        after_help = "Examples:\n  warm call daemon/status\n  warm -s echo call echo '[1, 2]'\n  echo '{\"ms\": 500, \"steps\": 5}' | warm -s echo call sleep -"
    )]
    Call(CallArgs),
    /// Stop the daemon gracefully and start a fresh one (after changing a worker's code).
    #[command(
        after_help = "Examples:\n  warm restart -s index            reload the index worker's code\n  warm restart --ttl 1h\n\nTo reload workers whenever their code changes, list it in .warm.toml:\n  [services.index]\n  watch = [\"mytool/**/*.py\"]"
    )]
    Restart(StartArgs),
    /// Renew the idle timeout and print how much is left.
    Ping(PingArgs),
    /// Hold a lease on the daemon while a command runs; exit with the command's code.
    Keepalive(KeepaliveArgs),
    /// Show one daemon's state.
    Status,
    /// List every daemon of this user (stale entries are cleaned).
    List,
    /// Check what warm depends on (runtime directory, daemons, inotify limits, language
    /// servers, ripgrep, the project's .warm.toml) and say how to fix each problem.
    #[command(
        after_help = "Exit code 1 when a check failed (a warning or a note does not fail).\n\nExamples:\n  warm doctor\n  warm doctor --json | jq '.[] | select(.verdict != \"ok\")'"
    )]
    Doctor,
    /// Stop the daemon gracefully (or every daemon with --all).
    Stop(StopArgs),
    /// Print the daemon's log (or its event stream).
    Logs(LogsArgs),
    /// Load-test a daemon: throughput, latency percentiles, errors by code.
    #[command(
        after_help = "Examples:\n  warm bench                                   daemon/ping, 4 connections, 10000 requests\n  warm -s echo bench --method echo --payload-bytes 1024 --pipeline 16\n  warm bench --one-shot --connections 2 --duration 10s\n  warm bench --framing binary --json"
    )]
    Bench(BenchArgs),
    /// Search code like ripgrep, from a warm index kept fresh by a file watcher.
    #[command(after_help = SEARCH_HELP, disable_help_flag = true)]
    Search(SearchArgs),
    /// Ask a language server, kept warm per project: hover, definitions, diagnostics, ...
    #[command(after_help = LSP_HELP)]
    Lsp(LspArgs),
    /// Trust a project's .warm.toml to run its commands (workers, language servers).
    #[command(after_help = TRUST_HELP)]
    Trust(TrustArgs),
    /// Write a commented starter .warm.toml in the current directory.
    #[command(
        after_help = "Examples:\n  warm init --name index -- python3 -m mytool.worker\n  warm init --name py --lsp -- pylsp\n  warm init                      (all commented out, to fill in)\n  warm init --mcp                (print the agent configuration for `warm mcp`)"
    )]
    Init(InitArgs),
    /// Make every `rg` call warm: install a link named `rg` to warm in a directory on PATH.
    #[command(after_help = SHIM_HELP)]
    Shim(ShimArgs),
    /// Serve the project's search and language servers to coding agents over MCP (stdio).
    #[command(after_help = MCP_HELP)]
    Mcp,
    /// Let systemd start this project's daemon on first use (socket activation).
    #[command(after_help = SYSTEMD_HELP)]
    Systemd(SystemdArgs),
}

const SYSTEMD_HELP: &str = "\
Writes a user unit pair for one daemon (a service of a project): a .socket that systemd
listens on, at the very path where warm's clients look for the daemon's socket, and a
.service that runs `warm serve` for it. The first connection starts the daemon; when it
exits (idle TTL, `warm stop`) systemd keeps the socket, and the next call starts it again.
Clients need nothing: they connect as always. The units name this warm binary, the
runtime directory and the PATH in effect now (where the daemon finds workers and language
servers).

Examples:
  warm systemd install -s search          then run the systemctl line it prints
  warm systemd install -s lsp-pylsp --root ~/src/app
  warm systemd uninstall -s search

See docs/lifecycle.md.";

#[derive(Debug, Args)]
pub struct SystemdArgs {
    #[command(subcommand)]
    pub command: SystemdCommand,
    /// Where user units live (default: $XDG_CONFIG_HOME/systemd/user, else
    /// ~/.config/systemd/user).
    #[arg(long, global = true, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SystemdCommand {
    /// Write the .socket and .service units of the daemon of -s SERVICE (--root DIR).
    Install,
    /// Remove them (stop them first with the systemctl line it prints).
    Uninstall,
}

const MCP_HELP: &str = "\
An MCP server on stdin/stdout for coding agents: tools `search` (ripgrep's answers from the
warm index), `lsp_hover`, `lsp_definition`, `lsp_references`, `lsp_symbols`,
`lsp_workspace_symbols`, `lsp_diagnostics`, `lsp_rename`, and each worker method a trusted
.warm.toml declares as a tool ([services.NAME.tools.TOOL]). Every session in a project shares
the project's one search daemon and one language server per language; the session holds a
lease on each daemon it uses while it lives, so none idles out under an agent.

Add it to an agent's MCP configuration as a stdio server:
  { \"mcpServers\": { \"warm\": { \"command\": \"warm\", \"args\": [\"mcp\", \"--root\", \"/path/to/project\"] } } }

See docs/agents.md.";

const SHIM_HELP: &str = "\
A link named rg to the warm binary answers exactly as ripgrep does (same flags, same output,
same exit codes), from the project's warm index. Put its directory before the real rg on
PATH: for a shell, in ~/.bashrc; for a coding agent, in the environment it runs commands
with; in CI, in the job's PATH. What warm does not implement, and any call it cannot answer,
goes to the real rg found further down PATH (or WARM_RG).

Examples:
  warm shim install ~/.local/warm-shim && export PATH=~/.local/warm-shim:$PATH
  warm shim remove ~/.local/warm-shim
  rg --debug -l TODO          says whether the index, a scan or the real rg answered";

#[derive(Debug, Args)]
pub struct ShimArgs {
    #[command(subcommand)]
    pub command: ShimCommand,
}

#[derive(Debug, Subcommand)]
pub enum ShimCommand {
    /// Create DIR/rg, a link to this warm binary (DIR is created if missing).
    Install { dir: PathBuf },
    /// Remove DIR/rg if it is a link to warm.
    Remove { dir: PathBuf },
}

const TRUST_HELP: &str = "\
A .warm.toml can name commands: the workers and language servers warm starts for the
project. A repository you cloned must not run them before you have read them, so warm runs no
command of a .warm.toml until you trust it, as it is: an edit (a git pull) needs trusting
again. Built-in services (search, echo, the built-in language servers on PATH) need no trust.

Examples:
  warm trust                    the .warm.toml of this project
  warm trust ~/src/tool         another project
  warm trust --revoke
  warm trust --list

WARM_TRUST_ALL=1 trusts every project: for CI and throwaway containers.";

pub const SEARCH_HELP: &str = "\
Search code like ripgrep, from a warm index kept fresh by a file watcher.

Usage: warm search [RG FLAGS] PATTERN [PATH ...]
       rg [RG FLAGS] PATTERN [PATH ...]       (after `warm shim install DIR`)

ripgrep's command line and output, byte for byte (ripgrep 15.2.0: every flag, its defaults,
its exit codes), answered from the project's search daemon: its first query indexes the tree
(progress on stderr), later ones take milliseconds. The daemon watches the tree: every query
sees the files as they are when it starts. The index is stored in the cache directory
($WARM_CACHE_DIR, else $XDG_CACHE_HOME/warm, else ~/.cache/warm): a daemon started later
checks it against the tree (reading again only what changed) instead of indexing afresh.
Flags that change which files are searched in a way the index does not record (--hidden,
--no-ignore, -v, ...) scan the tree in process; the few warm does not implement (--pre, -P,
--stats, -z, ...) are handed to the real rg on PATH. `--debug` says which. docs/search.md
has the table of every flag.

warm's own options:
  --status        the index: files, bytes, index size, last update (--json for scripts)
  --no-daemon     scan in process, without the daemon and its index
  --forget-index  stop the project's search daemon and remove its stored index

Examples:
  warm search parse_config
  warm search -i 'fn\\s+main' -t rust
  warm search -w Greeter -g '!tests/' src
  warm search --json TODO                 rg's JSON lines
  warm search -l -e -test -- src          patterns and paths as rg takes them
  warm search --status                    files, bytes, index size, last update

Exit codes (as rg): 0 a match, 1 no match, 2 error.";

const LSP_HELP: &str = "\
Locations are FILE:LINE:COL, 1-based, columns counting characters (as compilers print them).
Answers are printed as `path:line:col: text` lines; --json prints the server's LSP answer.

Examples:
  warm lsp hover src/app.py:12:8
  warm lsp definition src/app.py:12:8
  warm lsp references src/app.py:3:5
  warm lsp diagnostics src/*.py          exit code 1 when any error is reported
  warm lsp rename src/app.py:3:5 new_name --apply
  warm lsp workspace-symbols Greeter --language python
  warm lsp raw textDocument/foldingRange '{\"textDocument\": {\"uri\": \"file:///abs/a.py\"}}'
  warm lsp servers                        which server each language would use

The server comes from .warm.toml ([services.NAME] framing = \"lsp\", languages = [...] or
files = [...]), else the first installed of the built-in table (see `warm lsp servers`). Each
server runs in its own daemon (service `lsp-ID` for built-in ones, e.g. lsp-pylsp).";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Concurrent connections (each a thread with its own socket).
    #[arg(short = 'c', long, default_value_t = 4)]
    pub connections: usize,
    /// Total requests, shared by the connections.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub requests: u64,
    /// Run for this long instead of a number of requests, e.g. 10s.
    #[arg(short = 'd', long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Requests in flight per connection.
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,
    /// The method to call.
    #[arg(short = 'm', long, default_value = "daemon/ping")]
    pub method: String,
    /// Params as JSON.
    #[arg(long)]
    pub params: Option<String>,
    /// Add a string of this many bytes to the params (as "payload").
    #[arg(long, value_name = "BYTES")]
    pub payload_bytes: Option<usize>,
    /// ndjson, lsp or binary.
    #[arg(long, default_value = "ndjson")]
    pub framing: String,
    /// A new connection for every request (what one-shot CLI calls pay).
    #[arg(long)]
    pub one_shot: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// ripgrep's command line: flags, pattern, paths (see SEARCH FLAGS below).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "RG_ARGS"
    )]
    pub args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct LspArgs {
    #[command(subcommand)]
    pub command: LspCommand,
    /// Give up waiting for the answer after this long (exit code 4).
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LspCommand {
    /// The documentation and type of the symbol at a location.
    Hover { location: String },
    /// Where the symbol at a location is defined.
    Definition { location: String },
    /// Where the type of the symbol at a location is defined.
    TypeDefinition { location: String },
    /// Implementations of the interface or method at a location.
    Implementation { location: String },
    /// Every reference to the symbol at a location (its declaration included).
    References {
        location: String,
        /// Leave the declaration out.
        #[arg(long)]
        no_declaration: bool,
    },
    /// The symbols of a file (classes, functions, ...), nested ones as Outer.inner.
    Symbols { file: PathBuf },
    /// Symbols of the whole project matching a query.
    WorkspaceSymbols {
        query: String,
        /// Which language's server to ask (python, py, typescript, ts, bash, cpp, ...;
        /// default: the project's only configured server).
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
    },
    /// The diagnostics of files, for their content on disk now.
    Diagnostics {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How long to wait for the server to publish them.
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        wait: String,
    },
    /// Rename the symbol at a location: prints the edit as a diff; --apply writes it.
    Rename {
        location: String,
        new_name: String,
        /// Write the edited files.
        #[arg(long)]
        apply: bool,
    },
    /// Print a file as the server formats it.
    Format { file: PathBuf },
    /// Send any request; params as JSON (a textDocument it names is synced first).
    Raw {
        method: String,
        params: Option<String>,
        /// Which language's server to ask (python, py, ts, bash, cpp, ...), when params
        /// name no file.
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
    },
    /// Which server each language would use, and whether it is installed.
    Servers,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The project (default: the current one): its nearest .warm.toml is trusted.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Take the trust back.
    #[arg(long, conflicts_with = "list")]
    pub revoke: bool,
    /// List the trusted files.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the service table.
    #[arg(long, default_value = "main", value_name = "NAME")]
    pub name: String,
    /// The worker is a language server (LSP framing).
    #[arg(long)]
    pub lsp: bool,
    /// Replace an existing .warm.toml.
    #[arg(long)]
    pub force: bool,
    /// Write nothing: print the JSON that adds `warm mcp` for this project to a coding
    /// agent's MCP configuration.
    #[arg(long, conflicts_with_all = ["name", "lsp", "force", "command"])]
    pub mcp: bool,
    /// The worker command, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Idle timeout, e.g. 30s, 10m, 0 (never).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Idle timeout, e.g. 30s, 10m, 0 (never); applied to a running daemon too.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Method name, e.g. daemon/status.
    pub method: String,
    /// Params as JSON, or - to read them from stdin.
    pub params: Option<String>,
    /// Give up waiting for the answer after this long (exit code 4).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// When no daemon can be reached, fail (exit 3) instead of running the service's worker
    /// directly for this one call.
    #[arg(long)]
    pub no_fallback: bool,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Ping every SECS seconds until interrupted.
    #[arg(long = "loop", value_name = "SECS")]
    pub every: Option<f64>,
}

#[derive(Debug, Args)]
pub struct KeepaliveArgs {
    /// The command to run.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Stop every daemon of this user.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing as the log grows.
    #[arg(short, long)]
    pub follow: bool,
    /// Show events.jsonl instead of daemon.log.
    #[arg(long)]
    pub events: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
}
