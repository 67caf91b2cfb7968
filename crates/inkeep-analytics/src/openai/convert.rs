//! The lossless mapping from OpenAI's chat-completions JSON to the API's OpenAI conversation, on
//! the wire format itself, so that a file, a typed async-openai value and a field the types do
//! not know yet all take the same path.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::types::CreateOpenAiConversation;

/// The key of a message's `properties` under which everything OpenAI-specific is kept.
pub const PROPERTIES_KEY: &str = "openai";

/// A typed value as OpenAI's wire JSON: written out as text first, so that an `f32` such as
/// a temperature of `0.3` stays `0.3` (turned into a JSON value directly, it widens to
/// `0.30000001192092896`).
pub(crate) fn wire_json<T: serde::Serialize>(value: &T) -> serde_json::Result<Value> {
    serde_json::from_str(&serde_json::to_string(value)?)
}

/// What the wrapper knows about a call besides its request and response.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallFacts {
    /// From sending the request to the full answer.
    pub latency_ms: Option<u128>,
    /// From sending the request to the first chunk of a stream.
    pub first_chunk_ms: Option<u128>,
    /// Whether the answer came as a stream.
    pub streamed: bool,
}

fn bad(path: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("{path}: {what}"))
}

/// The request's `messages`, checked to be an array of objects with a string `role`.
fn request_messages(request: &Value) -> Result<&Vec<Value>> {
    let Some(object) = request.as_object() else {
        return Err(bad(
            "request",
            "not a JSON object (expected a chat-completions request body)",
        ));
    };
    let Some(messages) = object.get("messages") else {
        return Err(bad("request", "has no `messages`"));
    };
    let Some(messages) = messages.as_array() else {
        return Err(bad("request.messages", "not an array"));
    };
    if messages.is_empty() {
        return Err(bad("request.messages", "is empty"));
    }
    for (index, message) in messages.iter().enumerate() {
        let path = format!("request.messages[{index}]");
        let Some(object) = message.as_object() else {
            return Err(bad(&path, "not a JSON object"));
        };
        match object.get("role") {
            Some(Value::String(_)) => {}
            Some(_) => return Err(bad(&format!("{path}.role"), "not a string")),
            None => return Err(bad(&path, "has no `role`")),
        }
    }
    Ok(messages)
}

/// The request's settings: everything but `messages`, as sent.
fn request_settings(request: &Value) -> Value {
    let mut settings = request.as_object().cloned().unwrap_or_default();
    settings.remove("messages");
    Value::Object(settings)
}

/// A message being built: the API's fields, and the OpenAI-specific ones for its `properties`.
struct Draft {
    role: &'static str,
    content: Value,
    name: Option<Value>,
    tool_calls: Vec<Value>,
    links: Vec<Value>,
    openai: Map<String, Value>,
}

impl Draft {
    /// The message in the API's shape, without its id, which the merge gives it.
    fn into_json(self) -> Value {
        let mut message = Map::new();
        message.insert("role".into(), Value::String(self.role.into()));
        message.insert("content".into(), self.content);
        if let Some(name) = self.name {
            message.insert("name".into(), name);
        }
        if !self.tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(self.tool_calls));
        }
        if !self.links.is_empty() {
            message.insert("links".into(), Value::Array(self.links));
        }
        let mut properties = Map::new();
        properties.insert(PROPERTIES_KEY.into(), Value::Object(self.openai));
        message.insert("properties".into(), Value::Object(properties));
        Value::Object(message)
    }
}

/// Whether a content part is one the API holds exactly: `text` with its text, or `image_url`
/// with a URL and a known detail, and nothing else.
fn held_part(part: &Value) -> bool {
    let Some(object) = part.as_object() else {
        return false;
    };
    match object.get("type").and_then(Value::as_str) {
        Some("text") => object.len() == 2 && object.get("text").is_some_and(Value::is_string),
        Some("image_url") => {
            let Some(image) = object.get("image_url").and_then(Value::as_object) else {
                return false;
            };
            object.len() == 2
                && image.get("url").is_some_and(Value::is_string)
                && image.keys().all(|key| key == "url" || key == "detail")
                && image
                    .get("detail")
                    .is_none_or(|detail| matches!(detail.as_str(), Some("auto" | "low" | "high")))
        }
        _ => false,
    }
}

