//! The one-line wrapper: an async-openai client whose chat completions, streamed or not, are
//! logged through a [`Recorder`] while the caller gets back exactly what async-openai returned.
//!
//! The model call never waits on the recorder nor on the API: logging is the recorder's
//! non-blocking `record_*` call, made once the answer is complete (for a stream, when its last
//! chunk has been handed on), after the turn is merged into what the wrapper remembers of the
//! conversation. A conversation it does not remember (the first call after a restart, or one
//! forgotten past the memory's bounds) is read back from the API on a background task started
//! with the call, bounded by [`LoggedClient::read_back_timeout`]; the turn waits for it in memory,
//! never the caller.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionResponseStream, CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use futures::Stream;
use serde_json::{Value, json};

use super::convert::{CallFacts, PROPERTIES_KEY, turn, wire_json};
use super::feedback::CompletionRef;
use super::identity::conversation_id_from_request;
use super::memory::{Begin, Memory, PendingTurn};
use super::stored::Stored;
use super::stream::ChunkAccumulator;
use crate::error::{Error, Result};
use crate::recorder::{FlushReport, Recorded, Recorder};
use crate::types::{FeedbackInput, FeedbackType};

/// How long the wrapper waits for the API to return a conversation it does not remember, by
/// default.
pub const DEFAULT_READ_BACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The event type recorded on the conversation when a model call fails.
pub const FAILED_EVENT_TYPE: &str = "openai_completion_failed";

/// An async-openai client whose chat completions are logged to Inkeep through a [`Recorder`].
///
/// Cloning it is cheap; clones share what it remembers between turns. See the
/// [module](super) for the mapping and which conversation a call is logged into, and the SDK's
/// README for an example.
pub struct LoggedClient<C: Config> {
    client: async_openai::Client<C>,
    recorder: Recorder,
    conversation: Option<String>,
    memory: Arc<Memory>,
    read_back_timeout: Duration,
}

impl<C: Config + Clone> Clone for LoggedClient<C> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            recorder: self.recorder.clone(),
            conversation: self.conversation.clone(),
            memory: Arc::clone(&self.memory),
            read_back_timeout: self.read_back_timeout,
        }
    }
}

impl<C: Config> std::fmt::Debug for LoggedClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedClient")
            .field("conversation", &self.conversation)
            .finish_non_exhaustive()
    }
}

/// Wraps `client` so that its chat completions are recorded by `recorder`.
pub fn wrap<C: Config>(client: async_openai::Client<C>, recorder: &Recorder) -> LoggedClient<C> {
    LoggedClient {
        client,
        recorder: recorder.clone(),
        conversation: None,
        memory: Arc::default(),
        read_back_timeout: DEFAULT_READ_BACK_TIMEOUT,
    }
}

impl<C: Config> LoggedClient<C> {
    /// The same wrapper, logging into the conversation `id` (per wrapper; see [`Self::create_in`]
    /// for per call). Without one, a call is logged into the conversation its request names
    /// ([`conversation_id_from_request`](super::conversation_id_from_request): a `metadata` key,
    /// or the end user with the chat's opening), else into a conversation of its own, with a new id.
    pub fn conversation(mut self, id: impl Into<String>) -> Self {
        self.conversation = Some(id.into());
        self
    }

    /// A handle for one new chat: the same wrapper (sharing its memory), logging into a
    /// conversation with a fresh id, for the application to keep per session.
    pub fn new_chat(&self) -> Self
    where
        C: Clone,
    {
        let id = uuid::Uuid::new_v4().to_string();
        // A fresh id names nothing stored yet: no read-back.
        self.memory.begin(&id, true);
        let mut chat = self.clone();
        chat.conversation = Some(id);
        chat
    }

    /// The conversation this wrapper logs into, when it has one (see [`Self::conversation`] and
    /// [`Self::new_chat`]).
    pub fn conversation_id(&self) -> Option<&str> {
        self.conversation.as_deref()
    }

    /// Bounds what the wrapper remembers between turns: at most `conversations` conversations
    /// and `bytes` of their JSON, all together ([`DEFAULT_MEMORY_CONVERSATIONS`](super::DEFAULT_MEMORY_CONVERSATIONS)
    /// and [`DEFAULT_MEMORY_BYTES`](super::DEFAULT_MEMORY_BYTES) by default). The least recently
    /// used conversation is forgotten first; a turn on a forgotten one reads it back from the API.
    ///
    /// It starts an empty memory: set it before cloning the wrapper.
    pub fn memory_limits(mut self, conversations: usize, bytes: usize) -> Self {
        self.memory = Arc::new(Memory::new(conversations, bytes));
        self
    }

