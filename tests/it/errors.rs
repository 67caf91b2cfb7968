//! How failures reach the caller: every error status, bodies that are not problem details, bodies that do not decode, transport failures and timeouts, streams that fail midway, and the key never showing in any of them.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use httpmock::Method::GET;
use httpmock::MockServer;
use inkeep_analytics::{ApiError, Client, Error, listing::Sentiment};
use serde_json::json;

use crate::support::{TEST_KEY, client, conversation_page, feedback_item, problem};

/// The part of the test key that is secret; not even a prefix-stripped copy of it may leak.
const KEY_SECRET_PART: &str = "0123456789abcdef";

/// The two list operations, so that every error case runs against both.
#[derive(Clone, Copy, Debug)]
enum Operation {
    Conversations,
    Feedback,
}

impl Operation {
    const ALL: [Operation; 2] = [Operation::Conversations, Operation::Feedback];

    fn path(self) -> &'static str {
        match self {
            Operation::Conversations => "/conversations",
            Operation::Feedback => "/feedback",
        }
    }

    fn operation_id(self) -> &'static str {
        match self {
            Operation::Conversations => "getAllConversation",
            Operation::Feedback => "getAllFeedback",
        }
    }

    /// Sends one page request and keeps only the error, since every test here expects one.
    async fn send(self, client: &Client) -> Result<(), Error> {
        match self {
            Operation::Conversations => client.list_conversations().send().await.map(|_| ()),
            Operation::Feedback => client.list_feedback().send().await.map(|_| ()),
        }
    }

    /// Sends one page request that must fail, and returns the error.
    async fn fail(self, client: &Client) -> Error {
        match self.send(client).await {
            Ok(()) => panic!("{self:?}: the request succeeded, an error was expected"),
            Err(error) => error,
        }
    }
}

/// Fails when the key, or its secret part, shows in the error's `Display` or `Debug`.
fn assert_key_not_leaked(error: &Error) {
    let display = format!("{error}");
    let debug = format!("{error:?}");
    for text in [&display, &debug] {
        assert!(!text.contains(TEST_KEY), "the API key leaked: {text}");
        assert!(
            !text.contains(KEY_SECRET_PART),
            "part of the API key leaked: {text}"
        );
    }
}

/// The API error inside `error`, or a panic naming what came instead.
fn api_error(error: &Error) -> &ApiError {
    match error {
        Error::Api(api) => api,
        other => panic!("expected Error::Api, got {other:?}"),
    }
}

/// The statuses the spec documents for both list operations, with the `code` and `title` the API sends.
const DOCUMENTED: [(u16, &str, &str); 6] = [
    (400, "bad_request", "Bad Request"),
    (401, "unauthorized", "Unauthorized"),
    (403, "forbidden", "Forbidden"),
    (404, "not_found", "Not Found"),
    (422, "unprocessable_entity", "Unprocessable Entity"),
    (500, "internal_server_error", "Internal Server Error"),
];

