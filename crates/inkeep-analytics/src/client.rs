//! The public client: a thin, cheaply cloned handle over the generated client, with one method per operation.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use progenitor_client::{ByteStream, ResponseValue};
use serde::de::DeserializeOwned;

use crate::config::ClientBuilder;
use crate::error::{Error, Result};
use crate::export::CsvExport;
use crate::generated;
use crate::hooks::{ClientState, KeyKind};
use crate::limits::{check_nesting, too_large};
use crate::pagination::{ListConversations, ListFeedback};
use crate::retry::{CallRecord, Failure, RetryPolicy, describe};
use crate::types;

/// One attempt of a generated call, boxed so that [`Client::call`] can issue it again.
pub(crate) type Attempt<'a, T> =
    BoxFuture<'a, std::result::Result<ResponseValue<T>, progenitor_client::Error<ByteStream>>>;

/// A client of the Inkeep Analytics API.
///
/// `Client` is `Clone + Send + Sync`; clones share one connection pool, so clone it rather than
/// building a new one per task. Its `Debug` output never shows the API key.
///
/// Transient failures of idempotent requests are retried (see [`RetryPolicy`]); writes count as
/// idempotent because the client gives each one an id when the caller did not, which makes a
/// second delivery an update of the first. [`Client::with_retry_policy`] changes the policy for
/// some calls only.
///
/// ```no_run
/// # async fn demo() -> inkeep_analytics::Result<()> {
/// let client = inkeep_analytics::Client::from_env()?;
/// let page = client.list_conversations().limit(5).send().await?;
/// println!("{} conversations in all", page.total);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    generated: generated::Client,
}

