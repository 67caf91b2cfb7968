//! The typed mocks against the real `inkeep_analytics::Client`, one test per shape of operation, on 127.0.0.1 only.

use futures::TryStreamExt;
use httpmock::MockServer;
use inkeep_analytics::{Client, Error, types};
use inkeep_analytics_mock::MockServerExt;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client(server: &MockServer) -> Result<Client, Error> {
    Client::builder()
        .api_key("sk-test-mock")
        .base_url(server.base_url())
        .build()
}

/// An openai conversation shaped like the API's own example.
fn conversation_json(id: &str) -> Value {
    json!({
        "id": id,
        "externalId": null,
        "externalUrl": null,
        "type": "openai",
        "supportTicketConversationId": null,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:01.000Z",
        "projectId": "proj_1",
        "integrationId": "int_1",
        "properties": {"source": "docs"},
        "userProperties": {"id": "u1", "identificationType": "COOKIED"},
        "tags": ["a"],
        "visibility": "private",
        "messages": [{
            "id": format!("{id}-m1"),
            "type": "openai",
            "externalId": null,
            "externalUrl": null,
            "conversationId": id,
            "createdAt": "2025-01-01T00:00:00.000Z",
            "updatedAt": "2025-01-01T00:00:00.000Z",
            "role": "user",
            "content": "How do I log a conversation?"
        }],
        "messagesOpenAIFormat": [{"role": "user", "content": "How do I log a conversation?"}]
    })
}

fn problem(status: u16, code: &str, title: &str) -> Result<types::Problem, serde_json::Error> {
    serde_json::from_value(json!({
        "title": title,
        "status": status,
        "detail": format!("{title}: no such conversation"),
        "requestId": "req_mock_1",
        "code": code,
        "error": {"code": code, "message": title},
    }))
}