#[tokio::test]
async fn every_documented_error_status_decodes_into_an_api_error() {
    for operation in Operation::ALL {
        for (status, code, title) in DOCUMENTED {
            let server = MockServer::start_async().await;
            let request_id = format!("req_{}_{status}", operation.operation_id());
            let body = problem(status, code, title, &request_id).to_string();
            let mock = server
                .mock_async(|when, then| {
                    // Matching on the header proves the key was sent, so that the leak checks below mean something.
                    when.method(GET)
                        .path(operation.path())
                        .header("authorization", format!("Bearer {TEST_KEY}"));
                    then.status(status)
                        .header("content-type", "application/problem+json")
                        .body(&body);
                })
                .await;
            let client = client(&server);
            let error = operation.fail(&client).await;
            mock.assert_async().await;

            let context = format!("{operation:?} {status}");
            let api = api_error(&error);
            assert_eq!(api.operation, operation.operation_id(), "{context}");
            assert_eq!(api.status.as_u16(), status, "{context}");
            assert_eq!(api.code.as_deref(), Some(code), "{context}");
            assert_eq!(api.title.as_deref(), Some(title), "{context}");
            let detail = format!("{title} (detail)");
            assert_eq!(api.detail.as_deref(), Some(detail.as_str()), "{context}");
            assert_eq!(api.instance.as_deref(), Some("/conversations"), "{context}");
            assert_eq!(
                api.request_id.as_deref(),
                Some(request_id.as_str()),
                "{context}"
            );
            assert_eq!(&api.body[..], body.as_bytes(), "{context}");
            assert_eq!(api.body_text(), body, "{context}");
            let Some(parsed) = &api.problem else {
                panic!("{context}: a complete problem body was not decoded into `problem`");
            };
            assert_eq!(parsed.code, code, "{context}");
            assert_eq!(parsed.error.code, code, "{context}");
            assert_eq!(parsed.status.as_u64(), Some(u64::from(status)), "{context}");

            assert_eq!(
                error.status().map(|s| s.as_u16()),
                Some(status),
                "{context}"
            );
            assert_eq!(error.request_id(), Some(request_id.as_str()), "{context}");
            assert!(error.as_api().is_some(), "{context}");
            assert_eq!(error.is_not_found(), status == 404, "{context}");
            assert_eq!(error.is_auth(), matches!(status, 401 | 403), "{context}");
            assert_eq!(
                error.is_retryable(),
                matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
                "{context}"
            );

            let display = error.to_string();
            let status_text = status.to_string();
            for expected in [
                status_text.as_str(),
                code,
                detail.as_str(),
                request_id.as_str(),
            ] {
                assert!(
                    display.contains(expected),
                    "{context}: {display:?} lacks {expected:?}"
                );
            }
            assert_key_not_leaked(&error);
            let client_debug = format!("{client:?}");
            assert!(!client_debug.contains(TEST_KEY), "{client_debug}");
            assert!(!client_debug.contains(KEY_SECRET_PART), "{client_debug}");
        }
    }
}

#[tokio::test]
async fn the_api_reference_example_error_body_decodes() {
    // The 401 body exactly as the API's reference page shows it.
    let body = r#"{
  "title": "Unauthorized",
  "status": 401,
  "detail": "Unauthorized",
  "instance": "/conversations/123",
  "requestId": "req_1234567890",
  "code": "unauthorized",
  "error": {
    "code": "unauthorized",
    "message": "Unauthorized"
  }
}"#;
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(401)
                    .header("content-type", "application/problem+json")
                    .body(body);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 401);
        assert_eq!(api.code.as_deref(), Some("unauthorized"));
        assert_eq!(api.title.as_deref(), Some("Unauthorized"));
        assert_eq!(api.detail.as_deref(), Some("Unauthorized"));
        assert_eq!(api.instance.as_deref(), Some("/conversations/123"));
        assert_eq!(api.request_id.as_deref(), Some("req_1234567890"));
        assert!(api.problem.is_some());
        assert_eq!(api.body_text(), body);
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn a_request_id_header_is_used_when_the_body_has_none() {
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        let mut body = problem(403, "forbidden", "Forbidden", "unused");
        if let Some(map) = body.as_object_mut() {
            map.remove("requestId");
        }
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(403)
                    .header("content-type", "application/problem+json")
                    .header("x-request-id", "hdr-7f3a")
                    .json_body(body.clone());
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 403);
        assert_eq!(api.code.as_deref(), Some("forbidden"));
        assert_eq!(api.request_id.as_deref(), Some("hdr-7f3a"), "{operation:?}");
        assert_eq!(error.request_id(), Some("hdr-7f3a"));
        assert!(error.to_string().contains("hdr-7f3a"), "{error}");
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn the_body_request_id_wins_over_the_header() {
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(500)
                    .header("content-type", "application/problem+json")
                    .header("x-request-id", "hdr-proxy")
                    .json_body(problem(
                        500,
                        "internal_server_error",
                        "Internal Server Error",
                        "req_body",
                    ));
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        assert_eq!(error.request_id(), Some("req_body"), "{operation:?}");
    }
}

