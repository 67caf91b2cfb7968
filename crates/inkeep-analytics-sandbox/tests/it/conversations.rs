//! `POST /conversations` (the upsert), and getting and deleting by id and by external id.

use std::time::Duration;

use inkeep_analytics::types::{
    CreateOpenAiConversation, CreateOpenAiMessage, CreateSupportMessage,
    CreateSupportTicketConversation, FeedbackInput,
};

use crate::support::*;

fn message_ids(conversation: &inkeep_analytics::types::Conversation) -> Vec<String> {
    conversation
        .messages()
        .iter()
        .map(|m| m.id().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn logging_with_an_id_twice_updates_the_conversation() {
    let sandbox = start().await;
    let client = client(&sandbox);
    let first = CreateOpenAiConversation::new(vec![
        CreateOpenAiMessage::user("How do I rotate a key?"),
        CreateOpenAiMessage::assistant("Create a second key, deploy it, revoke the first."),
    ])
    .with_id("conv_upsert_1")
    .must("an id");
    let logged = client.log_conversation(first).await.must("log");
    assert_eq!(logged.id(), Some("conv_upsert_1"));
    let ids = message_ids(&logged);
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id.starts_with("msg_")));
    let raw = Raw::new(&sandbox);
    let before = raw.get("/conversations/conv_upsert_1").await.json();

    // Feedback on the answer must survive the update.
    let feedback = client
        .log_feedback(FeedbackInput::positive(ids[1].clone()))
        .await
        .must("feedback");

    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut second = CreateOpenAiConversation::new(vec![
        CreateOpenAiMessage::user("How do I rotate a key?"),
        CreateOpenAiMessage::assistant("Create a second key, deploy it, revoke the first."),
        CreateOpenAiMessage::user("And with Terraform?"),
    ])
    .with_id("conv_upsert_1")
    .must("an id");
    second.tags = Some(vec!["security".into()]);
    let updated = client.log_conversation(second).await.must("log again");
    let updated_ids = message_ids(&updated);
    assert_eq!(updated_ids.len(), 3);
    assert_eq!(updated_ids[..2], ids[..]);

    let after = raw.get("/conversations/conv_upsert_1").await.json();
    assert_eq!(after["createdAt"], before["createdAt"]);
    assert!(after["updatedAt"].as_str() > before["updatedAt"].as_str());
    assert_eq!(after["tags"], serde_json::json!(["security"]));
    assert_eq!(
        after["messagesOpenAIFormat"].as_array().map(Vec::len),
        Some(3)
    );

    // One conversation more in all, not two; the newest is first.
    let page = client
        .list_conversations()
        .limit(1)
        .send()
        .await
        .must("list");
    assert_eq!(page.total.as_u64(), Some(251));
    assert_eq!(page.conversations[0].id(), Some("conv_upsert_1"));
    client
        .get_feedback(&feedback.id)
        .await
        .must("the feedback survived");
}

#[tokio::test]
async fn logging_without_an_id_assigns_ids_and_times() {
    let sandbox = start().await;
    let client = client(&sandbox);
    let mut ticket = CreateSupportTicketConversation::new(vec![
        CreateSupportMessage::new("customer", Some("My export is empty".into())),
        CreateSupportMessage::new("agent", None),
    ]);
    ticket.external_id = Some("zd-sandbox-1".into());
    // Through the generated call: the SDK's own method would give the write a client id first.
    let logged = client
        .generated()
        .log_conversation()
        .body(inkeep_analytics::types::CreateConversation::from(ticket))
        .send()
        .await
        .map(|response| response.into_inner())
        .must("log");
    let id = logged.id().must("an id").to_string();
    assert!(id.starts_with("conv_"));
    let raw = Raw::new(&sandbox)
        .get(&format!("/conversations/{id}"))
        .await
        .json();
    assert_eq!(raw["type"], "support_ticket");
    assert!(raw.get("messagesOpenAIFormat").is_none());
    assert_eq!(raw["messages"][1]["content"], serde_json::Value::Null);
    let created = raw["createdAt"].as_str().must("createdAt");
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    assert!(raw["messages"][0]["createdAt"].as_str() < raw["messages"][1]["createdAt"].as_str());
    let found = client
        .get_conversation_by_external_id("zd-sandbox-1")
        .await
        .must("by external id");
    assert_eq!(found.id(), Some(id.as_str()));
}