    /// How long a read-back of a conversation the wrapper does not remember may take
    /// ([`DEFAULT_READ_BACK_TIMEOUT`] by default). Past it, the turns that waited for it are
    /// logged into a conversation of their own, `{conversation}:unmerged:{uuid}`, rather than
    /// replacing the stored history with the window they carry.
    pub fn read_back_timeout(mut self, timeout: Duration) -> Self {
        self.read_back_timeout = timeout;
        self
    }

    /// Waits (up to `timeout` in all) for the read-backs under way, then flushes the recorder:
    /// the recorder's own flush does not see the turns still waiting for a read-back.
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let deadline = Instant::now() + timeout;
        while self.memory.loading() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.recorder
            .flush(deadline.saturating_duration_since(Instant::now()))
            .await
    }

    /// The wrapped client, for the calls that are not logged.
    pub fn client(&self) -> &async_openai::Client<C> {
        &self.client
    }

    /// The recorder that logs the calls.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The conversation a call goes to, and whether it is one the wrapper just made up.
    fn conversation_for(&self, per_call: Option<&str>, request: &Value) -> (String, bool) {
        match per_call
            .map(str::to_string)
            .or_else(|| self.conversation.clone())
            .or_else(|| conversation_id_from_request(request))
        {
            Some(id) => (id, false),
            None => (uuid::Uuid::new_v4().to_string(), true),
        }
    }

    /// `client.chat().create(request)`, logged into the wrapper's conversation.
    ///
    /// # Errors
    ///
    /// Exactly async-openai's: logging never fails the call.
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> std::result::Result<CreateChatCompletionResponse, OpenAIError> {
        self.create_inner(None, request).await
    }

    /// [`Self::create`] logged into the conversation `conversation_id`.
    ///
    /// # Errors
    ///
    /// Exactly async-openai's.
    pub async fn create_in(
        &self,
        conversation_id: &str,
        request: CreateChatCompletionRequest,
    ) -> std::result::Result<CreateChatCompletionResponse, OpenAIError> {
        self.create_inner(Some(conversation_id), request).await
    }

    async fn create_inner(
        &self,
        conversation_id: Option<&str>,
        request: CreateChatCompletionRequest,
    ) -> std::result::Result<CreateChatCompletionResponse, OpenAIError> {
        let log = self.log(conversation_id, &request, false);
        let started = Instant::now();
        let result = self.client.chat().create(request).await;
        let facts = CallFacts {
            latency_ms: Some(started.elapsed().as_millis()),
            first_chunk_ms: None,
            streamed: false,
        };
        if let Some(log) = log {
            match &result {
                Ok(response) => match wire_json(response) {
                    Ok(response) => log.reply(&response, &facts, None),
                    Err(error) => log.failure(&failure_json(&error.to_string()), &facts),
                },
                Err(error) => log.failure(&openai_error(error), &facts),
            }
        }
        result
    }

    /// `client.chat().create_stream(request)`, logged into the wrapper's conversation once the
    /// stream ends (or fails, or is dropped before its end, which is logged as incomplete).
    ///
    /// The stream is async-openai's, item for item.
    ///
    /// # Errors
    ///
    /// Exactly async-openai's.
    pub async fn create_stream(
        &self,
        request: CreateChatCompletionRequest,
    ) -> std::result::Result<ChatCompletionResponseStream, OpenAIError> {
        self.create_stream_inner(None, request).await
    }

    /// [`Self::create_stream`] logged into the conversation `conversation_id`.
    ///
    /// # Errors
    ///
    /// Exactly async-openai's.
    pub async fn create_stream_in(
        &self,
        conversation_id: &str,
        request: CreateChatCompletionRequest,
    ) -> std::result::Result<ChatCompletionResponseStream, OpenAIError> {
        self.create_stream_inner(Some(conversation_id), request)
            .await
    }

    async fn create_stream_inner(
        &self,
        conversation_id: Option<&str>,
        request: CreateChatCompletionRequest,
    ) -> std::result::Result<ChatCompletionResponseStream, OpenAIError> {
        let expect_usage = request
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false);
        let log = self.log(conversation_id, &request, true);
        let started = Instant::now();
        let result = self.client.chat().create_stream(request).await;
        let Some(log) = log else {
            return result;
        };
        match result {
            Ok(inner) => Ok(Box::pin(LoggedStream {
                inner,
                state: Some(StreamLog {
                    log,
                    chunks: ChunkAccumulator::new().expect_usage(expect_usage),
                    started,
                    first_chunk: None,
                    broken: None,
                }),
            })),
            Err(error) => {
                let facts = CallFacts {
                    latency_ms: Some(started.elapsed().as_millis()),
                    first_chunk_ms: None,
                    streamed: true,
                };
                log.failure(&openai_error(&error), &facts);
                Err(error)
            }
        }
    }

    /// What logging a call needs, or `None` (with a warning) when the request cannot be read.
    fn log(
        &self,
        conversation_id: Option<&str>,
        request: &CreateChatCompletionRequest,
        streamed: bool,
    ) -> Option<Log> {
        let mut request = match wire_json(request) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%error, "openai: cannot read a chat request; it is not logged");
                return None;
            }
        };
        if streamed && let Some(object) = request.as_object_mut() {
            object.insert("stream".into(), Value::Bool(true));
        }
        let (conversation_id, fresh) = self.conversation_for(conversation_id, &request);
        let log = Log {
            conversation_id,
            request,
            recorder: self.recorder.clone(),
            memory: Arc::clone(&self.memory),
            read_back_timeout: self.read_back_timeout,
        };
        // Started with the call, so that it is usually over before the answer is.
        if let Begin::ReadBack { flush_first } = self.memory.begin(&log.conversation_id, fresh) {
            log.read_back(flush_first);
        }
        Some(log)
    }

    /// The feedback body for the message `completion` became, to add reasons or details before
    /// recording it. Its id is `{conversation}:{completion}:feedback`: giving feedback on the
    /// same completion again updates it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when this wrapper (or a clone) did not log that completion
    /// recently, or its conversation is still being read back (then [`Self::feedback`] waits for
    /// it).
    pub fn feedback_input(
        &self,
        completion: impl CompletionRef,
        kind: FeedbackType,
    ) -> Result<FeedbackInput> {
        let id = completion.completion_id();
        self.memory.feedback_input(id, kind).unwrap_or_else(|| {
            Err(Error::invalid_input(format!(
                "completion {id} was not logged by this wrapper (or was forgotten, or its conversation is still being read back)"
            )))
        })
    }

    /// Records feedback of `kind` on the message `completion` (what [`Self::create`] returned,
    /// or a chunk of [`Self::create_stream`]'s stream) became; it is sent once that message is.
    /// When the completion's conversation is still being read back, it is recorded once the
    /// read-back ends (the answer's outcome is then [`Outcome::Queued`](crate::recorder::Outcome::Queued)).
    ///
    /// # Errors
    ///
    /// As [`Self::feedback_input`] and [`Recorder::record_feedback`].
    pub fn feedback(&self, completion: impl CompletionRef, kind: FeedbackType) -> Result<Recorded> {
        let id = completion.completion_id();
        self.memory
            .feedback(&self.recorder, id, kind)
            .unwrap_or_else(|| {
                Err(Error::invalid_input(format!(
                    "completion {id} was not logged by this wrapper (or was forgotten)"
                )))
            })
    }
}

