//! The public client: a thin, cheaply cloned handle over the generated client, with one method per operation.

use std::future::Future;

use progenitor_client::{ByteStream, ResponseValue};

use crate::config::ClientBuilder;
use crate::error::{Error, Result};
use crate::export::CsvExport;
use crate::generated;
use crate::hooks::KeyKind;
use crate::pagination::{ListConversations, ListFeedback};
use crate::types;

/// A client of the Inkeep Analytics API.
///
/// `Client` is `Clone + Send + Sync`; clones share one connection pool, so clone it rather than
/// building a new one per task. Its `Debug` output never shows the API key.
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

    /// Awaits a generated call and converts its answer or error.
    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<ResponseValue<T>, progenitor_client::Error<ByteStream>>>,
    ) -> Result<T> {
        match call.await {
            Ok(response) => Ok(response.into_inner()),
            Err(error) => Err(self.convert_error(operation, error).await),
        }
    }

    /// Sends a `GET` through the same hooks as the generated methods (key, checks) and returns the
    /// success body as received, for callers that must not re-serialize what the server sent.
    pub(crate) async fn get_raw(
        &self,
        operation: &'static str,
        method_name: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<bytes::Bytes> {
        use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

        let policy = self.generated.inner.retry_policy();
        let mut retry = 0;
        loop {
            let url = format!("{}{path}", self.base_url());
            let mut request = ClientInfo::client(&self.generated)
                .get(url)
                .query(query)
                .header(reqwest::header::ACCEPT, "application/json")
                .build()
                .map_err(|source| Error::transport(operation, source))?;
            let info = OperationInfo {
                operation_id: method_name,
            };
            if let Err(error) =
                ClientHooks::<crate::hooks::ClientState>::pre(&self.generated, &mut request, &info)
                    .await
            {
                return Err(self.convert_error(operation, error).await);
            }
            // `exec` retries failed attempts; a body cut off after a success status is retried here.
            let response =
                ClientHooks::<crate::hooks::ClientState>::exec(&self.generated, request, &info)
                    .await
                    .map_err(|source| Error::transport(operation, source))?;
            if response.status() != reqwest::StatusCode::OK {
                let error = Error::from_response(operation, response).await;
                return Err(self.generated.inner.redact(error));
            }
            match response.bytes().await {
                Ok(body) => return Ok(body),
                Err(source) if retry < policy.max_retries => {
                    retry += 1;
                    let wait = policy.delay(retry, None);
                    tracing::warn!(
                        operation,
                        attempt = retry,
                        reason = %source,
                        wait_ms = wait.as_millis() as u64,
                        "retrying a response whose body was cut off"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(source) => return Err(Error::transport(operation, source)),
            }
        }
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
    pub async fn log_conversation(
        &self,
        conversation: impl Into<types::CreateConversation>,
    ) -> Result<types::Conversation> {
        let conversation = conversation.into();
        check_has_messages(&conversation)?;
        self.call(
            "logConversation",
            self.generated.log_conversation().body(conversation).send(),
        )
        .await
    }

    /// `GET /conversations/{id}` (`getConversation`). Works with a web integration key.
    pub async fn get_conversation(&self, id: &str) -> Result<types::Conversation> {
        check_id("id", id)?;
        self.call(
            "getConversation",
            self.generated.get_conversation().id(id).send(),
        )
        .await
    }

    /// `GET /conversations/external/{externalId}` (`getConversationByExternalId`).
    pub async fn get_conversation_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<types::Conversation> {
        check_id("external id", external_id)?;
        self.call(
            "getConversationByExternalId",
            self.generated
                .get_conversation_by_external_id()
                .external_id(external_id)
                .send(),
        )
        .await
    }

    /// `DELETE /conversations/{id}` (`deleteConversation`). Works with a web integration key.
    pub async fn delete_conversation(&self, id: &str) -> Result<types::DeleteResult> {
        check_id("id", id)?;
        self.call(
            "deleteConversation",
            self.generated.delete_conversation().id(id).send(),
        )
        .await
    }

    /// `POST /events` (`logEvent`): logs an event about a message, a conversation or a search.
    /// Works with a web integration key.
    pub async fn log_event(
        &self,
        event: impl Into<types::InsertEvent>,
    ) -> Result<types::SelectEvent> {
        self.call(
            "logEvent",
            self.generated.log_event().body(event.into()).send(),
        )
        .await
    }

    /// `POST /feedback` (`logFeedback`): records feedback on a message.
    pub async fn log_feedback(&self, feedback: types::FeedbackInput) -> Result<types::Feedback> {
        check_id("message id", &feedback.message_id)?;
        self.call(
            "logFeedback",
            self.generated.log_feedback().body(feedback).send(),
        )
        .await
    }

    /// `GET /feedback/{id}` (`getFeedbackById`).
    pub async fn get_feedback(&self, id: &str) -> Result<types::FeedbackWithContext> {
        check_id("id", id)?;
        self.call(
            "getFeedbackById",
            self.generated.get_feedback_by_id().id(id).send(),
        )
        .await
    }

    /// `DELETE /feedback/{id}` (`deleteFeedbackById`).
    pub async fn delete_feedback(&self, id: &str) -> Result<types::DeleteResult> {
        check_id("id", id)?;
        self.call(
            "deleteFeedbackById",
            self.generated.delete_feedback_by_id().id(id).send(),
        )
        .await
    }

    /// `POST /query/conversations` (`queryConversations`). Build the body with [`crate::query`].
    pub async fn query_conversations(
        &self,
        query: impl Into<types::QueryConversationsBody>,
    ) -> Result<types::QueryResponse> {
        self.call(
            "queryConversations",
            self.generated
                .query_conversations()
                .body(query.into())
                .send(),
        )
        .await
    }

    /// `POST /query/events` (`queryEvents`). Build the body with [`crate::query`].
    pub async fn query_events(
        &self,
        query: impl Into<types::QueryEventsBody>,
    ) -> Result<types::QueryResponse> {
        self.call(
            "queryEvents",
            self.generated.query_events().body(query.into()).send(),
        )
        .await
    }

    /// `POST /query/feedback` (`queryFeedback`). Build the body with [`crate::query`].
    pub async fn query_feedback(
        &self,
        query: impl Into<types::QueryFeedbackBody>,
    ) -> Result<types::QueryResponse> {
        self.call(
            "queryFeedback",
            self.generated.query_feedback().body(query.into()).send(),
        )
        .await
    }

    /// `POST /query/semantic-threads` (`querySemanticThreads`). Build the body with [`crate::query`].
    pub async fn query_semantic_threads(
        &self,
        query: impl Into<types::QuerySemanticThreadsBody>,
    ) -> Result<types::QueryResponse> {
        self.call(
            "querySemanticThreads",
            self.generated
                .query_semantic_threads()
                .body(query.into())
                .send(),
        )
        .await
    }

    /// `POST /query/conversations/export` (`exportConversationsQueryResults`): the rows as a CSV byte stream.
    pub async fn export_conversations_query_results(
        &self,
        query: impl Into<types::QueryConversationsBody>,
    ) -> Result<CsvExport> {
        self.call(
            "exportConversationsQueryResults",
            self.generated
                .export_conversations_query_results()
                .body(query.into())
                .send(),
        )
        .await
        .map(|stream| CsvExport::new("exportConversationsQueryResults", stream))
    }

    /// `POST /query/events/export` (`exportEventsQueryResults`): the rows as a CSV byte stream.
    pub async fn export_events_query_results(
        &self,
        query: impl Into<types::QueryEventsBody>,
    ) -> Result<CsvExport> {
        self.call(
            "exportEventsQueryResults",
            self.generated
                .export_events_query_results()
                .body(query.into())
                .send(),
        )
        .await
        .map(|stream| CsvExport::new("exportEventsQueryResults", stream))
    }

    /// `POST /query/feedback/export` (`exportFeedbackQueryResults`): the rows as a CSV byte stream.
    pub async fn export_feedback_query_results(
        &self,
        query: impl Into<types::QueryFeedbackBody>,
    ) -> Result<CsvExport> {
        self.call(
            "exportFeedbackQueryResults",
            self.generated
                .export_feedback_query_results()
                .body(query.into())
                .send(),
        )
        .await
        .map(|stream| CsvExport::new("exportFeedbackQueryResults", stream))
    }

    /// `POST /query/semantic-threads/export` (`exportSemanticThreadsQueryResults`): the rows as a CSV byte stream.
    pub async fn export_semantic_threads_query_results(
        &self,
        query: impl Into<types::QuerySemanticThreadsBody>,
    ) -> Result<CsvExport> {
        self.call(
            "exportSemanticThreadsQueryResults",
            self.generated
                .export_semantic_threads_query_results()
                .body(query.into())
                .send(),
        )
        .await
        .map(|stream| CsvExport::new("exportSemanticThreadsQueryResults", stream))
    }

    /// `POST /query/property-keys` (`queryPropertyKeys`): the keys used in `properties` or `userProperties`.
    pub async fn query_property_keys(
        &self,
        request: types::PropertyKeysRequest,
    ) -> Result<types::PropertyListResponse> {
        self.call(
            "queryPropertyKeys",
            self.generated.query_property_keys().body(request).send(),
        )
        .await
    }

    /// `POST /query/property-values` (`queryPropertyValues`): the values a property key takes.
    pub async fn query_property_values(
        &self,
        request: types::PropertyValuesRequest,
    ) -> Result<types::PropertyListResponse> {
        self.call(
            "queryPropertyValues",
            self.generated.query_property_values().body(request).send(),
        )
        .await
    }

    /// `GET /query/top-search-queries` (`topSearchQueries`). Both filters are optional; `after` is sent as given.
    pub async fn top_search_queries(
        &self,
        after: Option<&str>,
        project_id: Option<&str>,
    ) -> Result<types::TopSearchQueriesResponse> {
        let mut request = self.generated.top_search_queries();
        if let Some(after) = after {
            request = request.after(after);
        }
        if let Some(project_id) = project_id {
            request = request.project_id(project_id);
        }
        self.call("topSearchQueries", request.send()).await
    }

    /// `GET /query/weekly-search-users` (`weeklySearchUsers`). Both filters are optional; `after` is sent as given.
    pub async fn weekly_search_users(
        &self,
        after: Option<&str>,
        project_id: Option<&str>,
    ) -> Result<types::WeeklySearchUsersResponse> {
        let mut request = self.generated.weekly_search_users();
        if let Some(after) = after {
            request = request.after(after);
        }
        if let Some(project_id) = project_id {
            request = request.project_id(project_id);
        }
        self.call("weeklySearchUsers", request.send()).await
    }
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
