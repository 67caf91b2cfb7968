//! `conversations log-openai`: one OpenAI exchange from a file, logged through the SDK's mapping
//! and merged into what the conversation already holds (the same rules its async-openai wrapper
//! uses), so that a chat logged by hand, turn by turn, and one logged live are stored alike.

use inkeep_analytics::Client;
use inkeep_analytics::openai::{
    ChunkAccumulator, conversation_from_json, conversation_id_from_request, log_exchange,
};
use serde_json::Value;

use super::{emit_document, read_text, to_value};
use crate::cli::{Format, GlobalOptions, LogOpenaiArgs};
use crate::failure::Failure;
use crate::output::{self, Table, cell};

const SHAPE: &str = r#"{"request": <chat-completions request>, "response": <chat.completion>} or {"request": ..., "chunks": [<chat.completion.chunk>, ...]}"#;

/// The request and the complete `chat.completion` a file holds (its chunks put together).
pub(crate) fn exchange(text: &str, source: &str) -> Result<(Value, Value), Failure> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| Failure::Usage(format!("{source} is not JSON: {error}")))?;
    let wrong = |what: &str| Failure::Usage(format!("{source}: {what}; expected {SHAPE}"));
    let Value::Object(mut object) = value else {
        return Err(wrong("not a JSON object"));
    };
    let Some(request) = object.remove("request") else {
        return Err(wrong("no `request`"));
    };
    let response = match (object.remove("response"), object.remove("chunks")) {
        (Some(_), Some(_)) => return Err(wrong("both `response` and `chunks`")),
        (None, None) => return Err(wrong("neither `response` nor `chunks`")),
        (Some(response), None) => response,
        (None, Some(Value::Array(chunks))) => {
            let expect_usage = request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut stream = ChunkAccumulator::new().expect_usage(expect_usage);
            for chunk in &chunks {
                stream
                    .push(chunk)
                    .map_err(|error| Failure::Usage(format!("{source}: {error}")))?;
            }
            stream
                .finish()
                .map_err(|error| Failure::Usage(format!("{source}: {error}")))?
        }
        (None, Some(_)) => return Err(wrong("`chunks` is not an array")),
    };
    if let Some(key) = object.keys().next() {
        return Err(wrong(&format!("an unexpected key `{key}`")));
    }
    Ok((request, response))
}

/// Runs `conversations log-openai`.
pub async fn log(
    global: &GlobalOptions,
    client: &Client,
    args: LogOpenaiArgs,
) -> Result<(), Failure> {
    let (text, source) = read_text(&args.input, "an OpenAI exchange")?;
    let (request, response) = exchange(&text, &source)?;
    // The conversation the request names (a `metadata` key, or its end user with the chat's
    // opening), else the completion's id, else one derived from the file: either way, logging
    // the same file twice updates one conversation instead of adding another.
    let conversation_id = args
        .conversation_id
        .or_else(|| conversation_id_from_request(&request))
        .unwrap_or_else(|| {
            response
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.trim().is_empty())
                .map_or_else(
                    || format!("openai-{:016x}", fnv1a(text.as_bytes())),
                    str::to_string,
                )
        });
    // Checked here, before any request, so that bad input is a usage error.
    conversation_from_json(&conversation_id, &request, Some(&response))
        .map_err(|error| Failure::Usage(format!("{source}: {error}")))?;
    // Read back, merged, upserted: what the request no longer carries stays.
    let logged = log_exchange(client, &conversation_id, &request, Some(&response))
        .await
        .map_err(Failure::api("logging the OpenAI exchange"))?;
    match global.format {
        Some(Format::Json | Format::Jsonl) => emit_document(global, &logged),
        Some(Format::Csv) => output::emit(
            &messages(&to_value(&logged)).csv()?,
            global.output.as_deref(),
        ),
        Some(Format::Table) | None => {
            let document = to_value(&logged);
            let text = format!(
                "conversation {}\n{}",
                cell(&document["id"]),
                messages(&document).render()
            );
            output::emit(&text, global.output.as_deref())
        }
    }
}

/// The logged conversation's messages, one row each, with where the OpenAI-only parts went.
fn messages(conversation: &Value) -> Table {
    let mut table = Table::new(&["ID", "ROLE", "CONTENT", "TOOL CALLS", "OPENAI"]);
    for message in conversation["messages"].as_array().into_iter().flatten() {
        let openai = &message["properties"]["openai"];
        let mut notes = Vec::new();
        if let Some(role) = openai["role"].as_str() {
            notes.push(format!("role {role}"));
        }
        if let Some(results) = openai["tool_results"].as_array() {
            notes.push(format!("{} tool result(s)", results.len()));
        }
        for key in [
            "refusal",
            "custom_tool_calls",
            "parts",
            "audio",
            "model",
            "finish_reason",
        ] {
            if !openai[key].is_null() {
                notes.push(key.replace('_', " "));
            }
        }
        let content = match &message["content"] {
            Value::Array(items) => items
                .iter()
                .map(|item| match item["type"].as_str() {
                    Some("image_url") => format!("[image {}]", cell(&item["image_url"]["url"])),
                    _ => cell(&item["text"]),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => cell(other),
        };
        let calls = message["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|call| cell(&call["function"]["name"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        table.rows.push(vec![
            cell(&message["id"]),
            cell(&message["role"]),
            content,
            calls,
            notes.join("; "),
        ]);
    }
    table
}

/// FNV-1a, a hash that is the same in every process and version, for ids derived from input.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