impl Client {
    /// A builder for every setting.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `INKEEP_ANALYTICS_API_KEY` and, when set, `INKEEP_ANALYTICS_BASE_URL`.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::new().from_env()?.build()
    }

    pub(crate) fn from_generated(generated: generated::Client) -> Self {
        Self { generated }
    }

    /// The generated progenitor client, for calling an operation with its builder interface.
    ///
    /// Its methods return `progenitor_client::Error`; [`crate::Error::from_generated`] converts it.
    /// They go through the same hooks: the key, the local checks, the response-size limit, and
    /// retries of failed sends and transient statuses of idempotent requests. Unlike this client's
    /// methods, they send a write exactly as given: without an `id` it is not retried. A body cut
    /// off after a success status is not retried either, since progenitor reads it after the hooks.
    pub fn generated(&self) -> &generated::Client {
        &self.generated
    }

    /// Converts an error of a generated method into [`crate::Error`], scrubbing the key from kept bodies.
    pub(crate) async fn convert_error(
        &self,
        operation: &'static str,
        error: progenitor_client::Error<ByteStream>,
    ) -> Error {
        self.generated.inner.convert_error(operation, error).await
    }

    /// The generated client for one call: the same connection pool and key, with a fresh record of
    /// attempts that the `exec` hook and the call-level loop share.
    fn scoped(&self) -> (generated::Client, Arc<CallRecord>) {
        let record = Arc::new(CallRecord::new());
        let scoped = generated::Client {
            baseurl: self.generated.baseurl.clone(),
            client: self.generated.client.clone(),
            inner: self.generated.inner.for_call(Arc::clone(&record)),
        };
        (scoped, record)
    }

    /// Issues a generated call, and again when a success's body was cut off or malformed and the
    /// request is idempotent; converts its answer or error, which reports how many attempts were made.
    ///
    /// `send` builds and sends the call on the client it is given: the `exec` hook retries failed
    /// sends and transient statuses inside it, this loop only the bodies progenitor reads after that.
    pub(crate) async fn call<T, F>(&self, operation: &'static str, send: F) -> Result<T>
    where
        F: for<'a> Fn(&'a generated::Client) -> Attempt<'a, T>,
    {
        let (scoped, record) = self.scoped();
        let policy = self.retry_policy();
        loop {
            let error = match send(&scoped).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(error) => error,
            };
            if let Some(reason) = body_failure(&error, &self.generated.inner)
                && let Some(wait) =
                    record.plan_retry(policy, operation, record.attempts(), &reason, None)
            {
                drop(error);
                tokio::time::sleep(wait).await;
                continue;
            }
            let attempts = record.attempts();
            return Err(self
                .convert_error(operation, error)
                .await
                .with_attempts(attempts));
        }
    }

    /// Sends a `GET` through the same hooks as the generated methods (key, checks, retries, limit)
    /// and decodes the success body as `T`: the page streams' own request, which reads the body
    /// into one buffer and decodes pages typed or with their records kept as the server sent them.
    /// A body cut off or malformed is retried like a failed send.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method_name: &'static str,
        path: &str,
        query: &[(&str, String)],
        nesting: Nesting,
    ) -> Result<T> {
        use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

        let (scoped, record) = self.scoped();
        let policy = self.retry_policy();
        let info = OperationInfo {
            operation_id: method_name,
        };
        loop {
            let url = format!("{}{path}", self.base_url());
            let mut request = ClientInfo::client(&scoped)
                .get(url)
                .query(query)
                .header(reqwest::header::ACCEPT, "application/json")
                .build()
                .map_err(|source| Error::transport(operation, source))?;
            if let Err(error) = ClientHooks::<ClientState>::pre(&scoped, &mut request, &info).await
            {
                return Err(self.convert_error(operation, error).await);
            }
            let response = match ClientHooks::<ClientState>::exec(&scoped, request, &info).await {
                Ok(response) => response,
                Err(source) => {
                    return Err(
                        Error::transport(operation, source).with_attempts(record.attempts())
                    );
                }
            };
            if response.status() != reqwest::StatusCode::OK {
                let error = Error::from_response(operation, response).await;
                return Err(self
                    .generated
                    .inner
                    .redact(error)
                    .with_attempts(record.attempts()));
            }
            let (reason, error) = match read_body(response).await {
                Ok(body) => match decode_json(&body, nesting) {
                    Ok(page) => return Ok(page),
                    Err(source) => {
                        let reason = is_malformed(&source).then(|| {
                            Failure::Malformed(self.generated.inner.redact_text(describe(&source)))
                        });
                        (
                            reason,
                            Error::decode(operation, reqwest::StatusCode::OK, body, source),
                        )
                    }
                },
                Err(source) => {
                    let reason = too_large(&source)
                        .is_none()
                        .then(|| Failure::CutOff(describe(&source)));
                    (reason, Error::transport(operation, source))
                }
            };
            let attempt = record.attempts();
            match reason
                .and_then(|reason| record.plan_retry(policy, operation, attempt, &reason, None))
            {
                Some(wait) => {
                    drop(error);
                    tokio::time::sleep(wait).await;
                }
                None => return Err(self.generated.inner.redact(error).with_attempts(attempt)),
            }
        }
    }

    /// The retry policy of this client handle.
    pub fn retry_policy(&self) -> &RetryPolicy {
        self.generated.inner.retry_policy()
    }

    /// The same client with another retry policy, for some calls only: it shares the key, the
    /// settings and the connection pool, and costs a clone.
    ///
    /// ```no_run
    /// # async fn demo(client: inkeep_analytics::Client) -> inkeep_analytics::Result<()> {
    /// use std::time::Duration;
    /// use inkeep_analytics::RetryPolicy;
    ///
    /// // A call that must not wait: no retries.
    /// let page = client.with_retry_policy(RetryPolicy::none()).list_conversations().send().await?;
    /// // A call that may wait longer than usual.
    /// let patient = client.with_retry_policy(RetryPolicy {
    ///     max_retries: 6,
    ///     max_elapsed: Duration::from_secs(300),
    ///     ..client.retry_policy().clone()
    /// });
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> Client {
        Client::from_generated(generated::Client {
            baseurl: self.generated.baseurl.clone(),
            client: self.generated.client.clone(),
            inner: self.generated.inner.with_retry_policy(policy),
        })
    }

    /// The same client with another number of retries (0 turns them off), for some calls only;
    /// the rest of the policy is kept. See [`Client::with_retry_policy`].
    pub fn with_max_retries(&self, max_retries: u32) -> Client {
        self.with_retry_policy(RetryPolicy {
            max_retries,
            ..self.retry_policy().clone()
        })
    }

    /// The kind of key this client holds.
    pub fn key_kind(&self) -> KeyKind {
        self.generated.inner.key_kind()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        progenitor_client::ClientInfo::baseurl(&self.generated)
    }

    /// `GET /conversations` (`getAllConversation`): one page with [`ListConversations::send`],
    /// or every conversation with [`ListConversations::items`] and [`ListConversations::pages`].
    pub fn list_conversations(&self) -> ListConversations {
        ListConversations::new(self.clone())
    }

    /// `GET /feedback` (`getAllFeedback`): one page with [`ListFeedback::send`],
    /// or every feedback item with [`ListFeedback::items`] and [`ListFeedback::pages`].
    pub fn list_feedback(&self) -> ListFeedback {
        ListFeedback::new(self.clone())
    }

    /// `POST /conversations` (`logConversation`): logs a conversation, or updates the one with the same `id`.
    ///
    /// Always send every message of the conversation. A conversation without messages is refused
    /// before any request. Works with a web integration key.
    ///
    /// Without an `id`, the client sets a random one (a UUID) before sending, so that a retry
    /// updates the conversation instead of logging it twice; the answer carries it.
    pub async fn log_conversation(
        &self,
        conversation: impl Into<types::CreateConversation>,
    ) -> Result<types::Conversation> {
        let conversation = conversation.into();
        check_has_messages(&conversation)?;
        let conversation = with_conversation_id(conversation)?;
        self.call("logConversation", |g| {
            g.log_conversation()
                .body(conversation.clone())
                .send()
                .boxed()
        })
        .await
    }

    /// `GET /conversations/{id}` (`getConversation`). Works with a web integration key.
    pub async fn get_conversation(&self, id: &str) -> Result<types::Conversation> {
        check_id("id", id)?;
        self.call("getConversation", |g| {
            g.get_conversation().id(id).send().boxed()
        })
        .await
    }

    /// `GET /conversations/external/{externalId}` (`getConversationByExternalId`).
    pub async fn get_conversation_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<types::Conversation> {
        check_id("external id", external_id)?;
        self.call("getConversationByExternalId", |g| {
            g.get_conversation_by_external_id()
                .external_id(external_id)
                .send()
                .boxed()
        })
        .await
    }

    /// `DELETE /conversations/{id}` (`deleteConversation`). Works with a web integration key.
    pub async fn delete_conversation(&self, id: &str) -> Result<types::DeleteResult> {
        check_id("id", id)?;
        self.call("deleteConversation", |g| {
            g.delete_conversation().id(id).send().boxed()
        })
        .await
    }

    /// `POST /events` (`logEvent`): logs an event about a message, a conversation or a search.
    /// Works with a web integration key.
    ///
    /// Without an `id`, the client sets a random one (a UUID) before sending, so that a retry
    /// returns the logged event instead of logging it twice; the answer carries it.
    pub async fn log_event(
        &self,
        event: impl Into<types::InsertEvent>,
    ) -> Result<types::SelectEvent> {
        let event = with_event_id(event.into())?;
        self.call("logEvent", |g| {
            g.log_event().body(event.clone()).send().boxed()
        })
        .await
    }

    /// `POST /feedback` (`logFeedback`): records feedback on a message. Works with a web integration key.
    ///
    /// Without an `id`, the client sets a random one (a UUID) before sending, so that a retry
    /// updates the feedback instead of recording it twice; the answer carries it.
    pub async fn log_feedback(&self, feedback: types::FeedbackInput) -> Result<types::Feedback> {
        check_id("message id", &feedback.message_id)?;
        let feedback = match feedback.id {
            Some(_) => feedback,
            None => feedback.with_id(new_id())?,
        };
        self.call("logFeedback", |g| {
            g.log_feedback().body(feedback.clone()).send().boxed()
        })
        .await
    }

    /// `GET /feedback/{id}` (`getFeedbackById`).
    pub async fn get_feedback(&self, id: &str) -> Result<types::FeedbackWithContext> {
        check_id("id", id)?;
        self.call("getFeedbackById", |g| {
            g.get_feedback_by_id().id(id).send().boxed()
        })
        .await
    }

    /// `DELETE /feedback/{id}` (`deleteFeedbackById`).
    pub async fn delete_feedback(&self, id: &str) -> Result<types::DeleteResult> {
        check_id("id", id)?;
        self.call("deleteFeedbackById", |g| {
            g.delete_feedback_by_id().id(id).send().boxed()
        })
        .await
    }

    /// `POST /query/property-keys` (`queryPropertyKeys`): the keys used in `properties` or `userProperties`.
    pub async fn query_property_keys(
        &self,
        request: types::PropertyKeysRequest,
    ) -> Result<types::PropertyListResponse> {
        self.call("queryPropertyKeys", |g| {
            g.query_property_keys().body(request.clone()).send().boxed()
        })
        .await
    }

    /// `POST /query/property-values` (`queryPropertyValues`): the values a property key takes.
    pub async fn query_property_values(
        &self,
        request: types::PropertyValuesRequest,
    ) -> Result<types::PropertyListResponse> {
        self.call("queryPropertyValues", |g| {
            g.query_property_values()
                .body(request.clone())
                .send()
                .boxed()
        })
        .await
    }

    /// `GET /query/top-search-queries` (`topSearchQueries`). Both filters are optional; `after` is sent as given.
    pub async fn top_search_queries(
        &self,
        after: Option<&str>,
        project_id: Option<&str>,
    ) -> Result<types::TopSearchQueriesResponse> {
        self.call("topSearchQueries", |g| {
            let mut request = g.top_search_queries();
            if let Some(after) = after {
                request = request.after(after);
            }
            if let Some(project_id) = project_id {
                request = request.project_id(project_id);
            }
            request.send().boxed()
        })
        .await
    }

    /// `GET /query/weekly-search-users` (`weeklySearchUsers`). Both filters are optional; `after` is sent as given.
    pub async fn weekly_search_users(
        &self,
        after: Option<&str>,
        project_id: Option<&str>,
    ) -> Result<types::WeeklySearchUsersResponse> {
        self.call("weeklySearchUsers", |g| {
            let mut request = g.weekly_search_users();
            if let Some(after) = after {
                request = request.after(after);
            }
            if let Some(project_id) = project_id {
                request = request.project_id(project_id);
            }
            request.send().boxed()
        })
        .await
    }
}