#[tokio::test]
async fn an_html_502_from_a_proxy_is_an_api_error_with_the_page_kept() {
    let page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(502)
                    .header("content-type", "text/html")
                    .header("x-request-id", "edge-502")
                    .body(page);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.operation, operation.operation_id());
        assert_eq!(api.status.as_u16(), 502);
        assert_eq!(api.body_text(), page);
        assert_eq!(&api.body[..], page.as_bytes());
        assert_eq!(api.code, None);
        assert_eq!(api.title, None);
        assert_eq!(api.detail, None);
        assert!(api.problem.is_none());
        assert_eq!(api.request_id.as_deref(), Some("edge-502"));
        let display = error.to_string();
        assert!(display.contains("502"), "{display}");
        assert!(display.contains("Bad Gateway"), "{display}");
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn an_empty_503_is_an_api_error_with_an_empty_body() {
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(503);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 503);
        assert!(api.body.is_empty(), "{:?}", api.body);
        assert_eq!(api.body_text(), "");
        assert_eq!(api.code, None);
        assert_eq!(api.request_id, None);
        assert!(error.to_string().contains("503"), "{error}");
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn a_429_with_a_text_body_is_an_api_error_with_the_text_kept() {
    let text = "Too many requests: slow down and retry later";
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(429)
                    .header("content-type", "text/plain; charset=utf-8")
                    .header("retry-after", "1")
                    .body(text);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 429);
        assert_eq!(api.body_text(), text);
        assert_eq!(api.code, None);
        let display = error.to_string();
        assert!(display.contains("429"), "{display}");
        assert!(display.contains(text), "{display}");
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn a_json_error_body_that_is_not_a_problem_keeps_what_it_has() {
    // Gateways sometimes answer with their own JSON; whatever fields match are still surfaced.
    let body = json!({"error": {"code": "rate_limited", "message": "quota exceeded"}, "requestId": "gw-1"});
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(429).json_body(body.clone());
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 429);
        assert!(
            api.problem.is_none(),
            "an incomplete problem was decoded as complete"
        );
        assert_eq!(api.code.as_deref(), Some("rate_limited"));
        assert_eq!(api.detail.as_deref(), Some("quota exceeded"));
        assert_eq!(api.request_id.as_deref(), Some("gw-1"));
        assert_key_not_leaked(&error);
    }
}

