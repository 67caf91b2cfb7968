//! Hand-written conveniences on the generated types, for what every kind of a union has in common.
//!
//! The generated types keep every value exactly as the server sent it (counts as JSON numbers,
//! timestamps as strings, messages as a union of kinds); the sibling modules read those values in
//! the types users have, without changing what is kept.

mod counts;
mod messages;
mod timestamps;

pub use timestamps::parse_timestamp;

use crate::types::{Conversation, Message};

impl Conversation {
    /// The conversation's id, for every kind (for an unknown kind, when it has a string `id`).
    pub fn id(&self) -> Option<&str> {
        match self {
            Conversation::OpenAi(c) => Some(&c.id),
            Conversation::SupportTicket(c) => Some(&c.id),
            Conversation::SupportCopilot(c) => Some(&c.id),
            Conversation::Unknown(value) => value.get("id").and_then(serde_json::Value::as_str),
        }
    }
}

impl Conversation {
    /// The conversation's messages, for every known kind (empty for an unknown kind: read its JSON instead).
    pub fn messages(&self) -> &[Message] {
        match self {
            Conversation::OpenAi(c) => &c.messages,
            Conversation::SupportTicket(c) => &c.messages,
            Conversation::SupportCopilot(c) => &c.messages,
            Conversation::Unknown(_) => &[],
        }
    }
}

impl Message {
    /// The message's id, for every kind (for an unknown kind, when it has a string `id`).
    pub fn id(&self) -> Option<&str> {
        match self {
            Message::OpenAi(m) => Some(&m.id),
            Message::SupportTicket(m) => Some(&m.id),
            Message::SupportCopilot(m) => Some(&m.id),
            Message::Unknown(value) => value.get("id").and_then(serde_json::Value::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::types::{Conversation, OpenAiRole, Visibility};

    #[test]
    fn the_client_can_be_shared_across_tasks() {
        fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
        fn assert_sendable<T: Send + Sync + 'static>() {}
        assert_shareable::<crate::Client>();
        assert_sendable::<crate::Error>();
    }

    #[cfg(feature = "schemars")]
    #[test]
    fn generated_types_describe_themselves_as_json_schema() {
        let schema = schemars::schema_for!(crate::types::ConversationList);
        let text = serde_json::to_string(&schema).unwrap_or_default();
        for expected in [
            "\"conversations\"",
            "\"pageSize\"",
            "OpenAiConversation",
            "messagesOpenAIFormat",
        ] {
            assert!(
                text.contains(expected),
                "{expected} missing from the schema"
            );
        }
        // Open enums say so, and list the known values as examples.
        let role = serde_json::to_value(schemars::schema_for!(OpenAiRole)).unwrap_or_default();
        assert_eq!(role["type"], "string");
        assert_eq!(
            role["examples"],
            serde_json::json!(["system", "user", "assistant"])
        );
    }

    #[test]
    fn open_enums_keep_unknown_values() {
        let role: Result<OpenAiRole, _> = serde_json::from_str("\"developer\"");
        assert_eq!(role.ok(), Some(OpenAiRole::Other("developer".into())));
        assert_eq!(Visibility::from("public"), Visibility::Public);
        assert_eq!(Visibility::Other("unlisted".into()).to_string(), "unlisted");
        assert_eq!(
            serde_json::to_string(&Visibility::Other("unlisted".into()))
                .ok()
                .as_deref(),
            Some("\"unlisted\"")
        );
    }

    #[test]
    fn unions_expose_id_and_kind_for_every_kind() {
        let unknown: Result<Conversation, _> =
            serde_json::from_str(r#"{"id": "c9", "type": "voice_call", "minutes": 3}"#);
        let Ok(unknown) = unknown else {
            panic!("an unknown kind must decode");
        };
        assert!(unknown.is_unknown());
        assert_eq!(unknown.id(), Some("c9"));
        assert_eq!(unknown.kind(), Some("voice_call"));
    }
}
