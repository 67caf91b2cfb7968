//! The four views that the query operations read, computed from the stored records: one row per
//! conversation, event, feedback item and semantic thread, with the fields the API documents.

use std::collections::{HashMap, HashSet};

use inkeep_analytics::types;
use inkeep_analytics::types::{
    ConversationsViewField as C, EventsViewField as E, FeedbackViewField as F,
    SemanticThreadsViewField as T,
};
use serde_json::{Map, Value, json};

use crate::content::Topic;
use crate::records::{Conversation, ORGANIZATION_ID};
use crate::rng::mix;
use crate::store::Snapshot;

/// A row of a view.
pub(crate) type Row = Map<String, Value>;

/// What a field of a view holds. The spec lists each view's fields (the generated `*ViewField`
/// enums) but not their types in a form the sandbox can read, so this is kept here, keyed by the
/// generated variants: it decides which fields a path reaches into, which fields a time selection
/// buckets, and what a comparison with the field needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// A string (or null).
    Text,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 date-time string.
    DateTime,
    /// An object or an array, which a path can reach into.
    Json,
}

/// A generated `*ViewField` enum, with the kind of each field the spec lists.
pub(crate) trait ViewField: From<String> {
    /// The fields the spec lists, in its order.
    const KNOWN: &'static [&'static str];

    /// The field's name on the wire.
    fn wire(&self) -> &str;

    /// Its kind; `None` for a name the spec does not list.
    fn kind(&self) -> Option<FieldKind>;

    /// The field's name on the wire, for as long as the program runs.
    fn name(&self) -> &'static str {
        Self::KNOWN
            .iter()
            .copied()
            .find(|known| *known == self.wire())
            .unwrap_or_default()
    }
}

macro_rules! view_field {
    ($type:ty { $($variant:ident => $kind:ident,)* }) => {
        impl ViewField for $type {
            const KNOWN: &'static [&'static str] = <$type>::KNOWN;

            fn wire(&self) -> &str {
                self.as_str()
            }

            fn kind(&self) -> Option<FieldKind> {
                // Exhaustive on purpose: a field added to the spec fails to compile here until
                // its kind is given (and `every_field_of_the_spec_has_a_kind` checks `KNOWN`).
                Some(match self {
                    $(Self::$variant => FieldKind::$kind,)*
                    Self::Other(_) => return None,
                })
            }
        }
    };
}

view_field!(types::ConversationsViewField {
    Id => Text,
    UserMessageCount => Number,
    OrganizationId => Text,
    ProjectId => Text,
    IntegrationId => Text,
    FirstMessageTime => DateTime,
    Type => Text,
    Properties => Json,
    UserProperties => Json,
});

view_field!(types::EventsViewField {
    Id => Text,
    OrganizationId => Text,
    MessageId => Text,
    ConversationId => Text,
    CreatedAt => DateTime,
    ProjectId => Text,
    IntegrationId => Text,
    EventType => Text,
    Type => Text,
    SearchQuery => Text,
    Properties => Json,
    UserProperties => Json,
});

view_field!(types::FeedbackViewField {
    Id => Text,
    Type => Text,
    MessageId => Text,
    CreatedAt => DateTime,
    UpdatedAt => DateTime,
    OrganizationId => Text,
    Reasons => Json,
    Sources => Json,
    Details => Text,
    Properties => Json,
    UserProperties => Json,
    ConversationId => Text,
    ProjectId => Text,
    IntegrationId => Text,
});

view_field!(types::SemanticThreadsViewField {
    Id => Text,
    MessageIds => Json,
    MessagesCount => Number,
    OrganizationId => Text,
    Question => Text,
    QuestionLength => Number,
    Answer => Text,
    IsOnTopic => Boolean,
    IsClear => Boolean,
    IsDocumented => Boolean,
    IsFeatureSupported => Boolean,
    IsAnswerConfident => Boolean,
    GapSummary => Text,
    Subject => Text,
    Category => Text,
    Languages => Json,
    FirstPartyEntities => Json,
    ThirdPartyEntities => Json,
    Emotion => Text,
    Sentiment => Text,
    QuestionType => Text,
    ProjectId => Text,
    IntegrationId => Text,
    Properties => Json,
    UserProperties => Json,
    FirstMessageTime => DateTime,
    LastMessageTime => DateTime,
    LastUpdated => DateTime,
    HasPositiveFeedback => Boolean,
    HasNegativeFeedback => Boolean,
    ConversationIds => Json,
    AreAiAnnotationsVerified => Boolean,
    IsInitialQuestionAnswer => Boolean,
});