/// One call's logging: the conversation it goes to and its request, as sent.
struct Log {
    conversation_id: String,
    request: Value,
    recorder: Recorder,
    memory: Arc<Memory>,
    read_back_timeout: Duration,
}

impl Log {
    /// Records the conversation with the call's reply; `incomplete` says why a reply is partial.
    fn reply(&self, response: &Value, facts: &CallFacts, incomplete: Option<&Value>) {
        let mut turn = match turn(&self.request, Some(response), facts) {
            Ok(turn) => turn,
            Err(error) => {
                tracing::warn!(%error, "openai: cannot convert a chat completion; it is not logged");
                return;
            }
        };
        if let Some(incomplete) = incomplete
            && let Some(openai) = turn
                .messages
                .last_mut()
                .and_then(|reply| reply.get_mut("properties"))
                .and_then(|p| p.get_mut(PROPERTIES_KEY))
                .and_then(Value::as_object_mut)
        {
            openai.insert("incomplete".into(), incomplete.clone());
        }
        let completion_id = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.submit(PendingTurn {
            turn,
            completion_id,
            failure: None,
        });
    }

    /// Records the conversation as far as the request goes, the error in the conversation's
    /// `properties.openai.error`, and a [`FAILED_EVENT_TYPE`] event on it.
    fn failure(&self, error: &Value, facts: &CallFacts) {
        let turn = match turn(&self.request, None, facts) {
            Ok(turn) => turn,
            Err(convert) => {
                tracing::warn!(error = %convert, "openai: cannot convert a failed chat request; it is not logged");
                return;
            }
        };
        let mut details = json!({
            "error": error,
            "request": settings(&self.request),
            "streamed": facts.streamed,
        });
        if let Some(ms) = facts.latency_ms {
            details["latency_ms"] = json!(ms);
        }
        self.submit(PendingTurn {
            turn,
            completion_id: None,
            failure: Some(details),
        });
    }

    fn submit(&self, pending: PendingTurn) {
        if let Begin::ReadBack { flush_first } =
            self.memory
                .turn(&self.recorder, &self.conversation_id, pending)
        {
            self.read_back(flush_first);
        }
    }

