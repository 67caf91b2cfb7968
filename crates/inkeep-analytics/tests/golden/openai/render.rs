//! How the goldens under `turns/` show a stored conversation, one line per message; the SDK's
//! workspace tests (`tests/it/openai.rs`) and the program's (`inkeep-analytics-cli/tests/cli/openai.rs`)
//! both include this file with `#[path]`, so that the two render the goldens alike.

use serde_json::Value;

/// A stored conversation, one line per message: its id, its OpenAI role, what it says, and the
/// tool calls and results it holds.
pub(crate) fn render(stored: &Value) -> String {
    let mut text = String::new();
    for message in stored["messages"].as_array().into_iter().flatten() {
        let openai = &message["properties"]["openai"];
        let role = openai["role"].as_str().or(message["role"].as_str());
        let content = match &message["content"] {
            Value::String(text) if text.is_empty() => "(no content)".to_string(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let mut line = format!(
            "{}  {}  {content}",
            message["id"].as_str().unwrap_or("(no id)"),
            role.unwrap_or("(no role)")
        );
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            line.push_str(&format!(
                "  [calls {} {}]",
                call["function"]["name"].as_str().unwrap_or("?"),
                call["id"].as_str().unwrap_or("?")
            ));
        }
        for result in openai["tool_results"].as_array().into_iter().flatten() {
            line.push_str(&format!(
                "  [result of {}: {}]",
                result["tool_call_id"].as_str().unwrap_or("?"),
                result["content"].as_str().unwrap_or("?")
            ));
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}
