//! `[services.NAME.tools.TOOL]`: a worker method offered to coding agents as a `warm mcp`
//! tool, so a team's own warm worker becomes an agent tool without an MCP server of its own.
//!
//! Checked when `.warm.toml` is loaded, like every other key: a tool name an agent could not
//! call, a missing description, or a schema that is not an object schema is an error naming
//! the key, not a tool that silently never appears.

use serde::{Deserialize, Serialize};

/// Tool names `warm mcp` keeps for its own tools: `search` and every `lsp_*`.
pub const RESERVED_TOOL_NAMES: &str = "`search` and names starting with `lsp_`";

/// The longest tool name agents accept (the MCP specification's limit is 128; many clients
/// cut at 64).
const MAX_NAME: usize = 64;

/// One tool, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    /// What the tool does, written for a model: when to call it and what it answers.
    pub description: String,
    /// The worker method it calls (default: the tool's name).
    pub method: Option<String>,
    /// A JSON Schema of the arguments (an object schema), which are the method's params
    /// (default: any object).
    pub input_schema: Option<toml::Value>,
}

impl ToolConfig {
    /// The worker method the tool `name` calls.
    pub fn method_for<'a>(&'a self, name: &'a str) -> &'a str {
        self.method.as_deref().unwrap_or(name)
    }

    /// The input schema as JSON: the one written, or "any object".
    pub fn input_schema_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let written = self
            .input_schema
            .as_ref()
            .and_then(|schema| serde_json::to_value(schema).ok());
        match written {
            Some(serde_json::Value::Object(schema)) => schema,
            _ => {
                let mut any = serde_json::Map::new();
                any.insert("type".into(), "object".into());
                any
            }
        }
    }
}

/// Checks one tool's name and table; `key` is its `.warm.toml` key.
///
/// # Errors
/// The key and what is wrong.
pub fn validate(key: &str, name: &str, tool: &ToolConfig) -> Result<(), String> {
    let name_ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !name_ok {
        return Err(format!(
            "{key}: a tool name is 1 to {MAX_NAME} of the characters A-Z a-z 0-9 _ -"
        ));
    }
    if name == "search" || name.starts_with("lsp_") {
        return Err(format!(
            "{key}: {RESERVED_TOOL_NAMES} are warm's own tools; name it differently"
        ));
    }
    if tool.description.trim().is_empty() {
        return Err(format!(
            "{key}.description: say what the tool does and answers, for the model that calls it"
        ));
    }
    if tool.method.as_deref().is_some_and(str::is_empty) {
        return Err(format!("{key}.method: must name a method"));
    }
    if let Some(schema) = &tool.input_schema {
        let is_object_schema = schema
            .as_table()
            .and_then(|table| table.get("type"))
            .and_then(toml::Value::as_str)
            == Some("object");
        if !is_object_schema {
            return Err(format!(
                "{key}.input_schema: must be an object schema, e.g. {{ type = \"object\", \
                 properties = {{ name = {{ type = \"string\" }} }} }}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(description: &str, schema: Option<&str>) -> ToolConfig {
        ToolConfig {
            description: description.into(),
            method: None,
            input_schema: schema.map(|s| {
                toml::from_str::<toml::Table>(s)
                    .expect("a TOML table")
                    .into()
            }),
        }
    }

    #[test]
    fn names_descriptions_and_schemas_are_checked() {
        let good = tool("Finds a symbol.", Some("type = \"object\""));
        assert_eq!(validate("k", "find-symbol_2", &good), Ok(()));
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(validate("k", bad, &good)
                .expect_err("refused")
                .contains("tool name"));
        }
        for reserved in ["search", "lsp_hover", "lsp_mine"] {
            assert!(validate("k", reserved, &good)
                .expect_err("refused")
                .contains("warm's own"));
        }
        let silent = tool("  ", None);
        assert!(validate("k", "t", &silent)
            .expect_err("refused")
            .contains("k.description"));
        let array = tool("d", Some("type = \"array\""));
        assert!(validate("k", "t", &array)
            .expect_err("refused")
            .contains("k.input_schema"));
    }

    #[test]
    fn the_schema_defaults_to_any_object_and_the_method_to_the_name() {
        let bare = tool("d", None);
        assert_eq!(
            serde_json::Value::Object(bare.input_schema_json()),
            serde_json::json!({"type": "object"})
        );
        assert_eq!(bare.method_for("find"), "find");
        let written = tool("d", Some("type = \"object\"\nrequired = [\"q\"]"));
        assert_eq!(
            serde_json::Value::Object(written.input_schema_json()),
            serde_json::json!({"type": "object", "required": ["q"]})
        );
    }
}