/// The content as the API takes it; what it cannot hold goes to `openai.parts` with its index,
/// and a null content (an assistant message that only calls tools) is sent as `""`, marked
/// `openai.content_null`.
fn content(path: &str, value: Option<&Value>, openai: &mut Map<String, Value>) -> Result<Value> {
    match value {
        None | Some(Value::Null) => {
            openai.insert("content_null".into(), Value::Bool(true));
            Ok(Value::String(String::new()))
        }
        Some(Value::String(text)) => Ok(Value::String(text.clone())),
        Some(Value::Array(parts)) => {
            let mut held = Vec::new();
            let mut kept = Vec::new();
            for (index, part) in parts.iter().enumerate() {
                if held_part(part) {
                    held.push(part.clone());
                } else {
                    kept.push(json!({"index": index, "part": part}));
                }
            }
            if !kept.is_empty() {
                openai.insert("parts".into(), Value::Array(kept));
            }
            if held.is_empty() && !parts.is_empty() {
                // No part the API holds: the content is empty, and every part is in `openai.parts`.
                openai.insert("content_parts_only".into(), Value::Bool(true));
                return Ok(Value::String(String::new()));
            }
            Ok(Value::Array(held))
        }
        Some(_) => Err(bad(
            &format!("{path}.content"),
            "neither a string, an array of parts nor null",
        )),
    }
}

/// The message's keys the mapping reads; any other key is kept in `openai.extra`.
const KNOWN_KEYS: &[&str] = &[
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "refusal",
    "audio",
    "function_call",
    "annotations",
];

fn extra(object: &Map<String, Value>, openai: &mut Map<String, Value>) {
    let extra: Map<String, Value> = object
        .iter()
        .filter(|(key, _)| !KNOWN_KEYS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !extra.is_empty() {
        openai.insert("extra".into(), Value::Object(extra));
    }
}

/// Whether a tool call is one the API holds: a `function` call with a string name and arguments.
fn held_tool_call(call: &Value) -> bool {
    let Some(object) = call.as_object() else {
        return false;
    };
    let function = object.get("function").and_then(Value::as_object);
    object.get("type").and_then(Value::as_str) == Some("function")
        && object.get("id").is_some_and(Value::is_string)
        && object.len() == 3
        && function.is_some_and(|function| {
            function.len() == 2
                && function.get("name").is_some_and(Value::is_string)
                && function.get("arguments").is_some_and(Value::is_string)
        })
}

/// Converts one non-tool message (system, developer, user, assistant, or a role OpenAI adds later).
fn draft(index: usize, object: &Map<String, Value>) -> Result<Draft> {
    let path = format!("request.messages[{index}]");
    let openai_role = object
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut openai = Map::new();
    openai.insert("position".into(), json!(index));
    let role = match openai_role.as_str() {
        "system" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "developer" => {
            openai.insert("role".into(), Value::String(openai_role.clone()));
            "system"
        }
        // `tool` and `function` results with no calling message, and roles OpenAI adds later.
        _ => {
            openai.insert("role".into(), Value::String(openai_role.clone()));
            "assistant"
        }
    };
    let content = content(&path, object.get("content"), &mut openai)?;
    let mut tool_calls = Vec::new();
    match object.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            let mut other = Vec::new();
            for (call_index, call) in calls.iter().enumerate() {
                if held_tool_call(call) {
                    tool_calls.push(call.clone());
                } else {
                    other.push(json!({"index": call_index, "call": call}));
                }
            }
            if !other.is_empty() {
                openai.insert("custom_tool_calls".into(), Value::Array(other));
            }
        }
        Some(_) => {
            return Err(bad(&format!("{path}.tool_calls"), "not an array"));
        }
    }
    for key in ["refusal", "audio", "function_call"] {
        if let Some(value) = object.get(key).filter(|value| !value.is_null()) {
            openai.insert(key.into(), value.clone());
        }
    }
    let mut links = Vec::new();
    if let Some(annotations) = object.get("annotations").filter(|value| !value.is_null()) {
        openai.insert("annotations".into(), annotations.clone());
        for annotation in annotations.as_array().into_iter().flatten() {
            if annotation.get("type").and_then(Value::as_str) != Some("url_citation") {
                continue;
            }
            let citation = &annotation["url_citation"];
            if let Some(url) = citation.get("url").and_then(Value::as_str) {
                let mut link = Map::new();
                link.insert("url".into(), Value::String(url.into()));
                if let Some(title) = citation.get("title").and_then(Value::as_str) {
                    link.insert("title".into(), Value::String(title.into()));
                }
                links.push(Value::Object(link));
            }
        }
    }
    if let Some(id) = object.get("tool_call_id") {
        openai.insert("tool_call_id".into(), id.clone());
    }
    extra(object, &mut openai);
    Ok(Draft {
        role,
        content,
        name: object.get("name").filter(|name| name.is_string()).cloned(),
        tool_calls,
        links,
        openai,
    })
}

