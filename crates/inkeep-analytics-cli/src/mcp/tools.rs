//! The tools: one per operation of the SDK's operation table, named after the `Client` method, described and typed by the spec, and called through the `Client`.

use std::sync::Arc;

use futures::TryStreamExt;
use inkeep_analytics::generated::operations::{self, Operation};
use inkeep_analytics::{Client, Error, types};
use rmcp::model::{Tool, ToolAnnotations};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::budget::{Paging, RESULT_OFFSET};
use super::schema::Spec;

/// One tool and what the server needs to run it.
pub struct ToolEntry {
    /// The operation it calls.
    pub operation: &'static Operation,
    /// The tool as `tools/list` shows it.
    pub tool: Tool,
    /// Whether it only reads.
    pub read_only: bool,
    /// How a cut result continues.
    pub paging: Paging,
}

/// Why the catalog could not be built.
#[derive(Debug)]
pub enum CatalogError {
    /// The embedded spec does not parse.
    Spec(super::schema::YamlError),
    /// An operation of the table is missing from the spec.
    MissingOperation(&'static str),
    /// The spec describes an operation's input as something other than an object.
    NotAnObject(&'static str),
    /// `--tools` named something that is not a tool.
    UnknownTools(Vec<String>),
    /// `--tools` named a write without `--allow-writes`.
    WritesNotAllowed(Vec<String>),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogError::Spec(error) => write!(f, "the embedded spec does not parse: {error}"),
            CatalogError::MissingOperation(id) => {
                write!(f, "the operation {id} is not in the embedded spec")
            }
            CatalogError::NotAnObject(id) => {
                write!(f, "the input of {id} is not an object in the embedded spec")
            }
            CatalogError::UnknownTools(names) => write!(
                f,
                "no such tool: {}; the tools are {}",
                names.join(", "),
                operations::ALL
                    .iter()
                    .map(|operation| operation.client_method)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CatalogError::WritesNotAllowed(names) => write!(
                f,
                "{} write or delete; add --allow-writes to offer {}",
                names.join(", "),
                if names.len() == 1 { "it" } else { "them" }
            ),
        }
    }
}

/// Which tools to offer.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Offer the writes and deletes too.
    pub allow_writes: bool,
    /// Offer only these (empty: all that are allowed).
    pub only: Vec<String>,
}

/// Every tool the selection allows, in the spec's order.
pub fn catalog(selection: &Selection) -> Result<Vec<ToolEntry>, CatalogError> {
    let spec = Spec::load().map_err(CatalogError::Spec)?;
    let unknown: Vec<String> = selection
        .only
        .iter()
        .filter(|name| operations::by_client_method(name).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(CatalogError::UnknownTools(unknown));
    }
    let mut entries = Vec::new();
    let mut refused = Vec::new();
    for operation in operations::ALL {
        let entry = entry(&spec, operation)?;
        let named = selection
            .only
            .iter()
            .any(|name| name == operation.client_method);
        if !selection.only.is_empty() && !named {
            continue;
        }
        if !entry.read_only && !selection.allow_writes {
            if named {
                refused.push(operation.client_method.to_string());
            }
            continue;
        }
        entries.push(entry);
    }
    if !refused.is_empty() {
        return Err(CatalogError::WritesNotAllowed(refused));
    }
    Ok(entries)
}

