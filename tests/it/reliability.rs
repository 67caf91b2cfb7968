//! Reliability and security: idempotent writes, retried bodies, bounded retries, response limits,
//! redirects, secrets and concurrency, against httpmock, a scripted raw server and the sandbox, all
//! on loopback.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use httpmock::Method::{GET, POST};
use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use inkeep_analytics::types::{
    self, CreateOpenAiConversation, CreateOpenAiMessage, FeedbackInput, InsertEvent,
};
use inkeep_analytics::{
    Client, ClientBuilder, Error,
    config::{MAX_REDIRECTS, RetryPolicy},
};
use serde_json::{Value, json};

use crate::support::{LogBuffer, conversation_page, openai_conversation, problem};

/// The key of every client here; no output may ever show it.
const KEY: &str = "sk-reliability-SECRET-7f3a9c";

fn bearer() -> String {
    format!("Bearer {KEY}")
}

/// Retries with backoffs of a millisecond or so, so that the tests count attempts, not wait.
fn tiny_policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn builder(base_url: &str, policy: RetryPolicy) -> ClientBuilder {
    Client::builder()
        .api_key(KEY)
        .base_url(base_url)
        .retry_policy(policy)
        .timeout(Duration::from_secs(10))
}

#[track_caller]
fn build(builder: ClientBuilder) -> Client {
    match builder.build() {
        Ok(client) => client,
        Err(error) => panic!("cannot build a client: {error}"),
    }
}

fn client_for(base_url: &str, policy: RetryPolicy) -> Client {
    build(builder(base_url, policy))
}

#[track_caller]
fn ok<T>(result: Result<T, Error>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

#[track_caller]
fn err<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) -> Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(error) => error,
    }
}

fn answer(status: u16, content_type: &str, body: impl Into<String>) -> HttpMockResponse {
    HttpMockResponse::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.into())
        .build()
}

fn json_answer(body: &Value) -> HttpMockResponse {
    answer(200, "application/json", body.to_string())
}

fn busy() -> HttpMockResponse {
    answer(503, "text/html", "<html>busy</html>")
}

/// The request bodies a responder received, in order.
#[derive(Clone, Default)]
struct Bodies(Arc<Mutex<Vec<Vec<u8>>>>);

impl Bodies {
    fn push(&self, body: &[u8]) -> usize {
        let mut bodies = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bodies.push(body.to_vec());
        bodies.len() - 1
    }

    fn all(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The top-level `id` of each body, `None` for a body without one.
    fn ids(&self) -> Vec<Option<String>> {
        self.all()
            .iter()
            .map(|body| {
                serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|value| value.get("id").and_then(Value::as_str).map(str::to_string))
            })
            .collect()
    }
}

/// A responder that records every request body and answers the n-th request (from 0) with `script(n)`.
fn scripted(
    script: impl Fn(usize) -> HttpMockResponse + Send + Sync + 'static,
) -> (
    Bodies,
    impl Fn(&HttpMockRequest) -> HttpMockResponse + Send + Sync + 'static,
) {
    let bodies = Bodies::default();
    let recorder = bodies.clone();
    (bodies, move |request: &HttpMockRequest| {
        script(recorder.push(request.body_ref()))
    })
}

fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|group| group.chars().all(|c| c.is_ascii_hexdigit()))
        && groups[2].starts_with('4')
}

/// The first message's text of a conversation, whatever its kind.
fn first_text(conversation: &types::Conversation) -> Option<String> {
    serde_json::to_value(conversation)
        .ok()?
        .pointer("/messages/0/content")?
        .as_str()
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// A scripted raw HTTP/1.1 server, for what httpmock cannot send: a body shorter than its
// `Content-Length`, a `Content-Length` that is never honoured, and a body that never ends.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
enum RawAnswer {
    /// Writes these bytes and closes the connection.
    Bytes(Vec<u8>),
    /// Promises a body of `length` bytes, sends a few, then holds the connection until the client goes.
    Promise { length: u64 },
    /// Streams a chunked body until the client goes away (or 1 GiB has been sent).
    Endless,
}

/// A whole answer, closing the connection.
fn raw_answer(status: u16, body: &[u8]) -> RawAnswer {
    let mut bytes = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    RawAnswer::Bytes(bytes)
}

/// A 200 that promises all of `body` and sends only its first half, then closes the connection.
fn truncated_answer(body: &[u8]) -> RawAnswer {
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body[..body.len() / 2]);
    RawAnswer::Bytes(bytes)
}

