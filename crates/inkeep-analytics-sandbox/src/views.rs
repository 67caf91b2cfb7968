//! The four views that the query operations read, computed from the stored records: one row per
//! conversation, event, feedback item and semantic thread, with the fields the API documents.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::content::TOPICS;
use crate::records::{Conversation, ORGANIZATION_ID};
use crate::rng::mix;
use crate::store::Snapshot;

/// A row of a view.
pub(crate) type Row = Map<String, Value>;

/// A view of the query language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    Conversations,
    Events,
    Feedback,
    SemanticThreads,
}

impl View {
    pub(crate) const ALL: [View; 4] = [
        View::Events,
        View::Conversations,
        View::SemanticThreads,
        View::Feedback,
    ];

    pub(crate) fn wire_name(self) -> &'static str {
        match self {
            View::Conversations => "conversations_view",
            View::Events => "events_view",
            View::Feedback => "feedback_view",
            View::SemanticThreads => "semantic_threads_view",
        }
    }

    /// Its fields, in the order the API documents them (and CSV columns follow).
    pub(crate) fn fields(self) -> &'static [&'static str] {
        match self {
            View::Conversations => &[
                "id",
                "userMessageCount",
                "organizationId",
                "projectId",
                "integrationId",
                "firstMessageTime",
                "type",
                "properties",
                "userProperties",
            ],
            View::Events => &[
                "id",
                "organizationId",
                "messageId",
                "conversationId",
                "createdAt",
                "projectId",
                "integrationId",
                "eventType",
                "type",
                "searchQuery",
                "properties",
                "userProperties",
            ],
            View::Feedback => &[
                "id",
                "type",
                "messageId",
                "createdAt",
                "updatedAt",
                "organizationId",
                "reasons",
                "sources",
                "details",
                "properties",
                "userProperties",
                "conversationId",
                "projectId",
                "integrationId",
            ],
            View::SemanticThreads => &[
                "id",
                "messageIds",
                "messagesCount",
                "organizationId",
                "question",
                "questionLength",
                "answer",
                "isOnTopic",
                "isClear",
                "isDocumented",
                "isFeatureSupported",
                "isAnswerConfident",
                "gapSummary",
                "subject",
                "category",
                "languages",
                "firstPartyEntities",
                "thirdPartyEntities",
                "emotion",
                "sentiment",
                "questionType",
                "projectId",
                "integrationId",
                "properties",
                "userProperties",
                "firstMessageTime",
                "lastMessageTime",
                "lastUpdated",
                "hasPositiveFeedback",
                "hasNegativeFeedback",
                "conversationIds",
                "areAIAnnotationsVerified",
                "isInitialQuestionAnswer",
            ],
        }
    }

    pub(crate) fn has_field(self, field: &str) -> bool {
        self.fields().contains(&field)
    }

    /// The fields that hold JSON (objects or arrays), which a path can reach into.
    pub(crate) fn json_fields(self) -> &'static [&'static str] {
        match self {
            View::Conversations | View::Events => &["properties", "userProperties"],
            View::Feedback => &["reasons", "sources", "properties", "userProperties"],
            View::SemanticThreads => &[
                "messageIds",
                "languages",
                "firstPartyEntities",
                "thirdPartyEntities",
                "conversationIds",
                "properties",
                "userProperties",
            ],
        }
    }

    /// The fields that hold date-times, which a time selection can bucket.
    pub(crate) fn time_fields(self) -> &'static [&'static str] {
        match self {
            View::Conversations => &["firstMessageTime"],
            View::Events => &["createdAt"],
            View::Feedback => &["createdAt", "updatedAt"],
            View::SemanticThreads => &["firstMessageTime", "lastMessageTime", "lastUpdated"],
        }
    }

    /// The field a time selection without a field buckets, and rows are ordered by by default.
    pub(crate) fn default_time_field(self) -> &'static str {
        match self {
            View::Conversations | View::SemanticThreads => "firstMessageTime",
            View::Events | View::Feedback => "createdAt",
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
        let key = |row: &Row, field: &str| {
            row.get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        rows.sort_by(|a: &Row, b: &Row| {
            key(b, time)
                .cmp(&key(a, time))
                .then_with(|| key(a, "id").cmp(&key(b, "id")))
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
    row.insert("id".into(), json!(c.id));
    row.insert(
        "userMessageCount".into(),
        json!(c.messages.iter().filter(|m| is_user_role(&m.role)).count()),
    );
    row.insert("organizationId".into(), json!(ORGANIZATION_ID));
    row.insert("projectId".into(), opt(c.project_id.as_ref()));
    row.insert("integrationId".into(), opt(c.integration_id.as_ref()));
    row.insert(
        "firstMessageTime".into(),
        json!(c.messages.first().map_or(&c.created_at, |m| &m.created_at)),
    );
    row.insert("type".into(), json!(c.kind.as_str()));
    row.insert(
        "properties".into(),
        c.properties.clone().unwrap_or(Value::Null),
    );
    row.insert(
        "userProperties".into(),
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
            row.insert("id".into(), json!(e.id));
            row.insert("organizationId".into(), json!(ORGANIZATION_ID));
            row.insert("messageId".into(), opt(e.message_id.as_ref()));
            row.insert("conversationId".into(), opt(conversation_id.as_ref()));
            row.insert("createdAt".into(), json!(e.created_at));
            row.insert("projectId".into(), opt(e.project_id.as_ref()));
            row.insert("integrationId".into(), opt(e.integration_id.as_ref()));
            row.insert("eventType".into(), json!(e.entity_type));
            row.insert("type".into(), json!(e.kind));
            row.insert("searchQuery".into(), opt(e.search_query.as_ref()));
            row.insert(
                "properties".into(),
                e.properties.clone().unwrap_or(Value::Null),
            );
            row.insert(
                "userProperties".into(),
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
            row.insert("id".into(), json!(f.id));
            row.insert("type".into(), json!(f.kind));
            row.insert("messageId".into(), json!(f.message_id));
            row.insert("createdAt".into(), json!(f.created_at));
            row.insert("updatedAt".into(), json!(f.updated_at));
            row.insert("organizationId".into(), json!(ORGANIZATION_ID));
            row.insert("reasons".into(), f.reasons.clone().unwrap_or(Value::Null));
            row.insert("sources".into(), f.sources.clone().unwrap_or(Value::Null));
            row.insert("details".into(), opt(f.details.as_ref()));
            row.insert(
                "properties".into(),
                f.properties.clone().unwrap_or(Value::Null),
            );
            row.insert(
                "userProperties".into(),
                f.user_properties.clone().unwrap_or(Value::Null),
            );
            row.insert("conversationId".into(), json!(f.conversation_id));
            row.insert(
                "projectId".into(),
                opt(conversation.and_then(|c| c.project_id.as_ref())),
            );
            row.insert(
                "integrationId".into(),
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
fn language_of(question: &str, topic: Option<usize>) -> &'static str {
    if let Some((language, _)) = topic
        .and_then(|t| TOPICS.get(t))
        .and_then(|t| t.questions.iter().find(|(_, q)| *q == question))
    {
        return language;
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
            let topic = c.topic.and_then(|t| TOPICS.get(t));
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
            row.insert(
                "id".into(),
                json!(format!("thr_{}", c.id.trim_start_matches("conv_"))),
            );
            row.insert("messageIds".into(), Value::Array(message_ids));
            row.insert("messagesCount".into(), json!(c.messages.len()));
            row.insert("organizationId".into(), json!(ORGANIZATION_ID));
            row.insert("questionLength".into(), json!(question.chars().count()));
            row.insert("languages".into(), json!([language_of(&question, c.topic)]));
            row.insert("question".into(), json!(question));
            row.insert("answer".into(), answer.map_or(Value::Null, Value::String));
            row.insert("isOnTopic".into(), json!(topic.is_some() || !bit(1)));
            row.insert("isClear".into(), json!(!(bit(2) && bit(5))));
            row.insert("isDocumented".into(), json!(documented));
            row.insert("isFeatureSupported".into(), json!(supported));
            row.insert(
                "isAnswerConfident".into(),
                json!(documented && supported && !has_negative),
            );
            row.insert(
                "gapSummary".into(),
                if documented {
                    Value::Null
                } else {
                    json!(format!("The docs do not cover: {subject}"))
                },
            );
            row.insert("subject".into(), json!(subject));
            row.insert(
                "category".into(),
                json!(topic.map_or("uncategorized", |t| t.category)),
            );
            row.insert(
                "firstPartyEntities".into(),
                json!(topic.map_or(&[][..], |t| t.first_party)),
            );
            row.insert(
                "thirdPartyEntities".into(),
                json!(topic.map_or(&[][..], |t| t.third_party)),
            );
            row.insert("emotion".into(), json!(emotion));
            row.insert("sentiment".into(), json!(sentiment));
            row.insert(
                "questionType".into(),
                json!(topic.map_or("other", |t| t.question_type)),
            );
            row.insert("projectId".into(), opt(c.project_id.as_ref()));
            row.insert("integrationId".into(), opt(c.integration_id.as_ref()));
            row.insert(
                "properties".into(),
                c.properties.clone().unwrap_or(Value::Null),
            );
            row.insert(
                "userProperties".into(),
                c.user_properties.clone().unwrap_or(Value::Null),
            );
            row.insert(
                "firstMessageTime".into(),
                json!(question_message.created_at),
            );
            row.insert(
                "lastMessageTime".into(),
                json!(c.messages.last().map_or(&c.created_at, |m| &m.created_at)),
            );
            row.insert("lastUpdated".into(), json!(c.updated_at));
            row.insert("hasPositiveFeedback".into(), json!(has_positive));
            row.insert("hasNegativeFeedback".into(), json!(has_negative));
            row.insert("conversationIds".into(), json!([c.id]));
            row.insert("areAIAnnotationsVerified".into(), json!(bit(7) && bit(8)));
            row.insert("isInitialQuestionAnswer".into(), json!(true));
            Some(row)
        })
        .collect()
}
