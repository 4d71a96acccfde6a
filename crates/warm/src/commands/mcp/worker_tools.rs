//! The tools a project's `.warm.toml` declares (`[services.NAME.tools.TOOL]`): each calls one
//! method of one of the project's warm workers, as `warm -s NAME call METHOD ARGS` would, so a
//! team's own worker becomes an agent tool without an MCP server of its own.
//!
//! Offered only when the user trusts the `.warm.toml` as it is: a tool's description is read by
//! the model, and a cloned repository must not be able to put words there (nor, as ever, run
//! a worker) before its user has read the file.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolResponse, Tool};
use rmcp::ErrorData;
use warm_runtime::config::Config;

use super::tools::{failure, success, WarmTools};

/// One declared tool.
#[derive(Debug, Clone)]
pub struct WorkerTool {
    pub name: String,
    pub service: String,
    pub method: String,
    pub description: String,
    pub input_schema: Arc<serde_json::Map<String, serde_json::Value>>,
}

/// The tools `config` declares, or none (with why on stderr) when the file is not trusted.
pub fn declared(config: &Config) -> Vec<WorkerTool> {
    let tools: Vec<WorkerTool> = config
        .services()
        .flat_map(|service| {
            service.config.tools.iter().map(|(name, tool)| WorkerTool {
                name: name.clone(),
                service: service.name.clone(),
                method: tool.method_for(name).to_owned(),
                description: tool.description.clone(),
                input_schema: Arc::new(tool.input_schema_json()),
            })
        })
        .collect();
    let Some(path) = &config.path else {
        return tools;
    };
    if tools.is_empty() || warm_client::trust::is_file_trusted(path) {
        return tools;
    }
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    errln!(
        "warm mcp: {} declares the tools {} but is not trusted, so they are not offered; read \
         it, then run `warm trust {}` and start the session again",
        path.display(),
        names.join(", "),
        path.parent().unwrap_or(path).display()
    );
    Vec::new()
}

/// The route that answers `tool`: the method's result as JSON text, or its error (the
/// worker's message, as `warm call` prints it) as a tool error.
pub fn route(tool: WorkerTool) -> ToolRoute<WarmTools> {
    let attr = Tool::new(
        tool.name.clone(),
        tool.description.clone(),
        tool.input_schema.clone(),
    );
    ToolRoute::new_dyn(attr, move |call: ToolCallContext<'_, WarmTools>| {
        let tool = tool.clone();
        Box::pin(async move {
            let params = serde_json::Value::Object(call.arguments.unwrap_or_default());
            let args = [
                "--service",
                &tool.service,
                "call",
                &tool.method,
                &params.to_string(),
            ]
            .map(str::to_owned);
            let waiting = format!("waiting for {} to answer {}", tool.service, tool.method);
            let ran = call
                .service
                .run(&args, &waiting, &call.request_context)
                .await?;
            let result = match ran.code {
                0 => success(ran.stdout.trim_end().to_owned()),
                _ => failure(ran.stderr.trim()),
            };
            Ok::<CallToolResponse, ErrorData>(result.into())
        })
    })
}
