//! Constructors for request bodies that take every required field as an argument, so that a body missing one does not compile.
//!
//! Optional fields are public fields of the generated types: set them after construction.
//! Caller-chosen ids have a minimum length of 1, so they are set with a checked `with_id`.

use crate::error::{Error, Result};
use crate::types::{
    CreateOpenAiConversation, CreateOpenAiConversationType, CreateOpenAiMessage,
    CreateSupportCopilotConversation, CreateSupportCopilotConversationType, CreateSupportMessage,
    CreateSupportTicketConversation, CreateSupportTicketConversationType, FeedbackInput,
    FeedbackType, InsertConversationEvent, InsertConversationEventEntityType, InsertEvent,
    InsertMessageEvent, InsertMessageEventEntityType, InsertSearchEvent,
    InsertSearchEventEntityType, OpenAiMessageContent, OpenAiRole,
};

/// Converts a caller-chosen id into its generated newtype, which refuses an empty string.
fn checked_id<T>(id: impl Into<String>) -> Result<T>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    let id = id.into();
    T::try_from(id).map_err(|error| Error::invalid_input(format!("invalid id: {error}")))
}

/// The three kinds of conversation share their optional fields; only the kind and message type differ.
macro_rules! conversation_constructor {
    ($conversation:ident, $kind:ident, $message:ident, $what:literal) => {
        impl $conversation {
            #[doc = concat!("A ", $what, " with these messages (at least one) and no optional field set.")]
            pub fn new(messages: Vec<$message>) -> Self {
                Self {
                    created_at: None,
                    external_id: None,
                    external_url: None,
                    id: None,
                    integration_id: None,
                    messages,
                    project_id: None,
                    properties: None,
                    support_ticket_conversation_id: None,
                    tags: None,
                    type_: $kind::default_kind(),
                    updated_at: None,
                    user_properties: None,
                    visibility: None,
                    extra: Default::default(),
                }
            }

            /// Sets the caller-chosen id that makes logging an upsert; refused when empty.
            pub fn with_id(mut self, id: impl Into<String>) -> Result<Self> {
                self.id = Some(checked_id(id)?);
                Ok(self)
            }
        }
    };
}

/// The single value of each generated discriminator enum, named once.
trait DefaultKind {
    fn default_kind() -> Self;
}

/// Implements [`DefaultKind`] for each generated discriminator enum, by its one variant.
macro_rules! default_kinds {
    ($($kind:ident::$variant:ident),* $(,)?) => {
        $(impl DefaultKind for $kind {
            fn default_kind() -> Self {
                Self::$variant
            }
        })*
    };
}

default_kinds!(
    CreateOpenAiConversationType::Openai,
    CreateSupportTicketConversationType::SupportTicket,
    CreateSupportCopilotConversationType::SupportCopilot,
    InsertMessageEventEntityType::Message,
    InsertConversationEventEntityType::Conversation,
    InsertSearchEventEntityType::Search,
);

conversation_constructor!(
    CreateOpenAiConversation,
    CreateOpenAiConversationType,
    CreateOpenAiMessage,
    "conversation in the OpenAI format"
);
conversation_constructor!(
    CreateSupportTicketConversation,
    CreateSupportTicketConversationType,
    CreateSupportMessage,
    "support ticket"
);
conversation_constructor!(
    CreateSupportCopilotConversation,
    CreateSupportCopilotConversationType,
    CreateSupportMessage,
    "support copilot conversation"
);

impl CreateOpenAiMessage {
    /// A message with this role and content, and no optional field set.
    pub fn new(role: OpenAiRole, content: OpenAiMessageContent) -> Self {
        Self {
            content: Some(content),
            created_at: None,
            external_id: None,
            external_url: None,
            id: None,
            links: None,
            name: None,
            properties: None,
            role,
            tool_calls: None,
            updated_at: None,
            user_properties: None,
            extra: Default::default(),
        }
    }

    /// A `user` message with plain text.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(OpenAiRole::User, OpenAiMessageContent::String(text.into()))
    }

    /// An `assistant` message with plain text.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(
            OpenAiRole::Assistant,
            OpenAiMessageContent::String(text.into()),
        )
    }

    /// A `system` message with plain text.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(
            OpenAiRole::System,
            OpenAiMessageContent::String(text.into()),
        )
    }

    /// Sets the caller-chosen id; refused when empty.
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self> {
        self.id = Some(checked_id(id)?);
        Ok(self)
    }
}

impl CreateSupportMessage {
    /// A message with this role (a free string, such as `customer` or `agent`) and content (which may be null).
    pub fn new(role: impl Into<String>, content: Option<String>) -> Self {
        Self {
            content,
            created_at: None,
            external_id: None,
            external_url: None,
            id: None,
            links: None,
            name: None,
            properties: None,
            role: role.into(),
            updated_at: None,
            user_properties: None,
            extra: Default::default(),
        }
    }

    /// Sets the caller-chosen id; refused when empty.
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self> {
        self.id = Some(checked_id(id)?);
        Ok(self)
    }
}

/// The three kinds of event share their optional fields; only the entity and its key differ.
macro_rules! event_constructor {
    ($event:ident, $entity:ident, $key:ident, $what:literal) => {
        impl $event {
            #[doc = concat!("An event of type `event_type` (a free string such as `conversation_shared`) about ", $what, ".")]
            pub fn new($key: impl Into<String>, event_type: impl Into<String>) -> Self {
                Self {
                    created_at: None,
                    entity_type: $entity::default_kind(),
                    id: None,
                    integration_id: None,
                    $key: $key.into(),
                    project_id: None,
                    properties: None,
                    type_: event_type.into(),
                    user_properties: None,
                    extra: Default::default(),
                }
            }

            /// Sets the caller-chosen id, so that logging twice does not add a second event; refused when empty.
            pub fn with_id(mut self, id: impl Into<String>) -> Result<Self> {
                self.id = Some(checked_id(id)?);
                Ok(self)
            }
        }
    };
}