/// The kind of `field` in the view whose fields are `Field`.
fn kind_in<Field: ViewField>(field: &str) -> Option<FieldKind> {
    Field::from(field.to_string()).kind()
}

/// Sets a field of a row, named by its generated variant so that a name the spec does not list
/// cannot be typed.
fn put<Field: ViewField>(row: &mut Row, field: Field, value: Value) {
    row.insert(field.name().to_string(), value);
}

/// A view of the query language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    Conversations,
    Events,
    Feedback,
    SemanticThreads,
}

impl View {
    /// Every view, in the order of the spec's `View` enum (the views of a property request
    /// that names none).
    pub(crate) const ALL: [View; 4] = [
        View::Events,
        View::Conversations,
        View::SemanticThreads,
        View::Feedback,
    ];

    /// The view a generated `View` names; `None` for a name the spec does not list.
    pub(crate) fn from_generated(view: &types::View) -> Option<View> {
        match view {
            types::View::ConversationsView => Some(View::Conversations),
            types::View::EventsView => Some(View::Events),
            types::View::FeedbackView => Some(View::Feedback),
            types::View::SemanticThreadsView => Some(View::SemanticThreads),
            types::View::Other(_) => None,
        }
    }

    fn generated(self) -> types::View {
        match self {
            View::Conversations => types::View::ConversationsView,
            View::Events => types::View::EventsView,
            View::Feedback => types::View::FeedbackView,
            View::SemanticThreads => types::View::SemanticThreadsView,
        }
    }

    /// Its name on the wire (`conversations_view`), from the spec's `View` enum.
    pub(crate) fn wire_name(self) -> &'static str {
        let generated = self.generated();
        types::View::KNOWN
            .iter()
            .copied()
            .find(|known| *known == generated.as_str())
            .unwrap_or_default()
    }

    /// Its fields, in the order the spec lists them (and CSV columns follow).
    pub(crate) fn fields(self) -> &'static [&'static str] {
        match self {
            View::Conversations => types::ConversationsViewField::KNOWN,
            View::Events => types::EventsViewField::KNOWN,
            View::Feedback => types::FeedbackViewField::KNOWN,
            View::SemanticThreads => types::SemanticThreadsViewField::KNOWN,
        }
    }

    /// The kind of one of its fields; `None` when it has no such field.
    pub(crate) fn kind(self, field: &str) -> Option<FieldKind> {
        match self {
            View::Conversations => kind_in::<types::ConversationsViewField>(field),
            View::Events => kind_in::<types::EventsViewField>(field),
            View::Feedback => kind_in::<types::FeedbackViewField>(field),
            View::SemanticThreads => kind_in::<types::SemanticThreadsViewField>(field),
        }
    }

    pub(crate) fn has_field(self, field: &str) -> bool {
        self.fields().contains(&field)
    }

    fn fields_of(self, kind: FieldKind) -> Vec<&'static str> {
        self.fields()
            .iter()
            .copied()
            .filter(|field| self.kind(field) == Some(kind))
            .collect()
    }

    /// The fields that hold JSON (objects or arrays), which a path can reach into.
    pub(crate) fn json_fields(self) -> Vec<&'static str> {
        self.fields_of(FieldKind::Json)
    }

    /// The fields that hold date-times, which a time selection can bucket.
    pub(crate) fn time_fields(self) -> Vec<&'static str> {
        self.fields_of(FieldKind::DateTime)
    }

    /// The field a time selection without a field buckets, and rows are ordered by by default:
    /// the SDK's [`ViewKind::DEFAULT_TIME_FIELD`], its one home.
    pub(crate) fn default_time_field(self) -> String {
        use inkeep_analytics::query::{
            ConversationsView, EventsView, FeedbackView, SemanticThreadsView, ViewField, ViewKind,
        };
        match self {
            View::Conversations => ConversationsView::DEFAULT_TIME_FIELD.wire_name().to_owned(),
            View::Events => EventsView::DEFAULT_TIME_FIELD.wire_name().to_owned(),
            View::Feedback => FeedbackView::DEFAULT_TIME_FIELD.wire_name().to_owned(),
            View::SemanticThreads => SemanticThreadsView::DEFAULT_TIME_FIELD
                .wire_name()
                .to_owned(),
        }
    }

    /// The rows of the view, newest first.
    pub(crate) fn rows(self, snapshot: &Snapshot) -> Vec<Row> {
        let mut rows = match self {
            View::Conversations => snapshot
                .conversations
                .iter()
                .map(|c| conversation_row(c))
                .collect(),
            View::Events => event_rows(snapshot),
            View::Feedback => feedback_rows(snapshot),
            View::SemanticThreads => thread_rows(snapshot),
        };
        let time = self.default_time_field();
        let time = time.as_str();
        // Every view's first field is its `id`.
        let id = self.fields().first().copied().unwrap_or_default();
        let key = |row: &Row, field: &str| {
            row.get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        rows.sort_by(|a: &Row, b: &Row| {
            key(b, time)
                .cmp(&key(a, time))
                .then_with(|| key(a, id).cmp(&key(b, id)))
        });
        rows
    }
}