struct RawServer {
    address: SocketAddr,
    bodies: Bodies,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    /// Answers the n-th connection with `script[n]`, and every later one with the last answer.
    fn start(script: Vec<RawAnswer>) -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(error) => panic!("cannot bind 127.0.0.1: {error}"),
        };
        let address = match listener.local_addr() {
            Ok(address) => address,
            Err(error) => panic!("no local address: {error}"),
        };
        if let Err(error) = listener.set_nonblocking(true) {
            panic!("cannot make the listener non-blocking: {error}");
        }
        let server = RawServer {
            address,
            bodies: Bodies::default(),
            connections: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (bodies, connections, stop) = (
            server.bodies.clone(),
            Arc::clone(&server.connections),
            Arc::clone(&server.stop),
        );
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let index = connections.fetch_add(1, Ordering::SeqCst);
                        let answer = script
                            .get(index)
                            .or(script.last())
                            .cloned()
                            .unwrap_or(RawAnswer::Bytes(Vec::new()));
                        let (bodies, stop) = (bodies.clone(), Arc::clone(&stop));
                        std::thread::spawn(move || serve(stream, &answer, &bodies, &stop));
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => break,
                }
            }
        });
        server
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request (head and `Content-Length` body), records its body and writes `answer`.
fn serve(mut stream: TcpStream, answer: &RawAnswer, bodies: &Bodies, stop: &AtomicBool) {
    // Failures here only mean the client went away; the test sees that from its side.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = request.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    bodies.push(&request[head_end..head_end + length]);
    match answer {
        RawAnswer::Bytes(bytes) => {
            let _ = stream.write_all(bytes);
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
        RawAnswer::Promise { length } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{{\"conversations\": ["
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.flush();
            // Hold the connection until the client closes it (a read returns 0) or the test ends.
            let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
                match stream.read(&mut buffer) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(error)
                        if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        }
        RawAnswer::Endless => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n[\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            for _ in 0..(1024 * 1024 * 1024 / (64 * 1024)) {
                if stop.load(Ordering::SeqCst) || stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Idempotent writes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum WriteOp {
    Conversation,
    UnknownKindConversation,
    Event,
    Feedback,
}

impl WriteOp {
    const ALL: [WriteOp; 4] = [
        WriteOp::Conversation,
        WriteOp::UnknownKindConversation,
        WriteOp::Event,
        WriteOp::Feedback,
    ];

    fn path(self) -> &'static str {
        match self {
            WriteOp::Conversation | WriteOp::UnknownKindConversation => "/conversations",
            WriteOp::Event => "/events",
            WriteOp::Feedback => "/feedback",
        }
    }

    fn answer(self) -> Value {
        match self {
            WriteOp::Conversation | WriteOp::UnknownKindConversation => openai_conversation("c1"),
            WriteOp::Event => json!({
                "id": "e1", "entityType": "conversation", "type": "conversation_shared",
                "conversationId": "c1", "createdAt": "2025-01-01T00:00:00Z",
                "projectId": null, "integrationId": null
            }),
            WriteOp::Feedback => json!({
                "id": "fb1", "type": "positive", "messageId": "m1",
                "createdAt": "2025-01-03T00:00:00.000Z"
            }),
        }
    }

    /// Sends the write without an id.
    async fn send(self, client: &Client) -> Result<(), Error> {
        match self {
            WriteOp::Conversation => client
                .log_conversation(CreateOpenAiConversation::new(vec![
                    CreateOpenAiMessage::user("hi"),
                ]))
                .await
                .map(drop),
            WriteOp::UnknownKindConversation => client
                .log_conversation(types::CreateConversation::Unknown(json!({
                    "type": "voice_call",
                    "messages": [{"role": "caller", "content": "hi"}],
                })))
                .await
                .map(drop),
            WriteOp::Event => client
                .log_event(InsertEvent::conversation("c1", "conversation_shared"))
                .await
                .map(drop),
            WriteOp::Feedback => client
                .log_feedback(FeedbackInput::positive("m1"))
                .await
                .map(drop),
        }
    }
}

#[tokio::test]
async fn writes_without_an_id_get_one_and_are_retried_as_upserts() {
    for write in WriteOp::ALL {
        let server = MockServer::start_async().await;
        let success = write.answer();
        let (bodies, responder) = scripted(move |n| match n {
            0 => busy(),
            1 => answer(502, "text/plain", ""),
            _ => json_answer(&success),
        });
        server
            .mock_async(|when, then| {
                when.method(POST)
                    .path(write.path())
                    .header("authorization", bearer());
                then.respond_with(responder);
            })
            .await;
        let client = client_for(&server.base_url(), tiny_policy(2));
        ok(write.send(&client).await, &format!("{write:?}"));

        assert_eq!(bodies.count(), 3, "{write:?}: two retries, then the answer");
        let ids = bodies.ids();
        let Some(Some(id)) = ids.first() else {
            panic!("{write:?}: the first attempt had no id: {ids:?}");
        };
        assert!(is_uuid_v4(id), "{write:?}: {id} is not a UUID v4");
        let all = bodies.all();
        assert!(
            all.iter().all(|body| body == &all[0]),
            "{write:?}: every attempt sends the same body, id included"
        );

        // Another write gets another id.
        let again = MockServer::start_async().await;
        let success = write.answer();
        let (second, responder) = scripted(move |_| json_answer(&success));
        again
            .mock_async(|when, then| {
                when.method(POST).path(write.path());
                then.respond_with(responder);
            })
            .await;
        ok(
            write
                .send(&client_for(&again.base_url(), tiny_policy(2)))
                .await,
            "a second write",
        );
        assert_ne!(
            second.ids().first(),
            ids.first(),
            "{write:?}: ids are fresh"
        );
    }
}

#[tokio::test]
async fn a_caller_chosen_id_is_sent_as_given_and_retried() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|n| {
        if n == 0 {
            busy()
        } else {
            json_answer(&openai_conversation("mine"))
        }
    });
    server
        .mock_async(|when, then| {
            when.method(POST).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let conversation = ok(
        CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]).with_id("mine"),
        "with_id",
    );
    let client = client_for(&server.base_url(), tiny_policy(2));
    ok(client.log_conversation(conversation).await, "log");
    assert_eq!(
        bodies.ids(),
        vec![Some("mine".to_string()), Some("mine".to_string())]
    );
}

#[tokio::test]
async fn the_generated_client_retries_a_write_only_when_its_body_has_an_id() {
    for (with_id, expected_calls) in [(true, 2), (false, 1)] {
        let server = MockServer::start_async().await;
        let (bodies, responder) = scripted(|n| {
            if n == 0 {
                busy()
            } else {
                json_answer(&openai_conversation("c1"))
            }
        });
        server
            .mock_async(|when, then| {
                when.method(POST).path("/conversations");
                then.respond_with(responder);
            })
            .await;
        let mut body = json!({"type": "openai", "messages": [{"role": "user", "content": "hi"}]});
        if with_id {
            body["id"] = json!("c1");
        }
        let client = client_for(&server.base_url(), tiny_policy(3));
        let result = client
            .generated()
            .log_conversation()
            .body(types::CreateConversation::Unknown(body))
            .send()
            .await;
        assert_eq!(result.is_ok(), with_id, "with id: {with_id}");
        assert_eq!(bodies.count(), expected_calls, "with id: {with_id}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Bodies cut off or malformed on a success
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_body_on_a_read_is_retried() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|n| match n {
        0 => answer(200, "application/json", r#"{"conversations": ["#),
        1 => answer(200, "application/json", r#"{"conversations": [}"#),
        _ => json_answer(&conversation_page(&["c1".to_string()], 1)),
    });
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(2));
    let page = ok(client.list_conversations().send().await, "list");
    assert_eq!(page.conversations.len(), 1);
    assert_eq!(bodies.count(), 3);
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_not_retried() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|_| {
        answer(
            200,
            "application/json",
            r#"{"conversations": "none", "total": 0, "pageSize": 0, "count": 0}"#,
        )
    });
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(3));
    let error = err(client.list_conversations().send().await, "list");
    assert!(
        matches!(error, Error::Decode { attempts: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.attempts(), 1);
    assert!(!error.to_string().contains("attempts"), "{error}");
    assert_eq!(bodies.count(), 1, "the same JSON would come back");
}

#[tokio::test]
async fn malformed_bodies_give_up_after_the_attempts_with_a_decode_error() {
    let server = MockServer::start_async().await;
    let (bodies, responder) =
        scripted(|_| answer(200, "application/json", r#"{"conversations": ["#));
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(2));
    let error = err(client.list_conversations().send().await, "list");
    assert!(
        matches!(error, Error::Decode { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
    assert_eq!(bodies.count(), 3);
}

#[tokio::test]
async fn a_truncated_body_on_a_write_is_retried_with_the_same_id() {
    let logged = openai_conversation("c1").to_string().into_bytes();
    let server = RawServer::start(vec![truncated_answer(&logged), raw_answer(200, &logged)]);
    let client = client_for(&server.base_url(), tiny_policy(2));
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]);
    let answer = ok(client.log_conversation(conversation).await, "log");
    assert_eq!(answer.id(), Some("c1"));
    assert_eq!(server.connections(), 2);
    let ids = server.bodies.ids();
    assert_eq!(ids.len(), 2);
    assert!(
        ids[0].is_some() && ids[0] == ids[1],
        "both attempts carry one id: {ids:?}"
    );
}

#[tokio::test]
async fn a_write_surfaces_the_error_once_its_retries_are_spent() {
    let logged = openai_conversation("c1").to_string().into_bytes();
    let server = RawServer::start(vec![truncated_answer(&logged)]);
    let client = client_for(&server.base_url(), tiny_policy(2));
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]);
    let error = err(client.log_conversation(conversation).await, "log");
    assert!(
        matches!(error, Error::Transport { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn a_truncated_body_on_a_raw_page_is_retried() {
    let page = conversation_page(&["c1".to_string()], 1)
        .to_string()
        .into_bytes();
    let server = RawServer::start(vec![truncated_answer(&page), raw_answer(200, &page)]);
    let client = client_for(&server.base_url(), tiny_policy(2));
    let pages: Vec<_> = ok(
        client.list_conversations().raw_pages().try_collect().await,
        "raw pages",
    );
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].conversations.len(), 1);
    assert_eq!(server.connections(), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Bounds and visibility
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_final_error_says_how_many_attempts_were_made() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|_| busy());
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(2));
    let error = err(client.list_conversations().send().await, "list");
    assert_eq!(error.attempts(), 3);
    assert_eq!(error.as_api().map(|api| api.attempts), Some(3));
    assert_eq!(error.status().map(|s| s.as_u16()), Some(503));
    assert!(error.to_string().contains("(after 3 attempts)"), "{error}");
    assert_eq!(bodies.count(), 3);

    let error = err(
        client.with_max_retries(0).list_conversations().send().await,
        "list once",
    );
    assert_eq!(error.attempts(), 1);
    assert!(!error.to_string().contains("attempts"), "{error}");
    assert_eq!(bodies.count(), 4);

    // Nothing listens on a port just released: every attempt fails to connect.
    let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("cannot bind a port: {error}"),
    };
    let refused = client_for(&format!("http://127.0.0.1:{port}"), tiny_policy(2));
    let error = err(refused.get_conversation("c1").await, "refused");
    assert!(
        matches!(error, Error::Transport { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("after 3 attempts"), "{error}");

    // Refused before any request: nothing was attempted.
    let error = err(client.get_conversation(" ").await, "empty id");
    assert_eq!(error.attempts(), 0);
}

#[tokio::test]
async fn retries_stop_at_the_time_limit() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|_| {
        HttpMockResponse::builder()
            .status(429)
            .header("retry-after", "1")
            .body("slow down")
            .build()
    });
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let policy = RetryPolicy {
        max_retries: 10,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_secs(5),
        max_elapsed: Duration::from_millis(1500),
    };
    let client = client_for(&server.base_url(), policy);
    let started = Instant::now();
    let error = err(client.list_conversations().send().await, "list");
    let elapsed = started.elapsed();
    // Attempt 1 at 0 s, attempt 2 after the 1 s wait; a third would start at 2 s, past 1.5 s.
    // The count of attempts is what shows the limit; a loaded machine may take any time longer.
    assert_eq!(bodies.count(), 2);
    assert_eq!(error.attempts(), 2);
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
}

#[tokio::test]
async fn a_per_call_policy_leaves_the_client_as_it_was() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|n| {
        if n < 2 {
            busy()
        } else {
            json_answer(&conversation_page(&[], 0))
        }
    });
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(2));
    let once = client.with_retry_policy(RetryPolicy::none());
    assert_eq!(once.retry_policy().max_retries, 0);
    assert_eq!(client.retry_policy().max_retries, 2);
    assert!(once.list_conversations().send().await.is_err());
    assert_eq!(bodies.count(), 1, "no retry for this call");
    ok(client.list_conversations().send().await, "retried list");
    assert_eq!(bodies.count(), 3, "the client still retries");
}

#[tokio::test]
async fn every_retry_is_logged_with_its_attempt_reason_and_wait() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let server = MockServer::start_async().await;
    let (_, responder) = scripted(|n| match n {
        0 => busy(),
        1 => answer(200, "application/json", "{\"conversations\": ["),
        _ => json_answer(&conversation_page(&[], 0)),
    });
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    ok(
        client_for(&server.base_url(), tiny_policy(2))
            .list_conversations()
            .send()
            .await,
        "list",
    );
    let text = logs.text();
    let retries: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("retrying"))
        .collect();
    assert_eq!(retries.len(), 2, "{text}");
    for (line, attempt, reason) in [
        (retries[0], "attempt=1", "reason=status 503"),
        (retries[1], "attempt=2", "reason=EOF while parsing"),
    ] {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("operation=\"getAllConversation\""), "{line}");
        assert!(line.contains(attempt), "{line}");
        assert!(line.contains(reason), "{line}");
        assert!(line.contains("wait_ms="), "{line}");
        assert!(line.contains("max_attempts=3"), "{line}");
    }
    assert!(retries[1].contains("malformed"), "{}", retries[1]);
}