/// Checks a decode error and returns its snippet.
fn assert_decode_error(error: &Error, operation: Operation, sent: &str) -> String {
    match error {
        Error::Decode {
            operation: reported,
            status,
            snippet,
            body,
            ..
        } => {
            assert_eq!(*reported, operation.operation_id());
            assert_eq!(status.as_u16(), 200);
            assert_eq!(&body[..], sent.as_bytes(), "the whole body is kept");
            assert!(!snippet.is_empty());
            assert!(
                sent.starts_with(snippet.as_str()),
                "{snippet:?} is not the start of the body"
            );
            assert_eq!(error.status().map(|s| s.as_u16()), Some(200));
            let display = error.to_string();
            assert!(display.contains(operation.operation_id()), "{display}");
            assert!(display.contains("200"), "{display}");
            snippet.clone()
        }
        other => panic!("{operation:?}: expected Error::Decode, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_on_a_200_is_a_decode_error() {
    let sent = r#"{"conversations": [}, "total": ,}"#;
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(200)
                    .header("content-type", "application/json")
                    .body(sent);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let snippet = assert_decode_error(&error, operation, sent);
        assert_eq!(snippet, sent);
        assert!(error.to_string().contains("conversations"), "{error}");
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn html_on_a_200_is_a_decode_error() {
    let sent = "<!doctype html><html><body>Sign in to continue</body></html>";
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(200)
                    .header("content-type", "text/html")
                    .body(sent);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        assert_decode_error(&error, operation, sent);
        assert!(error.to_string().contains("Sign in to continue"), "{error}");
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn truncated_json_on_a_200_is_a_decode_error_with_a_short_snippet() {
    let ids: Vec<String> = (0..5).map(|i| format!("conv-{i}")).collect();
    let whole_conversations = conversation_page(&ids, 5).to_string();
    let whole_feedback = json!({
        "positiveFeedbackCount": 1,
        "negativeFeedbackCount": 0,
        "positiveFeedback": [feedback_item("f1", "positive")],
        "negativeFeedback": [],
    })
    .to_string();
    for (operation, whole) in [
        (Operation::Conversations, whole_conversations),
        (Operation::Feedback, whole_feedback),
    ] {
        // Cut the body in the middle, as a dropped connection behind a proxy would.
        let sent = &whole[..whole.len() / 2];
        assert!(
            sent.len() > 400,
            "the fixture is too short to check the snippet's length"
        );
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(200)
                    .header("content-type", "application/json")
                    .body(sent);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let snippet = assert_decode_error(&error, operation, sent);
        assert!(
            snippet.len() < sent.len(),
            "the snippet should be a short start of a long body, got {} bytes of {}",
            snippet.len(),
            sent.len()
        );
        assert!(
            error.to_string().len() < sent.len(),
            "the message repeats the whole body"
        );
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn a_200_with_the_wrong_shape_is_a_decode_error() {
    let cases = [
        (
            Operation::Conversations,
            r#"{"conversations": 5, "total": 0, "pageSize": 0, "count": 0}"#,
        ),
        (
            Operation::Conversations,
            r#"{"total": 0, "pageSize": 0, "count": 0}"#,
        ),
        (Operation::Conversations, r#"[]"#),
        (
            Operation::Conversations,
            r#"{"conversations": [], "total": "twenty", "pageSize": 0, "count": 0}"#,
        ),
        // A known kind missing its required fields is an error, not silently an unknown kind.
        (
            Operation::Conversations,
            r#"{"conversations": [{"type": "openai", "id": "c1"}], "total": 1, "pageSize": 1, "count": 1}"#,
        ),
        (
            Operation::Feedback,
            r#"{"positiveFeedbackCount": 0, "negativeFeedbackCount": 0, "positiveFeedback": 5, "negativeFeedback": []}"#,
        ),
        (
            Operation::Feedback,
            r#"{"conversations": [], "total": 0, "pageSize": 0, "count": 0}"#,
        ),
        (Operation::Feedback, r#"null"#),
    ];
    for (operation, sent) in cases {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(200)
                    .header("content-type", "application/json")
                    .body(sent);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        assert_decode_error(&error, operation, sent);
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // Take a free port and release it, so that nothing listens there.
    let port = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => match listener.local_addr() {
            Ok(address) => address.port(),
            Err(error) => panic!("no local address: {error}"),
        },
        Err(error) => panic!("cannot bind a port on 127.0.0.1: {error}"),
    };
    let client = Client::builder()
        .api_key(TEST_KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(5))
        .build();
    let Ok(client) = client else {
        panic!("the client was refused");
    };
    for operation in Operation::ALL {
        let error = operation.fail(&client).await;
        match &error {
            Error::Transport {
                operation: reported,
                ..
            } => {
                assert_eq!(*reported, operation.operation_id());
            }
            other => panic!("{operation:?}: expected Error::Transport, got {other:?}"),
        }
        assert_eq!(error.status(), None);
        assert!(error.as_api().is_none());
        assert!(
            error.to_string().contains(operation.operation_id()),
            "{error}"
        );
        // The message names the root cause, not only reqwest's "error sending request".
        assert!(
            error
                .to_string()
                .to_lowercase()
                .contains("connection refused"),
            "{error}"
        );
        assert!(error.is_retryable(), "{error}");
        assert!(!error.is_auth() && !error.is_not_found(), "{error}");
        assert_key_not_leaked(&error);
    }
    let client_debug = format!("{client:?}");
    assert!(!client_debug.contains(KEY_SECRET_PART), "{client_debug}");
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_a_timeout_error() {
    // The server answers long after the client's timeout, so that "cut short" (sooner than the
    // answer) is a margin no loaded machine misses, while the test itself lasts the timeout.
    const SERVER_DELAY: Duration = Duration::from_secs(30);
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        let body = match operation {
            Operation::Conversations => conversation_page(&[], 0),
            Operation::Feedback => json!({
                "positiveFeedbackCount": 0,
                "negativeFeedbackCount": 0,
                "positiveFeedback": [],
                "negativeFeedback": [],
            }),
        };
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(200).delay(SERVER_DELAY).json_body(body);
            })
            .await;
        let client = Client::builder()
            .api_key(TEST_KEY)
            .base_url(server.base_url())
            .timeout(Duration::from_millis(300))
            .build();
        let Ok(client) = client else {
            panic!("the client was refused");
        };
        let started = Instant::now();
        let error = operation.fail(&client).await;
        let elapsed = started.elapsed();
        match &error {
            Error::Timeout {
                operation: reported,
                ..
            } => {
                assert_eq!(*reported, operation.operation_id());
            }
            other => panic!("{operation:?}: expected Error::Timeout, got {other:?}"),
        }
        assert!(
            elapsed < SERVER_DELAY,
            "the timeout did not cut the request short: {elapsed:?}"
        );
        assert!(
            error.to_string().contains(operation.operation_id()),
            "{error}"
        );
        assert_key_not_leaked(&error);
    }
}

#[tokio::test]
async fn a_conversation_stream_yields_the_first_page_then_one_error_then_ends() {
    let server = MockServer::start_async().await;
    let first = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("limit", "2")
                .query_param("offset", "0");
            then.status(200)
                .json_body(conversation_page(&["c1".to_string(), "c2".to_string()], 6));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("limit", "2")
                .query_param("offset", "2");
            then.status(500)
                .header("content-type", "application/problem+json")
                .json_body(problem(
                    500,
                    "internal_server_error",
                    "Internal Server Error",
                    "req_page2",
                ));
        })
        .await;
    let third = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("offset", "4");
            then.status(200)
                .json_body(conversation_page(&["c5".to_string(), "c6".to_string()], 6));
        })
        .await;

    // No pages fetched ahead, so that the requests after the error can be counted.
    let mut items = client(&server)
        .list_conversations()
        .limit(2)
        .prefetch(0)
        .items();
    let mut ids = Vec::new();
    for _ in 0..2 {
        match items.try_next().await {
            Ok(Some(conversation)) => ids.push(conversation.id().map(str::to_string)),
            other => panic!("expected a conversation of the first page, got {other:?}"),
        }
    }
    assert_eq!(ids, [Some("c1".to_string()), Some("c2".to_string())]);
    match items.next().await {
        Some(Err(error)) => {
            let api = api_error(&error);
            assert_eq!(api.status.as_u16(), 500);
            assert_eq!(api.request_id.as_deref(), Some("req_page2"));
            assert_key_not_leaked(&error);
        }
        other => panic!("expected the second page's error, got {other:?}"),
    }
    assert!(
        items.next().await.is_none(),
        "the stream went on after an error"
    );
    assert!(
        items.next().await.is_none(),
        "the stream went on after an error"
    );
    first.assert_calls_async(1).await;
    second.assert_calls_async(1).await;
    third.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_page_stream_yields_the_first_page_then_one_error_then_ends() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("offset", "0");
            then.status(200)
                .json_body(conversation_page(&["c1".to_string(), "c2".to_string()], 6));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("offset", "2");
            then.status(502)
                .header("content-type", "text/html")
                .body("<h1>Bad Gateway</h1>");
        })
        .await;

    let mut pages = client(&server).list_conversations().limit(2).pages();
    match pages.try_next().await {
        Ok(Some(page)) => assert_eq!(page.conversations.len(), 2),
        other => panic!("expected the first page, got {other:?}"),
    }
    match pages.next().await {
        Some(Err(error)) => {
            let api = api_error(&error);
            assert_eq!(api.status.as_u16(), 502);
            assert_eq!(api.body_text(), "<h1>Bad Gateway</h1>");
        }
        other => panic!("expected the second page's error, got {other:?}"),
    }
    assert!(
        pages.next().await.is_none(),
        "the stream went on after an error"
    );
    second.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_feedback_stream_yields_the_first_page_then_one_error_then_ends() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param("limit", "2")
                .query_param("offset", "0");
            then.status(200).json_body(json!({
                "positiveFeedbackCount": 5,
                "negativeFeedbackCount": 1,
                "positiveFeedback": [feedback_item("p1", "positive"), feedback_item("p2", "positive")],
                "negativeFeedback": [feedback_item("n1", "negative")],
            }));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param("limit", "2")
                .query_param("offset", "2");
            then.status(401)
                .header("content-type", "application/problem+json")
                .json_body(problem(401, "unauthorized", "Unauthorized", "req_fb2"));
        })
        .await;
    let third = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param("offset", "4");
            then.status(200).json_body(json!({
                "positiveFeedbackCount": 5,
                "negativeFeedbackCount": 1,
                "positiveFeedback": [feedback_item("p5", "positive")],
                "negativeFeedback": [],
            }));
        })
        .await;

    // No pages fetched ahead, so that the requests after the error can be counted.
    let mut items = client(&server).list_feedback().limit(2).prefetch(0).items();
    let mut seen = Vec::new();
    for _ in 0..3 {
        match items.try_next().await {
            Ok(Some(item)) => seen.push((item.sentiment, item.feedback.id)),
            other => panic!("expected an item of the first page, got {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            (Sentiment::Positive, "p1".to_string()),
            (Sentiment::Positive, "p2".to_string()),
            (Sentiment::Negative, "n1".to_string()),
        ]
    );
    match items.next().await {
        Some(Err(error)) => {
            let api = api_error(&error);
            assert_eq!(api.operation, "getAllFeedback");
            assert_eq!(api.status.as_u16(), 401);
            assert_eq!(api.code.as_deref(), Some("unauthorized"));
            assert_key_not_leaked(&error);
        }
        other => panic!("expected the second page's error, got {other:?}"),
    }
    assert!(
        items.next().await.is_none(),
        "the stream went on after an error"
    );
    second.assert_calls_async(1).await;
    third.assert_calls_async(0).await;
}

