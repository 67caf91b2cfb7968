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
                // Ids hold no position: the same message has the same hash in any conversation.
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
    assert!(text.contains("chatcmpl-stream-1:assistant:"), "{text}");
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

/// The windowed and trimmed chats of the SDK's goldens, each logged turn by turn.
const TURN_CASES: &[&str] = &[
    "sliding_window",
    "dropped_tool_results",
    "summary",
    "edited_message",
    "regenerated",
    "repeated_after_window",
];

#[path = "../../../inkeep-analytics/tests/golden/openai/render.rs"]
mod golden_render;
use golden_render::render;

/// Writes one turn's exchange to a file of its own, as a chat application would save it.
fn turn_file(scratch: &Scratch, name: &str, turn: &Value) -> PathBuf {
    let path = scratch.join(&format!("{name}.json"));
    let exchange = json!({"request": turn["request"], "response": turn["response"]});
    if let Err(error) = std::fs::write(&path, exchange.to_string()) {
        panic!("cannot write {}: {error}", path.display());
    }
    path
}

fn stored(server: &Server, id: &str) -> Value {
    parse::<Value>(
        run(server.cli().args(["conversations", "get", id]))
            .ok()
            .as_bytes(),
    )
}

fn contents(conversation: &Value) -> Vec<String> {
    conversation["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["content"].as_str().unwrap_or("(parts)").to_string())
        .collect()
}

#[test]
fn log_openai_turn_by_turn_keeps_every_message_with_its_id() {
    // One process per turn, as a chat's turns are logged from a shell or a job; the golden
    // shows the stored conversation after each turn, and how it came about.
    let server = Server::start();
    let scratch = Scratch::new();
    let bless = std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1");
    for case in TURN_CASES {
        let transcript = read(&golden(&format!("turns/{case}.turns.json")));
        let mut text = format!("# {}\n", transcript["about"].as_str().unwrap_or_default());
        let turns = transcript["turns"].as_array().cloned().unwrap_or_default();
        for (index, turn) in turns.iter().enumerate() {
            let path = turn_file(&scratch, &format!("{case}-{index}"), turn);
            run(server
                .cli()
                .args(["--format", "json", "conversations", "log-openai"])
                .arg(&path)
                .args(["--conversation-id", case]))
            .ok();
            text.push_str(&format!("\nafter turn {}:\n", index + 1));
            text.push_str(&render(&stored(&server, case)));
        }
        let path = golden(&format!("turns/{case}.stored.txt"));
        if bless {
            if let Err(error) = std::fs::write(&path, &text) {
                panic!("cannot write {}: {error}", path.display());
            }
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        assert!(
            expected.replace("\r\n", "\n") == text,
            "{case}: the stored conversations differ from {} (UPDATE_GOLDEN=1 rewrites it):\n{text}",
            path.display()
        );
    }
    // The windowed chat: every message ever said, in order, once.
    assert_eq!(
        contents(&stored(&server, "sliding_window")),
        [
            "You are a helpful assistant for Inkeep Analytics.",
            "Q1: how do I export conversations?",
            "A1: conversations export.",
            "Q2: and feedback?",
            "A2: feedback export.",
            "Q3: as csv?",
            "A3: use --format csv.",
            "Q4: with a date filter?",
            "A4: add --where.",
        ]
    );
}

#[test]
fn feedback_on_an_early_answer_stays_on_it_after_the_window_moved() {
    let server = Server::start();
    let scratch = Scratch::new();
    let transcript = read(&golden("turns/sliding_window.turns.json"));
    let turns = transcript["turns"].as_array().cloned().unwrap_or_default();
    let mut first_answer = None;
    for (index, turn) in turns.iter().enumerate() {
        let path = turn_file(&scratch, &format!("turn-{index}"), turn);
        let logged = parse::<Value>(
            run(server
                .cli()
                .args(["--format", "json", "conversations", "log-openai"])
                .arg(&path)
                .args(["--conversation-id", "chat-42"]))
            .ok()
            .as_bytes(),
        );
        if index == 0 {
            // Feedback on the first answer, by the id it was logged with.
            let answer = logged["messages"][2]["id"].as_str().unwrap_or_default();
            assert!(answer.starts_with("chat-42:assistant:"), "{logged}");
            let feedback = json!({"id": "fb-1", "type": "positive", "messageId": answer});
            crate::support::run_with_input(
                server.cli().args(["feedback", "submit", "-"]),
                Some(feedback.to_string().as_bytes()),
            )
            .ok();
            first_answer = Some(answer.to_string());
        }
    }
    let feedback = parse::<Value>(
        run(server
            .cli()
            .args(["--format", "json", "feedback", "get", "fb-1"]))
        .ok()
        .as_bytes(),
    );
    assert_eq!(feedback["messageId"].as_str(), first_answer.as_deref());
    let conversation = stored(&server, "chat-42");
    let target = conversation["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"].as_str() == first_answer.as_deref());
    assert_eq!(
        target.map(|m| m["content"].clone()),
        Some(json!("A1: conversations export.")),
        "{conversation}"
    );
}

/// A chat's turns as a client that names its user sends them: the whole history every time.
fn chat_of(user: &str) -> Vec<Value> {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a helpful assistant."}),
        json!({"role": "user", "content": "Hi"}),
    ];
    let mut turns = Vec::new();
    for (index, answer) in ["Hello!", "Use conversations export.", "Yes, as csv."]
        .iter()
        .enumerate()
    {
        let request = json!({"model": "gpt-4o-mini", "user": user, "messages": messages});
        let response = json!({"id": format!("chatcmpl-{user}-{index}"), "object": "chat.completion",
            "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]});
        turns.push(json!({"request": request, "response": response}));
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": format!("question {}", index + 2)}));
    }
    turns
}

#[test]
fn turns_without_an_id_are_one_conversation_per_user_and_opening() {
    let server = Server::start();
    let scratch = Scratch::new();
    let mut ids = Vec::new();
    for user in ["ana", "bo"] {
        let mut logged_ids = Vec::new();
        for (index, turn) in chat_of(user).iter().enumerate() {
            let path = turn_file(&scratch, &format!("{user}-{index}"), turn);
            let logged = parse::<Value>(
                run(server
                    .cli()
                    .args(["--format", "json", "conversations", "log-openai"])
                    .arg(&path))
                .ok()
                .as_bytes(),
            );
            logged_ids.push(logged["id"].as_str().unwrap_or_default().to_string());
        }
        assert!(
            logged_ids.iter().all(|id| id == &logged_ids[0]),
            "{user}: {logged_ids:?}"
        );
        assert_eq!(
            stored(&server, &logged_ids[0])["messages"]
                .as_array()
                .map(Vec::len),
            Some(7)
        );
        ids.push(logged_ids[0].clone());
    }
    // The same opening ("Hi") from two users: two conversations.
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        server.raw_conversations().len(),
        crate::support::CONVERSATIONS + 2
    );
}
