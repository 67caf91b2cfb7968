//! Shared fixtures: a client pointed at a mock server, and realistic payloads.

use httpmock::MockServer;
use inkeep_analytics::Client;
use serde_json::{Value, json};

/// The key every test client sends; tests assert it never leaks.
pub const TEST_KEY: &str = "sk-test-0123456789abcdef";

/// A client for `server`, with the test key and no retries, so that every test counts requests
/// exactly; `retries.rs` tests the retry policy with clients of its own.
pub fn client(server: &MockServer) -> Client {
    client_at(&server.base_url())
}

/// A test client (no retries) for the API at `base_url`.
pub fn client_at(base_url: &str) -> Client {
    match Client::builder()
        .api_key(TEST_KEY)
        .base_url(base_url)
        .max_retries(0)
        .build()
    {
        Ok(client) => client,
        Err(error) => panic!("cannot build a test client: {error}"),
    }
}

/// A base URL under `/{scope}` on `server`, for tests that assert nothing was sent: their mock
/// matches `path_prefix(scope_prefix(scope))` instead of any request. httpmock hands the same
/// servers from test to test, and a page another test's stream had already requested ahead when
/// it was dropped can reach the next test's server late; it never carries this scope.
pub fn scoped_base_url(server: &MockServer, scope: &str) -> String {
    server.url(scope_prefix(scope))
}

/// The path prefix of [`scoped_base_url`].
pub fn scope_prefix(scope: &str) -> String {
    format!("/{scope}")
}

/// An openai conversation shaped like the API's own example, with `n` as its id suffix.
pub fn openai_conversation(id: &str) -> Value {
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

/// A page of `GET /conversations` holding `ids`.
pub fn conversation_page(ids: &[String], total: usize) -> Value {
    let conversations: Vec<Value> = ids.iter().map(|id| openai_conversation(id)).collect();
    json!({
        "conversations": conversations,
        "total": total,
        "pageSize": ids.len(),
        "count": ids.len(),
    })
}

/// A feedback item on a message of conversation `conversation_id`.
pub fn feedback_item(id: &str, kind: &str) -> Value {
    let conversation = openai_conversation(&format!("conv-of-{id}"));
    let message = conversation["messages"][0].clone();
    json!({
        "id": id,
        "type": kind,
        "messageId": message["id"],
        "createdAt": "2025-01-02T00:00:00.000Z",
        "reasons": [{"label": "accurate", "details": "it worked"}],
        "properties": {},
        "userProperties": null,
        "conversation": conversation,
        "message": message,
    })
}

/// A problem+json body as the API sends it.
pub fn problem(status: u16, code: &str, title: &str, request_id: &str) -> Value {
    json!({
        "title": title,
        "status": status,
        "detail": format!("{title} (detail)"),
        "instance": "/conversations",
        "requestId": request_id,
        "code": code,
        "error": {"code": code, "message": title},
    })
}

/// A `tracing` subscriber for the current thread that writes every event, at every level, to a
/// buffer, for tests of what the SDK logs (retries, the spool's warnings).
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

impl LogBuffer {
    /// Installs the buffer for this thread; a `#[tokio::test]` runs the client on that one thread.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}
