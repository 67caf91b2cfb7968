//! The OpenAI mapping on transcripts as OpenAI's API sends them: golden conversions (tool use,
//! parallel and custom tool calls, streamed tool arguments, images and other parts, citations,
//! refusals, developer messages), the typed path agreeing with the JSON one, stable ids across
//! turns, and clear errors for cut-off streams and wrong shapes.
//!
//! `INKEEP_BLESS=1 cargo test -p inkeep-analytics --features async-openai --test openai`
//! rewrites the goldens; review their diff before committing it.

use std::path::{Path, PathBuf};

use inkeep_analytics::openai::async_openai::types::chat::{
    CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use inkeep_analytics::openai::{
    ChunkAccumulator, conversation_from_completion, conversation_from_json, message_id,
};
use inkeep_analytics::types::CreateOpenAiConversation;
use serde_json::{Value, json};

const TRANSCRIPTS: &[&str] = &[
    "tool_use",
    "parallel_tools",
    "streamed_tools",
    "images_and_citations",
    "refusal",
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/openai")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

fn to_json(conversation: &CreateOpenAiConversation) -> Value {
    serde_json::to_value(conversation).unwrap_or_else(|error| panic!("cannot serialize: {error}"))
}

/// The exchange's request and complete response (its chunks put together).
fn exchange(name: &str) -> (Value, Value) {
    let exchange = read(&golden_dir().join(format!("{name}.exchange.json")));
    let request = exchange["request"].clone();
    let response = match exchange.get("chunks").and_then(Value::as_array) {
        Some(chunks) => {
            let mut stream = ChunkAccumulator::new().expect_usage(true);
            for chunk in chunks {
                if let Err(error) = stream.push(chunk) {
                    panic!("{name}: a chunk was refused: {error}");
                }
            }
            stream
                .finish()
                .unwrap_or_else(|error| panic!("{name}: {error}"))
        }
        None => exchange["response"].clone(),
    };
    (request, response)
}

fn convert(name: &str) -> Value {
    let (request, response) = exchange(name);
    let conversation = conversation_from_json("conv", &request, Some(&response))
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    to_json(&conversation)
}

#[test]
fn transcripts_convert_to_their_goldens() {
    let bless = std::env::var_os("INKEEP_BLESS").is_some();
    for name in TRANSCRIPTS {
        let converted = convert(name);
        let path = golden_dir().join(format!("{name}.expected.json"));
        if bless {
            let text = serde_json::to_string_pretty(&converted).unwrap_or_default() + "\n";
            std::fs::write(&path, text)
                .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
            continue;
        }
        let expected = read(&path);
        assert!(
            converted == expected,
            "{name}: the conversion differs from {}:\n{}",
            path.display(),
            serde_json::to_string_pretty(&converted).unwrap_or_default()
        );
    }
}

#[test]
fn the_typed_path_agrees_with_the_json_path() {
    // Not `parallel_tools`: async-openai 0.43 reads a custom tool call's object from
    // `custom_tool`, where OpenAI's API sends `custom`, so it refuses that real response; the
    // JSON path, which the CLI takes, keeps it.
    for name in ["tool_use", "images_and_citations", "refusal"] {
        let (request, response) = exchange(name);
        let typed_request: CreateChatCompletionRequest = serde_json::from_value(request)
            .unwrap_or_else(|error| panic!("{name}: async-openai refuses the request: {error}"));
        let typed_response: CreateChatCompletionResponse = serde_json::from_value(response)
            .unwrap_or_else(|error| panic!("{name}: async-openai refuses the response: {error}"));
        let typed = conversation_from_completion("conv", &typed_request, Some(&typed_response))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let typed = to_json(&typed);
        let from_json = convert(name);
        // Everything the API holds is the same; `properties` may differ only where async-openai
        // fills a default into the settings it re-serializes.
        for (typed, json) in typed["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(from_json["messages"].as_array().into_iter().flatten())
        {
            for key in ["id", "role", "content", "tool_calls", "links", "name"] {
                assert_eq!(typed.get(key), json.get(key), "{name}: `{key}` differs");
            }
            for key in [
                "tool_results",
                "parts",
                "refusal",
                "custom_tool_calls",
                "usage",
                "role",
            ] {
                assert_eq!(
                    typed["properties"]["openai"].get(key),
                    json["properties"]["openai"].get(key),
                    "{name}: `properties.openai.{key}` differs"
                );
            }
        }
    }
}

#[test]
fn what_the_api_cannot_hold_lands_where_the_mapping_says() {
    let tool_use = convert("tool_use");
    let (_, response) = exchange("tool_use");
    let messages = tool_use["messages"].as_array().cloned().unwrap_or_default();
    // The tool result joins the assistant message that called the tool; no `tool` message is sent.
    assert_eq!(messages.len(), 4);
    assert!(messages.iter().all(|m| m["role"] != "tool"));
    let caller = &messages[2];
    assert_eq!(caller["content"], "");
    assert_eq!(caller["properties"]["openai"]["content_null"], true);
    assert_eq!(caller["tool_calls"][0]["id"], "call_paris");
    assert_eq!(
        caller["properties"]["openai"]["tool_results"][0]["tool_call_id"],
        "call_paris"
    );
    assert_eq!(
        caller["properties"]["openai"]["tool_results"][0]["position"],
        3
    );
    let reply = &messages[3];
    let reply_id = reply["id"].as_str().unwrap_or_default();
    assert!(reply_id.starts_with("conv:assistant:"), "{reply_id}");
    assert_eq!(
        message_id("conv", &response["choices"][0]["message"], 1)
            .ok()
            .as_deref(),
        Some(reply_id),
        "the reply's id is the one its message has when sent again"
    );
    assert_eq!(reply["properties"]["openai"]["model"], "gpt-4o-2024-08-06");
    assert_eq!(reply["properties"]["openai"]["usage"]["total_tokens"], 124);
    assert_eq!(reply["properties"]["openai"]["finish_reason"], "stop");
    assert_eq!(reply["properties"]["openai"]["request"]["temperature"], 0.2);
    assert_eq!(
        reply["properties"]["openai"]["request"]["tools"][0]["function"]["name"],
        "get_weather"
    );

    let parallel = convert("parallel_tools");
    let developer = &parallel["messages"][0];
    assert_eq!(developer["role"], "system");
    assert_eq!(developer["properties"]["openai"]["role"], "developer");
    assert_eq!(parallel["messages"][1]["name"], "ana");
    let reply = &parallel["messages"][2];
    assert_eq!(reply["tool_calls"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        reply["properties"]["openai"]["custom_tool_calls"][0]["call"]["custom"]["name"],
        "run_sql"
    );

    let images = convert("images_and_citations");
    let user = &images["messages"][0];
    assert_eq!(user["content"][1]["image_url"]["detail"], "high");
    let parts = &user["properties"]["openai"]["parts"];
    assert_eq!(parts[0]["index"], 2);
    assert_eq!(parts[0]["part"]["type"], "input_audio");
    assert_eq!(parts[1]["part"]["file"]["file_id"], "file-abc123");
    let reply = &images["messages"][1];
    assert_eq!(
        reply["links"],
        json!([{"url": "https://example.com/ggb", "title": "Golden Gate Bridge history"}])
    );
    assert_eq!(
        reply["properties"]["openai"]["annotations"][0]["url_citation"]["start_index"],
        4
    );

    let refusal = convert("refusal");
    let earlier = &refusal["messages"][2];
    assert_eq!(
        earlier["properties"]["openai"]["parts"][0]["part"]["type"],
        "refusal"
    );
    assert_eq!(earlier["properties"]["openai"]["content_parts_only"], true);
    let reply = &refusal["messages"][4];
    assert_eq!(
        reply["properties"]["openai"]["refusal"],
        "I can't go into that either."
    );
    assert_eq!(
        reply["properties"]["openai"]["other_choices"][0]["message"]["content"],
        "A pin tumbler lock holds pins at a shear line."
    );
}

#[test]
fn streamed_tool_arguments_are_put_together_by_index() {
    let (_, completion) = exchange("streamed_tools");
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["content"], "Let me look that up.");
    assert_eq!(
        message["tool_calls"],
        json!([
            {"id": "call_a", "type": "function", "function": {"name": "search_docs", "arguments": "{\"query\":\"rotate key\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "search_docs", "arguments": "{\"query\":\"api keys\"}"}}
        ])
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(completion["usage"]["total_tokens"], 70);
    assert_eq!(completion["id"], "chatcmpl-stream-1");
}

#[test]
fn a_cut_off_stream_is_an_error() {
    let exchange = read(&golden_dir().join("streamed_tools.exchange.json"));
    let chunks = exchange["chunks"].as_array().cloned().unwrap_or_default();
    // Without its finish, and without its usage chunk when usage was asked for.
    for (keep, expect_usage, says) in [
        (chunks.len() - 2, false, "never got a `finish_reason`"),
        (chunks.len() - 1, true, "no usage chunk"),
        (0, false, "no chunk"),
    ] {
        let mut stream = ChunkAccumulator::new().expect_usage(expect_usage);
        for chunk in &chunks[..keep] {
            if let Err(error) = stream.push(chunk) {
                panic!("a chunk was refused: {error}");
            }
        }
        match stream.finish() {
            Ok(completion) => panic!("a cut-off stream was accepted: {completion}"),
            Err(error) => {
                let text = error.to_string();
                assert!(text.contains("cut off") && text.contains(says), "{text}");
            }
        }
    }
    // The whole stream without asking for usage is complete.
    let mut stream = ChunkAccumulator::new();
    for chunk in &chunks {
        assert!(stream.push(chunk).is_ok());
    }
    assert!(stream.finish().is_ok());
}

#[test]
fn the_next_turn_updates_the_messages_instead_of_adding_copies() {
    let (request, response) = exchange("tool_use");
    let first = to_json(
        &conversation_from_json("conv", &request, Some(&response))
            .unwrap_or_else(|error| panic!("{error}")),
    );
    // The next turn sends every message again, the reply included, and a new question.
    let mut next = request.clone();
    if let Some(messages) = next["messages"].as_array_mut() {
        messages.push(response["choices"][0]["message"].clone());
        messages.push(json!({"role": "user", "content": "And tomorrow?"}));
    }
    let second = to_json(
        &conversation_from_json("conv", &next, None).unwrap_or_else(|error| panic!("{error}")),
    );
    let ids = |conversation: &Value| -> Vec<String> {
        conversation["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect()
    };
    let (first_ids, second_ids) = (ids(&first), ids(&second));
    assert_eq!(second_ids[..first_ids.len()], first_ids[..]);
    let question = json!({"role": "user", "content": "And tomorrow?"});
    assert_eq!(
        second_ids.last().map(String::as_str),
        message_id("conv", &question, 1).ok().as_deref()
    );
    assert_eq!(second_ids.len(), first_ids.len() + 1);
    for (a, b) in first["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(second["messages"].as_array().into_iter().flatten())
    {
        assert_eq!(a["content"], b["content"]);
        assert_eq!(a["tool_calls"], b["tool_calls"]);
    }
}

#[test]
fn wrong_shapes_are_named() {
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
    let response = json!({"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}]});
    let cases = [
        (
            json!([1]),
            Some(response.clone()),
            "request: not a JSON object",
        ),
        (
            json!({"model": "m"}),
            Some(response.clone()),
            "has no `messages`",
        ),
        (
            json!({"messages": []}),
            Some(response.clone()),
            "request.messages: is empty",
        ),
        (
            json!({"messages": [{"content": "x"}]}),
            None,
            "request.messages[0]: has no `role`",
        ),
        (
            json!({"messages": [{"role": "user", "content": 3}]}),
            None,
            "request.messages[0].content",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            None,
            "without a string `tool_call_id`",
        ),
        (
            request.clone(),
            Some(json!({"object": "chat.completion.chunk", "choices": []})),
            "response.object",
        ),
        (
            request.clone(),
            Some(json!({"id": "c", "choices": []})),
            "holds no choice",
        ),
        (request.clone(), Some(json!({"id": "c"})), "no `choices`"),
    ];
    for (request, response, says) in cases {
        match conversation_from_json("conv", &request, response.as_ref()) {
            Ok(conversation) => panic!("accepted: {}", to_json(&conversation)),
            Err(error) => assert!(
                error.to_string().contains(says),
                "{error} (expected {says})"
            ),
        }
    }
    assert!(conversation_from_json("", &request, Some(&response)).is_err());
    let mut stream = ChunkAccumulator::new();
    let error = stream.push(&json!({"object": "chat.completion", "choices": []}));
    assert!(error.is_err_and(|e| e.to_string().contains("chunks[0].object")));
}

#[test]
fn an_orphan_tool_result_is_kept_as_a_message_of_its_own() {
    let request = json!({"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "tool", "tool_call_id": "call_gone", "content": "42"}
    ]});
    let conversation = to_json(
        &conversation_from_json("conv", &request, None).unwrap_or_else(|error| panic!("{error}")),
    );
    let orphan = &conversation["messages"][1];
    assert_eq!(orphan["role"], "assistant");
    assert!(
        orphan["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("conv:tool:")),
        "{orphan}"
    );
    assert_eq!(orphan["content"], "42");
    assert_eq!(orphan["properties"]["openai"]["role"], "tool");
    assert_eq!(orphan["properties"]["openai"]["tool_call_id"], "call_gone");
}