/// The query and CSV-export operations of the four views differ only in names and body type.
macro_rules! view_operations {
    ($($path:literal, $body:ident, $query:ident, $query_id:literal, $export:ident, $export_id:literal;)*) => {
        impl Client {
            $(
                #[doc = concat!("`POST /query/", $path, "` (`", $query_id, "`). Build the body with [`crate::query`].")]
                pub async fn $query(
                    &self,
                    query: impl Into<types::$body>,
                ) -> Result<types::QueryResponse> {
                    let query = query.into();
                    self.call($query_id, |g| g.$query().body(query.clone()).send().boxed())
                        .await
                }

                #[doc = concat!("`POST /query/", $path, "/export` (`", $export_id, "`): the rows as a CSV byte stream.")]
                ///
                /// The export is streamed as it arrives and never held whole, so
                /// [`ClientBuilder::max_response_bytes`] does not limit it.
                pub async fn $export(&self, query: impl Into<types::$body>) -> Result<CsvExport> {
                    let query = query.into();
                    self.call($export_id, |g| g.$export().body(query.clone()).send().boxed())
                        .await
                        .map(|stream| CsvExport::new($export_id, stream))
                }
            )*
        }
    };
}

view_operations! {
    "conversations", QueryConversationsBody, query_conversations, "queryConversations",
        export_conversations_query_results, "exportConversationsQueryResults";
    "events", QueryEventsBody, query_events, "queryEvents",
        export_events_query_results, "exportEventsQueryResults";
    "feedback", QueryFeedbackBody, query_feedback, "queryFeedback",
        export_feedback_query_results, "exportFeedbackQueryResults";
    "semantic-threads", QuerySemanticThreadsBody, query_semantic_threads, "querySemanticThreads",
        export_semantic_threads_query_results, "exportSemanticThreadsQueryResults";
}