// ---------------------------------------------------------------------------------------------
// 4. Response limits
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_too_large(error: &Error, expected_limit: u64) {
    match error {
        Error::ResponseTooLarge {
            limit, attempts, ..
        } => {
            assert_eq!(*limit, expected_limit);
            assert_eq!(*attempts, 1, "a body over the limit is not retried");
        }
        other => panic!("expected Error::ResponseTooLarge, got {other:?}"),
    }
    assert!(error.to_string().contains("max_response_bytes"), "{error}");
}

#[tokio::test]
async fn a_response_over_the_limit_is_refused_from_its_content_length() {
    // Ten gigabytes promised and never sent: the client must not wait for them, nor try to hold them.
    let server = RawServer::start(vec![RawAnswer::Promise {
        length: 10 * 1024 * 1024 * 1024,
    }]);
    let client = build(builder(&server.base_url(), tiny_policy(2)).max_response_bytes(1024 * 1024));
    let started = Instant::now();
    let error = err(client.list_conversations().send().await, "list");
    assert_too_large(&error, 1024 * 1024);
    // Ten gigabytes would take minutes; a loaded machine answers the refusal well within this.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_streamed_response_is_cut_off_at_the_limit() {
    // A chunked body without a length that would go on for a gigabyte.
    for raw in [false, true] {
        let server = RawServer::start(vec![RawAnswer::Endless]);
        let client =
            build(builder(&server.base_url(), tiny_policy(2)).max_response_bytes(4 * 1024 * 1024));
        let started = Instant::now();
        let error = if raw {
            let pages: Result<Vec<_>, Error> =
                client.list_conversations().raw_pages().try_collect().await;
            err(pages, "raw pages")
        } else {
            err(client.list_conversations().send().await, "list")
        };
        assert_too_large(&error, 4 * 1024 * 1024);
        // A gigabyte would take far longer; a loaded machine stops at the limit well within this.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.connections(), 1);
    }
}

