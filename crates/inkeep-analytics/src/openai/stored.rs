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
            if let Some(value) = conversation.get(*key).filter(|value| !value.is_null()) {
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
                    if let Some(value) = message.get(*key).filter(|value| !value.is_null()) {
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