    /// Reads the conversation back on a background task and hands it to the memory, which
    /// merges the turns that waited for it; `flush_first` lets what the recorder still holds of
    /// it reach the API before the read.
    fn read_back(&self, flush_first: bool) {
        let memory = Arc::clone(&self.memory);
        let recorder = self.recorder.clone();
        let id = self.conversation_id.clone();
        let timeout = self.read_back_timeout;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let started = Instant::now();
                    if flush_first {
                        recorder.flush(timeout).await;
                    }
                    let left = timeout.saturating_sub(started.elapsed());
                    let stored = read_back(&recorder, &id, left).await;
                    memory.loaded(&recorder, &id, stored);
                });
            }
            Err(_) => memory.loaded(
                &recorder,
                &id,
                Err("no tokio runtime to read the conversation back on".into()),
            ),
        }
    }
}

/// The stored conversation (`None`: it does not exist yet), or why it could not be read.
async fn read_back(
    recorder: &Recorder,
    conversation_id: &str,
    timeout: Duration,
) -> std::result::Result<Option<Stored>, String> {
    let client = recorder.client().clone();
    match tokio::time::timeout(timeout, client.get_conversation(conversation_id)).await {
        Err(_) => Err(format!("the API did not answer within {timeout:?}")),
        Ok(Err(error)) if error.is_not_found() => Ok(None),
        Ok(Err(error)) => Err(error.to_string()),
        Ok(Ok(conversation)) => Stored::from_api(&conversation)
            .map(Some)
            .map_err(|error| error.to_string()),
    }
}

fn settings(request: &Value) -> Value {
    let mut settings = request.as_object().cloned().unwrap_or_default();
    settings.remove("messages");
    Value::Object(settings)
}

fn failure_json(message: &str) -> Value {
    json!({"message": message})
}

/// A failed call as data: OpenAI's error object and status when it answered, else the message.
fn openai_error(error: &OpenAIError) -> Value {
    match error {
        OpenAIError::ApiError(response) => {
            let mut value = serde_json::to_value(&response.api_error)
                .unwrap_or_else(|_| json!({"message": response.api_error.message}));
            value["status"] = json!(response.status_code.as_u16());
            value
        }
        other => failure_json(&other.to_string()),
    }
}

/// The logging half of a stream: the chunks so far and when they came.
struct StreamLog {
    log: Log,
    chunks: ChunkAccumulator,
    started: Instant,
    first_chunk: Option<Duration>,
    /// Why a chunk could not be accumulated, when one could not.
    broken: Option<String>,
}

impl StreamLog {
    fn facts(&self) -> CallFacts {
        CallFacts {
            latency_ms: Some(self.started.elapsed().as_millis()),
            first_chunk_ms: self.first_chunk.map(|d| d.as_millis()),
            streamed: true,
        }
    }

    /// Logs the stream's end: whole, or partial with why.
    fn end(self, why: Option<String>) {
        let facts = self.facts();
        let why = why.or(self.broken.clone());
        // A stream that ended without finishing (cut off) is as incomplete as one that failed.
        let why = why.or_else(|| self.chunks.check().err().map(|cut| cut.to_string()));
        let partial = self.chunks.partial();
        let has_choice = partial["choices"]
            .as_array()
            .is_some_and(|choices| !choices.is_empty());
        match (why, has_choice) {
            (None, _) => self.log.reply(&partial, &facts, None),
            (Some(why), true) => self.log.reply(&partial, &facts, Some(&Value::String(why))),
            // Nothing of an answer came: the call failed.
            (Some(why), false) => self.log.failure(&failure_json(&why), &facts),
        }
    }
}

/// async-openai's stream, item for item, with each chunk accumulated for the log.
struct LoggedStream {
    inner: ChatCompletionResponseStream,
    state: Option<StreamLog>,
}

impl Stream for LoggedStream {
    type Item = <ChatCompletionResponseStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(state) = self.state.as_mut() {
                    if state.first_chunk.is_none() {
                        state.first_chunk = Some(state.started.elapsed());
                    }
                    if state.broken.is_none() {
                        let pushed = wire_json(chunk)
                            .map_err(|e| e.to_string())
                            .and_then(|chunk| state.chunks.push(&chunk).map_err(|e| e.to_string()));
                        if let Err(error) = pushed {
                            state.broken = Some(error);
                        }
                    }
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(state) = self.state.take() {
                    state.end(Some(format!("the stream failed: {error}")));
                }
            }
            Poll::Ready(None) => {
                if let Some(state) = self.state.take() {
                    state.end(None);
                }
            }
        }
        polled
    }
}

impl Drop for LoggedStream {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.end(Some("the caller dropped the stream before its end".into()));
        }
    }
}