#[tokio::test]
async fn typed_calls_and_raw_pages_are_limited_but_csv_exports_are_not() {
    let server = MockServer::start_async().await;
    let ids: Vec<String> = (0..20).map(|n| format!("c{n}")).collect();
    let page = conversation_page(&ids, 20);
    let page_len = page.to_string().len() as u64;
    let csv = "id,count\n".to_string() + &"c1,1\n".repeat(20_000);
    let (listed, responder) = scripted(move |_| json_answer(&page));
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let export_body = csv.clone();
    server
        .mock_async(|when, then| {
            when.method(POST).path("/query/events/export");
            then.status(200)
                .header("content-type", "text/csv")
                .body(export_body);
        })
        .await;
    let limit = page_len - 1;
    let client = build(builder(&server.base_url(), tiny_policy(2)).max_response_bytes(limit));

    let error = err(client.list_conversations().limit(20).send().await, "typed");
    assert_too_large(&error, limit);
    let pages: Result<Vec<_>, Error> = client.list_conversations().raw_pages().try_collect().await;
    assert_too_large(&err(pages, "raw"), limit);
    assert_eq!(listed.count(), 2, "neither was retried");

    // One byte more and the same page passes.
    let roomy = build(builder(&server.base_url(), tiny_policy(2)).max_response_bytes(page_len));
    ok(roomy.list_conversations().limit(20).send().await, "roomy");

    let query: types::QueryEventsBody = match serde_json::from_value(json!({})) {
        Ok(query) => query,
        Err(error) => panic!("{error}"),
    };
    let export = ok(client.export_events_query_results(query).await, "export");
    let chunks: Vec<_> = ok(export.try_collect().await, "export body");
    let received: Vec<u8> = chunks.concat();
    assert!(received.len() as u64 > limit);
    assert_eq!(received, csv.as_bytes(), "the whole export arrives");
}

