//! Retries: transient failures of idempotent operations are retried with backoff and `Retry-After`; writes and client errors are not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use httpmock::Method::{GET, POST};
use httpmock::{HttpMockResponse, MockServer};
use inkeep_analytics::types::{CreateOpenAiConversation, CreateOpenAiMessage};
use inkeep_analytics::{Client, Error, config::RetryPolicy};

use crate::support::{TEST_KEY, conversation_page, openai_conversation, problem};

fn fast_client(server: &MockServer, max_retries: u32) -> Client {
    let policy = RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    match Client::builder()
        .api_key(TEST_KEY)
        .base_url(server.base_url())
        .retry_policy(policy)
        .build()
    {
        Ok(client) => client,
        Err(error) => panic!("{error}"),
    }
}

/// Answers the first `failures` requests with `status` (and `retry_after`), then with `success`.
fn flaky(
    failures: usize,
    status: u16,
    retry_after: Option<&'static str>,
    success: serde_json::Value,
) -> (
    Arc<AtomicUsize>,
    impl Fn(&httpmock::HttpMockRequest) -> HttpMockResponse + Send + Sync + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let responder = move |_: &httpmock::HttpMockRequest| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        if call < failures {
            let mut response = HttpMockResponse::builder()
                .status(status)
                .header("content-type", "text/html")
                .body("<html>busy</html>");
            if let Some(after) = retry_after {
                response = response.header("retry-after", after);
            }
            response.build()
        } else {
            HttpMockResponse::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(success.to_string())
                .build()
        }
    };
    (calls, responder)
}

#[tokio::test]
async fn reads_are_retried_through_transient_statuses() {
    for status in [408, 429, 500, 502, 503, 504] {
        let server = MockServer::start_async().await;
        let (calls, responder) = flaky(2, status, None, conversation_page(&["c1".to_string()], 1));
        server
            .mock_async(|when, then| {
                when.method(GET).path("/conversations");
                then.respond_with(responder);
            })
            .await;
        let result = fast_client(&server, 2).list_conversations().send().await;
        assert!(result.is_ok(), "{status}: {result:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{status}");
    }
}

#[tokio::test]
async fn retries_stop_at_the_limit_with_the_last_error() {
    let server = MockServer::start_async().await;
    let (calls, responder) = flaky(10, 503, None, conversation_page(&[], 0));
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let result = fast_client(&server, 2).list_conversations().send().await;
    assert_eq!(
        result.err().and_then(|e| e.status()).map(|s| s.as_u16()),
        Some(503)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let calls_before = calls.load(Ordering::SeqCst);
    let result = fast_client(&server, 0).list_conversations().send().await;
    assert!(result.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        calls_before + 1,
        "0 retries sends once"
    );
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let server = MockServer::start_async().await;
    let (calls, responder) = flaky(1, 429, Some("1"), conversation_page(&[], 0));
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = match Client::builder()
        .api_key(TEST_KEY)
        .base_url(server.base_url())
        .retry_policy(RetryPolicy {
            max_retries: 1,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_secs(5),
            ..RetryPolicy::default()
        })
        .build()
    {
        Ok(client) => client,
        Err(error) => panic!("{error}"),
    };
    let started = Instant::now();
    assert!(client.list_conversations().send().await.is_ok());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for status in [400, 401, 403, 404, 422] {
        let server = MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                when.method(GET).path("/conversations/c1");
                then.status(status)
                    .header("content-type", "application/problem+json")
                    .json_body(problem(status, "x", "x", "req_no_retry"));
            })
            .await;
        let result = fast_client(&server, 3).get_conversation("c1").await;
        assert_eq!(
            result.as_ref().err().and_then(Error::request_id),
            Some("req_no_retry")
        );
        mock.assert_calls_async(1).await;
    }
}

#[tokio::test]
async fn writes_without_an_id_are_sent_once_even_on_a_transient_failure() {
    let server = MockServer::start_async().await;
    let (calls, responder) = flaky(1, 503, None, openai_conversation("c1"));
    server
        .mock_async(|when, then| {
            when.method(POST).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    // `Client::log_conversation` would give the conversation an id; the generated client sends it as is.
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]);
    let result = fast_client(&server, 3)
        .generated()
        .log_conversation()
        .body(conversation)
        .send()
        .await;
    assert_eq!(
        result.err().and_then(|e| e.status()).map(|s| s.as_u16()),
        Some(503)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn queries_are_retried_as_reads() {
    let server = MockServer::start_async().await;
    let (calls, responder) = flaky(
        1,
        502,
        None,
        serde_json::json!({"status": "ok", "data": {"result": [], "total": 0, "pageSize": 0, "count": 0}}),
    );
    server
        .mock_async(|when, then| {
            when.method(POST).path("/query/events");
            then.respond_with(responder);
        })
        .await;
    let body: inkeep_analytics::types::QueryEventsBody =
        serde_json::from_value(serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
    assert!(fast_client(&server, 2).query_events(body).await.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