#[tokio::test]
async fn get_and_delete_by_id_and_by_external_id() {
    let sandbox = start().await;
    let client = client(&sandbox);
    let raw = Raw::new(&sandbox);
    let all = all_conversations(&raw).await;
    let ticket = all
        .iter()
        .find(|c| c["type"] == "support_ticket")
        .must("a seeded support ticket");
    let id = ticket["id"].as_str().must("id");
    let external_id = ticket["externalId"].as_str().must("externalId");

    let by_external = client
        .get_conversation_by_external_id(external_id)
        .await
        .must("by external id");
    assert_eq!(by_external.id(), Some(id));
    let by_id = raw.get(&format!("/conversations/{id}")).await;
    assert_eq!(by_id.json(), *ticket);

    let deleted = client.delete_conversation(id).await.must("delete");
    assert!(deleted.success);
    for path in [
        format!("/conversations/{id}"),
        format!("/conversations/external/{external_id}"),
    ] {
        assert_problem(&raw.get(&path).await, 404, "not_found");
    }
    assert_problem(
        &raw.delete(&format!("/conversations/{id}")).await,
        404,
        "not_found",
    );
    let error = client.get_conversation(id).await.err().must("a 404");
    let api = error.as_api().must("an API error");
    assert_eq!(api.status.as_u16(), 404);
    assert_eq!(api.code.as_deref(), Some("not_found"));
    assert!(
        api.request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("req_"))
    );
    let page = client
        .list_conversations()
        .limit(0)
        .send()
        .await
        .must("list");
    assert_eq!(page.total.as_u64(), Some(249));
}

#[tokio::test]
async fn invalid_bodies_are_422_and_malformed_json_is_400() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let cases = [
        (r#"{"type":"openai","messages":[]}"#, "messages"),
        (
            r#"{"type":"openai","messages":[{"role":"developer","content":"hi"}]}"#,
            "messages[0].role",
        ),
        (
            r#"{"type":"openai","messages":[{"role":"user"}]}"#,
            "messages[0]",
        ),
        (
            r#"{"type":"openai","id":"","messages":[{"role":"user","content":"hi"}]}"#,
            "id",
        ),
        (
            r#"{"type":"openai","createdAt":"yesterday","messages":[{"role":"user","content":"hi"}]}"#,
            "createdAt",
        ),
        (
            r#"{"type":"openai","visibility":"secret","messages":[{"role":"user","content":"hi"}]}"#,
            "visibility",
        ),
        (
            r#"{"type":"fax","messages":[{"role":"user","content":"hi"}]}"#,
            "type",
        ),
        (r#"{"messages":[{"role":"user","content":"hi"}]}"#, "type"),
        (r#"[1,2]"#, "object"),
    ];
    for (body, mentioned) in cases {
        let answer = raw.post("/conversations", body).await;
        let problem = assert_problem(&answer, 422, "unprocessable_entity");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(mentioned)),
            "{body}: {problem}"
        );
    }
    for body in ["{not json", ""] {
        assert_problem(&raw.post("/conversations", body).await, 400, "bad_request");
    }
    let too_big = format!(
        r#"{{"type":"openai","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let answer = raw.post("/conversations", &too_big).await;
    assert_problem(&answer, 413, "payload_too_large");
    // Nothing was stored by the refused requests.
    let page = raw.get("/conversations?limit=0").await.json();
    assert_eq!(page["total"], 250);
}

#[tokio::test]
async fn message_ids_must_be_unique_and_changing_the_kind_is_refused() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let duplicate = r#"{"type":"openai","messages":[{"id":"m1","role":"user","content":"a"},{"id":"m1","role":"assistant","content":"b"}]}"#;
    let problem = assert_problem(
        &raw.post("/conversations", duplicate).await,
        422,
        "unprocessable_entity",
    );
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("m1")));

    let logged = raw
        .post(
            "/conversations",
            r#"{"id":"c1","type":"openai","messages":[{"role":"user","content":"a"}]}"#,
        )
        .await;
    assert_eq!(logged.status, 200);
    let kind_change =
        r#"{"id":"c1","type":"support_ticket","messages":[{"role":"customer","content":"a"}]}"#;
    let problem = assert_problem(
        &raw.post("/conversations", kind_change).await,
        422,
        "unprocessable_entity",
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("openai"))
    );
}

#[tokio::test]
async fn a_null_content_is_taken_for_an_assistant_message_with_tool_calls_only() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let calls = serde_json::json!([{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]);
    let body = serde_json::json!({
        "id": "conv_null_content",
        "type": "openai",
        "messages": [
            {"role": "user", "content": "Look it up."},
            {"role": "assistant", "content": null, "tool_calls": calls}
        ]
    });
    let answer = raw.post("/conversations", &body.to_string()).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let stored = raw.get("/conversations/conv_null_content").await.json();
    assert_eq!(stored["messages"][1]["content"], serde_json::Value::Null);
    assert_eq!(stored["messages"][1]["tool_calls"], calls);
    assert_eq!(
        stored["messagesOpenAIFormat"][1]["content"],
        serde_json::Value::Null
    );
    // And the SDK reads it back typed.
    let typed = client(&sandbox)
        .get_conversation("conv_null_content")
        .await
        .must("get");
    let Some(inkeep_analytics::types::Message::OpenAi(reply)) = typed.messages().get(1) else {
        panic!("expected the assistant message: {typed:?}");
    };
    assert_eq!(reply.content, None);

    // Anywhere else, null is refused.
    for message in [
        serde_json::json!({"role": "user", "content": null}),
        serde_json::json!({"role": "assistant", "content": null}),
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": []}),
    ] {
        let body = serde_json::json!({"type": "openai", "messages": [message]});
        let answer = raw.post("/conversations", &body.to_string()).await;
        assert_eq!(answer.status, 422, "{message}");
        assert!(
            String::from_utf8_lossy(&answer.body).contains("messages[0].content"),
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
}
