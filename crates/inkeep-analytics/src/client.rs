//! The public client: a thin, cheaply cloned handle over the generated client, with one method per operation.

use futures::FutureExt;

use crate::error::{Error, Result};
use crate::export::CsvExport;
use crate::generated::{self, types};
use crate::pagination::{ListConversations, ListFeedback};
use crate::transport::{KeyKind, RetryPolicy, Transport};

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
    transport: Transport,
}

impl Client {
    /// The client that sends through `transport`; [`crate::ClientBuilder::build`] makes both.
    pub(crate) fn from_transport(transport: Transport) -> Self {
        Self { transport }
    }

    /// How many requests this client (and every clone) may have in flight now: its adaptive window.
    pub(crate) fn concurrency_window(&self) -> usize {
        self.transport.concurrency().window()
    }

    /// The generated progenitor client, for calling an operation with its builder interface.
    ///
    /// Its methods return `progenitor_client::Error`; [`crate::Error::from_generated`] converts it.
    /// They go through the same hooks: the key, the local checks, the response-size limit, and
    /// retries of failed sends and transient statuses of idempotent requests. Unlike this client's
    /// methods, they send a write exactly as given: without an `id` it is not retried. A body cut
    /// off after a success status is not retried either, since progenitor reads it after the hooks.
    pub fn generated(&self) -> &generated::Client {
        self.transport.generated()
    }

    /// The retry policy of this client handle.
    pub fn retry_policy(&self) -> &RetryPolicy {
        self.transport.retry_policy()
    }

    /// The same client with another retry policy, for some calls only: it shares the key, the
    /// settings and the connection pool, and costs a clone.
    ///
    /// ```no_run
    /// # async fn demo(client: inkeep_analytics::Client) -> inkeep_analytics::Result<()> {
    /// use std::time::Duration;
    /// use inkeep_analytics::config::RetryPolicy;
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
        Client::from_transport(self.transport.with_retry_policy(policy))
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
        self.transport.key_kind()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    /// `GET /conversations` (`getAllConversation`): one page with [`send`](crate::listing::Listing::send),
    /// or every conversation with [`items`](crate::listing::Listing::items) and [`pages`](crate::listing::Listing::pages).
    pub fn list_conversations(&self) -> ListConversations {
        ListConversations::new(self.transport.clone())
    }

    /// `GET /feedback` (`getAllFeedback`): one page with [`send`](crate::listing::Listing::send),
    /// or every feedback item with [`items`](crate::listing::Listing::items) and [`pages`](crate::listing::Listing::pages).
    pub fn list_feedback(&self) -> ListFeedback {
        ListFeedback::new(self.transport.clone())
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
        self.transport
            .call("logConversation", |g| {
                g.log_conversation()
                    .body(conversation.clone())
                    .send()
                    .boxed()
            })
            .await
    }

    /// Sends a body the recorder wrote and checked, as it is, with `POST` to `operation_id`.
    pub(crate) async fn post_recorded(
        &self,
        operation_id: &'static str,
        body: bytes::Bytes,
    ) -> Result<()> {
        self.transport.post_json(operation_id, body).await
    }

    /// `GET /conversations/{id}` (`getConversation`). Works with a web integration key.
    pub async fn get_conversation(&self, id: &str) -> Result<types::Conversation> {
        check_id("id", id)?;
        self.transport
            .call("getConversation", |g| {
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
        self.transport
            .call("getConversationByExternalId", |g| {
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
        self.transport
            .call("deleteConversation", |g| {
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
        self.transport
            .call("logEvent", |g| {
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
        self.transport
            .call("logFeedback", |g| {
                g.log_feedback().body(feedback.clone()).send().boxed()
            })
            .await
    }

    /// `GET /feedback/{id}` (`getFeedbackById`).
    pub async fn get_feedback(&self, id: &str) -> Result<types::FeedbackWithContext> {
        check_id("id", id)?;
        self.transport
            .call("getFeedbackById", |g| {
                g.get_feedback_by_id().id(id).send().boxed()
            })
            .await
    }

    /// `DELETE /feedback/{id}` (`deleteFeedbackById`).
    pub async fn delete_feedback(&self, id: &str) -> Result<types::DeleteResult> {
        check_id("id", id)?;
        self.transport
            .call("deleteFeedbackById", |g| {
                g.delete_feedback_by_id().id(id).send().boxed()
            })
            .await
    }

    /// `POST /query/property-keys` (`queryPropertyKeys`): the keys used in `properties` or `userProperties`.
    pub async fn query_property_keys(
        &self,
        request: types::PropertyKeysRequest,
    ) -> Result<types::PropertyListResponse> {
        self.transport
            .call("queryPropertyKeys", |g| {
                g.query_property_keys().body(request.clone()).send().boxed()
            })
            .await
    }

    /// `POST /query/property-values` (`queryPropertyValues`): the values a property key takes.
    ///
    /// A `limit` over [`crate::query::MAX_PROPERTY_VALUES_LIMIT`] is refused before any request.
    pub async fn query_property_values(
        &self,
        request: types::PropertyValuesRequest,
    ) -> Result<types::PropertyListResponse> {
        let limit = request.limit.get();
        if limit > crate::query::MAX_PROPERTY_VALUES_LIMIT {
            return Err(Error::invalid_input(format!(
                "limit must be at most {}, got {limit}",
                crate::query::MAX_PROPERTY_VALUES_LIMIT
            )));
        }
        self.transport
            .call("queryPropertyValues", |g| {
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
        self.transport
            .call("topSearchQueries", |g| {
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
        self.transport
            .call("weeklySearchUsers", |g| {
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
                    self.transport.call($query_id, |g| g.$query().body(query.clone()).send().boxed())
                        .await
                }

                #[doc = concat!("`POST /query/", $path, "/export` (`", $export_id, "`): the rows as a CSV byte stream.")]
                ///
                /// The export is streamed as it arrives and never held whole, so
                /// [`crate::ClientBuilder::max_response_bytes`] does not limit it.
                pub async fn $export(&self, query: impl Into<types::$body>) -> Result<CsvExport> {
                    let query = query.into();
                    self.transport.call($export_id, |g| g.$export().body(query.clone()).send().boxed())
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
    let count = conversation.message_count();
    if count == 0 {
        return Err(Error::invalid_input(
            "a conversation needs at least one message; always send all of its messages",
        ));
    }
    Ok(())
}
