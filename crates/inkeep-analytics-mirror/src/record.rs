//! A listed record read into the values of its rows before it reaches the writer, so that the writer's thread, a first sync's critical path, only binds them.
//!
//! A first sync's writer measured 80% of the run's CPU while the listing's threads waited for it
//! most of the time: so the listing's side reads each record here (its id, the hash of its
//! bytes, its columns, its messages with their positions) and the writer binds and steps its
//! prepared statements. A value is a range of the record's bytes as sent (a string without
//! escapes, an object or an array as JSON), or the decoded text of a string that had escapes:
//! nothing is copied that need not be. A re-run reads only the id and the hash here, and the
//! writer reads the rest of the few records that changed (a [`Listed`] record's `row` is then `None`).
//! A new Parquet dataset's records are read here too, and its state and encoders share the rows.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::columns::{
    CONVERSATION_COLUMNS, Column, ColumnKind, FEEDBACK_COLUMNS, Fields, MESSAGE_COLUMNS,
};
use crate::error::{Error, Result};
use crate::schema::raw_hash;

/// A column's value in a record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// Absent, or JSON `null`.
    Null,
    /// These bytes of the record, as sent.
    Sent(Range<usize>),
    /// The text of a string that had escapes.
    Decoded(Box<str>),
}

impl Value {
    /// The value of `column` in a record whose bytes are `record`, of which `fields` are the
    /// top-level members.
    fn of(record: &str, fields: &Fields<'_>, column: &Column) -> Self {
        let Some(value) = fields.raw(column.field) else {
            return Self::Null;
        };
        let text = value.get();
        if text == "null" {
            return Self::Null;
        }
        let start = offset(record, text);
        if column.kind != ColumnKind::Json && text.starts_with('"') {
            // The RawValue is valid JSON, so a string without a backslash holds its text as is
            // (control characters cannot appear unescaped).
            if !text.contains('\\') {
                return Self::Sent(start + 1..start + text.len() - 1);
            }
            return match serde_json::from_str::<String>(text) {
                Ok(decoded) => Self::Decoded(decoded.into_boxed_str()),
                Err(_) => Self::Null,
            };
        }
        Self::Sent(start..start + text.len())
    }

    /// The value, as text, of the column that `field` fills among a table's `columns`, whose
    /// `values` were read from `record`.
    pub(crate) fn of_field<'a>(
        columns: &[Column],
        values: &'a [Value],
        field: &str,
        record: &'a str,
    ) -> Option<&'a str> {
        let index = columns.iter().position(|column| column.field == field)?;
        values.get(index)?.get(record)
    }

    /// The value as text, given the bytes of the record it was read from.
    pub(crate) fn get<'a>(&'a self, record: &'a str) -> Option<&'a str> {
        match self {
            Self::Null => None,
            Self::Sent(range) => record.get(range.clone()),
            Self::Decoded(text) => Some(text),
        }
    }
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// The values of a table's documented columns, in their order.
fn values(record: &str, fields: &Fields<'_>, columns: &[Column]) -> Vec<Value> {
    columns
        .iter()
        .map(|column| Value::of(record, fields, column))
        .collect()
}

/// A listed record, its id and the hash of its bytes, and, when it was read on the listing's
/// side, the values of its rows.
pub(crate) struct Listed<Row> {
    /// The record exactly as the server sent it.
    pub(crate) raw: Box<RawValue>,
    pub(crate) id: String,
    pub(crate) hash: [u8; 16],
    pub(crate) row: Option<Row>,
}

impl<Row: ReadRow> Listed<Row> {
    /// Reads a listed record's id and hash, and, when `read_row`, the values of its rows.
    pub(crate) fn read(raw: Box<RawValue>, read_row: bool) -> Result<Self> {
        let id = inkeep_analytics::listing::raw_record_id(&raw).ok_or_else(|| Error::Record {
            what: Row::WHAT,
            reason: if raw.get().starts_with('{') {
                "it has no id".into()
            } else {
                "it is not a JSON object".into()
            },
        })?;
        let hash = raw_hash(raw.get().as_bytes());
        let row = if read_row {
            Some(Row::read(&raw)?)
        } else {
            None
        };
        Ok(Self { raw, id, hash, row })
    }