fn entry(spec: &Spec, operation: &'static Operation) -> Result<ToolEntry, CatalogError> {
    let described = spec
        .operation(operation.path, operation.http_method)
        .ok_or(CatalogError::MissingOperation(operation.id))?;
    // Reads are the GETs and the queries (POSTs filed under the spec's `query` tag); the rest write.
    let read_only = operation.http_method == "GET" || described.has_tag("query");
    let parameters = described.parameters();
    let paging = if parameters.iter().any(|(name, ..)| name == "offset") {
        Paging::Offset
    } else {
        Paging::Skip
    };
    let mut schema = match described.body_schema() {
        Some(body) => spec.json_schema(body),
        None => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (name, is_required, description, schema) in parameters {
                let mut converted = spec.json_schema(&schema);
                if let (Some(object), Some(description)) = (converted.as_object_mut(), description)
                {
                    object.insert("description".into(), Value::String(description));
                }
                if is_required {
                    required.push(Value::String(name.clone()));
                }
                properties.insert(name, converted);
            }
            json!({"type": "object", "properties": properties, "required": required})
        }
    };
    let Some(object) = schema.as_object_mut() else {
        return Err(CatalogError::NotAnObject(operation.id));
    };
    object.insert("type".into(), json!("object"));
    let mut description = described.description();
    if read_only && paging == Paging::Skip {
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(properties) = properties.as_object_mut() {
            properties.insert(
                RESULT_OFFSET.into(),
                json!({
                    "type": "integer",
                    "minimum": 0,
                    "description": "How many items of the answer's lists to skip: this server's own argument (not sent to the API), to fetch the rest of a result cut at the size budget.",
                }),
            );
        }
    }
    if read_only {
        description.push_str(
            " Results are compacted (nulls dropped, long message lists summarised) and cut to the server's size budget; a cut result says which arguments fetch the rest.",
        );
    }
    if operation.response_media_type == "text/csv" {
        description.push_str(" The answer is CSV text.");
    }
    let destructive = !read_only;
    let idempotent = read_only || operation.http_method == "DELETE";
    let mut annotations = ToolAnnotations::new()
        .read_only(read_only)
        .idempotent(idempotent)
        .open_world(false);
    if !read_only {
        // Deletes remove records; logs may replace the record with the same id (upserts).
        annotations = annotations.destructive(destructive);
    }
    if let Some(title) = described.summary() {
        annotations.title = Some(title);
    }
    let Value::Object(schema) = schema else {
        return Err(CatalogError::NotAnObject(operation.id));
    };
    let tool = Tool::new(operation.client_method, description, Arc::new(schema))
        .with_annotations(annotations);
    Ok(ToolEntry {
        operation,
        tool,
        read_only,
        paging,
    })
}

/// What a call returned.
pub enum Payload {
    /// A JSON answer.
    Json(Value),
    /// A CSV export.
    Csv(Vec<u8>),
}

/// Why a call did not return a payload.
pub enum CallError {
    /// The arguments do not fit the tool's schema.
    Arguments(String),
    /// The SDK (the API, the network, or its own checks) refused.
    Sdk(Error),
    /// The operation table has an operation this server has no call for.
    Unsupported(&'static str),
}

fn body<T: DeserializeOwned>(arguments: &Map<String, Value>) -> Result<T, CallError> {
    let mut arguments = arguments.clone();
    arguments.remove(RESULT_OFFSET);
    serde_json::from_value(Value::Object(arguments))
        .map_err(|error| CallError::Arguments(error.to_string()))
}

fn string<'a>(arguments: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, CallError> {
    match arguments.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(CallError::Arguments(format!(
            "`{name}` must be a string, not {other}"
        ))),
    }
}

fn required<'a>(arguments: &'a Map<String, Value>, name: &str) -> Result<&'a str, CallError> {
    string(arguments, name)?.ok_or_else(|| CallError::Arguments(format!("`{name}` is required")))
}

fn integer(arguments: &Map<String, Value>, name: &str) -> Result<Option<i64>, CallError> {
    match arguments.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            CallError::Arguments(format!("`{name}` must be an integer, not {value}"))
        }),
    }
}

fn json(value: &impl serde::Serialize) -> Result<Payload, CallError> {
    serde_json::to_value(value)
        .map(Payload::Json)
        .map_err(|error| CallError::Arguments(error.to_string()))
}

async fn csv(export: inkeep_analytics::query::CsvExport) -> Result<Payload, CallError> {
    let chunks: Vec<_> = export.try_collect().await.map_err(CallError::Sdk)?;
    Ok(Payload::Csv(chunks.concat()))
}