#[tokio::test]
async fn an_error_answer_over_the_limit_keeps_its_status() {
    let server = MockServer::start_async().await;
    let mut body = problem(404, "not_found", "Not found", "req-big");
    body["padding"] = json!("x".repeat(8 * 1024));
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations/c1");
            then.status(404)
                .header("content-type", "application/problem+json")
                .json_body(body);
        })
        .await;
    let client = build(builder(&server.base_url(), tiny_policy(2)).max_response_bytes(1024));
    let error = err(client.get_conversation("c1").await, "get");
    let Some(api) = error.as_api() else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(api.status.as_u16(), 404);
    assert!(api.body.len() <= 1024, "{}", api.body.len());
}

#[test]
fn a_response_limit_of_zero_is_refused() {
    let result = builder("http://127.0.0.1:9", RetryPolicy::none())
        .max_response_bytes(0)
        .build();
    assert!(matches!(result, Err(Error::Configuration { .. })));
}

#[tokio::test]
async fn deeply_nested_json_is_a_decode_error_not_a_crash() {
    let depth = 100_000;
    let deep = "[".repeat(depth) + &"]".repeat(depth);
    let mut in_a_field = openai_conversation("c1");
    in_a_field["properties"] = json!("DEEP");
    let in_a_field = json!({"conversations": [in_a_field], "total": 1, "pageSize": 1, "count": 1})
        .to_string()
        .replace("\"DEEP\"", &deep);
    let server = MockServer::start_async().await;
    for (path, body) in [
        ("/conversations", deep.clone()),
        ("/conversations/c1", deep.clone()),
        ("/feedback", deep.clone()),
    ] {
        server
            .mock_async(|when, then| {
                when.method(GET).path(path).query_param_missing("offset");
                then.status(200)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
    }
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("offset", "0");
            then.status(200)
                .header("content-type", "application/json")
                .body(in_a_field);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations/external/e1");
            then.status(500)
                .header("content-type", "application/problem+json")
                .body(deep.clone());
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(0));

    let results = [
        client.list_conversations().send().await.map(drop),
        client.get_conversation("c1").await.map(drop),
        client.list_feedback().send().await.map(drop),
        client
            .list_conversations()
            .pages()
            .try_collect::<Vec<_>>()
            .await
            .map(drop),
        client
            .list_conversations()
            .raw_pages()
            .try_collect::<Vec<_>>()
            .await
            .map(drop),
    ];
    for (number, result) in results.into_iter().enumerate() {
        let error = err(result, &format!("call {number}"));
        assert!(
            matches!(error, Error::Decode { .. }),
            "call {number}: {error:?}"
        );
        assert!(error.to_string().contains("200"), "{error}");
    }
    let error = err(
        client.get_conversation_by_external_id("e1").await,
        "error body",
    );
    let Some(api) = error.as_api() else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(api.status.as_u16(), 500);
    assert!(api.problem.is_none() && api.code.is_none());
}

// ---------------------------------------------------------------------------------------------
// 5. Transport security: redirects
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_key_is_not_sent_to_another_host_after_a_redirect() {
    for status in [301, 302, 303, 307, 308] {
        let target = MockServer::start_async().await;
        let without_key = target
            .mock_async(|when, then| {
                when.method(GET)
                    .path("/elsewhere/conversations")
                    .header_missing("authorization");
                then.status(200).json_body(conversation_page(&[], 0));
            })
            .await;
        let with_key = target
            .mock_async(|when, then| {
                when.path("/elsewhere/conversations")
                    .header_exists("authorization");
                then.status(500).body("the key leaked");
            })
            .await;
        let origin = MockServer::start_async().await;
        // `localhost` and `127.0.0.1` are two hosts to `reqwest`, though the same interface.
        let location = format!("http://localhost:{}/elsewhere/conversations", target.port());
        let redirect = origin
            .mock_async(|when, then| {
                when.method(GET)
                    .path("/conversations")
                    .header("authorization", bearer());
                then.status(status).header("location", location);
            })
            .await;
        let client = client_for(&origin.base_url(), RetryPolicy::none());
        ok(
            client.list_conversations().send().await,
            &format!("{status}"),
        );
        redirect.assert_calls_async(1).await;
        without_key.assert_calls_async(1).await;
        with_key.assert_calls_async(0).await;
    }
}

#[tokio::test]
async fn a_redirected_write_reaches_the_other_host_without_the_key() {
    for status in [307, 308] {
        let target = MockServer::start_async().await;
        let (bodies, responder) = scripted(|_| json_answer(&openai_conversation("c1")));
        target
            .mock_async(|when, then| {
                when.method(POST)
                    .path("/conversations")
                    .header_missing("authorization");
                then.respond_with(responder);
            })
            .await;
        let origin = MockServer::start_async().await;
        let location = format!("http://localhost:{}/conversations", target.port());
        origin
            .mock_async(|when, then| {
                when.method(POST).path("/conversations");
                then.status(status).header("location", location);
            })
            .await;
        let client = client_for(&origin.base_url(), RetryPolicy::none());
        let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]);
        ok(client.log_conversation(conversation).await, "log");
        assert_eq!(
            bodies.count(),
            1,
            "{status}: the body went along, the key did not"
        );
        assert!(bodies.ids()[0].is_some());
    }
}

