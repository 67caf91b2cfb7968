//! Prompts for the questions teams ask most ("what did users complain about?"), each a plan of tool calls whose query bodies are tested against the sandbox.

use serde_json::{Value, json};

/// A prompt: its name, what it is for, and whether it takes `since`.
pub struct PromptSpec {
    /// The prompt's name.
    pub name: &'static str,
    /// What it asks.
    pub description: &'static str,
}

/// Every prompt.
pub const PROMPTS: &[PromptSpec] = &[
    PromptSpec {
        name: "complaints",
        description: "What did users complain about? Negative feedback and the topics of threads with negative feedback, optionally since a date.",
    },
    PromptSpec {
        name: "documentation_gaps",
        description: "Which questions does the documentation not answer? Off-documentation threads grouped by subject, optionally since a date.",
    },
];

/// The description of the `since` argument every prompt takes.
pub const SINCE: &str = "An ISO 8601 date or time (such as 2025-06-01); only what happened since then. All of the data when absent.";

/// A condition `field >= since`, joined with `rest` when there is one.
fn since_filter(field: &str, since: Option<&str>, rest: Option<Value>) -> Option<Value> {
    let time = since
        .map(|since| json!({"condition": {"field": field, "operator": "gte", "value": since}}));
    match (time, rest) {
        (Some(time), Some(rest)) => Some(json!({"and": [time, rest]})),
        (Some(only), None) | (None, Some(only)) => Some(only),
        (None, None) => None,
    }
}

fn with_where(mut body: Value, filter: Option<Value>) -> Value {
    if let (Some(object), Some(filter)) = (body.as_object_mut(), filter) {
        object.insert("where".into(), filter);
    }
    body
}

/// The tool calls a prompt plans: `(tool, arguments, why)`.
pub fn plan(name: &str, since: Option<&str>) -> Option<Vec<(&'static str, Value, &'static str)>> {
    match name {
        "complaints" => Some(vec![
            (
                "query_feedback",
                with_where(
                    json!({"select": [
                        {"type": "field", "field": "details"},
                        {"type": "field", "field": "reasons"},
                        {"type": "field", "field": "conversationId"},
                        {"type": "field", "field": "createdAt"},
                    ]}),
                    since_filter(
                        "createdAt",
                        since,
                        Some(
                            json!({"condition": {"field": "type", "operator": "eq", "value": "negative"}}),
                        ),
                    ),
                ),
                "the negative feedback itself, with its reasons and details",
            ),
            (
                "query_semantic_threads",
                with_where(
                    json!({
                        "select": [
                            {"type": "field", "field": "subject"},
                            {"type": "aggregation", "aggregation": "count", "field": "id"},
                        ],
                        "groupBy": [{"field": "subject"}],
                        "orderBy": [{"field": "count_id", "direction": "desc"}],
                    }),
                    since_filter(
                        "firstMessageTime",
                        since,
                        Some(
                            json!({"condition": {"field": "hasNegativeFeedback", "operator": "eq", "value": true}}),
                        ),
                    ),
                ),
                "the subjects of threads that drew negative feedback, most frequent first",
            ),
        ]),
        "documentation_gaps" => Some(vec![(
            "query_semantic_threads",
            with_where(
                json!({
                    "select": [
                        {"type": "field", "field": "subject"},
                        {"type": "aggregation", "aggregation": "count", "field": "id"},
                    ],
                    "groupBy": [{"field": "subject"}],
                    "orderBy": [{"field": "count_id", "direction": "desc"}],
                }),
                since_filter(
                    "firstMessageTime",
                    since,
                    Some(
                        json!({"condition": {"field": "isDocumented", "operator": "eq", "value": false}}),
                    ),
                ),
            ),
            "the subjects of questions the documentation does not cover, most frequent first",
        )]),
        _ => None,
    }
}

/// The text of a prompt: the question and the calls that answer it.
pub fn text(name: &str, since: Option<&str>) -> Option<String> {
    let spec = PROMPTS.iter().find(|prompt| prompt.name == name)?;
    let mut text = format!("{}\n\n", spec.description);
    if let Some(since) = since {
        text.push_str(&format!("Consider only what happened since {since}.\n\n"));
    }
    text.push_str("Answer with these tool calls of the inkeep-analytics server, then summarise what they show, citing conversation ids:\n\n");
    for (index, (tool, arguments, why)) in plan(name, since)?.into_iter().enumerate() {
        text.push_str(&format!(
            "{}. `{tool}` for {why}:\n   {arguments}\n",
            index + 1
        ));
    }
    text.push_str("\nOpen single conversations with `get_conversation` to quote users. The query language is the resource inkeep-analytics://guide/query-language.\n");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tools::{self, CallError, Payload};
    use inkeep_analytics::generated::operations;

    /// Every planned call runs against the sandbox, with and without `since`.
    #[tokio::test]
    async fn every_planned_call_runs_against_the_sandbox() {
        let sandbox = inkeep_analytics_sandbox::Sandbox::start()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let client = inkeep_analytics::Client::builder()
            .api_key(sandbox.api_key())
            .base_url(sandbox.base_url())
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        for prompt in PROMPTS {
            for since in [None, Some("2020-01-01T00:00:00Z")] {
                let calls = plan(prompt.name, since).unwrap_or_default();
                assert!(!calls.is_empty(), "{}", prompt.name);
                let text = text(prompt.name, since).unwrap_or_default();
                for (tool, arguments, _) in calls {
                    assert!(text.contains(&arguments.to_string()), "{text}");
                    let operation = operations::by_client_method(tool)
                        .unwrap_or_else(|| panic!("{tool} is not a tool"));
                    let Value::Object(arguments) = arguments else {
                        panic!("arguments are an object");
                    };
                    match tools::call(&client, operation, &arguments).await {
                        Ok(Payload::Json(answer)) => {
                            // The demo data has both kinds of thread and negative feedback since 2020.
                            let rows = answer["data"]["result"].as_array().map_or(0, Vec::len);
                            assert!(rows > 0, "{} {tool}: no rows in {answer}", prompt.name);
                        }
                        Ok(Payload::Csv(_)) => panic!("{tool} answered CSV"),
                        Err(CallError::Sdk(error)) => {
                            panic!("{} {tool} {arguments:?}: {error}", prompt.name)
                        }
                        Err(_) => panic!("{} {tool}: refused", prompt.name),
                    }
                }
            }
        }
        assert!(text("nothing", None).is_none());
        let _ = sandbox.shutdown().await;
    }
}