/// Whether `draft` made the call a tool (or legacy function) result answers.
fn answers(draft: &Draft, result: &Map<String, Value>) -> bool {
    if draft.role != "assistant" || draft.openai.contains_key("role") {
        return false;
    }
    match result.get("tool_call_id").and_then(Value::as_str) {
        Some(id) => {
            let custom = draft
                .openai
                .get("custom_tool_calls")
                .and_then(Value::as_array);
            draft
                .tool_calls
                .iter()
                .chain(custom.into_iter().flatten().map(|entry| &entry["call"]))
                .any(|call| call.get("id").and_then(Value::as_str) == Some(id))
        }
        // A legacy `function` result answers the assistant's `function_call` of the same name.
        None => {
            let name = result.get("name").and_then(Value::as_str);
            name.is_some()
                && draft
                    .openai
                    .get("function_call")
                    .and_then(|call| call.get("name"))
                    .and_then(Value::as_str)
                    == name
        }
    }
}

/// Converts a request's messages: tool results join the assistant message that made the call.
fn drafts(request: &Value) -> Result<Vec<Draft>> {
    let messages = request_messages(request)?;
    let mut drafts: Vec<Draft> = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let Some(object) = message.as_object() else {
            continue;
        };
        let role = object.get("role").and_then(Value::as_str);
        if matches!(role, Some("tool" | "function")) {
            if role == Some("tool") && !object.get("tool_call_id").is_some_and(Value::is_string) {
                return Err(bad(
                    &format!("request.messages[{index}]"),
                    "a `tool` message without a string `tool_call_id`",
                ));
            }
            if let Some(caller) = drafts.iter_mut().rev().find(|d| answers(d, object)) {
                let mut result = object.clone();
                result.insert("position".into(), json!(index));
                let results = caller
                    .openai
                    .entry("tool_results")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(results) = results {
                    results.push(Value::Object(result));
                }
                continue;
            }
        }
        drafts.push(draft(index, object)?);
    }
    Ok(drafts)
}

/// The choice whose message continues the conversation: index 0, else the first.
fn main_choice(response: &Value) -> Result<(usize, &Map<String, Value>)> {
    let Some(object) = response.as_object() else {
        return Err(bad(
            "response",
            "not a JSON object (expected a chat.completion)",
        ));
    };
    if let Some(kind) = object.get("object")
        && kind.as_str() != Some("chat.completion")
    {
        return Err(bad(
            "response.object",
            format!("is {kind}, expected \"chat.completion\""),
        ));
    }
    let Some(choices) = object.get("choices").and_then(Value::as_array) else {
        return Err(bad("response", "has no `choices` array"));
    };
    let position = choices
        .iter()
        .position(|choice| choice.get("index").and_then(Value::as_u64) == Some(0))
        .unwrap_or(0);
    let Some(choice) = choices.get(position).and_then(Value::as_object) else {
        return Err(bad("response.choices", "holds no choice object"));
    };
    if !choice.get("message").is_some_and(Value::is_object) {
        return Err(bad(
            &format!("response.choices[{position}]"),
            "has no `message` object",
        ));
    }
    Ok((position, choice))
}

