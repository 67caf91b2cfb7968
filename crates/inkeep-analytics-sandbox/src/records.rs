//! The records the sandbox stores, in the shape and key order in which the API serves them.
//!
//! They are plain structs rather than the SDK's generated response types so that the output
//! looks like the API's own (keys in the documented order, `null` for a nullable field without a
//! value) instead of following the generator's conventions.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

/// The organization every record of the sandbox belongs to.
pub(crate) const ORGANIZATION_ID: &str = "org_sandbox";

/// A date-time as the API writes it: RFC 3339 in UTC with milliseconds, `2025-01-06T08:00:00.000Z`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The kind of a conversation and of its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Kind {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "support_ticket")]
    SupportTicket,
    #[serde(rename = "support_copilot")]
    SupportCopilot,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::OpenAi => "openai",
            Kind::SupportTicket => "support_ticket",
            Kind::SupportCopilot => "support_copilot",
        }
    }
}

/// A conversation, as `GET /conversations/{id}` serves it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Conversation {
    pub id: String,
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub support_ticket_conversation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub project_id: Option<String>,
    pub integration_id: Option<String>,
    pub properties: Option<Value>,
    pub user_properties: Option<Value>,
    pub tags: Option<Vec<String>>,
    pub visibility: Option<String>,
    pub messages: Vec<Message>,
    /// Only OpenAI-format conversations have it.
    #[serde(
        rename = "messagesOpenAIFormat",
        skip_serializing_if = "Option::is_none"
    )]
    pub messages_openai_format: Option<Vec<OpenAiFormatMessage>>,
    /// The seeded topic the conversation is about, which gives its semantic thread realistic
    /// annotations; `None` for conversations logged through the API.
    #[serde(skip)]
    pub topic: Option<usize>,
}

impl Conversation {
    /// Fills `messagesOpenAIFormat` from the messages (OpenAI-format conversations only).
    pub(crate) fn refresh_openai_format(&mut self) {
        self.messages_openai_format = (self.kind == Kind::OpenAi).then(|| {
            self.messages
                .iter()
                .map(|message| OpenAiFormatMessage {
                    role: message.role.clone(),
                    name: message.name.clone(),
                    content: message.content.clone(),
                    tool_calls: message
                        .tool_calls
                        .as_ref()
                        .filter(|calls| !calls.is_null())
                        .cloned(),
                })
                .collect()
        });
    }

    pub(crate) fn message(&self, id: &str) -> Option<&Message> {
        self.messages.iter().find(|message| message.id == id)
    }
}

/// A message of a conversation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    pub conversation_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub role: String,
    /// A string, an array of content items (OpenAI format), or null (support kinds).
    pub content: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub links: Option<Value>,
    pub properties: Option<Value>,
    pub user_properties: Option<Value>,
    /// `Some(null)` or `Some([...])` for OpenAI-format messages; `None` (absent) for the support kinds.
    #[serde(rename = "tool_calls", skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
}

impl Message {
    /// The text of the message: its string content, or the text of its content items.
    pub(crate) fn text(&self) -> Option<String> {
        match &self.content {
            Value::String(text) => Some(text.clone()),
            Value::Array(items) => {
                let texts: Vec<&str> = items
                    .iter()
                    .filter_map(|item| item.get("text").and_then(Value::as_str))
                    .collect();
                (!texts.is_empty()).then(|| texts.join("\n"))
            }
            _ => None,
        }
    }
}

/// An entry of `messagesOpenAIFormat`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct OpenAiFormatMessage {
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub content: Value,
    #[serde(rename = "tool_calls", skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
}

/// Feedback on a message, as `POST /feedback` answers it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Feedback {
    pub id: String,
    /// `positive` or `negative`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub reasons: Option<Value>,
    pub details: Option<String>,
    pub properties: Option<Value>,
    pub user_properties: Option<Value>,
    pub sources: Option<Value>,
    /// The conversation of the message, kept so that the feedback view and the cascade on
    /// deletion need no search.
    #[serde(skip)]
    pub conversation_id: String,
}

impl Feedback {
    pub(crate) fn is_positive(&self) -> bool {
        self.kind == "positive"
    }
}

/// Feedback with its message and conversation (`FeedbackWithContext`).
#[derive(Serialize)]
pub(crate) struct FeedbackWithContext<'a> {
    #[serde(flatten)]
    pub feedback: &'a Feedback,
    pub conversation: &'a Conversation,
    pub message: &'a Message,
}

/// An event, as `POST /events` answers it (`SelectEvent`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    pub id: String,
    /// `message`, `conversation` or `search`.
    pub entity_type: String,
    /// What happened, a free string such as `conversation_shared`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_query: Option<String>,
    pub created_at: String,
    pub project_id: Option<String>,
    pub integration_id: Option<String>,
    pub properties: Option<Value>,
    pub user_properties: Option<Value>,
}