#[tokio::test]
async fn a_get_with_query_parameters_matches_them() -> TestResult {
    let server = MockServer::start_async().await;
    let page: types::ConversationList = serde_json::from_value(json!({
        "conversations": [conversation_json("conv_1"), conversation_json("conv_2")],
        "total": 12,
        "pageSize": 2,
        "count": 2,
    }))?;
    let matching = server.list_conversations(|when, then| {
        when.limit(2).offset(10);
        then.ok(&page);
    });
    // `None` requires the parameter to be absent, so this one only answers a request without `offset`.
    let without_offset = server.list_conversations(|when, then| {
        when.limit(2).offset(None);
        then.ok(&page);
    });

    let client = client(&server)?;
    let answer = client
        .list_conversations()
        .limit(2)
        .offset(10)
        .send()
        .await?;
    assert_eq!(answer, page);
    assert_eq!(answer.conversations.len(), 2);
    matching.assert_async().await;
    assert_eq!(without_offset.calls_async().await, 0);

    client.list_conversations().limit(2).send().await?;
    without_offset.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_get_with_a_path_parameter_matches_the_encoded_value_exactly() -> TestResult {
    let server = MockServer::start_async().await;
    // Characters the client percent-encodes and characters that mean something in a regex.
    let id = "conv 1/a.b(c)";
    let conversation: types::Conversation = serde_json::from_value(conversation_json(id))?;
    let mock = server.get_conversation(|when, then| {
        when.id(id);
        then.ok(&conversation);
    });

    let client = client(&server)?;
    let answer = client.get_conversation(id).await?;
    assert_eq!(answer, conversation);
    assert_eq!(answer.id(), Some(id));
    mock.assert_async().await;

    // The value is matched literally: `.` is not a wildcard and `(c)` is not a group.
    let result = client.get_conversation("conv 1/aXbc").await;
    assert!(result.is_err(), "an unmatched id was answered: {result:?}");
    assert_eq!(mock.calls_async().await, 1);
    Ok(())
}

#[tokio::test]
async fn a_post_matches_its_typed_json_body() -> TestResult {
    let server = MockServer::start_async().await;
    let input: types::FeedbackInput = serde_json::from_value(json!({
        "id": "fb_1",
        "type": "negative",
        "messageId": "conv_1-m1",
        "reasons": [{"label": "inaccurate", "details": "the link is dead"}],
    }))?;
    let other: types::FeedbackInput = serde_json::from_value(json!({
        "type": "positive",
        "messageId": "conv_1-m1",
    }))?;
    let recorded: types::Feedback = serde_json::from_value(json!({
        "id": "fb_1",
        "type": "negative",
        "messageId": "conv_1-m1",
        "createdAt": "2025-01-02T00:00:00.000Z",
        "reasons": [{"label": "inaccurate", "details": "the link is dead"}],
    }))?;
    let mock = server.log_feedback(|when, then| {
        when.body(&input);
        then.ok(&recorded);
    });

    let client = client(&server)?;
    let answer = client.log_feedback(input.clone()).await?;
    assert_eq!(answer, recorded);
    mock.assert_async().await;

    // Another body is not matched.
    assert!(client.log_feedback(other).await.is_err());
    assert_eq!(mock.calls_async().await, 1);
    Ok(())
}

#[tokio::test]
async fn open_enums_and_unions_go_through_unchanged() -> TestResult {
    let server = MockServer::start_async().await;
    // A feedback type and a conversation kind this version of the spec does not list.
    // With its own id, so that the SDK sends exactly this body instead of adding a generated id.
    let input: types::FeedbackInput = serde_json::from_value(json!({
        "id": "fb_neutral",
        "type": "neutral",
        "messageId": "conv_1-m1",
    }))?;
    assert_eq!(input.type_, types::FeedbackType::Other("neutral".into()));
    let mut future = conversation_json("conv_9");
    future["type"] = json!("voice");
    let conversation: types::Conversation = serde_json::from_value(future)?;
    assert!(conversation.is_unknown(), "{conversation:?}");

    let feedback: types::Feedback = serde_json::from_value(json!({
        "id": "fb_9",
        "type": "neutral",
        "messageId": "conv_1-m1",
        "createdAt": "2025-01-02T00:00:00.000Z",
    }))?;
    let feedback_mock = server.log_feedback(|when, then| {
        when.body(&input);
        then.ok(&feedback);
    });
    let conversation_mock = server.get_conversation(|when, then| {
        when.id("conv_9");
        then.ok(&conversation);
    });

    let client = client(&server)?;
    assert_eq!(client.log_feedback(input).await?, feedback);
    let answer = client.get_conversation("conv_9").await?;
    assert_eq!(answer, conversation);
    assert_eq!(answer.kind(), Some("voice"));
    feedback_mock.assert_async().await;
    conversation_mock.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn an_error_status_sends_a_typed_problem() -> TestResult {
    let server = MockServer::start_async().await;
    let problem = problem(404, "not_found", "Not Found")?;
    let mock = server.get_conversation(|when, then| {
        when.id("conv_gone");
        then.not_found(&problem);
    });

    let client = client(&server)?;
    let result = client.get_conversation("conv_gone").await;
    mock.assert_async().await;
    let Err(error) = result else {
        return Err(format!("a 404 was decoded as a conversation: {result:?}").into());
    };
    let Some(api) = error.as_api() else {
        return Err(format!("a 404 is not an API error: {error:?}").into());
    };
    assert_eq!(api.status.as_u16(), 404);
    assert_eq!(api.code.as_deref(), Some("not_found"));
    assert_eq!(api.request_id.as_deref(), Some("req_mock_1"));
    assert_eq!(
        api.detail.as_deref(),
        Some("Not Found: no such conversation")
    );
    assert_eq!(api.problem.as_ref(), Some(&problem));
    Ok(())
}

#[tokio::test]
async fn a_csv_export_answers_raw_bytes() -> TestResult {
    let server = MockServer::start_async().await;
    let query: types::QueryConversationsBody = serde_json::from_value(json!({
        "notes": "weekly export",
    }))?;
    let csv = "id,title\nconv_1,\"Logging, explained\"\nconv_2,Ünïcode\n";
    let mock = server.export_conversations_query_results(|when, then| {
        let when = when.body(&query);
        // `into_inner` reaches httpmock's own matchers, here for the header the client sends.
        when.into_inner().header("accept", "text/csv");
        then.ok(csv);
    });

    let client = client(&server)?;
    let export = client.export_conversations_query_results(query).await?;
    let chunks: Vec<_> = export.try_collect().await?;
    let body: Vec<u8> = chunks.concat();
    assert_eq!(body, csv.as_bytes());
    mock.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_write_without_an_id_matches_its_body_ignoring_the_id_the_sdk_adds() -> TestResult {
    let server = MockServer::start_async().await;
    // No `id`: the SDK adds a random one before sending, so the exact body is unknown here.
    let input = types::FeedbackInput::negative("conv_1-m1");
    assert!(input.id.is_none());
    let recorded: types::Feedback = types::Feedback::builder()
        .id("fb_generated")
        .type_("negative")
        .message_id("conv_1-m1")
        .created_at("2025-01-02T00:00:00.000Z")
        .try_into()?;
    // Registered first, so it would answer if the body were sent as given.
    let exact = server.log_feedback(|when, then| {
        when.body(&input);
        then.ok(&recorded);
    });
    let ignoring_id = server.log_feedback(|when, then| {
        when.body_ignoring_id(&input);
        then.ok(&recorded);
    });

    let client = client(&server)?;
    assert_eq!(client.log_feedback(input.clone()).await?, recorded);
    assert_eq!(
        exact.calls_async().await,
        0,
        "the SDK sent the body without an id"
    );
    ignoring_id.assert_async().await;

    // Everything but the `id` still has to match.
    let other = types::FeedbackInput::negative("conv_2-m1");
    assert!(client.log_feedback(other).await.is_err());
    assert_eq!(ignoring_id.calls_async().await, 1);
    Ok(())
}

#[tokio::test]
async fn a_conversation_logged_without_an_id_matches_ignoring_the_id() -> TestResult {
    let server = MockServer::start_async().await;
    let input: types::CreateConversation =
        types::CreateOpenAiConversation::new(vec![types::CreateOpenAiMessage::user("Hi")]).into();
    let conversation: types::Conversation = serde_json::from_value(conversation_json("conv_7"))?;
    let mock = server.log_conversation(|when, then| {
        when.body_ignoring_id(&input);
        then.ok(&conversation);
    });
    // The matcher is also there for httpmock's own `When`, for bodies built by hand.
    let event_body = json!({"type": "conversation_shared", "entityType": "conversation", "conversationId": "conv_7"});
    let event = server.mock(|when, then| {
        let when = when.method(httpmock::Method::POST).path("/events");
        inkeep_analytics_mock::json_body_ignoring_id(when, &event_body);
        then.status(200).json_body(json!({
            "id": "ev_1",
            "entityType": "conversation",
            "type": "conversation_shared",
            "conversationId": "conv_7",
            "createdAt": "2025-01-02T00:00:00.000Z",
            "projectId": null,
            "integrationId": null,
        }));
    });

    let client = client(&server)?;
    assert_eq!(client.log_conversation(input).await?, conversation);
    mock.assert_async().await;
    client
        .log_event(types::InsertEvent::conversation(
            "conv_7",
            "conversation_shared",
        ))
        .await?;
    event.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_problem_is_built_without_spelling_out_the_legacy_error() -> TestResult {
    let server = MockServer::start_async().await;
    let mut problem = inkeep_analytics_mock::problem(404, "not_found", "no conversation conv_gone");
    problem.request_id = Some("req_mock_2".into());
    assert_eq!(problem.title, "Not Found");
    assert_eq!(problem.error.code, "not_found");
    assert_eq!(problem.error.message, "no conversation conv_gone");
    let mock = server.get_conversation(|when, then| {
        when.id("conv_gone");
        then.not_found(&problem);
    });

    let client = client(&server)?;
    let result = client.get_conversation("conv_gone").await;
    mock.assert_async().await;
    let Some(api) = result.as_ref().err().and_then(|error| error.as_api()) else {
        return Err(format!("a 404 is not an API error: {result:?}").into());
    };
    assert_eq!(api.status.as_u16(), 404);
    assert_eq!(api.code.as_deref(), Some("not_found"));
    assert_eq!(api.detail.as_deref(), Some("no conversation conv_gone"));
    assert_eq!(api.request_id.as_deref(), Some("req_mock_2"));
    assert_eq!(api.problem.as_ref(), Some(&problem));
    Ok(())
}

#[test]
fn every_helper_is_named_like_the_client_method_of_its_operation() {
    // The helpers and the table share one source (`client_method_name` in the codegen), and the
    // renamed ones are the four whose `operationId` differs from the SDK's method.
    let names: Vec<&str> = inkeep_analytics::generated::operations::ALL
        .iter()
        .map(|operation| operation.client_method)
        .collect();
    for expected in [
        "list_conversations",
        "list_feedback",
        "get_feedback",
        "delete_feedback",
    ] {
        assert!(names.contains(&expected), "{expected} is not in {names:?}");
    }
    let snapshot = include_str!("../generated/mock.rs");
    for name in &names {
        assert!(
            snapshot.contains(&format!("fn {name}<F>(")),
            "MockServerExt has no helper {name}"
        );
    }
    assert!(!snapshot.contains("get_all_conversation"));
}