fn opt(value: Option<&String>) -> Value {
    value.map_or(Value::Null, |v| Value::String(v.clone()))
}

fn is_user_role(role: &str) -> bool {
    matches!(
        role,
        "user" | "customer" | "end_user" | "end-user" | "requester"
    )
}

fn conversation_row(c: &Conversation) -> Row {
    let mut row = Row::new();
    put(&mut row, C::Id, json!(c.id));
    put(
        &mut row,
        C::UserMessageCount,
        json!(c.messages.iter().filter(|m| is_user_role(&m.role)).count()),
    );
    put(&mut row, C::OrganizationId, json!(ORGANIZATION_ID));
    put(&mut row, C::ProjectId, opt(c.project_id.as_ref()));
    put(&mut row, C::IntegrationId, opt(c.integration_id.as_ref()));
    put(
        &mut row,
        C::FirstMessageTime,
        json!(c.messages.first().map_or(&c.created_at, |m| &m.created_at)),
    );
    put(&mut row, C::Type, json!(c.kind.as_str()));
    put(
        &mut row,
        C::Properties,
        c.properties.clone().unwrap_or(Value::Null),
    );
    put(
        &mut row,
        C::UserProperties,
        c.user_properties.clone().unwrap_or(Value::Null),
    );
    row
}

fn event_rows(snapshot: &Snapshot) -> Vec<Row> {
    let message_owner: HashMap<&str, &str> = snapshot
        .conversations
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| (m.id.as_str(), c.id.as_str())))
        .collect();
    snapshot
        .events
        .iter()
        .map(|e| {
            let conversation_id = e.conversation_id.clone().or_else(|| {
                e.message_id
                    .as_deref()
                    .and_then(|id| message_owner.get(id))
                    .map(|id| (*id).to_string())
            });
            let mut row = Row::new();
            put(&mut row, E::Id, json!(e.id));
            put(&mut row, E::OrganizationId, json!(ORGANIZATION_ID));
            put(&mut row, E::MessageId, opt(e.message_id.as_ref()));
            put(&mut row, E::ConversationId, opt(conversation_id.as_ref()));
            put(&mut row, E::CreatedAt, json!(e.created_at));
            put(&mut row, E::ProjectId, opt(e.project_id.as_ref()));
            put(&mut row, E::IntegrationId, opt(e.integration_id.as_ref()));
            put(&mut row, E::EventType, json!(e.entity_type));
            put(&mut row, E::Type, json!(e.kind));
            put(&mut row, E::SearchQuery, opt(e.search_query.as_ref()));
            put(
                &mut row,
                E::Properties,
                e.properties.clone().unwrap_or(Value::Null),
            );
            put(
                &mut row,
                E::UserProperties,
                e.user_properties.clone().unwrap_or(Value::Null),
            );
            row
        })
        .collect()
}

fn feedback_rows(snapshot: &Snapshot) -> Vec<Row> {
    let conversations: HashMap<&str, &Conversation> = snapshot
        .conversations
        .iter()
        .map(|c| (c.id.as_str(), c.as_ref()))
        .collect();
    snapshot
        .feedback
        .iter()
        .map(|f| {
            let conversation = conversations.get(f.conversation_id.as_str());
            let mut row = Row::new();
            put(&mut row, F::Id, json!(f.id));
            put(&mut row, F::Type, json!(f.kind));
            put(&mut row, F::MessageId, json!(f.message_id));
            put(&mut row, F::CreatedAt, json!(f.created_at));
            put(&mut row, F::UpdatedAt, json!(f.updated_at));
            put(&mut row, F::OrganizationId, json!(ORGANIZATION_ID));
            put(
                &mut row,
                F::Reasons,
                f.reasons.clone().unwrap_or(Value::Null),
            );
            put(
                &mut row,
                F::Sources,
                f.sources.clone().unwrap_or(Value::Null),
            );
            put(&mut row, F::Details, opt(f.details.as_ref()));
            put(
                &mut row,
                F::Properties,
                f.properties.clone().unwrap_or(Value::Null),
            );
            put(
                &mut row,
                F::UserProperties,
                f.user_properties.clone().unwrap_or(Value::Null),
            );
            put(&mut row, F::ConversationId, json!(f.conversation_id));
            put(
                &mut row,
                F::ProjectId,
                opt(conversation.and_then(|c| c.project_id.as_ref())),
            );
            put(
                &mut row,
                F::IntegrationId,
                opt(conversation.and_then(|c| c.integration_id.as_ref())),
            );
            row
        })
        .collect()
}