/// The answer's message, with what the call tells about it in `openai.*`.
fn reply(position: usize, request: &Value, response: &Value, facts: &CallFacts) -> Result<Draft> {
    let (choice_index, choice) = main_choice(response)?;
    let mut message = choice
        .get("message")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // The answer's role is `assistant` in every response OpenAI sends.
    if !message.get("role").is_some_and(Value::is_string) {
        message.insert("role".into(), Value::String("assistant".into()));
    }
    let mut draft = draft(position, &message)?;
    let openai = &mut draft.openai;
    let object = response.as_object().cloned().unwrap_or_default();
    for (key, name) in [
        ("id", "completion_id"),
        ("model", "model"),
        ("created", "created"),
        ("system_fingerprint", "system_fingerprint"),
        ("service_tier", "service_tier"),
        ("usage", "usage"),
    ] {
        if let Some(value) = object.get(key).filter(|value| !value.is_null()) {
            openai.insert(name.into(), value.clone());
        }
    }
    let response_extra: Map<String, Value> = object
        .iter()
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                "id" | "model"
                    | "created"
                    | "system_fingerprint"
                    | "service_tier"
                    | "usage"
                    | "object"
                    | "choices"
            )
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !response_extra.is_empty() {
        openai.insert("response_extra".into(), Value::Object(response_extra));
    }
    if let Some(reason) = choice.get("finish_reason").filter(|value| !value.is_null()) {
        openai.insert("finish_reason".into(), reason.clone());
    }
    if let Some(logprobs) = choice.get("logprobs").filter(|value| !value.is_null()) {
        openai.insert("logprobs".into(), logprobs.clone());
    }
    let others: Vec<Value> = object
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(index, _)| *index != choice_index)
        .map(|(_, choice)| choice.clone())
        .collect();
    if !others.is_empty() {
        openai.insert("other_choices".into(), Value::Array(others));
    }
    openai.insert("request".into(), request_settings(request));
    if let Some(ms) = facts.latency_ms {
        openai.insert("latency_ms".into(), json!(ms));
    }
    if let Some(ms) = facts.first_chunk_ms {
        openai.insert("first_chunk_ms".into(), json!(ms));
    }
    // A request that asked for a stream was answered by one, whoever put its chunks together.
    let streamed = facts.streamed || request.get("stream") == Some(&Value::Bool(true));
    openai.insert("streamed".into(), Value::Bool(streamed));
    Ok(draft)
}

/// One exchange's messages in the API's shape, without ids: the request's, then the reply when
/// the call answered.
#[derive(Clone, Debug)]
pub(crate) struct Turn {
    pub messages: Vec<Value>,
    pub has_reply: bool,
}

/// Converts one exchange: the request's messages and, when the call answered, its reply.
pub(crate) fn turn(request: &Value, response: Option<&Value>, facts: &CallFacts) -> Result<Turn> {
    let mut drafts = drafts(request)?;
    if let Some(response) = response {
        let position = request_messages(request)?.len();
        drafts.push(reply(position, request, response, facts)?);
    }
    Ok(Turn {
        messages: drafts.into_iter().map(Draft::into_json).collect(),
        has_reply: response.is_some(),
    })
}

/// The API's shape of one OpenAI message alone, as the conversion makes it (for its id).
pub(crate) fn single_message(message: &Value) -> Result<Value> {
    let Some(object) = message.as_object() else {
        return Err(bad("message", "not a JSON object"));
    };
    if !object.get("role").is_some_and(Value::is_string) {
        return Err(bad("message", "has no string `role`"));
    }
    Ok(draft(0, object)?.into_json())
}

/// Turns the JSON built here into the typed request body.
pub(crate) fn typed(conversation: Value) -> Result<CreateOpenAiConversation> {
    serde_json::from_value(conversation).map_err(|error| {
        Error::invalid_input(format!(
            "the converted conversation does not fit the API's shape: {error}"
        ))
    })
}
