//! The one table of columns: which documented field of a record becomes which column, of which type, in SQLite and in Parquet.
//!
//! The spec (`openapi/inkeep-analytics.yaml`) is the home of the fields; this table only says how
//! each is stored, and the test `every_documented_field_has_a_column` fails when the spec grows a
//! field that the table lacks. Every column is nullable: a record the API sends without a field
//! it documents still mirrors, and its `raw` keeps what was sent.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// How a field is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// A string as text; a value of another type (a number, an array of content items) as its JSON.
    Text,
    /// JSON text, for objects and arrays (SQLite's `json_*` functions and DuckDB's `->>` read it).
    Json,
    /// An ISO 8601 time: text as sent in SQLite (so that it sorts and `strftime` reads it), a UTC
    /// `TIMESTAMP` in microseconds in Parquet.
    Timestamp,
}

/// A column taken from a top-level field of a record.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The column's name (the field's, in snake_case).
    pub name: &'static str,
    /// The field as the API writes it.
    pub field: &'static str,
    /// How it is stored.
    pub kind: ColumnKind,
}

const fn column(name: &'static str, field: &'static str, kind: ColumnKind) -> Column {
    Column { name, field, kind }
}

use ColumnKind::{Json, Text, Timestamp};

/// `conversations`: one row per conversation (the `Conversation` kinds of the spec).
pub const CONVERSATION_COLUMNS: &[Column] = &[
    column("id", "id", Text),
    column("type", "type", Text),
    column("external_id", "externalId", Text),
    column("external_url", "externalUrl", Text),
    column(
        "support_ticket_conversation_id",
        "supportTicketConversationId",
        Text,
    ),
    column("created_at", "createdAt", Timestamp),
    column("updated_at", "updatedAt", Timestamp),
    column("project_id", "projectId", Text),
    column("integration_id", "integrationId", Text),
    column("visibility", "visibility", Text),
    column("tags", "tags", Json),
    column("properties", "properties", Json),
    column("user_properties", "userProperties", Json),
    column("messages_openai_format", "messagesOpenAIFormat", Json),
];

/// Fields of a conversation that are not a column of its row, and where they are.
pub const CONVERSATION_FIELDS_ELSEWHERE: &[(&str, &str)] =
    &[("messages", "the messages table, one row per message")];

/// `messages`: one row per message of a conversation (the `Message` kinds of the spec), after the
/// two columns that place it: `conversation_id` and `position`.
pub const MESSAGE_COLUMNS: &[Column] = &[
    column("id", "id", Text),
    column("type", "type", Text),
    column("external_id", "externalId", Text),
    column("external_url", "externalUrl", Text),
    column("created_at", "createdAt", Timestamp),
    column("updated_at", "updatedAt", Timestamp),
    column("role", "role", Text),
    column("content", "content", Text),
    column("name", "name", Text),
    column("links", "links", Json),
    column("tool_calls", "tool_calls", Json),
    column("properties", "properties", Json),
    column("user_properties", "userProperties", Json),
];

/// Fields of a message that are not a column of its own, and where they are.
pub const MESSAGE_FIELDS_ELSEWHERE: &[(&str, &str)] = &[(
    "conversationId",
    "conversation_id, the conversation that holds the message",
)];

/// `feedback`: one row per feedback item (`FeedbackWithContext` in the spec), then `conversation_id`.
pub const FEEDBACK_COLUMNS: &[Column] = &[
    column("id", "id", Text),
    column("type", "type", Text),
    column("message_id", "messageId", Text),
    column("created_at", "createdAt", Timestamp),
    column("updated_at", "updatedAt", Timestamp),
    column("reasons", "reasons", Json),
    column("details", "details", Text),
    column("sources", "sources", Json),
    column("properties", "properties", Json),
    column("user_properties", "userProperties", Json),
];

/// Fields of a feedback item that are not a column of its own, and where they are.
pub const FEEDBACK_FIELDS_ELSEWHERE: &[(&str, &str)] = &[
    (
        "conversation",
        "conversation_id; the conversation itself is a row of conversations",
    ),
    (
        "message",
        "message_id; the message itself is a row of messages",
    ),
];

/// A record's top-level fields, each kept as the bytes the server sent.
pub(crate) struct Fields<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    /// Reads the top level of a JSON object; `None` when the record is not one.
    pub(crate) fn of(record: &'a RawValue) -> Option<Self> {
        let RawMap(fields) = serde_json::from_str(record.get()).ok()?;
        Some(Self { fields })
    }

    /// Members read otherwise (see `record::ConversationMembers`).
    pub(crate) fn from_members(fields: Vec<(Cow<'a, str>, &'a RawValue)>) -> Self {
        Self { fields }
    }

    /// The field's bytes, when present.
    pub(crate) fn raw(&self, field: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .find(|(key, _)| key == field)
            .map(|(_, value)| *value)
    }

    /// A string field (or a number, as written), such as an id.
    pub(crate) fn text(&self, field: &str) -> Option<Cow<'a, str>> {
        cell(self.raw(field)?, Text)
    }

    /// A listed record's top-level fields, or an error naming `what` the record is.
    pub(crate) fn of_record(what: &'static str, record: &'a RawValue) -> Result<Self> {
        Self::of(record).ok_or_else(|| Error::Record {
            what,
            reason: "it is not a JSON object".into(),
        })
    }
}