/// A stable number for a conversation, so that derived annotations do not change between queries.
fn fingerprint(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        mix(hash ^ u64::from(byte))
    })
}

/// The language of a question: the seeded topics know theirs; otherwise guessed from its script.
fn language_of<'a>(question: &str, topic: Option<&'a Topic>) -> &'a str {
    if let Some(known) = topic.and_then(|t| t.questions.iter().find(|q| q.text == question)) {
        return &known.language;
    }
    for c in question.chars() {
        match u32::from(c) {
            0x3040..=0x30FF => return "ja",
            0xAC00..=0xD7AF => return "ko",
            0x4E00..=0x9FFF => return "zh",
            0x0400..=0x04FF => return "ru",
            _ => {}
        }
    }
    "en"
}

/// One semantic thread per conversation that has a question: the first user message and the
/// first non-empty answer after it, with annotations derived deterministically from the
/// conversation (from its seeded topic when it has one).
fn thread_rows(snapshot: &Snapshot) -> Vec<Row> {
    let mut positive = HashSet::new();
    let mut negative = HashSet::new();
    for f in &snapshot.feedback {
        if f.is_positive() {
            positive.insert(f.conversation_id.as_str());
        } else {
            negative.insert(f.conversation_id.as_str());
        }
    }
    snapshot
        .conversations
        .iter()
        .filter_map(|c| {
            let question_index = c.messages.iter().position(|m| is_user_role(&m.role))?;
            let question_message = c.messages.get(question_index)?;
            let question = question_message.text()?;
            let answer_message = c.messages.iter().skip(question_index + 1).find(|m| {
                !is_user_role(&m.role)
                    && m.role != "system"
                    && m.role != "internal_note"
                    && m.text().is_some_and(|t| !t.is_empty())
            });
            let answer = answer_message.and_then(|m| m.text());
            let print = fingerprint(&c.id);
            let bit = |n: u32| (print >> n) & 1 == 1;
            let topic = c.topic.and_then(|t| snapshot.content.topics.get(t));
            let documented = topic.map_or(bit(3), |t| t.documented);
            let supported = topic.is_none_or(|t| t.supported);
            let subject = topic.map_or_else(
                || {
                    question
                        .split_whitespace()
                        .take(6)
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                |t| t.subject.to_string(),
            );
            let has_negative = negative.contains(c.id.as_str());
            let has_positive = positive.contains(c.id.as_str());
            let emotion = ["neutral", "curious", "frustrated", "confused", "happy"]
                [usize::try_from(print % 5).unwrap_or(0)];
            let sentiment = if has_negative || emotion == "frustrated" {
                "negative"
            } else if has_positive || emotion == "happy" {
                "positive"
            } else {
                "neutral"
            };
            let mut message_ids = vec![json!(question_message.id)];
            if let Some(answer) = answer_message {
                message_ids.push(json!(answer.id));
            }
            let mut row = Row::new();
            put(
                &mut row,
                T::Id,
                json!(format!("thr_{}", c.id.trim_start_matches("conv_"))),
            );
            put(&mut row, T::MessageIds, Value::Array(message_ids));
            put(&mut row, T::MessagesCount, json!(c.messages.len()));
            put(&mut row, T::OrganizationId, json!(ORGANIZATION_ID));
            put(&mut row, T::QuestionLength, json!(question.chars().count()));
            put(
                &mut row,
                T::Languages,
                json!([language_of(&question, topic)]),
            );
            put(&mut row, T::Question, json!(question));
            put(
                &mut row,
                T::Answer,
                answer.map_or(Value::Null, Value::String),
            );
            put(&mut row, T::IsOnTopic, json!(topic.is_some() || !bit(1)));
            put(&mut row, T::IsClear, json!(!(bit(2) && bit(5))));
            put(&mut row, T::IsDocumented, json!(documented));
            put(&mut row, T::IsFeatureSupported, json!(supported));
            put(
                &mut row,
                T::IsAnswerConfident,
                json!(documented && supported && !has_negative),
            );
            put(
                &mut row,
                T::GapSummary,
                if documented {
                    Value::Null
                } else {
                    json!(format!("The docs do not cover: {subject}"))
                },
            );
            put(&mut row, T::Subject, json!(subject));
            put(
                &mut row,
                T::Category,
                json!(topic.map_or("uncategorized", |t| t.category.as_str())),
            );
            put(
                &mut row,
                T::FirstPartyEntities,
                json!(topic.map_or(&[][..], |t| &t.first_party[..])),
            );
            put(
                &mut row,
                T::ThirdPartyEntities,
                json!(topic.map_or(&[][..], |t| &t.third_party[..])),
            );
            put(&mut row, T::Emotion, json!(emotion));
            put(&mut row, T::Sentiment, json!(sentiment));
            put(
                &mut row,
                T::QuestionType,
                json!(topic.map_or("other", |t| t.question_type.as_str())),
            );
            put(&mut row, T::ProjectId, opt(c.project_id.as_ref()));
            put(&mut row, T::IntegrationId, opt(c.integration_id.as_ref()));
            put(
                &mut row,
                T::Properties,
                c.properties.clone().unwrap_or(Value::Null),
            );
            put(
                &mut row,
                T::UserProperties,
                c.user_properties.clone().unwrap_or(Value::Null),
            );
            put(
                &mut row,
                T::FirstMessageTime,
                json!(question_message.created_at),
            );
            put(
                &mut row,
                T::LastMessageTime,
                json!(c.messages.last().map_or(&c.created_at, |m| &m.created_at)),
            );
            put(&mut row, T::LastUpdated, json!(c.updated_at));
            put(&mut row, T::HasPositiveFeedback, json!(has_positive));
            put(&mut row, T::HasNegativeFeedback, json!(has_negative));
            put(&mut row, T::ConversationIds, json!([c.id]));
            put(
                &mut row,
                T::AreAiAnnotationsVerified,
                json!(bit(7) && bit(8)),
            );
            put(&mut row, T::IsInitialQuestionAnswer, json!(true));
            Some(row)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn every_known_field_has_a_kind<Field: ViewField>() {
        for name in Field::KNOWN {
            let field = Field::from((*name).to_string());
            assert!(
                field.kind().is_some(),
                "`{name}` is a field of the spec without a kind in views.rs"
            );
            assert_eq!(field.name(), *name);
        }
    }

    #[test]
    fn every_field_of_the_spec_has_a_kind() {
        every_known_field_has_a_kind::<types::ConversationsViewField>();
        every_known_field_has_a_kind::<types::EventsViewField>();
        every_known_field_has_a_kind::<types::FeedbackViewField>();
        every_known_field_has_a_kind::<types::SemanticThreadsViewField>();
        for view in View::ALL {
            for field in view.fields() {
                assert!(view.kind(field).is_some(), "{field}");
            }
            assert_eq!(view.kind("notAField"), None);
        }
    }

    #[test]
    fn views_are_named_as_the_spec_names_them() {
        let names: Vec<&str> = View::ALL.iter().map(|view| view.wire_name()).collect();
        assert_eq!(names, types::View::KNOWN);
        for view in View::ALL {
            let generated = types::View::from(view.wire_name());
            assert_eq!(View::from_generated(&generated), Some(view));
        }
        assert_eq!(
            View::from_generated(&types::View::from("sessions_view")),
            None
        );
    }

    #[test]
    fn default_time_fields_are_when_a_row_began() {
        assert_eq!(View::Conversations.default_time_field(), "firstMessageTime");
        assert_eq!(View::Events.default_time_field(), "createdAt");
        assert_eq!(View::Feedback.default_time_field(), "createdAt");
        assert_eq!(
            View::SemanticThreads.default_time_field(),
            "firstMessageTime"
        );
    }

    #[test]
    fn every_row_has_exactly_the_fields_of_its_view_in_the_spec() {
        let snapshot = Store::seeded(7, 40, crate::seed::tests::content()).snapshot();
        for view in View::ALL {
            let rows = view.rows(&snapshot);
            assert!(!rows.is_empty(), "{view:?} has rows");
            let expected: HashSet<&str> = view.fields().iter().copied().collect();
            for row in &rows {
                let keys: HashSet<&str> = row.keys().map(String::as_str).collect();
                assert_eq!(keys, expected, "{view:?}");
                for (field, value) in row {
                    let fits = match view.kind(field) {
                        _ if value.is_null() => true,
                        Some(FieldKind::Text) => value.is_string(),
                        Some(FieldKind::Number) => value.is_number(),
                        Some(FieldKind::Boolean) => value.is_boolean(),
                        Some(FieldKind::DateTime) => value
                            .as_str()
                            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
                        Some(FieldKind::Json) => value.is_object() || value.is_array(),
                        None => false,
                    };
                    assert!(fits, "{view:?}.{field} = {value}");
                }
            }
        }
    }
}
