//! Runs the `export` example as a user would, against a mock API on loopback, and checks what it prints.
//!
//! `cargo test` builds the crate's examples before its integration tests, so the binary is next to this one.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use httpmock::Method::GET;
use httpmock::MockServer;
use serde_json::{Value, json};

const KEY: &str = "sk-example-secret-key";

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<this test> -> target/<profile>/examples/export
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir
        .join("examples")
        .join(format!("export{}", std::env::consts::EXE_SUFFIX))
}

fn run_export(what: &str, base_url: &str, key: Option<&str>) -> Output {
    let binary = example_binary();
    assert!(
        binary.exists(),
        "{} is not built; run `cargo test -p inkeep-analytics`",
        binary.display()
    );
    let mut command = Command::new(binary);
    command
        .arg(what)
        .env_remove("INKEEP_ANALYTICS_API_KEY")
        .env("INKEEP_ANALYTICS_BASE_URL", base_url);
    if let Some(key) = key {
        command.env("INKEEP_ANALYTICS_API_KEY", key);
    }
    match command.output() {
        Ok(output) => output,
        Err(error) => panic!("cannot run the example: {error}"),
    }
}

/// A conversation of one of the three kinds, or of a kind from a newer API, with variety in every field.
fn conversation(n: usize) -> Value {
    let id = format!("conv-{n:04}");
    let kind = ["openai", "support_ticket", "support_copilot", "voice_call"][n % 4];
    let message = if kind == "openai" {
        json!({
            "id": format!("{id}-m"), "type": "openai", "externalId": null, "externalUrl": null,
            "conversationId": id, "createdAt": "2025-03-01T10:00:00Z", "updatedAt": "2025-03-01T10:00:00Z",
            "role": if n.is_multiple_of(3) { "developer" } else { "assistant" },
            "content": [{"type": "text", "text": "héllo ✓"}, {"type": "audio", "audio": {"id": "a1"}}],
            "links": [{"url": "https://docs.example.com", "type": "video_tutorial", "label": null}],
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "search", "arguments": "{\"q\":1}"}}],
            "sentiment": "calm"
        })
    } else {
        json!({
            "id": format!("{id}-m"), "type": kind, "externalId": "ext", "externalUrl": null,
            "conversationId": id, "createdAt": "2025-03-01T10:00:00Z", "updatedAt": "2025-03-01T10:00:00Z",
            "role": "agent", "content": null
        })
    };
    let mut conversation = json!({
        "id": id, "externalId": null, "externalUrl": null, "type": kind,
        "supportTicketConversationId": null, "createdAt": "2025-03-01T10:00:00Z",
        "updatedAt": "2025-03-01T10:00:00Z", "projectId": "p", "integrationId": null,
        "userProperties": {"id": n, "userId": "u", "plan": "pro"},
        "tags": ["t"], "visibility": if n.is_multiple_of(5) { "unlisted" } else { "public" },
        "messages": [message],
        "priority": n,
    });
    if kind == "openai" {
        conversation["messagesOpenAIFormat"] = json!([{"role": "developer", "content": "x"}]);
    }
    conversation
}

#[test]
fn conversations_are_exported_exactly_once_including_newer_data() {
    let server = MockServer::start();
    let total = 250;
    let all: Vec<Value> = (0..total).map(conversation).collect();
    for offset in (0..total).step_by(100) {
        let page: Vec<Value> = all.iter().skip(offset).take(100).cloned().collect();
        server.mock(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("limit", "100")
                .query_param("offset", offset.to_string())
                .header("authorization", format!("Bearer {KEY}"));
            then.status(200).json_body(json!({
                "conversations": page, "total": total, "pageSize": 100, "count": page.len()
            }));
        });
    }
    let output = run_export("conversations", &server.base_url(), Some(KEY));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
        .collect();
    assert_eq!(lines.len(), total);
    let ids: HashSet<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids.len(), total, "every record exactly once");
    // Newer-API data survives the typed round trip.
    for (printed, sent) in lines.iter().zip(&all) {
        assert_eq!(printed["type"], sent["type"]);
        assert_eq!(printed["visibility"], sent["visibility"]);
        assert_eq!(
            printed["priority"], sent["priority"],
            "unknown keys are kept"
        );
        assert_eq!(printed["userProperties"], sent["userProperties"]);
        assert_eq!(printed["messages"][0]["role"], sent["messages"][0]["role"]);
        assert_eq!(
            printed["messages"][0]["content"],
            sent["messages"][0]["content"]
        );
        if sent["type"] == "voice_call" {
            assert_eq!(printed, sent, "an unknown kind is printed exactly as sent");
        }
    }
    assert!(!stderr.contains(KEY));
}

#[test]
fn feedback_is_exported_from_both_lists() {
    let server = MockServer::start();
    let feedback = |id: &str, kind: &str| {
        let conversation = conversation(1);
        json!({
            "id": id, "type": kind, "messageId": "conv-0001-m", "createdAt": "2025-03-02T00:00:00Z",
            "reasons": null, "details": "ok",
            "sources": [{"type": "irrelevant", "title": null, "url": "https://x"}],
            "conversation": conversation.clone(), "message": conversation["messages"][0].clone()
        })
    };
    server.mock(|when, then| {
        when.method(GET)
            .path("/feedback")
            .query_param("offset", "0");
        then.status(200).json_body(json!({
            "positiveFeedbackCount": 2, "negativeFeedbackCount": 1,
            "positiveFeedback": [feedback("f1", "positive"), feedback("f2", "positive")],
            "negativeFeedback": [feedback("f3", "negative")],
        }));
    });
    let output = run_export("feedback", &server.base_url(), Some(KEY));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let ids: Vec<String> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| v["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids, ["f1", "f2", "f3"]);
    assert!(
        stdout.contains("\"irrelevant\""),
        "a new source type is kept"
    );
}

#[test]
fn a_bad_key_fails_with_the_status_and_request_id() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(GET).path("/conversations");
        then.status(401)
            .header("content-type", "application/problem+json")
            .json_body(json!({
                "title": "Unauthorized", "status": 401, "detail": "Invalid API key",
                "requestId": "req_abc123", "code": "unauthorized",
                "error": {"code": "unauthorized", "message": "Unauthorized"}
            }));
    });
    let output = run_export("conversations", &server.base_url(), Some("sk-wrong-key"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("unauthorized"), "{stderr}");
    assert!(stderr.contains("Invalid API key"), "{stderr}");
    assert!(stderr.contains("req_abc123"), "{stderr}");
    assert!(!stderr.contains("sk-wrong-key"), "the key leaked: {stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_missing_key_is_reported_before_any_request() {
    let server = MockServer::start();
    let any = server.mock(|when, then| {
        when.any_request();
        then.status(200);
    });
    let output = run_export("conversations", &server.base_url(), None);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("INKEEP_ANALYTICS_API_KEY"));
    any.assert_calls(0);
}
