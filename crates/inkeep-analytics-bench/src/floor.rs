//! The floor for typed decoding: the minimal serde structs a careful user would write by hand.
//!
//! They hold the same documented fields as the SDK's types, with plain `#[derive(Deserialize)]`:
//! the kind as a plain string (no buffering for a tagged enum), unknown keys ignored, nothing kept
//! for a newer API. Content, which is a string or a list of parts, is serde's untagged enum, the
//! only way to say "one of two shapes" with derive alone. The SDK's types must decode at least 80%
//! as fast as these while also keeping unknown keys, unknown kinds and unknown enum values.

#![allow(missing_docs, dead_code)]

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct ConversationPage {
    pub conversations: Vec<Conversation>,
    pub total: u64,
    #[serde(rename = "pageSize")]
    pub page_size: u64,
    pub count: u64,
}

#[derive(Debug, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    #[serde(rename = "externalUrl")]
    pub external_url: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "supportTicketConversationId")]
    pub support_ticket_conversation_id: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    #[serde(rename = "projectId")]
    pub project_id: Option<String>,
    #[serde(rename = "integrationId")]
    pub integration_id: Option<String>,
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "userProperties")]
    pub user_properties: Option<UserProperties>,
    pub tags: Option<Vec<String>>,
    pub visibility: Option<String>,
    pub messages: Vec<Message>,
    #[serde(rename = "messagesOpenAIFormat", default)]
    pub messages_open_ai_format: Option<Vec<OpenAiFormatMessage>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdValue {
    Text(String),
    Number(serde_json::Number),
}

#[derive(Debug, Deserialize)]
pub struct UserProperties {
    pub id: Option<IdValue>,
    #[serde(rename = "identificationType")]
    pub identification_type: Option<String>,
    #[serde(rename = "userId")]
    pub user_id: Option<IdValue>,
    #[serde(rename = "supportAgentName")]
    pub support_agent_name: Option<String>,
    #[serde(rename = "supportAgentEmail")]
    pub support_agent_email: Option<String>,
    #[serde(rename = "userType")]
    pub user_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    #[serde(rename = "externalUrl")]
    pub external_url: Option<String>,
    #[serde(rename = "conversationId")]
    pub conversation_id: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    pub role: String,
    pub content: Option<Content>,
    pub name: Option<String>,
    pub links: Option<Vec<Link>>,
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "userProperties")]
    pub user_properties: Option<UserProperties>,
    pub tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub image_url: Option<ImageUrl>,
}

#[derive(Debug, Deserialize)]
pub struct ImageUrl {
    pub url: String,
    pub detail: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OpenAiFormatMessage {
    pub role: String,
    pub name: Option<String>,
    pub content: Content,
    pub tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub function: ToolCallFunction,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallFunction {
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Deserialize)]
pub struct Link {
    pub url: String,
    pub label: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub breadcrumbs: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct FeedbackPage {
    #[serde(rename = "positiveFeedbackCount")]
    pub positive_feedback_count: u64,
    #[serde(rename = "negativeFeedbackCount")]
    pub negative_feedback_count: u64,
    #[serde(rename = "positiveFeedback")]
    pub positive_feedback: Vec<Feedback>,
    #[serde(rename = "negativeFeedback")]
    pub negative_feedback: Vec<Feedback>,
}

#[derive(Debug, Deserialize)]
pub struct Feedback {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "messageId")]
    pub message_id: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<String>,
    pub reasons: Option<Vec<FeedbackReason>>,
    pub details: Option<String>,
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "userProperties")]
    pub user_properties: Option<UserProperties>,
    pub sources: Option<Vec<FeedbackSource>>,
    pub conversation: Conversation,
    pub message: Message,
}

#[derive(Debug, Deserialize)]
pub struct FeedbackReason {
    pub label: String,
    pub details: String,
}

#[derive(Debug, Deserialize)]
pub struct FeedbackSource {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub title: Option<String>,
    pub url: Option<String>,
}

/// The smallest structs of all: only what a scan that counts and tags conversations reads (the
/// id, the kind, the times, the tags, the properties, and the messages with their links), every
/// other key skipped unread. Issue 25 measured the SDK's types against these at 1.9 times their
/// cost; they are a reference for how fast serde_json parses a page, not a fair floor for types
/// that keep every field.
pub mod minimal {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub struct ConversationPage {
        pub conversations: Vec<Conversation>,
        pub total: u64,
    }

    #[derive(Debug, Deserialize)]
    pub struct Conversation {
        pub id: String,
        #[serde(rename = "type")]
        pub kind: String,
        #[serde(rename = "createdAt")]
        pub created_at: String,
        #[serde(rename = "updatedAt")]
        pub updated_at: String,
        pub tags: Option<Vec<String>>,
        pub properties: Option<serde_json::Map<String, serde_json::Value>>,
        pub messages: Vec<Message>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Message {
        pub id: String,
        #[serde(rename = "type")]
        pub kind: String,
        #[serde(rename = "createdAt")]
        pub created_at: String,
        pub role: String,
        pub links: Option<Vec<super::Link>>,
    }
}
