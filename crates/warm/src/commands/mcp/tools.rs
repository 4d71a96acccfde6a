//! The tools `warm mcp` offers, each answered by running the `warm` command a person would
//! type (`warm search ...`, `warm lsp ...`) in the project root: same answers, same
//! freshness, same messages.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;

use super::command::{run_warm, Ran};
use super::leases::Leases;
use super::worker_tools::{self, WorkerTool};

/// Output lines a search returns at most by default: well under 10,000 tokens.
const DEFAULT_MAX_LINES: usize = 200;
/// Characters kept of one output line (a minified file's line can be megabytes).
const MAX_LINE_CHARS: usize = 400;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// A regular expression (Rust regex syntax, as ripgrep's), or a literal string with
    /// `fixed_strings`.
    pattern: String,
    /// Files or directories to search, relative to the project root (default: all of it).
    #[serde(default)]
    paths: Vec<String>,
    /// Globs of files to include, or to exclude with a leading `!` (ripgrep's `-g`), e.g.
    /// `*.py` or `!tests/**`.
    #[serde(default)]
    globs: Vec<String>,
    /// File types to search (ripgrep's `-t`), e.g. `rust`, `py`, `ts`.
    #[serde(default)]
    types: Vec<String>,
    /// Match case-insensitively.
    #[serde(default)]
    ignore_case: bool,
    /// Take `pattern` as a literal string, not a regular expression.
    #[serde(default)]
    fixed_strings: bool,
    /// Match whole words only.
    #[serde(default)]
    word: bool,
    /// Lines of context to show before and after each match.
    context: Option<u32>,
    /// The most output lines to return (default 200).
    max_lines: Option<usize>,
    /// Output lines to skip: to page on from where an earlier call stopped.
    offset: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionArgs {
    /// The file, relative to the project root.
    file: String,
    /// 1-based line.
    line: u32,
    /// 1-based column, counting characters.
    column: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    /// The file, relative to the project root.
    file: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesArgs {
    /// The files, relative to the project root: each is checked against the others as they
    /// are on disk now.
    files: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSymbolsArgs {
    /// Part of the symbol's name.
    query: String,
    /// The language whose server to ask (e.g. `python`, `typescript`, `c`), when the project
    /// has several.
    language: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameArgs {
    /// The file, relative to the project root.
    file: String,
    /// 1-based line of the symbol.
    line: u32,
    /// 1-based column of the symbol, counting characters.
    column: u32,
    /// The symbol's new name.
    new_name: String,
    /// Write the edits to the files (default: only show them as a diff).
    #[serde(default)]
    apply: bool,
}

/// The MCP server: the project root, and the tools.
#[derive(Clone)]
pub struct WarmTools {
    root: PathBuf,
    leases: Arc<Leases>,
    tool_router: ToolRouter<Self>,
}

impl WarmTools {
    /// The built-in tools and the worker tools `.warm.toml` declares.
    pub fn new(root: PathBuf, leases: Arc<Leases>, worker_tools: Vec<WorkerTool>) -> WarmTools {
        let mut tool_router = Self::tool_router();
        for tool in worker_tools {
            tool_router.add_route(worker_tools::route(tool));
        }
        WarmTools {
            root,
            leases,
            tool_router,
        }
    }

    /// Runs `warm ARGS` in the project root for a tool call (see [`run_warm`]); then leases
    /// any daemon of the project the call started.
    pub async fn run(
        &self,
        args: &[String],
        waiting: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<Ran, ErrorData> {
        let ran = run_warm(&self.root, args, waiting, context).await;
        self.leases.hold_running_soon();
        ran
    }

    /// A `warm lsp` query: its lines, or what it said when it found nothing; its error as a
    /// tool error (no server installed, a bad location, a daemon unavailable, a timeout).
    async fn lsp(
        &self,
        args: Vec<String>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut full = vec!["lsp".to_owned()];
        full.extend(args);
        let ran = self
            .run(&full, "waiting for the language server", context)
            .await?;
        Ok(match ran.code {
            // 1: no answer (no hover, no definition), or diagnostics that include an error.
            0 | 1 => {
                let mut text = ran.stdout.trim_end().to_owned();
                let said = ran.stderr.trim();
                if !said.is_empty() {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(said);
                }
                if text.is_empty() {
                    // Only `diagnostics` can succeed saying nothing: a clean file.
                    text = if full.get(1).is_some_and(|c| c == "diagnostics") {
                        "No diagnostics.".into()
                    } else {
                        "No answer.".into()
                    };
                }
                success(text)
            }
            _ => failure(ran.stderr.trim()),
        })
    }
}

fn position(args: &PositionArgs) -> String {
    format!("{}:{}:{}", args.file, args.line, args.column)
}

#[tool_router]
impl WarmTools {
    #[tool(
        description = "Search the project's files like ripgrep (rg), from a warm index kept fresh by a file watcher: the same matches rg would print now, as `path:line:text` lines (context lines as `path-line-text`). Respects .gitignore. Returns at most `max_lines` lines (default 200) and says how many more there are; call again with `offset` to page on."
    )]
    async fn search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut command: Vec<String> = [
            "search",
            "--line-number",
            "--no-heading",
            "--with-filename",
            "--color",
            "never",
        ]
        .map(str::to_owned)
        .to_vec();
        for (on, flag) in [
            (args.ignore_case, "--ignore-case"),
            (args.fixed_strings, "--fixed-strings"),
            (args.word, "--word-regexp"),
        ] {
            if on {
                command.push(flag.into());
            }
        }
        if let Some(lines) = args.context {
            command.push(format!("--context={lines}"));
        }
        for glob in &args.globs {
            command.push(format!("--glob={glob}"));
        }
        for kind in &args.types {
            command.push(format!("--type={kind}"));
        }
        command.push(format!("--regexp={}", args.pattern));
        command.push("--".into());
        command.extend(args.paths.iter().cloned());
        let ran = self.run(&command, "searching", &context).await?;
        match ran.code {
            0 => Ok(success(page(
                &ran.stdout,
                args.offset.unwrap_or(0),
                args.max_lines.unwrap_or(DEFAULT_MAX_LINES),
            ))),
            1 if ran.stderr.trim().is_empty() => Ok(success("No matches.".into())),
            _ => Ok(failure(ran.stderr.trim())),
        }
    }

    #[tool(
        description = "The language server's hover text at a position: the symbol's type, signature and documentation. Positions are 1-based; the column counts characters."
    )]
    async fn lsp_hover(
        &self,
        Parameters(args): Parameters<PositionArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.lsp(vec!["hover".into(), position(&args)], &context)
            .await
    }

    #[tool(
        description = "Where the symbol at a position is defined, as `path:line:col: line text`. Answers for the files as they are on disk now."
    )]
    async fn lsp_definition(
        &self,
        Parameters(args): Parameters<PositionArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.lsp(vec!["definition".into(), position(&args)], &context)
            .await
    }

    #[tool(
        description = "Every reference to the symbol at a position (its declaration included), one `path:line:col: line text` per line."
    )]
    async fn lsp_references(
        &self,
        Parameters(args): Parameters<PositionArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.lsp(vec!["references".into(), position(&args)], &context)
            .await
    }

    #[tool(description = "The symbols (classes, functions, ...) a file defines, with their lines.")]
    async fn lsp_symbols(
        &self,
        Parameters(args): Parameters<FileArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.lsp(vec!["symbols".into(), args.file], &context).await
    }

    #[tool(description = "Symbols anywhere in the project whose name matches a query.")]
    async fn lsp_workspace_symbols(
        &self,
        Parameters(args): Parameters<WorkspaceSymbolsArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut command = vec!["workspace-symbols".to_owned(), args.query];
        if let Some(language) = args.language {
            command.extend(["--language".to_owned(), language]);
        }
        self.lsp(command, &context).await
    }

    #[tool(
        description = "The language server's diagnostics (errors, warnings) of one or more files, for their content on disk now, as `path:line:col: severity: message` lines. Says so when the server could not confirm them in time."
    )]
    async fn lsp_diagnostics(
        &self,
        Parameters(args): Parameters<FilesArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.files.is_empty() {
            return Ok(failure("name at least one file"));
        }
        let mut command = vec!["diagnostics".to_owned()];
        command.extend(args.files);
        self.lsp(command, &context).await
    }

    #[tool(
        description = "Rename the symbol at a position everywhere it is used. Returns the edit as a unified diff; writes the files only with `apply: true` (never a file outside the project)."
    )]
    async fn lsp_rename(
        &self,
        Parameters(args): Parameters<RenameArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let at = format!("{}:{}:{}", args.file, args.line, args.column);
        let mut command = vec!["rename".to_owned(), at, args.new_name];
        if args.apply {
            command.push("--apply".into());
        }
        self.lsp(command, &context).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for WarmTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warm", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Code search and language-server queries over the project at {}, answered by its warm daemons (shared by every session, never stale): `search` is ripgrep; the lsp_* tools ask the project's language server; any other tool is a method of one of the project's own warm workers. Paths are relative to that root; positions are 1-based.",
                self.root.display()
            ))
    }
}