/// Whether a generated call failed on the body of a success, in a way that another attempt may
/// fix: cut off (not refused for its size), or not JSON at all. A body that is JSON of the wrong
/// shape would come back the same, so it is not retried.
fn body_failure(
    error: &progenitor_client::Error<ByteStream>,
    state: &ClientState,
) -> Option<Failure> {
    match error {
        progenitor_client::Error::ResponseBodyError(source) if too_large(source).is_none() => {
            Some(Failure::CutOff(describe(source)))
        }
        progenitor_client::Error::InvalidResponsePayload(_, source) if is_malformed(source) => {
            Some(Failure::Malformed(state.redact_text(describe(source))))
        }
        _ => None,
    }
}

/// Whether a decode error means a truncated or garbled body rather than JSON of the wrong shape.
fn is_malformed(error: &serde_json::Error) -> bool {
    matches!(
        error.classify(),
        serde_json::error::Category::Eof | serde_json::error::Category::Syntax
    )
}

/// A fresh id for a write the caller did not name: a random (version 4) UUID.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Sets a JSON object's `id` when it has none (or a null one); anything else is left as sent.
fn with_json_id(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(object) = value.as_object_mut()
        && object.get("id").is_none_or(serde_json::Value::is_null)
    {
        object.insert("id".to_string(), serde_json::Value::String(new_id()));
    }
    value
}