#[tokio::test]
async fn the_key_follows_a_redirect_on_the_same_host() {
    // The counterpart of the test above: the same matcher sees the key when the host stays.
    let server = MockServer::start_async().await;
    let target = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/moved/conversations")
                .header("authorization", bearer());
            then.status(200).json_body(conversation_page(&[], 0));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.status(302).header("location", "/moved/conversations");
        })
        .await;
    let client = client_for(&server.base_url(), RetryPolicy::none());
    ok(client.list_conversations().send().await, "list");
    target.assert_calls_async(1).await;
}

#[tokio::test]
async fn redirects_are_followed_a_bounded_number_of_times() {
    let server = MockServer::start_async().await;
    let (bodies, responder) = scripted(|_| {
        HttpMockResponse::builder()
            .status(302)
            .header("location", "/conversations")
            .build()
    });
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.respond_with(responder);
        })
        .await;
    let client = client_for(&server.base_url(), tiny_policy(2));
    let error = err(client.list_conversations().send().await, "list");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(
        bodies.count(),
        MAX_REDIRECTS + 1,
        "the request and {MAX_REDIRECTS} redirects, not retried"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Secrets
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_no_key(what: &str, text: &str) {
    assert!(!text.contains(KEY), "{what} shows the key: {text}");
    assert!(
        !text.contains("SECRET-7f3a9c"),
        "{what} shows part of the key: {text}"
    );
}

fn assert_error_hides_the_key(error: &Error) {
    assert_no_key("Display", &error.to_string());
    assert_no_key("Debug", &format!("{error:?}"));
    assert_no_key("pretty Debug", &format!("{error:#?}"));
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        assert_no_key("a cause", &cause.to_string());
        source = cause.source();
    }
    if let Some(api) = error.as_api() {
        assert_no_key("the kept body", &api.body_text());
    }
    if let Error::Decode { body, snippet, .. } = error {
        assert_no_key("the kept body", &String::from_utf8_lossy(body));
        assert_no_key("the snippet", snippet);
    }
}

