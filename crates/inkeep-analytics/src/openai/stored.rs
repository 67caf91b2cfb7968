//! What a conversation already holds, in the shape the merge takes and the upsert sends: read
//! from the API's answer (the CLI, or the wrapper on a memory miss) or kept in the wrapper's
//! memory, so that both paths send the same conversation.

use serde_json::{Map, Value};

use super::convert::{PROPERTIES_KEY, Turn};
use super::merge::merge;
use crate::error::{Error, Result};
use crate::types::Conversation;

/// The conversation-level fields a turn keeps from what is stored (the server sets the others).
const KEPT_FIELDS: &[&str] = &[
    "createdAt",
    "externalId",
    "externalUrl",
    "integrationId",
    "projectId",
    "properties",
    "supportTicketConversationId",
    "tags",
    "userProperties",
    "visibility",
];

/// The message fields a turn sends again as stored (the others are the server's own).
const KEPT_MESSAGE_FIELDS: &[&str] = &[
    "id",
    "role",
    "content",
    "name",
    "tool_calls",
    "links",
    "properties",
    "userProperties",
    "externalId",
    "externalUrl",
    "createdAt",
];

/// A conversation's stored state: its own fields and its messages, with their ids.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stored {
    pub fields: Map<String, Value>,
    pub messages: Vec<Value>,
}

impl Stored {
    /// What the API returned for the conversation, as the next upsert must carry it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the conversation is not of type `openai`: logging OpenAI
    /// messages into it would replace it.
    pub(crate) fn from_api(conversation: &Conversation) -> Result<Self> {
        let Conversation::OpenAi(conversation) = conversation else {
            return Err(Error::invalid_input(format!(
                "conversation {} is stored with another type than `openai`; log the OpenAI chat under another id",
                conversation_id(conversation)
            )));
        };
        let value = serde_json::to_value(conversation).map_err(|error| {
            Error::invalid_input(format!(
                "the stored conversation does not serialize: {error}"
            ))
        })?;
        Ok(Self::from_json(&value))
    }

    /// [`Self::from_api`] on the JSON of an `openai` conversation.
    pub(crate) fn from_json(conversation: &Value) -> Self {
        let mut fields = Map::new();
        for key in KEPT_FIELDS {
            if let Some(value) = conversation.get(*key).filter(|value| sendable(key, value)) {
                fields.insert((*key).to_string(), value.clone());
            }
        }
        // `properties.openai` on a conversation is the last turn's failure, not history.
        if let Some(Value::Object(properties)) = fields.get_mut("properties") {
            properties.remove(PROPERTIES_KEY);
            if properties.is_empty() {
                fields.remove("properties");
            }
        }
        let messages = conversation
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(|message| {
                let mut kept = Map::new();
                for key in KEPT_MESSAGE_FIELDS {
                    if let Some(value) = message.get(*key).filter(|value| sendable(key, value)) {
                        kept.insert((*key).to_string(), value.clone());
                    }
                }
                // An assistant message that only called tools may come back with no content;
                // the API takes it as "".
                kept.entry("content")
                    .or_insert_with(|| Value::String(String::new()));
                Value::Object(kept)
            })
            .collect();
        Self { fields, messages }
    }

    /// An estimate of the memory this holds, in bytes: its JSON's length, counted without
    /// writing it anywhere.
    pub(crate) fn weight(&self) -> usize {
        let mut counter = ByteCounter(0);
        for value in self.messages.iter().chain(self.fields.values()) {
            // Writing a `Value` into a counter cannot fail.
            let _ = serde_json::to_writer(&mut counter, value);
        }
        counter.0
    }

    /// Merges `turn` in: the conversation to send, and the id of the turn's reply.
    pub(crate) fn apply(&mut self, conversation_id: &str, turn: Turn) -> (Value, Option<String>) {
        let merged = merge(
            conversation_id,
            std::mem::take(&mut self.messages),
            turn.messages,
            turn.has_reply,
        );
        self.messages = merged.messages;
        (self.conversation(conversation_id), merged.reply_id)
    }

    /// The conversation as the upsert takes it.
    pub(crate) fn conversation(&self, conversation_id: &str) -> Value {
        let mut conversation = Map::new();
        conversation.insert("type".into(), Value::String("openai".into()));
        conversation.insert("id".into(), Value::String(conversation_id.into()));
        for (key, value) in &self.fields {
            conversation.insert(key.clone(), value.clone());
        }
        conversation.insert("messages".into(), Value::Array(self.messages.clone()));
        Value::Object(conversation)
    }
}

/// Whether a stored field can be sent back as the upsert takes it: not null, and a `createdAt`
/// that the request's type (a date-time) takes; one that is not RFC 3339 is left out rather than
/// failing the whole turn.
fn sendable(key: &str, value: &Value) -> bool {
    match key {
        _ if value.is_null() => false,
        "createdAt" => value
            .as_str()
            .and_then(crate::prelude::parse_timestamp)
            .is_some(),
        _ => true,
    }
}

/// A writer that only counts what it is given.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn conversation_id(conversation: &Conversation) -> String {
    serde_json::to_value(conversation)
        .ok()
        .and_then(|value| value.get("id").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_is_stored_is_sent_back_as_the_upsert_takes_it() {
        let stored = Stored::from_json(&json!({
            "id": "c", "type": "openai", "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-02T00:00:00Z", "visibility": "not-a-visibility",
            "properties": {"openai": {"error": {}}, "plan": "pro"},
            "messages": [
                {"id": "c:user:0123456789ab", "type": "openai", "conversationId": "c", "role": "user",
                 "content": "Hi", "createdAt": "yesterday", "updatedAt": "2026-01-02T00:00:00Z"},
                {"id": "c:assistant:0123456789ab", "role": "assistant", "content": null,
                 "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
            ]
        }));
        // The last turn's failure is not history; the caller's own properties are.
        assert_eq!(
            stored.fields.get("properties"),
            Some(&json!({"plan": "pro"}))
        );
        assert_eq!(
            stored.fields.get("createdAt"),
            Some(&json!("2026-01-01T00:00:00Z"))
        );
        assert!(!stored.fields.contains_key("updatedAt"));
        assert_eq!(
            stored.fields.get("visibility"),
            Some(&json!("not-a-visibility"))
        );
        assert_eq!(
            stored.messages[0],
            json!({"id": "c:user:0123456789ab", "role": "user", "content": "Hi"})
        );
        assert_eq!(stored.messages[1]["content"], "");
        assert!(super::super::convert::typed(stored.conversation("c")).is_ok());
        assert!(stored.weight() > 0);
    }
}
