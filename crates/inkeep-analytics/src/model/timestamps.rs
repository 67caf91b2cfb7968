//! Timestamps of responses, read as `chrono::DateTime<Utc>` while the generated fields keep the string as sent.
//!
//! The spec types response times as plain strings (the API's reference promises no format), so a
//! time the SDK cannot read must not fail a whole page: the field keeps the text, and these
//! accessors answer `None` for it.
//!
//! What parses is RFC 3339: the form the API's reference asks for in requests (ISO 8601 with an
//! offset), and the form of the times in the answers the SDK is tested against
//! (`2025-01-01T12:00:00.000Z`). That is `T`, `t` or a space between date and time, any number of
//! fractional-second digits (kept to the nanosecond), and `Z`, `z` or a numeric offset such as
//! `+02:00`, converted to UTC. A time without an offset is `None`, since its zone is unknown, and
//! so is a bare date.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::types::{
    Conversation, Feedback, FeedbackWithContext, Message, OpenAiConversation, OpenAiMessage,
    SelectConversationEvent, SelectMessageEvent, SelectSearchEvent, SupportCopilotConversation,
    SupportCopilotMessage, SupportTicketConversation, SupportTicketMessage,
};

/// Reads a timestamp the API sent, as UTC.
///
/// It accepts RFC 3339 (`2025-01-01T12:00:00Z`, `2025-01-01T14:00:00.123456+02:00`,
/// `2025-01-01 12:00:00.5z`) and answers `None` for anything else, such as a time without an
/// offset, a bare date or text that is not a time.
///
/// ```
/// use inkeep_analytics::prelude::parse_timestamp;
///
/// let at = parse_timestamp("2025-01-01T14:00:00.250+02:00");
/// assert_eq!(at.map(|at| at.to_rfc3339()).as_deref(), Some("2025-01-01T12:00:00.250+00:00"));
/// assert_eq!(parse_timestamp("2025-01-01 12:00:00"), None);
/// ```
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// `createdAt` and `updatedAt` accessors for the types that hold them as required strings.
macro_rules! required_times {
    ($($type:ty),+ $(,)?) => {$(
        impl $type {
            /// `createdAt` as UTC, or `None` when it is not RFC 3339 (see [`parse_timestamp`]);
            /// `created_at` keeps the string as sent.
            pub fn created_at_utc(&self) -> Option<DateTime<Utc>> {
                parse_timestamp(&self.created_at)
            }

            /// `updatedAt` as UTC, or `None` when it is not RFC 3339 (see [`parse_timestamp`]);
            /// `updated_at` keeps the string as sent.
            pub fn updated_at_utc(&self) -> Option<DateTime<Utc>> {
                parse_timestamp(&self.updated_at)
            }
        }
    )+};
}

required_times!(
    OpenAiConversation,
    SupportCopilotConversation,
    SupportTicketConversation,
    OpenAiMessage,
    SupportCopilotMessage,
    SupportTicketMessage,
);

/// Feedback holds `updatedAt` as optional: the API's own examples omit it.
macro_rules! feedback_times {
    ($($type:ty),+ $(,)?) => {$(
        impl $type {
            /// `createdAt` as UTC, or `None` when it is not RFC 3339 (see [`parse_timestamp`]);
            /// `created_at` keeps the string as sent.
            pub fn created_at_utc(&self) -> Option<DateTime<Utc>> {
                parse_timestamp(&self.created_at)
            }

            /// `updatedAt` as UTC, or `None` when it is absent or not RFC 3339 (see
            /// [`parse_timestamp`]); `updated_at` keeps the string as sent.
            pub fn updated_at_utc(&self) -> Option<DateTime<Utc>> {
                self.updated_at.as_deref().and_then(parse_timestamp)
            }
        }
    )+};
}

feedback_times!(Feedback, FeedbackWithContext);

/// Events carry only `createdAt`.
macro_rules! event_times {
    ($($type:ty),+ $(,)?) => {$(
        impl $type {
            /// `createdAt` as UTC, or `None` when it is not RFC 3339 (see [`parse_timestamp`]);
            /// `created_at` keeps the string as sent.
            pub fn created_at_utc(&self) -> Option<DateTime<Utc>> {
                parse_timestamp(&self.created_at)
            }
        }
    )+};
}

event_times!(
    SelectConversationEvent,
    SelectMessageEvent,
    SelectSearchEvent
);

/// A string field of an unknown kind's JSON, read as a timestamp.
fn unknown_time(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    value
        .get(key)
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
}

/// The two unions share their kinds, so one macro reads the times of every kind of each.
macro_rules! union_times {
    ($($union:ident),+ $(,)?) => {$(
        impl $union {
            /// `createdAt` as UTC, for every kind (for an unknown kind, when its JSON has a
            /// `createdAt` string); `None` when it is not RFC 3339 (see [`parse_timestamp`]).
            pub fn created_at_utc(&self) -> Option<DateTime<Utc>> {
                match self {
                    $union::OpenAi(inner) => inner.created_at_utc(),
                    $union::SupportTicket(inner) => inner.created_at_utc(),
                    $union::SupportCopilot(inner) => inner.created_at_utc(),
                    $union::Unknown(value) => unknown_time(value, "createdAt"),
                }
            }

            /// `updatedAt` as UTC, for every kind (for an unknown kind, when its JSON has an
            /// `updatedAt` string); `None` when it is not RFC 3339 (see [`parse_timestamp`]).
            pub fn updated_at_utc(&self) -> Option<DateTime<Utc>> {
                match self {
                    $union::OpenAi(inner) => inner.updated_at_utc(),
                    $union::SupportTicket(inner) => inner.updated_at_utc(),
                    $union::SupportCopilot(inner) => inner.updated_at_utc(),
                    $union::Unknown(value) => unknown_time(value, "updatedAt"),
                }
            }
        }
    )+};
}

union_times!(Conversation, Message);