#[tokio::test]
async fn the_key_never_appears_in_logs_errors_or_debug_output() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let server = MockServer::start_async().await;
    let (_, flaky) = scripted(|n| {
        if n == 0 {
            busy()
        } else {
            json_answer(&conversation_page(&["c1".to_string()], 1))
        }
    });
    // Every mock requires the key, so the key was sent where it belongs.
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .header("authorization", bearer());
            then.respond_with(flaky);
        })
        .await;
    let mut echo = problem(401, "unauthorized", &format!("Bad key {KEY}"), KEY);
    echo["detail"] = json!(format!("the header was {}", bearer()));
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations/echo")
                .header("authorization", bearer());
            then.status(401)
                .header("content-type", "application/problem+json")
                .header("x-request-id", KEY)
                .json_body(echo);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations/garbled")
                .header("authorization", bearer());
            then.status(200)
                .header("content-type", "application/json")
                .body(format!("{{\"authorization\": \"{}\", ", bearer()));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/feedback")
                .header("authorization", bearer());
            then.status(200).json_body(json!({
                "positiveFeedbackCount": KEY, "negativeFeedbackCount": 0,
                "positiveFeedback": [], "negativeFeedback": [],
            }));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/conversations")
                .header("authorization", bearer());
            then.status(503).body(format!("upstream saw {}", bearer()));
        })
        .await;

    let client = client_for(&server.base_url(), tiny_policy(2));
    ok(
        client.list_conversations().send().await,
        "list after a retry",
    );
    let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("cannot bind a port: {error}"),
    };
    let refused = client_for(&format!("http://127.0.0.1:{port}"), tiny_policy(1));
    let conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]);
    let errors = [
        err(client.get_conversation("echo").await, "echo"),
        err(client.get_conversation("garbled").await, "garbled"),
        err(client.list_feedback().send().await, "a quoted key"),
        err(client.log_conversation(conversation).await, "write"),
        err(refused.list_conversations().send().await, "refused"),
        err(
            client.with_max_retries(0).get_conversation("missing").await,
            "unmatched",
        ),
    ];
    for error in &errors {
        assert_error_hides_the_key(error);
    }
    assert!(matches!(errors[2], Error::Decode { .. }), "{:?}", errors[2]);
    assert_eq!(errors[3].attempts(), 3, "{:?}", errors[3]);

    let text = logs.text();
    assert!(
        text.contains("retrying"),
        "the buffer caught the client's events: {text}"
    );
    assert_no_key("tracing output", &text);

    assert_no_key("Client Debug", &format!("{client:?}"));
    assert_no_key("Client pretty Debug", &format!("{client:#?}"));
    assert_no_key(
        "ClientBuilder Debug",
        &format!("{:#?}", Client::builder().api_key(KEY)),
    );
    // What a panic that printed the client would show.
    let shown = format!("{client:?} / {client:#?}");
    let payload = std::panic::catch_unwind(move || {
        panic!("unexpected state: {shown}");
    });
    let message = match payload {
        Ok(()) => String::new(),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(message.contains("unexpected state"), "{message}");
    assert_no_key("a panic message", &message);
}

