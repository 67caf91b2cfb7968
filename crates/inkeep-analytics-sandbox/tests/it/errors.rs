//! Authentication and the problem+json shape of every error.

use std::collections::HashSet;

use inkeep_analytics::Client;
use inkeep_analytics::types::{CreateOpenAiConversation, CreateOpenAiMessage, InsertEvent};
use reqwest::Method;

use crate::support::*;

#[tokio::test]
async fn a_missing_or_unknown_key_is_401() {
    let sandbox = start().await;
    for key in [None, Some("sk-wrong")] {
        let raw = Raw::with_key(&sandbox, key);
        for path in ["/conversations", "/feedback", "/query/top-search-queries"] {
            let answer = raw.get(path).await;
            let problem = assert_problem(&answer, 401, "unauthorized");
            assert_eq!(problem["instance"], path);
            assert_eq!(answer.header("www-authenticate").as_deref(), Some("Bearer"));
        }
    }
    let raw = Raw::with_key(&sandbox, None);
    let answer = raw
        .send(Method::POST, "/conversations", Some("{}"))
        .await
        .must("send");
    assert_problem(&answer, 401, "unauthorized");

    // The SDK surfaces it with the problem's details.
    let client = Client::builder()
        .api_key("sk-wrong")
        .base_url(sandbox.base_url())
        .build()
        .must("client");
    let error = client.list_conversations().send().await.err().must("a 401");
    let api = error.as_api().must("an API error");
    assert_eq!(api.status.as_u16(), 401);
    assert_eq!(api.code.as_deref(), Some("unauthorized"));
    assert!(
        api.request_id
            .as_deref()
            .is_some_and(|id| id.starts_with("req_"))
    );
}

#[tokio::test]
async fn a_web_key_writes_but_is_403_on_reads() {
    let sandbox = start().await;
    let web_key = sandbox.web_key().must("a web key");
    let raw = Raw::with_key(&sandbox, Some(web_key));
    for (method, path) in [
        (Method::GET, "/conversations"),
        (Method::GET, "/conversations/external/zd-1"),
        (Method::GET, "/feedback"),
        (Method::GET, "/feedback/fb_1"),
        (Method::DELETE, "/feedback/fb_1"),
        (Method::GET, "/query/top-search-queries"),
        (Method::GET, "/query/weekly-search-users"),
    ] {
        let answer = raw.send(method.clone(), path, None).await.must("send");
        assert_problem(&answer, 403, "forbidden");
    }
    for path in [
        "/query/conversations",
        "/query/events/export",
        "/query/property-keys",
    ] {
        assert_problem(&raw.post(path, "{}").await, 403, "forbidden");
    }

    // The five operations that accept a web key work with it, through the SDK.
    let client = Client::builder()
        .web_integration_key(web_key)
        .base_url(sandbox.base_url())
        .build()
        .must("a web client");
    let conversation = CreateOpenAiConversation::new(vec![
        CreateOpenAiMessage::user("Hi")
            .with_id("msg_web")
            .must("a message id"),
    ])
    .with_id("conv_web")
    .must("an id");
    client
        .log_conversation(conversation)
        .await
        .must("log with a web key");
    client
        .get_conversation("conv_web")
        .await
        .must("get with a web key");
    client
        .log_event(InsertEvent::conversation("conv_web", "conversation_shared"))
        .await
        .must("log an event with a web key");
    client
        .log_feedback(inkeep_analytics::types::FeedbackInput::positive("msg_web"))
        .await
        .must("log feedback with a web key");
    client
        .delete_conversation("conv_web")
        .await
        .must("delete with a web key");
}

/// Which key may call which operation is the spec's security, through the SDK's generated
/// operation table: a web key passes authentication exactly on the operations the table marks,
/// and is `403` on every other one.
#[tokio::test]
async fn a_web_key_is_accepted_exactly_where_the_operation_table_says() {
    let sandbox = start().await;
    let web_key = sandbox.web_key().must("a web key");
    let raw = Raw::with_key(&sandbox, Some(web_key));
    let mut accepted = 0;
    for operation in inkeep_analytics::generated::operations::ALL {
        let method = Method::from_bytes(operation.http_method.as_bytes()).must("a method");
        let path: Vec<&str> = operation
            .path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "no_such_id"
                } else {
                    segment
                }
            })
            .collect();
        let path = path.join("/");
        let body = (method == Method::POST).then_some("{}");
        let answer = raw.send(method.clone(), &path, body).await.must("send");
        if operation.accepts_web_key {
            accepted += 1;
            assert!(
                answer.status != 401 && answer.status != 403,
                "{} {path} refused a web key: {}",
                operation.id,
                answer.text()
            );
        } else {
            let problem = assert_problem(&answer, 403, "forbidden");
            assert_eq!(problem["instance"], path.as_str(), "{}", operation.id);
        }
    }
    assert!(accepted > 0, "the table marks some operation for web keys");
}

#[tokio::test]
async fn every_error_is_problem_json_with_a_unique_request_id() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let mut request_ids = HashSet::new();
    let answers = [
        (
            raw.get("/conversations?limit=500").await,
            400,
            "bad_request",
        ),
        (
            Raw::with_key(&sandbox, None).get("/conversations").await,
            401,
            "unauthorized",
        ),
        (
            raw.get("/conversations/conv_missing").await,
            404,
            "not_found",
        ),
        (raw.get("/no/such/operation").await, 404, "not_found"),
        (
            raw.post("/conversations", r#"{"type":"openai","messages":[]}"#)
                .await,
            422,
            "unprocessable_entity",
        ),
        (
            raw.send(Method::PUT, "/conversations", None)
                .await
                .must("send"),
            405,
            "method_not_allowed",
        ),
    ];
    for (answer, status, code) in &answers {
        let problem = assert_problem(answer, *status, code);
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(
            problem["instance"]
                .as_str()
                .is_some_and(|i| i.starts_with('/'))
        );
        request_ids.insert(problem["requestId"].as_str().must("requestId").to_string());
    }
    assert_eq!(request_ids.len(), answers.len());
    assert_eq!(
        answers[2].0.json()["instance"],
        "/conversations/conv_missing",
        "the instance is the request's path"
    );
    // Successful answers carry a request id too.
    let ok = raw.get("/conversations?limit=1").await;
    assert!(
        ok.header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
    assert_eq!(
        ok.header("content-type").as_deref(),
        Some("application/json")
    );
}

/// A support message's `content` is optional in a request: absent or null, it is stored as null.
#[tokio::test]
async fn a_support_message_may_come_without_content() {
    let sandbox = start().await;
    let raw = Raw::with_key(&sandbox, Some(sandbox.api_key()));
    let body = r#"{"type": "support_ticket", "id": "tk_no_content", "messages": [{"role": "customer"}, {"role": "agent", "content": null}]}"#;
    let answer = raw.post("/conversations", body).await;
    assert_eq!(answer.status, 200);
}