/// Calls the operation behind `tool` with `arguments`, through the SDK's `Client`.
pub async fn call(
    client: &Client,
    operation: &Operation,
    arguments: &Map<String, Value>,
) -> Result<Payload, CallError> {
    let a = arguments;
    match operation.client_method {
        "list_conversations" => {
            let mut request = client.list_conversations();
            if let Some(limit) = integer(a, "limit")? {
                request = request.limit(limit);
            }
            if let Some(offset) = integer(a, "offset")? {
                request = request.offset(offset);
            }
            json(&request.send().await.map_err(CallError::Sdk)?)
        }
        "list_feedback" => {
            let mut request = client.list_feedback();
            if let Some(limit) = integer(a, "limit")? {
                request = request.limit(limit);
            }
            if let Some(offset) = integer(a, "offset")? {
                request = request.offset(offset);
            }
            json(&request.send().await.map_err(CallError::Sdk)?)
        }
        "log_conversation" => json(
            &client
                .log_conversation(body::<types::CreateConversation>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "get_conversation" => json(
            &client
                .get_conversation(required(a, "id")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "delete_conversation" => json(
            &client
                .delete_conversation(required(a, "id")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "get_conversation_by_external_id" => json(
            &client
                .get_conversation_by_external_id(required(a, "externalId")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "log_event" => json(
            &client
                .log_event(body::<types::InsertEvent>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "log_feedback" => json(
            &client
                .log_feedback(body::<types::FeedbackInput>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "get_feedback" => json(
            &client
                .get_feedback(required(a, "id")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "delete_feedback" => json(
            &client
                .delete_feedback(required(a, "id")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "query_conversations" => json(
            &client
                .query_conversations(body::<types::QueryConversationsBody>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "query_events" => json(
            &client
                .query_events(body::<types::QueryEventsBody>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "query_feedback" => json(
            &client
                .query_feedback(body::<types::QueryFeedbackBody>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "query_semantic_threads" => json(
            &client
                .query_semantic_threads(body::<types::QuerySemanticThreadsBody>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "export_conversations_query_results" => {
            csv(client
                .export_conversations_query_results(body::<types::QueryConversationsBody>(a)?)
                .await
                .map_err(CallError::Sdk)?)
            .await
        }
        "export_events_query_results" => {
            csv(client
                .export_events_query_results(body::<types::QueryEventsBody>(a)?)
                .await
                .map_err(CallError::Sdk)?)
            .await
        }
        "export_feedback_query_results" => {
            csv(client
                .export_feedback_query_results(body::<types::QueryFeedbackBody>(a)?)
                .await
                .map_err(CallError::Sdk)?)
            .await
        }
        "export_semantic_threads_query_results" => {
            csv(client
                .export_semantic_threads_query_results(body::<types::QuerySemanticThreadsBody>(a)?)
                .await
                .map_err(CallError::Sdk)?)
            .await
        }
        "query_property_keys" => json(
            &client
                .query_property_keys(body::<types::PropertyKeysRequest>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "query_property_values" => json(
            &client
                .query_property_values(body::<types::PropertyValuesRequest>(a)?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "top_search_queries" => json(
            &client
                .top_search_queries(string(a, "after")?, string(a, "project_id")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        "weekly_search_users" => json(
            &client
                .weekly_search_users(string(a, "after")?, string(a, "project_id")?)
                .await
                .map_err(CallError::Sdk)?,
        ),
        _ => Err(CallError::Unsupported(operation.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec edit that adds an operation fails here until `call` can call it.
    #[tokio::test]
    async fn every_operation_of_the_table_is_a_tool_that_dispatches() {
        let all = catalog(&Selection {
            allow_writes: true,
            only: Vec::new(),
        })
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(all.len(), operations::ALL.len());
        // Nothing listens on port 1: every call that gets as far as sending fails on the network.
        let client = Client::builder()
            .api_key("sk-test")
            .base_url("http://127.0.0.1:1")
            .max_retries(0)
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        for entry in &all {
            let outcome = call(&client, entry.operation, &Map::new()).await;
            assert!(
                !matches!(outcome, Err(CallError::Unsupported(_))),
                "{} has no arm in tools::call",
                entry.operation.client_method
            );
        }
    }

    #[test]
    fn reads_only_by_default_and_writes_need_the_flag() {
        let reads = catalog(&Selection::default()).unwrap_or_else(|error| panic!("{error}"));
        let names: Vec<&str> = reads.iter().map(|e| e.operation.client_method).collect();
        assert!(names.contains(&"query_conversations"), "{names:?}");
        for name in &names {
            assert!(
                !name.starts_with("log_") && !name.starts_with("delete_"),
                "{name}"
            );
        }
        let refused = catalog(&Selection {
            allow_writes: false,
            only: vec!["delete_feedback".into()],
        });
        assert!(matches!(refused, Err(CatalogError::WritesNotAllowed(_))));
        let unknown = catalog(&Selection {
            allow_writes: true,
            only: vec!["drop_tables".into()],
        });
        assert!(matches!(unknown, Err(CatalogError::UnknownTools(_))));
        let subset = catalog(&Selection {
            allow_writes: false,
            only: vec!["get_conversation".into(), "top_search_queries".into()],
        })
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(subset.len(), 2);
    }
}
