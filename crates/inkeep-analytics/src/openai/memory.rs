//! What the wrapper remembers between turns, within fixed bounds: the replies it logged (so that
//! a reply sent back in the next request keeps its model, usage and citations) and which message
//! each completion became (so that feedback takes the completion alone).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::convert::PROPERTIES_KEY;

/// How many conversations' replies are remembered; the oldest is forgotten past it.
const MAX_CONVERSATIONS: usize = 1024;
/// How many completions' message ids are remembered for feedback.
const MAX_COMPLETIONS: usize = 16_384;

#[derive(Debug, Default)]
struct Inner {
    replies: HashMap<String, HashMap<String, Value>>,
    conversations: VecDeque<String>,
    completions: HashMap<String, String>,
    completion_order: VecDeque<String>,
}

/// Shared by the clones of one wrapper.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    inner: Mutex<Inner>,
}

/// The keys of a re-sent reply that come from its request, not from the reply as logged.
const FROM_REQUEST: &[&str] = &["position", "tool_results"];

impl Memory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change below leaves the maps consistent, so a panic elsewhere loses nothing here.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts back what was logged of replies the request sends again unchanged (same content and
    /// tool calls), keeping the tool results the request adds to them.
    pub(crate) fn restore(&self, conversation_id: &str, conversation: &mut Value) {
        let inner = self.lock();
        let Some(replies) = inner.replies.get(conversation_id) else {
            return;
        };
        let Some(messages) = conversation
            .get_mut("messages")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for message in messages {
            let Some(id) = message.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some(logged) = replies.get(id) else {
                continue;
            };
            if logged.get("content") != message.get("content")
                || logged.get("tool_calls") != message.get("tool_calls")
            {
                continue;
            }
            let mut restored = logged.clone();
            let fresh = message
                .get("properties")
                .and_then(|p| p.get(PROPERTIES_KEY))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(openai) = restored
                .get_mut("properties")
                .and_then(|p| p.get_mut(PROPERTIES_KEY))
                .and_then(Value::as_object_mut)
            {
                for key in FROM_REQUEST {
                    match fresh.get(*key) {
                        Some(value) => openai.insert((*key).to_string(), value.clone()),
                        None => openai.remove(*key),
                    };
                }
            }
            *message = restored;
        }
    }

    /// Remembers the reply a completion became.
    pub(crate) fn remember(
        &self,
        conversation_id: &str,
        completion_id: Option<&str>,
        reply: &Value,
    ) {
        let Some(message_id) = reply.get("id").and_then(Value::as_str) else {
            return;
        };
        let mut inner = self.lock();
        if !inner.replies.contains_key(conversation_id) {
            if inner.conversations.len() >= MAX_CONVERSATIONS
                && let Some(oldest) = inner.conversations.pop_front()
            {
                inner.replies.remove(&oldest);
            }
            inner.conversations.push_back(conversation_id.to_string());
        }
        inner
            .replies
            .entry(conversation_id.to_string())
            .or_default()
            .insert(message_id.to_string(), reply.clone());
        if let Some(completion_id) = completion_id {
            if inner.completions.len() >= MAX_COMPLETIONS
                && let Some(oldest) = inner.completion_order.pop_front()
            {
                inner.completions.remove(&oldest);
            }
            if inner
                .completions
                .insert(completion_id.to_string(), message_id.to_string())
                .is_none()
            {
                inner.completion_order.push_back(completion_id.to_string());
            }
        }
    }

    /// The message a completion became, when this wrapper logged it recently.
    pub(crate) fn message_of(&self, completion_id: &str) -> Option<String> {
        self.lock().completions.get(completion_id).cloned()
    }
}
