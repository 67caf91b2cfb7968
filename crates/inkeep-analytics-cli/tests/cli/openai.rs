//! `conversations log-openai`: OpenAI exchanges from files (a whole response, or its chunks)
//! logged through the SDK's mapping into a sandbox, and each kind of bad input named.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Scratch, Server, parse, run};

/// The SDK's golden transcripts, which its own tests convert: the program must store the same.
fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../inkeep-analytics/tests/golden/openai")
        .join(name)
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    parse(text.as_bytes())
}

#[test]
fn log_openai_stores_what_the_sdk_maps_for_each_transcript() {
    let server = Server::start();
    for name in [
        "tool_use",
        "parallel_tools",
        "streamed_tools",
        "images_and_citations",
        "refusal",
    ] {
        let id = format!("cli-{name}");
        let output = run(server
            .cli()
            .args(["--format", "json", "conversations", "log-openai"])
            .arg(golden(&format!("{name}.exchange.json")))
            .args(["--conversation-id", &id]));
        let logged = parse::<Value>(output.ok().as_bytes());
        let stored = parse::<Value>(
            run(server.cli().args(["conversations", "get", &id]))
                .ok()
                .as_bytes(),
        );
        assert_eq!(logged["id"], id.as_str());
        let expected = read(&golden(&format!("{name}.expected.json")));
        let expected = expected["messages"].as_array().cloned().unwrap_or_default();
        for document in [&logged, &stored] {
            let messages = document["messages"].as_array().cloned().unwrap_or_default();
            assert_eq!(messages.len(), expected.len(), "{name}: {document}");
            for (message, want) in messages.iter().zip(&expected) {
                let want_id = want["id"]
                    .as_str()
                    .map(|golden_id| golden_id.replacen("conv:", &format!("{id}:"), 1));
                assert_eq!(message["id"].as_str(), want_id.as_deref(), "{name}");
                for key in [
                    "role",
                    "content",
                    "tool_calls",
                    "links",
                    "name",
                    "properties",
                ] {
                    let got = message.get(key).filter(|value| !value.is_null());
                    assert_eq!(got, want.get(key), "{name}: `{key}` of {}", message["id"]);
                }
            }
        }
    }
}

#[test]
fn log_openai_names_the_conversation_after_the_completion_and_prints_a_table() {
    let server = Server::start();
    let output = run(server
        .cli()
        .args(["--format", "table", "conversations", "log-openai"])
        .arg(golden("streamed_tools.exchange.json")));
    let text = output.ok();
    assert!(text.contains("conversation chatcmpl-stream-1"), "{text}");
    assert!(text.contains("chatcmpl-stream-1:1:assistant"), "{text}");
    assert!(text.contains("search_docs, search_docs"), "{text}");
    assert!(text.contains("Let me look that up."), "{text}");
    // Logging the same file again updates the conversation instead of adding one.
    run(server
        .cli()
        .args(["--format", "json", "conversations", "log-openai"])
        .arg(golden("streamed_tools.exchange.json")))
    .ok();
    let stored = parse::<Value>(
        run(server
            .cli()
            .args(["conversations", "get", "chatcmpl-stream-1"]))
        .ok()
        .as_bytes(),
    );
    assert_eq!(stored["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        stored["messages"][1]["properties"]["openai"]["streamed"],
        true
    );
}

#[test]
fn log_openai_names_what_is_wrong_with_its_input() {
    let server = Server::start();
    let scratch = Scratch::new();
    let streamed = read(&golden("streamed_tools.exchange.json"));
    let mut cut_off = streamed.clone();
    if let Some(chunks) = cut_off["chunks"].as_array_mut() {
        chunks.truncate(4);
    }
    let mut no_usage = streamed.clone();
    if let Some(chunks) = no_usage["chunks"].as_array_mut() {
        chunks.pop();
    }
    let request = streamed["request"].clone();
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("not-json", "{\"request\": ".into(), &["is not JSON"]),
        ("array", "[1, 2]".into(), &["not a JSON object", "\"request\""]),
        ("no-request", json!({"response": {}}).to_string(), &["no `request`"]),
        (
            "neither",
            json!({"request": request}).to_string(),
            &["neither `response` nor `chunks`"],
        ),
        (
            "both",
            json!({"request": request, "response": {}, "chunks": []}).to_string(),
            &["both `response` and `chunks`"],
        ),
        (
            "chunks-not-array",
            json!({"request": request, "chunks": {}}).to_string(),
            &["`chunks` is not an array"],
        ),
        ("cut-off", cut_off.to_string(), &["cut off", "finish_reason"]),
        ("no-usage", no_usage.to_string(), &["cut off", "usage"]),
        (
            "empty-stream",
            json!({"request": request, "chunks": []}).to_string(),
            &["cut off"],
        ),
        (
            "bad-chunk",
            json!({"request": request, "chunks": [{"object": "chat.completion"}]}).to_string(),
            &["chunks[0].object"],
        ),
        (
            "bad-message",
            json!({"request": {"messages": [{"content": "Hi"}]}, "response": {"id": "c", "choices": []}})
                .to_string(),
            &["request.messages[0]", "no `role`"],
        ),
        (
            "bad-response",
            json!({"request": request, "response": {"id": "c", "object": "chat.completion"}})
                .to_string(),
            &["response", "no `choices`"],
        ),
        (
            "extra-key",
            json!({"request": request, "response": {}, "model": "x"}).to_string(),
            &["unexpected key `model`"],
        ),
        ("empty", String::new(), &["is empty"]),
    ];
    for (name, body, says) in cases {
        let path = scratch.join(&format!("{name}.json"));
        if let Err(error) = std::fs::write(&path, body) {
            panic!("cannot write {}: {error}", path.display());
        }
        let output = run(server
            .cli()
            .args(["conversations", "log-openai"])
            .arg(&path));
        output.exits(2);
        let line = output.error_line();
        for part in says {
            assert!(
                line.contains(part),
                "{name}: {part:?} is missing from: {line}"
            );
        }
    }
    // Nothing was logged.
    assert_eq!(
        server.raw_conversations().len(),
        crate::support::CONVERSATIONS
    );
    // A response without an id is logged under an id derived from the file, the same each time.
    let mut no_id = read(&golden("tool_use.exchange.json"));
    if let Some(response) = no_id["response"].as_object_mut() {
        response.remove("id");
    }
    let path = scratch.join("no-id.json");
    if let Err(error) = std::fs::write(&path, no_id.to_string()) {
        panic!("cannot write {}: {error}", path.display());
    }
    let logged_ids: Vec<String> = (0..2)
        .map(|_| {
            let output = run(server
                .cli()
                .args(["--format", "json", "conversations", "log-openai"])
                .arg(&path));
            let logged = parse::<Value>(output.ok().as_bytes());
            logged["id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(logged_ids[0].starts_with("openai-"), "{logged_ids:?}");
    assert_eq!(logged_ids[0], logged_ids[1]);
    assert_eq!(
        server.raw_conversations().len(),
        crate::support::CONVERSATIONS + 1
    );
}