/// The conversation with an id, so that sending it twice is an upsert.
fn with_conversation_id(
    conversation: types::CreateConversation,
) -> Result<types::CreateConversation> {
    use types::CreateConversation as Kind;
    Ok(match conversation {
        Kind::OpenAi(c) if c.id.is_none() => Kind::OpenAi(c.with_id(new_id())?),
        Kind::SupportTicket(c) if c.id.is_none() => Kind::SupportTicket(c.with_id(new_id())?),
        Kind::SupportCopilot(c) if c.id.is_none() => Kind::SupportCopilot(c.with_id(new_id())?),
        Kind::Unknown(value) => Kind::Unknown(with_json_id(value)),
        named => named,
    })
}

/// The event with an id, so that sending it twice returns the first.
fn with_event_id(event: types::InsertEvent) -> Result<types::InsertEvent> {
    use types::InsertEvent as Kind;
    Ok(match event {
        Kind::Conversation(e) if e.id.is_none() => Kind::Conversation(e.with_id(new_id())?),
        Kind::Message(e) if e.id.is_none() => Kind::Message(e.with_id(new_id())?),
        Kind::Search(e) if e.id.is_none() => Kind::Search(e.with_id(new_id())?),
        Kind::Unknown(value) => Kind::Unknown(with_json_id(value)),
        named => named,
    })
}

/// Refuses an empty id locally: the request would go to a different path.
fn check_id(what: &str, id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::invalid_input(format!(
            "the {what} must not be empty"
        )));
    }
    Ok(())
}

/// The API needs at least one message; an empty list would also erase a logged conversation's messages.
fn check_has_messages(conversation: &types::CreateConversation) -> Result<()> {
    let count = match conversation {
        types::CreateConversation::OpenAi(c) => c.messages.len(),
        types::CreateConversation::SupportTicket(c) => c.messages.len(),
        types::CreateConversation::SupportCopilot(c) => c.messages.len(),
        types::CreateConversation::Unknown(value) => value
            .get("messages")
            .and_then(serde_json::Value::as_array)
            .map_or(0, Vec::len),
    };
    if count == 0 {
        return Err(Error::invalid_input(
            "a conversation needs at least one message; always send all of its messages",
        ));
    }
    Ok(())
}

/// The most a body's buffer is sized for up front from `Content-Length` (larger bodies grow it).
const MAX_PREALLOCATED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a body into one buffer sized from `Content-Length`, so that a 1 MB page is one
/// allocation and one copy instead of a buffer doubled and copied as chunks arrive.
async fn read_body(mut response: reqwest::Response) -> reqwest::Result<bytes::Bytes> {
    let expected = response
        .content_length()
        .unwrap_or(0)
        .min(MAX_PREALLOCATED_BODY_BYTES);
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(bytes::Bytes::from(body))
}

/// How a body's nesting is bounded before it is decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Nesting {
    /// By serde_json's own recursion limit, which every typed value meets while it is decoded.
    Decoder,
    /// By a scan first: raw records are only skipped over by serde_json, which does not count depth.
    Scan,
}

/// Bounds the nesting of a JSON body and decodes it.
///
/// A page takes a few milliseconds, decoded where it was read, as `reqwest`'s `.json()` would:
/// the streams fetch pages in tasks of their own, so on a multi-threaded runtime pages decode in
/// parallel with each other and with the caller, with no extra threads and their memory.
fn decode_json<T: DeserializeOwned>(
    body: &[u8],
    nesting: Nesting,
) -> std::result::Result<T, serde_json::Error> {
    if let Nesting::Scan = nesting {
        check_nesting(body)?;
    }
    // Checking the whole body's UTF-8 at once (with SIMD) is several times faster than
    // serde_json checking each string of a byte slice; an invalid body is decoded from the bytes
    // so that the error says where.
    match simdutf8::basic::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}
