//! Logging OpenAI-style chats (feature `async-openai`): a lossless mapping from OpenAI's
//! chat-completions format to the API's OpenAI conversations, streams put back together, and a
//! one-line wrapper of an async-openai client that logs every chat completion through a
//! [`Recorder`](crate::Recorder).
//!
//! The API holds less than OpenAI's format: the roles `system`, `user` and `assistant` only,
//! content parts `text` and `image_url` only, tool calls of type `function` only, no
//! `tool_call_id`, no refusal, no annotations.
//! Nothing is dropped: what the API cannot hold goes to the message's `properties.openai`, under
//! the keys below, and a message's id is derived from the conversation, its position and its
//! role, so that the next turn, which sends every message again, updates instead of duplicating.
//!
//! | OpenAI field | Where it lands |
//! | --- | --- |
//! | message at index *i* with role *r* | a message with id `{conversation}:{i}:{r}` ([`message_id`]); `properties.openai.position` = *i* |
//! | `system`, `user`, `assistant` role | the same role |
//! | `developer` role | role `system`, `properties.openai.role` = `"developer"` |
//! | `tool` message (`tool_call_id`, `content`) | not a message of its own: appended to `properties.openai.tool_results` of the assistant message whose tool call has that id, as the whole OpenAI message plus its `position` |
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
//! | the reply: `choices[0].message` | the assistant message at position *n* (the number of request messages), mapped as above |
//! | `id`, `model`, `created`, `system_fingerprint`, `service_tier`, `usage` | the reply's `properties.openai.completion_id`, `.model`, `.created`, `.system_fingerprint`, `.service_tier`, `.usage` |
//! | `choices[0].finish_reason`, `choices[0].logprobs` | `properties.openai.finish_reason`, `.logprobs` |
//! | other choices (`n` > 1) | `properties.openai.other_choices`, whole |
//! | any other key of the response | `properties.openai.response_extra` |
//! | the request's settings (everything but `messages`: `model`, `temperature`, `tools`, `tool_choice`, …) | the reply's `properties.openai.request` |
//! | latency (wrapper) | the reply's `properties.openai.latency_ms`; for streams also `first_chunk_ms`; `streamed` says which |
//! | a failed call (wrapper) | the conversation with the request's messages, `properties.openai` of the conversation = `{error, request, latency_ms, streamed}` (`error` is OpenAI's error object and `status` when it answered); and an event [`FAILED_EVENT_TYPE`] on the conversation with the same properties |
//! | a stream that failed or was dropped after some chunks (wrapper) | the partial reply, with `properties.openai.incomplete` saying why |
//!
//! Logged with the wrapper, a reply sent again in the next request keeps what was logged of it
//! (model, usage, citations) as long as its content and tool calls are unchanged.

mod convert;
mod feedback;
mod memory;
mod stream;
mod wrapper;

pub use convert::{PROPERTIES_KEY, conversation_from_json, message_id};
pub use feedback::CompletionRef;
pub use stream::ChunkAccumulator;
pub use wrapper::{FAILED_EVENT_TYPE, LoggedClient, wrap};

/// async-openai, as the SDK builds it, so that the wrapped client's types always match.
pub use async_openai;

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};

use crate::error::{Error, Result};
use crate::types::CreateOpenAiConversation;

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