/// The most of an error body `ApiError` documents that it keeps ("at most 64 KiB of it").
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A proxy error page far larger than the documented cap.
fn huge_page() -> String {
    let mut page = String::from("<html><body><h1>Bad Gateway</h1>");
    while page.len() < 4 * MAX_ERROR_BODY {
        page.push_str("<p>upstream connect error or disconnect/reset before headers</p>\n");
    }
    page.push_str("</body></html>");
    page
}

#[tokio::test]
async fn a_huge_error_body_of_a_documented_status_is_cut_at_64_kib() {
    let page = huge_page();
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(500)
                    .header("content-type", "text/html")
                    .body(&page);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 500);
        assert_eq!(api.body.len(), MAX_ERROR_BODY, "{operation:?}");
        assert!(
            page.as_bytes().starts_with(&api.body),
            "the kept body is the start of the page"
        );
        assert!(
            error.to_string().len() < 1024,
            "the message repeats the page"
        );
    }
}

#[tokio::test]
async fn a_huge_error_body_of_an_undocumented_status_is_cut_at_64_kib() {
    // A 502 from a proxy is the case the cap exists for, and the spec does not list 502.
    let page = huge_page();
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(502)
                    .header("content-type", "text/html")
                    .body(&page);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), 502);
        assert!(
            api.body.len() <= MAX_ERROR_BODY,
            "{operation:?}: kept {} bytes of a {}-byte 502 page, more than the documented 64 KiB",
            api.body.len(),
            page.len()
        );
        assert!(
            page.as_bytes().starts_with(&api.body),
            "the kept body is the start of the page"
        );
    }
}