    /// The values of its rows: those read on the listing's side, else read now (`read` is
    /// where they are kept then).
    pub(crate) fn row<'s>(&'s self, read: &'s mut Option<Row>) -> Result<&'s Row> {
        match &self.row {
            Some(row) => Ok(row),
            None => Ok(read.insert(Row::read(&self.raw)?)),
        }
    }
}

/// What a record's rows are read from it with.
pub(crate) trait ReadRow: Sized {
    /// What the record is, for errors.
    const WHAT: &'static str;
    fn read(record: &RawValue) -> Result<Self>;
}

/// A conversation's row and its messages'.
pub(crate) struct ConversationRow {
    /// [`CONVERSATION_COLUMNS`]' values.
    pub(crate) values: Vec<Value>,
    /// In the conversation's order: a message's position is its index.
    pub(crate) messages: Vec<MessageRow>,
}

/// A message's row, read from its conversation's bytes.
pub(crate) struct MessageRow {
    /// The message's bytes as sent, in its conversation's.
    pub(crate) raw: Range<usize>,
    /// [`MESSAGE_COLUMNS`]' values.
    pub(crate) values: Vec<Value>,
}

impl ReadRow for ConversationRow {
    const WHAT: &'static str = "a conversation";

    fn read(record: &RawValue) -> Result<Self> {
        let text = record.get();
        let ConversationMembers { fields, messages } =
            serde_json::from_str(text).map_err(|error| Error::Record {
                what: Self::WHAT,
                reason: if text.starts_with('{') {
                    // The record is valid JSON and any member reads as raw bytes: only its
                    // messages, which must be a list, can fail.
                    format!("its messages are not a list: {error}")
                } else {
                    "it is not a JSON object".into()
                },
            })?;
        let fields = Fields::from_members(fields);
        let messages = messages
            .into_iter()
            .map(|message| {
                let fields = Fields::of(message).ok_or_else(|| Error::Record {
                    what: Self::WHAT,
                    reason: "one of its messages is not a JSON object".into(),
                })?;
                let start = offset(text, message.get());
                Ok(MessageRow {
                    raw: start..start + message.get().len(),
                    values: values(text, &fields, MESSAGE_COLUMNS),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            values: values(text, &fields, CONVERSATION_COLUMNS),
            messages,
        })
    }
}

/// A conversation's top-level members and its messages' bytes, read in one pass: the messages
/// are most of a conversation's bytes, and reading them as one member and then again as a list
/// scanned them twice.
struct ConversationMembers<'a> {
    /// The members other than `messages`, in order.
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// None when absent or null.
    messages: Vec<&'a RawValue>,
}

impl<'de> serde::Deserialize<'de> for ConversationMembers<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = ConversationMembers<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a conversation")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                #[derive(serde::Deserialize)]
                #[serde(transparent)]
                struct Key<'k>(#[serde(borrow)] Cow<'k, str>);
                let mut fields = Vec::with_capacity(16);
                let mut messages = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "messages" {
                        let listed: Option<Vec<&'de RawValue>> = map.next_value()?;
                        messages = listed.unwrap_or_default();
                    } else {
                        fields.push((key, map.next_value::<&'de RawValue>()?));
                    }
                }
                Ok(ConversationMembers { fields, messages })
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A feedback item's row.
pub(crate) struct FeedbackRow {
    /// [`FEEDBACK_COLUMNS`]' values.
    pub(crate) values: Vec<Value>,
    /// The conversation it embeds, else its embedded message's; `None` when it embeds neither
    /// (the writer then looks its message up in the mirror).
    pub(crate) conversation_id: Option<String>,
}

impl ReadRow for FeedbackRow {
    const WHAT: &'static str = "a feedback item";

    fn read(record: &RawValue) -> Result<Self> {
        let fields = Fields::of_record(Self::WHAT, record)?;
        let conversation_id = fields
            .raw("conversation")
            .and_then(inkeep_analytics::listing::raw_record_id)
            .or_else(|| {
                fields
                    .raw("message")
                    .and_then(Fields::of)
                    .and_then(|message| message.text("conversationId").map(|id| id.into_owned()))
            });
        Ok(Self {
            values: values(record.get(), &fields, FEEDBACK_COLUMNS),
            conversation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn values_are_the_bytes_sent_or_the_decoded_text() {
        let record = raw(
            r#"{"id":"c1","type":"openai","externalId":"a\"b","createdAt":null,"tags":["x", "y"],"properties":{"k":"\n"},"projectId":7,"messages":[{"id":"m1","content":"line\nnext","links":[]}, {"id":"m2","role":"user"}]}"#,
        );
        let listed = Listed::<ConversationRow>::read(record, true).expect("a conversation");
        let text = listed.raw.get();
        let row = listed.row.as_ref().expect("read on the listing side");
        let value = |name: &str| {
            let index = CONVERSATION_COLUMNS
                .iter()
                .position(|column| column.name == name)
                .expect("a column");
            row.values[index].get(text)
        };
        assert_eq!(listed.id, "c1");
        assert_eq!(listed.hash, raw_hash(text.as_bytes()));
        assert_eq!(value("id"), Some("c1"));
        assert!(
            matches!(row.values[0], Value::Sent(_)),
            "an id without escapes is not copied"
        );
        assert_eq!(value("external_id"), Some("a\"b"));
        assert_eq!(value("created_at"), None);
        assert_eq!(value("updated_at"), None);
        assert_eq!(value("tags"), Some(r#"["x", "y"]"#));
        assert_eq!(value("properties"), Some(r#"{"k":"\n"}"#));
        assert_eq!(value("project_id"), Some("7"));
        assert_eq!(row.messages.len(), 2);
        assert_eq!(
            text.get(row.messages[1].raw.clone()),
            Some(r#"{"id":"m2","role":"user"}"#)
        );
        let content = MESSAGE_COLUMNS
            .iter()
            .position(|column| column.name == "content")
            .expect("content");
        assert_eq!(
            row.messages[0].values[content].get(text),
            Some("line\nnext")
        );
    }

    #[test]
    fn feedback_knows_its_conversation_from_what_it_embeds() {
        let embedded =
            raw(r#"{"id":"f1","conversation":{"id":"c1"},"message":{"conversationId":"c2"}}"#);
        let by_message = raw(r#"{"id":"f2","message":{"id":"m1","conversationId":"c2"}}"#);
        let neither = raw(r#"{"id":"f3","messageId":"m1"}"#);
        let conversation = |record| {
            Listed::<FeedbackRow>::read(record, true)
                .expect("a feedback item")
                .row
                .and_then(|row| row.conversation_id)
        };
        assert_eq!(conversation(embedded).as_deref(), Some("c1"));
        assert_eq!(conversation(by_message).as_deref(), Some("c2"));
        assert_eq!(conversation(neither), None);
    }

    #[test]
    fn records_that_cannot_be_mirrored_are_refused() {
        for (record, reason) in [
            ("[1]", "it is not a JSON object"),
            (r#"{"type":"openai"}"#, "it has no id"),
        ] {
            let error = Listed::<ConversationRow>::read(raw(record), false)
                .err()
                .expect("refused");
            assert!(error.to_string().contains(reason), "{record}: {error}");
        }
        let error = Listed::<ConversationRow>::read(raw(r#"{"id":"c1","messages":[1]}"#), true)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("not a JSON object"), "{error}");
        let error = Listed::<ConversationRow>::read(raw(r#"{"id":"c1","messages":{"a":1}}"#), true)
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("its messages are not a list"),
            "{error}"
        );
    }

    #[test]
    fn a_conversation_without_messages_has_none() {
        for record in [
            r#"{"id":"c1","messages":null}"#,
            r#"{"id":"c1","type":"openai"}"#,
        ] {
            let listed =
                Listed::<ConversationRow>::read(raw(record), true).expect("a conversation");
            let row = listed.row.expect("read on the listing side");
            assert!(row.messages.is_empty(), "{record}");
            assert_eq!(row.values[0].get(listed.raw.get()), Some("c1"));
        }
    }
}