pub(super) fn success(text: String) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// A tool error the agent sees, in the words the CLI would print.
pub(super) fn failure(message: &str) -> CallToolResult {
    let message = if message.is_empty() {
        "warm failed without saying why"
    } else {
        message
    };
    CallToolResult::error(vec![ContentBlock::text(message.to_owned())])
}

/// Lines `offset..offset + max` of a search's output, each cut to `MAX_LINE_CHARS`, with a
/// note of how many there were when not all are shown.
fn page(output: &str, offset: usize, max: usize) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let total = lines.len();
    let shown: Vec<String> = lines
        .iter()
        .skip(offset)
        .take(max)
        .map(|line| match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!("{}… [line cut]", &line[..cut]),
            None => (*line).to_owned(),
        })
        .collect();
    let end = (offset + shown.len()).min(total);
    let mut text = shown.join("\n");
    if offset > 0 || end < total {
        text.push_str(&format!(
            "\n[lines {}–{end} of {total}{}]",
            offset + 1,
            if end < total {
                format!("; call again with offset={end} for more")
            } else {
                String::new()
            }
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_output_is_paged_with_a_note_and_long_lines_are_cut() {
        let output: String = (1..=5).map(|n| format!("a.rs:{n}:x\n")).collect();
        assert_eq!(page(&output, 0, 10), output.trim_end());
        let first = page(&output, 0, 2);
        assert!(first.starts_with("a.rs:1:x\na.rs:2:x\n[lines 1–2 of 5; call again with offset=2"));
        let last = page(&output, 4, 2);
        assert_eq!(last, "a.rs:5:x\n[lines 5–5 of 5]");
        let long = format!("a.rs:1:{}\n", "é".repeat(1000));
        assert!(page(&long, 0, 1).ends_with("… [line cut]"));
        assert!(page(&long, 0, 1).chars().count() < MAX_LINE_CHARS + 20);
    }
}