// ---------------------------------------------------------------------------------------------
// 7. Concurrency
// ---------------------------------------------------------------------------------------------

/// One caller: logs two conversations (one named, one not), reads both back, logs an event and
/// lists a page; every answer must be its own.
async fn one_caller(client: Client, caller: usize) -> Result<Vec<String>, String> {
    let id = format!("conv-concurrent-{caller:02}");
    let text = format!("caller {caller} asks question {caller}");
    let named = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user(text.clone())])
        .with_id(id.clone())
        .map_err(|e| e.to_string())?;
    let logged = client
        .log_conversation(named)
        .await
        .map_err(|e| format!("log {id}: {e}"))?;
    if logged.id() != Some(id.as_str()) || first_text(&logged).as_deref() != Some(&text) {
        return Err(format!(
            "caller {caller} got another conversation: {logged:?}"
        ));
    }

    let unnamed_text = format!("caller {caller} asks without an id");
    let unnamed = client
        .log_conversation(CreateOpenAiConversation::new(vec![
            CreateOpenAiMessage::user(unnamed_text.clone()),
        ]))
        .await
        .map_err(|e| format!("log without id: {e}"))?;
    let Some(unnamed_id) = unnamed.id().map(str::to_string) else {
        return Err("a logged conversation without an id".into());
    };

    for (id, text) in [(&id, &text), (&unnamed_id, &unnamed_text)] {
        let read = client
            .get_conversation(id)
            .await
            .map_err(|e| format!("get {id}: {e}"))?;
        if read.id() != Some(id.as_str()) || first_text(&read).as_deref() != Some(text.as_str()) {
            return Err(format!(
                "caller {caller} read another conversation: {read:?}"
            ));
        }
    }

    let event = client
        .log_event(InsertEvent::conversation(id.clone(), "conversation_shared"))
        .await
        .map_err(|e| format!("event: {e}"))?;
    match event {
        types::SelectEvent::Conversation(event) if event.conversation_id == id => {}
        other => return Err(format!("caller {caller} got another event: {other:?}")),
    }

    let page = client
        .list_conversations()
        .limit(5)
        .offset(caller as i64)
        .send()
        .await
        .map_err(|e| format!("list: {e}"))?;
    if page.conversations.len() != 5 {
        return Err(format!("a page of {}", page.conversations.len()));
    }
    Ok(vec![id, unnamed_id])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_callers_each_get_their_own_answers() {
    let sandbox = match inkeep_analytics_sandbox::Sandbox::start().await {
        Ok(sandbox) => sandbox,
        Err(error) => panic!("cannot start a sandbox: {error}"),
    };
    let client = build(
        Client::builder()
            .api_key(sandbox.api_key())
            .base_url(sandbox.base_url()),
    );
    let callers: Vec<_> = (0..64)
        .map(|caller| tokio::spawn(one_caller(client.clone(), caller)))
        .collect();
    let mut logged = Vec::new();
    for (caller, handle) in callers.into_iter().enumerate() {
        match handle.await {
            Ok(Ok(ids)) => logged.extend(ids),
            Ok(Err(error)) => panic!("caller {caller}: {error}"),
            Err(error) => panic!("caller {caller} panicked: {error}"),
        }
    }
    assert_eq!(logged.len(), 128);

    // Each conversation is stored once, whoever logged it.
    let all: Vec<types::Conversation> = ok(
        client.list_conversations().items().try_collect().await,
        "all",
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for conversation in &all {
        if let Some(id) = conversation.id() {
            *counts.entry(id.to_string()).or_default() += 1;
        }
    }
    for id in &logged {
        assert_eq!(counts.get(id), Some(&1), "{id}");
    }
    if let Err(error) = sandbox.shutdown().await {
        panic!("the sandbox did not stop: {error}");
    }
}