event_constructor!(
    InsertMessageEvent,
    InsertMessageEventEntityType,
    message_id,
    "a message"
);
event_constructor!(
    InsertConversationEvent,
    InsertConversationEventEntityType,
    conversation_id,
    "a conversation"
);
event_constructor!(
    InsertSearchEvent,
    InsertSearchEventEntityType,
    search_query,
    "a search"
);

impl InsertEvent {
    /// An event about a message.
    pub fn message(message_id: impl Into<String>, event_type: impl Into<String>) -> Self {
        InsertMessageEvent::new(message_id, event_type).into()
    }

    /// An event about a conversation.
    pub fn conversation(conversation_id: impl Into<String>, event_type: impl Into<String>) -> Self {
        InsertConversationEvent::new(conversation_id, event_type).into()
    }

    /// An event about a search.
    pub fn search(search_query: impl Into<String>, event_type: impl Into<String>) -> Self {
        InsertSearchEvent::new(search_query, event_type).into()
    }
}

impl FeedbackInput {
    /// Feedback of this type on a message, with no optional field set.
    pub fn new(feedback_type: FeedbackType, message_id: impl Into<String>) -> Self {
        Self {
            created_at: None,
            details: None,
            id: None,
            message_id: message_id.into(),
            properties: None,
            reasons: None,
            sources: None,
            type_: feedback_type,
            updated_at: None,
            user_properties: None,
            extra: Default::default(),
        }
    }

    /// Positive feedback on a message.
    pub fn positive(message_id: impl Into<String>) -> Self {
        Self::new(FeedbackType::Positive, message_id)
    }

    /// Negative feedback on a message.
    pub fn negative(message_id: impl Into<String>) -> Self {
        Self::new(FeedbackType::Negative, message_id)
    }

    /// Sets the caller-chosen id, so that recording twice updates instead of duplicating; refused when empty.
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self> {
        self.id = Some(checked_id(id)?);
        Ok(self)
    }
}

impl crate::types::CreateConversation {
    /// How many messages the conversation holds, whatever its kind (for an unknown kind, the length
    /// of its `messages` array, or 0 without one): the client refuses a conversation with none, and the recorder's delivery
    /// check compares it with what the server stored.
    pub(crate) fn message_count(&self) -> usize {
        match self {
            crate::types::CreateConversation::OpenAi(c) => c.messages.len(),
            crate::types::CreateConversation::SupportTicket(c) => c.messages.len(),
            crate::types::CreateConversation::SupportCopilot(c) => c.messages.len(),
            crate::types::CreateConversation::Unknown(value) => value
                .get("messages")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::types::CreateConversation;

    fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(value).unwrap_or_default()
    }

    #[test]
    fn conversations_serialize_with_only_what_was_set() {
        let conversation: CreateConversation = CreateOpenAiConversation::new(vec![
            CreateOpenAiMessage::user("Hi"),
            CreateOpenAiMessage::assistant("Hello"),
        ])
        .into();
        assert_eq!(
            to_json(&conversation),
            json!({
                "type": "openai",
                "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
            })
        );
        let ticket: CreateConversation = CreateSupportTicketConversation::new(vec![
            CreateSupportMessage::new("customer", Some("It broke".into())),
            CreateSupportMessage::new("agent", None),
        ])
        .into();
        assert_eq!(
            to_json(&ticket),
            json!({
                "type": "support_ticket",
                // A support message's content is optional in a request: `None` leaves it out.
                "messages": [{"role": "customer", "content": "It broke"}, {"role": "agent"}]
            })
        );
        let copilot =
            CreateSupportCopilotConversation::new(vec![CreateSupportMessage::new("agent", None)]);
        assert_eq!(to_json(&copilot)["type"], "support_copilot");
    }

    #[test]
    fn ids_are_checked() {
        let ok =
            CreateOpenAiConversation::new(vec![CreateOpenAiMessage::system("x")]).with_id("conv-1");
        assert_eq!(
            ok.map(|c| to_json(&c)["id"].clone()).ok(),
            Some(json!("conv-1"))
        );
        let empty = CreateOpenAiConversation::new(vec![]).with_id("");
        assert!(matches!(empty, Err(Error::InvalidInput { .. })));
        assert!(FeedbackInput::positive("m").with_id("").is_err());
        assert!(InsertSearchEvent::new("q", "search").with_id("").is_err());
    }

    #[test]
    fn events_carry_their_entity() {
        assert_eq!(
            to_json(&InsertEvent::message("m1", "message_copied")),
            json!({"entityType": "message", "messageId": "m1", "type": "message_copied"})
        );
        assert_eq!(
            to_json(&InsertEvent::conversation("c1", "conversation_shared")),
            json!({"entityType": "conversation", "conversationId": "c1", "type": "conversation_shared"})
        );
        assert_eq!(
            to_json(&InsertEvent::search("how to log", "search_performed")),
            json!({"entityType": "search", "searchQuery": "how to log", "type": "search_performed"})
        );
    }

    #[test]
    fn feedback_carries_its_type() {
        assert_eq!(
            to_json(&FeedbackInput::negative("m1")),
            json!({"type": "negative", "messageId": "m1"})
        );
        assert_eq!(to_json(&FeedbackInput::positive("m1"))["type"], "positive");
    }
}