#[tokio::test]
async fn an_error_body_that_is_not_utf8_is_kept_byte_for_byte() {
    let bytes: &[u8] = &[0xff, 0xfe, b'o', b'o', b'p', b's', 0x80];
    for (operation, status) in [(Operation::Conversations, 500), (Operation::Feedback, 503)] {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(GET).path(operation.path());
                then.status(status)
                    .header("content-type", "application/octet-stream")
                    .body(bytes);
            })
            .await;
        let error = operation.fail(&client(&server)).await;
        let api = api_error(&error);
        assert_eq!(api.status.as_u16(), status);
        assert_eq!(&api.body[..], bytes);
        assert!(api.body_text().contains("oops"), "{}", api.body_text());
        assert!(error.to_string().contains("oops"), "{error}");
    }
}

#[tokio::test]
async fn a_key_echoed_back_by_a_proxy_is_scrubbed_from_the_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.status(502)
                .header("content-type", "text/html")
                .body(format!("<pre>Authorization: Bearer {TEST_KEY}</pre>"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/feedback");
            then.status(400)
                .header("content-type", "application/problem+json")
                .json_body(problem(
                    400,
                    "bad_request",
                    &format!("bad key {TEST_KEY}"),
                    "req_echo",
                ));
        })
        .await;
    let client = client(&server);
    for operation in Operation::ALL {
        let error = operation.fail(&client).await;
        let api = error.as_api().cloned();
        let Some(api) = api else {
            panic!("{operation:?}: expected an API error, got {error:?}");
        };
        let shown = format!("{error} {error:?} {}", api.body_text());
        assert!(
            !shown.contains(KEY_SECRET_PART),
            "{operation:?} leaked the key: {shown}"
        );
        assert!(
            api.body_text().contains("<redacted>"),
            "{}",
            api.body_text()
        );
        if let Some(problem) = &api.problem {
            assert!(!problem.title.contains(KEY_SECRET_PART));
        }
    }
}
