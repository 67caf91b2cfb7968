//! Per-operation auth (web integration keys on the operations the spec lists for them) and the local limits checked before any request.

use futures::TryStreamExt;
use httpmock::Method::{DELETE, GET, POST};
use httpmock::MockServer;
use inkeep_analytics::types::{
    CreateOpenAiConversation, CreateOpenAiMessage, FeedbackInput, InsertEvent,
};
use inkeep_analytics::{
    Client, Error,
    config::{KeyKind, MAX_REQUEST_BODY_BYTES},
};
use serde_json::json;

use crate::support::{client, client_at, openai_conversation, scope_prefix, scoped_base_url};

const WEB_KEY: &str = "wk-test-web-integration";

fn web_client(server: &MockServer) -> Client {
    web_client_at(&server.base_url())
}

fn web_client_at(base_url: &str) -> Client {
    match Client::builder()
        .web_integration_key(WEB_KEY)
        .base_url(base_url)
        .build()
    {
        Ok(client) => client,
        Err(error) => panic!("{error}"),
    }
}

#[tokio::test]
async fn a_web_integration_key_works_on_the_five_operations_that_accept_it() {
    let server = MockServer::start_async().await;
    let bearer = format!("Bearer {WEB_KEY}");
    let log = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/conversations")
                .header("authorization", bearer.as_str());
            then.status(200).json_body(openai_conversation("c1"));
        })
        .await;
    let get = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations/c1")
                .header("authorization", bearer.as_str());
            then.status(200).json_body(openai_conversation("c1"));
        })
        .await;
    let delete = server
        .mock_async(|when, then| {
            when.method(DELETE)
                .path("/conversations/c1")
                .header("authorization", bearer.as_str());
            then.status(200)
                .json_body(json!({"success": true, "message": "deleted"}));
        })
        .await;
    let event = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/events")
                .header("authorization", bearer.as_str());
            then.status(200).json_body(json!({
                "id": "e1", "entityType": "conversation", "type": "conversation_shared",
                "conversationId": "c1", "createdAt": "2025-01-01T00:00:00Z",
                "projectId": null, "integrationId": null
            }));
        })
        .await;
    let feedback = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/feedback")
                .header("authorization", bearer.as_str());
            then.status(200).json_body(json!({
                "id": "f1", "messageId": "m1", "type": "positive",
                "createdAt": "2025-01-01T00:00:00Z"
            }));
        })
        .await;
    let client = web_client(&server);
    assert_eq!(client.key_kind(), KeyKind::WebIntegration);
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]);
    assert!(client.log_conversation(conversation).await.is_ok());
    assert!(client.get_conversation("c1").await.is_ok());
    assert!(
        client
            .delete_conversation("c1")
            .await
            .is_ok_and(|r| r.success)
    );
    assert!(
        client
            .log_event(InsertEvent::conversation("c1", "conversation_shared"))
            .await
            .is_ok()
    );
    assert!(
        client
            .log_feedback(FeedbackInput::positive("m1"))
            .await
            .is_ok()
    );
    for mock in [log, get, delete, event, feedback] {
        mock.assert_calls_async(1).await;
    }
}

#[tokio::test]
async fn a_web_integration_key_is_refused_locally_on_read_operations() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.path_prefix(scope_prefix("web-key-refused"));
            then.status(200).json_body(json!({}));
        })
        .await;
    let client = web_client_at(&scoped_base_url(&server, "web-key-refused"));
    let results = [
        client.list_conversations().send().await.err(),
        client.list_feedback().send().await.err(),
        client.get_conversation_by_external_id("x").await.err(),
        client.get_feedback("f1").await.err(),
        client.delete_feedback("f1").await.err(),
        client.top_search_queries(None, None).await.err(),
    ];
    for error in results {
        match &error {
            Some(Error::Permission { reason, .. }) => {
                assert!(reason.contains("API integration key"), "{reason}");
            }
            other => panic!("expected a local refusal, got {other:?}"),
        }
        // A key refused locally is an auth failure like a 403, not a mistake in the arguments.
        assert!(error.as_ref().is_some_and(Error::is_auth), "{error:?}");
        assert_eq!(error.as_ref().and_then(Error::status), None);
    }
    any.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_body_over_two_megabytes_is_refused_before_sending() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.path_prefix(scope_prefix("body-limit"));
            then.status(200).json_body(openai_conversation("c1"));
        })
        .await;
    let client = client_at(&scoped_base_url(&server, "body-limit"));
    let huge = "x".repeat(MAX_REQUEST_BODY_BYTES + 1);
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user(huge)]);
    match client.log_conversation(conversation).await {
        Err(Error::InvalidInput { reason }) => assert!(reason.contains("at most"), "{reason}"),
        other => panic!("expected a local refusal, got {other:?}"),
    }
    any.assert_calls_async(0).await;

    // Just under the limit is sent.
    let fits = "x".repeat(MAX_REQUEST_BODY_BYTES - 1024);
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user(fits)]);
    assert!(client.log_conversation(conversation).await.is_ok());
    any.assert_calls_async(1).await;
}