/// An object's members in order, borrowed from the record.
struct RawMap<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for RawMap<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = RawMap<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                #[derive(serde::Deserialize)]
                #[serde(transparent)]
                struct Key<'k>(#[serde(borrow)] Cow<'k, str>);
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(RawMap(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A JSON value as a column's value: `None` for null; a string's text for `Text` and
/// `Timestamp`; any other value as its JSON, exactly as sent.
pub(crate) fn cell(value: &RawValue, kind: ColumnKind) -> Option<Cow<'_, str>> {
    let text = value.get();
    if text == "null" {
        return None;
    }
    if text.starts_with('"') && kind != Json {
        // A string whose text has no escapes is borrowed (the value is valid JSON, so its text
        // is the bytes between the quotes); one with escapes is decoded. (Deserializing a
        // `Cow<str>` would always allocate: serde borrows only under `#[serde(borrow)]`.)
        if !text.contains('\\') {
            return text.get(1..text.len() - 1).map(Cow::Borrowed);
        }
        return serde_json::from_str::<String>(text).ok().map(Cow::Owned);
    }
    Some(Cow::Borrowed(text))
}

/// The Hive partition of a record: the month (`YYYY-MM`) its `createdAt` starts with, or `None`
/// when it has none that reads as a month.
pub(crate) fn month_of(created_at: Option<&str>) -> Option<&str> {
    let created_at = created_at?;
    let bytes = created_at.as_bytes();
    let looks_like_month = bytes.len() >= 7
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit);
    looks_like_month.then(|| &created_at[..7])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn cells_keep_what_was_sent() {
        let record = raw(
            r#"{"id":"a\"b","n":1.50,"tags":["x"],"p":{"k":null},"none":null,"t":"2025-01-02T03:04:05Z"}"#,
        );
        let fields = Fields::of(&record).expect("an object");
        assert_eq!(fields.text("id").as_deref(), Some("a\"b"));
        assert!(matches!(
            fields.text("t"),
            Some(Cow::Borrowed("2025-01-02T03:04:05Z"))
        ));
        assert_eq!(fields.text("n").as_deref(), Some("1.50"));
        assert_eq!(fields.text("none"), None);
        assert_eq!(fields.text("missing"), None);
        assert_eq!(
            fields
                .raw("tags")
                .and_then(|value| cell(value, Json))
                .as_deref(),
            Some(r#"["x"]"#)
        );
        assert_eq!(
            fields
                .raw("p")
                .and_then(|value| cell(value, Json))
                .as_deref(),
            Some(r#"{"k":null}"#)
        );
        assert_eq!(
            fields
                .raw("id")
                .and_then(|value| cell(value, Json))
                .as_deref(),
            Some(r#""a\"b""#)
        );
        assert!(Fields::of(&raw("[1,2]")).is_none());
    }

    #[test]
    fn months_are_read_from_the_start_of_created_at() {
        assert_eq!(month_of(Some("2025-03-31T23:59:59.999Z")), Some("2025-03"));
        assert_eq!(month_of(Some("2025-3-1")), None);
        assert_eq!(month_of(Some("yesterday")), None);
        assert_eq!(month_of(Some("")), None);
        assert_eq!(month_of(None), None);
    }

    /// The properties of each schema the tables mirror, read from the spec.
    fn documented_fields(schema: &str) -> Vec<String> {
        let documents = yaml_rust2::YamlLoader::load_from_str(include_str!(
            "../../../openapi/inkeep-analytics.yaml"
        ))
        .expect("the spec parses");
        let properties = &documents[0]["components"]["schemas"][schema]["properties"];
        let Some(properties) = properties.as_hash() else {
            panic!("{schema} has no properties in the spec");
        };
        properties
            .keys()
            .filter_map(|key| key.as_str().map(str::to_string))
            .collect()
    }

    fn assert_covered(schemas: &[&str], columns: &[Column], elsewhere: &[(&str, &str)]) {
        for schema in schemas {
            for field in documented_fields(schema) {
                assert!(
                    columns.iter().any(|column| column.field == field)
                        || elsewhere.iter().any(|(other, _)| *other == field),
                    "the spec documents {schema}.{field}, which src/columns.rs does not store: add a column for it"
                );
            }
        }
    }

    #[test]
    fn every_documented_field_has_a_column() {
        assert_covered(
            &[
                "OpenAiConversation",
                "SupportTicketConversation",
                "SupportCopilotConversation",
            ],
            CONVERSATION_COLUMNS,
            CONVERSATION_FIELDS_ELSEWHERE,
        );
        assert_covered(
            &[
                "OpenAiMessage",
                "SupportTicketMessage",
                "SupportCopilotMessage",
            ],
            MESSAGE_COLUMNS,
            MESSAGE_FIELDS_ELSEWHERE,
        );
        assert_covered(
            &["FeedbackWithContext"],
            FEEDBACK_COLUMNS,
            FEEDBACK_FIELDS_ELSEWHERE,
        );
    }
}
