//! Logging OpenAI-style chats (feature `async-openai`): a lossless mapping from OpenAI's
//! chat-completions format to the API's OpenAI conversations, streams put back together, and a
//! one-line wrapper of an async-openai client that logs every chat completion through a
//! [`Recorder`](crate::recorder::Recorder).
//!
//! The API holds less than OpenAI's format: the roles `system`, `user` and `assistant` only,
//! content parts `text` and `image_url` only, tool calls of type `function` only, no
//! `tool_call_id`, no refusal, no annotations.
//! Nothing is dropped: what the API cannot hold goes to the message's `properties.openai`, under
//! the keys below.
//!
//! # A whole conversation from turns that carry part of it
//!
//! The API replaces a conversation's messages on every upsert, and chat applications rarely send
//! the model the whole history (a sliding window, old tool results dropped, a summary).
//! So each turn is merged into what the conversation already holds, and a message's id belongs to
//! the message, not to its place in one request: `{conversation}:{role}:{hash}`, a hash of what it
//! says, with `:{n}` for the *n*-th identical message ([`message_id`]).
//! The rule, and what it does for each kind of trimmed history, is in [`merge`]'s documentation.
//! What the conversation holds comes from the wrapper's bounded memory of the conversations it
//! logged, else from the API, read back once ([`merge_exchange`] and [`log_exchange`] for the JSON
//! path, which the CLI's `log-openai` takes; the wrapper reads back on a background task).
//!
//! Which conversation a call goes to: the id the caller gives; else the one the request's markers
//! name ([`conversation_id_from_request`]: a `metadata` key, or the end user with the chat's
//! opening, never the opening alone); else the call is a conversation of its own.
//!
//! | OpenAI field | Where it lands |
//! | --- | --- |
//! | a message with role *r* | a message with id `{conversation}:{r}:{hash}` or `{conversation}:{r}:{hash}:{n}` ([`message_id`]); `properties.openai.position` = its index in the request that first carried it |
//! | `system`, `user`, `assistant` role | the same role |
//! | `developer` role | role `system`, `properties.openai.role` = `"developer"` |
//! | `tool` message (`tool_call_id`, `content`) | not a message of its own: appended to `properties.openai.tool_results` of the assistant message whose tool call has that id (in the request, else in the stored conversation), as the whole OpenAI message plus its `position` |
//! | `function` message (legacy) | the same, on the assistant message whose `function_call` has that name |
//! | `tool` or `function` message that answers no earlier call, or a role OpenAI adds later | role `assistant`, `properties.openai.role` = the OpenAI role, `properties.openai.tool_call_id` when it has one |
//! | `content` string | `content` |
//! | `content` parts `text`, `image_url` (`url`, `detail`) | `content` items, in order |
//! | other parts (`refusal`, `input_audio`, `file`, unknown, or a part with extra keys) | `properties.openai.parts`: `[{index, part}]`, *index* being its place in OpenAI's array; `properties.openai.content_parts_only` = `true` (and `content` = `""`) when no part was held |
//! | `content: null` (an assistant that only calls tools) | `content` = `""`, `properties.openai.content_null` = `true`, the tool calls kept |
//! | `name` | `name` |
//! | `tool_calls` of type `function` | `tool_calls` |
//! | `tool_calls` of type `custom` (or unknown) | `properties.openai.custom_tool_calls`: `[{index, call}]` |
//! | `refusal`, `audio`, `function_call` | `properties.openai.refusal`, `.audio`, `.function_call` |
//! | `annotations` | `properties.openai.annotations`; each `url_citation` also becomes a `links` entry (`url`, `title`) |
//! | any other key of a message | `properties.openai.extra` |
//! | the reply: `choices[0].message` | an assistant message after the request's, mapped as above (`position` = the number of request messages) |
//! | `id`, `model`, `created`, `system_fingerprint`, `service_tier`, `usage` | the reply's `properties.openai.completion_id`, `.model`, `.created`, `.system_fingerprint`, `.service_tier`, `.usage` |
//! | `choices[0].finish_reason`, `choices[0].logprobs` | `properties.openai.finish_reason`, `.logprobs` |
//! | other choices (`n` > 1) | `properties.openai.other_choices`, whole |
//! | any other key of the response | `properties.openai.response_extra` |
//! | the request's settings (everything but `messages`: `model`, `temperature`, `tools`, `tool_choice`, …) | the reply's `properties.openai.request` |
//! | latency (wrapper) | the reply's `properties.openai.latency_ms`; for streams also `first_chunk_ms`; `streamed` says which |
//! | a failed call (wrapper) | the conversation with the request's messages, `properties.openai` of the conversation = `{error, request, latency_ms, streamed}` (`error` is OpenAI's error object and `status` when it answered); and an event [`FAILED_EVENT_TYPE`] on the conversation with the same properties |
//! | a stream that failed or was dropped after some chunks (wrapper) | the partial reply, with `properties.openai.incomplete` saying why |
//!
//! A reply sent again in a later request is the same message: it keeps what was logged of it
//! (model, usage, citations), and gains the tool results the request adds to it.

mod convert;
mod feedback;
mod identity;
mod memory;
pub mod merge;
mod stored;
mod stream;
mod wrapper;