#[tokio::test]
async fn empty_ids_and_messageless_conversations_are_refused_locally() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.path_prefix(scope_prefix("empty-ids"));
            then.status(200).json_body(json!({}));
        })
        .await;
    let client = client_at(&scoped_base_url(&server, "empty-ids"));
    assert!(matches!(
        client.get_conversation("").await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        client.delete_feedback(" ").await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        client.get_conversation_by_external_id("").await,
        Err(Error::InvalidInput { .. })
    ));
    let empty = CreateOpenAiConversation::new(vec![]);
    assert!(matches!(
        client.log_conversation(empty).await,
        Err(Error::InvalidInput { .. })
    ));
    any.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_property_values_limit_over_the_maximum_is_refused_locally() {
    use inkeep_analytics::query::{self, MAX_PROPERTY_VALUES_LIMIT};
    use inkeep_analytics::types::PropertyField;

    let server = MockServer::start_async().await;
    let values = server
        .mock_async(|when, then| {
            when.method(POST).path(format!(
                "{}/query/property-values",
                scope_prefix("values-limit")
            ));
            then.status(200).json_body(json!({"results": []}));
        })
        .await;
    let client = client_at(&scoped_base_url(&server, "values-limit"));
    let with_limit = |limit: u64| {
        let mut request = query::property_values(PropertyField::Properties, "plan");
        request.limit = std::num::NonZeroU64::new(limit).unwrap_or(std::num::NonZeroU64::MIN);
        request
    };
    let over = client
        .query_property_values(with_limit(MAX_PROPERTY_VALUES_LIMIT + 1))
        .await;
    match over {
        Err(Error::InvalidInput { reason }) => assert!(reason.contains("1000"), "{reason}"),
        other => panic!("expected a local refusal, got {other:?}"),
    }
    values.assert_calls_async(0).await;
    let most = client
        .query_property_values(with_limit(MAX_PROPERTY_VALUES_LIMIT))
        .await;
    assert!(most.is_ok(), "{most:?}");
    values.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_large_csv_export_is_streamed_in_chunks() {
    let server = MockServer::start_async().await;
    let mut csv = String::from("id,type,userMessageCount\n");
    let mut row = 0;
    while csv.len() < 8 * 1024 * 1024 {
        csv.push_str(&format!("conv-{row},openai,{}\n", row % 17));
        row += 1;
    }
    let expected_len = csv.len();
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/query/conversations/export")
                .header("accept", "text/csv")
                .json_body(json!({}));
            then.status(200)
                .header("content-type", "text/csv")
                .body(csv);
        })
        .await;
    let everything: inkeep_analytics::types::QueryConversationsBody =
        match serde_json::from_value(json!({})) {
            Ok(body) => body,
            Err(error) => panic!("{error}"),
        };
    let export = client(&server)
        .export_conversations_query_results(everything)
        .await;
    let Ok(export) = export else {
        panic!("{export:?}");
    };
    let mut chunks = 0;
    let mut largest = 0;
    let mut received = 0;
    let mut lines = 0;
    let mut stream = std::pin::pin!(export);
    while let Some(chunk) = stream.try_next().await.ok().flatten() {
        chunks += 1;
        largest = largest.max(chunk.len());
        received += chunk.len();
        lines += chunk.iter().filter(|byte| **byte == b'\n').count();
    }
    mock.assert_async().await;
    assert_eq!(received, expected_len, "every byte arrives");
    assert_eq!(lines, row + 1);
    assert!(
        chunks > 8,
        "the body arrived in {chunks} chunk(s), so it was buffered"
    );
    assert!(largest < expected_len / 4, "a chunk of {largest} bytes");
}