pub use convert::PROPERTIES_KEY;
pub use feedback::CompletionRef;
pub use identity::{CONVERSATION_METADATA_KEYS, conversation_id_from_request};
pub use memory::{DEFAULT_MEMORY_BYTES, DEFAULT_MEMORY_CONVERSATIONS};
pub use stream::ChunkAccumulator;
pub use wrapper::{DEFAULT_READ_BACK_TIMEOUT, FAILED_EVENT_TYPE, LoggedClient, wrap};

/// async-openai, as the SDK builds it, so that the wrapped client's types always match.
pub use async_openai;

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};

use serde_json::Value;

use self::convert::{CallFacts, turn, typed};
use self::stored::Stored;
use crate::Client;
use crate::error::{Error, Result};
use crate::types::{Conversation, CreateOpenAiConversation};

/// The id of `message` (an OpenAI chat message, as sent in `messages` or returned as a choice's
/// `message`) in `conversation_id`, when it is the `occurrence`-th (from 1) identical message of
/// the conversation: `{conversation}:{role}:{hash}`, then `{conversation}:{role}:{hash}:{n}`.
/// See [`merge`] for what the hash covers.
///
/// ```
/// use inkeep_analytics::openai::message_id;
/// use serde_json::json;
///
/// let id = message_id("chat-42", &json!({"role": "user", "content": "Hi"}), 1)?;
/// assert!(id.starts_with("chat-42:user:"));
/// assert_eq!(message_id("chat-42", &json!({"role": "user", "content": "Hi"}), 2)?, format!("{id}:2"));
/// # Ok::<(), inkeep_analytics::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] when `message` is not an OpenAI message.
pub fn message_id(conversation_id: &str, message: &Value, occurrence: usize) -> Result<String> {
    let converted = convert::single_message(message)?;
    Ok(merge::identity(&converted).id(conversation_id, occurrence))
}

fn check_conversation_id(conversation_id: &str) -> Result<()> {
    if conversation_id.trim().is_empty() {
        return Err(Error::invalid_input(
            "the conversation id must not be empty",
        ));
    }
    Ok(())
}

/// Converts one exchange, as OpenAI's API sends it, into the conversation to log, as a
/// conversation of its own (nothing stored before it): [`merge_exchange`] with no stored
/// conversation.
///
/// `request` is a chat-completions request body and `response` its `chat.completion` (or
/// [`ChunkAccumulator::finish`]'s); without a response, only the request's messages are
/// converted. See the [module](self) for where each field lands.
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the field, when `request` or `response` is not of that shape,
/// or `conversation_id` is empty.
pub fn conversation_from_json(
    conversation_id: &str,
    request: &Value,
    response: Option<&Value>,
) -> Result<CreateOpenAiConversation> {
    merge_exchange(conversation_id, None, request, response)
}

/// The conversation to log after one exchange: its messages merged into what `stored` (the
/// conversation as [`Client::get_conversation`] returned it, `None` when there is none yet)
/// holds, by the rule of [`merge`], with the conversation's own fields kept.
///
/// # Errors
///
/// As [`conversation_from_json`], and [`Error::InvalidInput`] when `stored` is not an `openai`
/// conversation.
pub fn merge_exchange(
    conversation_id: &str,
    stored: Option<&Conversation>,
    request: &Value,
    response: Option<&Value>,
) -> Result<CreateOpenAiConversation> {
    check_conversation_id(conversation_id)?;
    let turn = turn(request, response, &CallFacts::default())?;
    let mut stored = stored
        .map(Stored::from_api)
        .transpose()?
        .unwrap_or_default();
    let (conversation, _) = stored.apply(conversation_id, turn);
    typed(conversation)
}

/// Logs one exchange into `conversation_id` with `client`, keeping the whole conversation: the
/// exchange is checked and converted first (bad input is refused before any request), the stored
/// conversation is read back once (a 404 means a new one), the exchange merged into it
/// ([`merge_exchange`]), and the result upserted. This is what the CLI's
/// `conversations log-openai` does.
///
/// # Errors
///
/// As [`merge_exchange`], and the API's errors of the read-back (other than 404) and the upsert:
/// nothing is written when the stored conversation cannot be read, since writing the exchange
/// alone would replace its history.
pub async fn log_exchange(
    client: &Client,
    conversation_id: &str,
    request: &Value,
    response: Option<&Value>,
) -> Result<Conversation> {
    check_conversation_id(conversation_id)?;
    let turn = turn(request, response, &CallFacts::default())?;
    let stored = match client.get_conversation(conversation_id).await {
        Ok(conversation) => Stored::from_api(&conversation)?,
        Err(error) if error.is_not_found() => Stored::default(),
        Err(error) => return Err(error),
    };
    let mut stored = stored;
    let (conversation, _) = stored.apply(conversation_id, turn);
    client.log_conversation(typed(conversation)?).await
}

/// Converts one typed exchange (async-openai's request and its response) into the conversation
/// to log, as [`conversation_from_json`] does for their JSON.
///
/// # Errors
///
/// [`Error::InvalidInput`] when a value does not serialize to OpenAI's shape.
pub fn conversation_from_completion(
    conversation_id: &str,
    request: &CreateChatCompletionRequest,
    response: Option<&CreateChatCompletionResponse>,
) -> Result<CreateOpenAiConversation> {
    let request =
        convert::wire_json(request).map_err(|e| Error::invalid_input(format!("request: {e}")))?;
    let response = response
        .map(convert::wire_json)
        .transpose()
        .map_err(|e| Error::invalid_input(format!("response: {e}")))?;
    conversation_from_json(conversation_id, &request, response.as_ref())
}
