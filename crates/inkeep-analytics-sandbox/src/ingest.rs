//! Turns the bodies of the write operations, parsed with the SDK's generated types, into stored
//! records: the upsert of conversations, feedback on existing messages, idempotent events.
//!
//! The generated types already enforce the spec's shapes (required fields, `minLength`, formats);
//! this module adds what a schema cannot say, such as that an enum value must be one the spec
//! lists (the generated enums are open, to read newer answers) or that feedback needs an
//! existing message.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use inkeep_analytics::types;
use serde::Serialize;
use serde_json::Value;

use crate::problem::Problem;
use crate::records::{Conversation, Event, Feedback, Kind, Message, timestamp};
use crate::store::Store;

/// Serializes part of a parsed request back to JSON for storage.
fn to_json<T: Serialize>(value: &T) -> Result<Value, Problem> {
    serde_json::to_value(value)
        .map_err(|error| Problem::internal(format!("could not store the request: {error}")))
}

fn object(map: Option<serde_json::Map<String, Value>>) -> Option<Value> {
    map.map(Value::Object)
}

fn user_properties(value: Option<&types::UserProperties>) -> Result<Option<Value>, Problem> {
    value.map(to_json).transpose()
}

/// Refuses a value of an open enum that the spec does not list.
fn known(field: &str, value: &str, is_other: bool, known: &[&str]) -> Result<(), Problem> {
    if is_other {
        return Err(Problem::unprocessable(format!(
            "{field}: `{value}` is not one of {}",
            list(known)
        )));
    }
    Ok(())
}

pub(crate) fn list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A conversation as the request describes it, whatever its kind.
struct Draft {
    id: Option<String>,
    kind: Kind,
    external_id: Option<String>,
    external_url: Option<String>,
    support_ticket_conversation_id: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    project_id: Option<String>,
    integration_id: Option<String>,
    properties: Option<Value>,
    user_properties: Option<Value>,
    tags: Option<Vec<String>>,
    visibility: Option<String>,
    messages: Vec<DraftMessage>,
}

struct DraftMessage {
    id: Option<String>,
    role: String,
    content: Value,
    external_id: Option<String>,
    external_url: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    name: Option<String>,
    links: Option<Value>,
    properties: Option<Value>,
    user_properties: Option<Value>,
    /// `Some` (null or an array) for OpenAI-format messages only.
    tool_calls: Option<Value>,
}

fn visibility(value: Option<&types::Visibility>) -> Result<Option<String>, Problem> {
    match value {
        None => Ok(None),
        Some(value) => {
            known(
                "visibility",
                value.as_str(),
                value.is_other(),
                types::Visibility::KNOWN,
            )?;
            Ok(Some(value.as_str().to_string()))
        }
    }
}

fn links(value: Option<&Vec<types::Link>>) -> Result<Option<Value>, Problem> {
    value.map(to_json).transpose()
}

fn openai_message(
    index: usize,
    message: &types::CreateOpenAiMessage,
) -> Result<DraftMessage, Problem> {
    known(
        &format!("messages[{index}].role"),
        message.role.as_str(),
        message.role.is_other(),
        types::OpenAiRole::KNOWN,
    )?;
    let content = match &message.content {
        // OpenAI's format leaves an assistant message that only calls tools without content; the
        // spec takes that null there only.
        None => {
            let calls_tools = message
                .tool_calls
                .as_ref()
                .is_some_and(|calls| !calls.is_empty());
            if message.role != types::OpenAiRole::Assistant || !calls_tools {
                return Err(Problem::unprocessable(format!(
                    "messages[{index}].content: null only in an assistant message with tool_calls"
                )));
            }
            Value::Null
        }
        Some(types::OpenAiMessageContent::String(text)) => Value::String(text.clone()),
        Some(types::OpenAiMessageContent::Array(items)) => {
            for (item_index, item) in items.iter().enumerate() {
                known(
                    &format!("messages[{index}].content[{item_index}].type"),
                    item.type_.as_str(),
                    item.type_.is_other(),
                    types::ContentItemType::KNOWN,
                )?;
                if let Some(detail) = item
                    .image_url
                    .as_ref()
                    .and_then(|image| image.detail.as_ref())
                {
                    known(
                        &format!("messages[{index}].content[{item_index}].image_url.detail"),
                        detail.as_str(),
                        detail.is_other(),
                        types::ImageDetail::KNOWN,
                    )?;
                }
            }
            to_json(items)?
        }
    };
    let tool_calls = match &message.tool_calls {
        None => Value::Null,
        Some(calls) => {
            for (call_index, call) in calls.iter().enumerate() {
                known(
                    &format!("messages[{index}].tool_calls[{call_index}].type"),
                    call.type_.as_str(),
                    call.type_.is_other(),
                    types::ToolCallType::KNOWN,
                )?;
            }
            to_json(calls)?
        }
    };
    Ok(DraftMessage {
        id: message.id.as_ref().map(|id| id.to_string()),
        role: message.role.as_str().to_string(),
        content,
        external_id: message.external_id.clone(),
        external_url: message.external_url.clone(),
        created_at: message.created_at,
        updated_at: message.updated_at,
        name: message.name.clone(),
        links: links(message.links.as_ref())?,
        properties: object(message.properties.clone()),
        user_properties: user_properties(message.user_properties.as_ref())?,
        tool_calls: Some(tool_calls),
    })
}

fn support_message(message: &types::CreateSupportMessage) -> Result<DraftMessage, Problem> {
    Ok(DraftMessage {
        id: message.id.as_ref().map(|id| id.to_string()),
        role: message.role.clone(),
        content: message.content.clone().map_or(Value::Null, Value::String),
        external_id: message.external_id.clone(),
        external_url: message.external_url.clone(),
        created_at: message.created_at,
        updated_at: message.updated_at,
        name: message.name.clone(),
        links: links(message.links.as_ref())?,
        properties: object(message.properties.clone()),
        user_properties: user_properties(message.user_properties.as_ref())?,
        tool_calls: None,
    })
}

/// The fields every kind of conversation shares, taken from a generated request type.
macro_rules! draft {
    ($c:expr, $kind:expr, $messages:expr) => {{
        let c = $c;
        Draft {
            id: c.id.as_ref().map(|id| id.to_string()),
            kind: $kind,
            external_id: c.external_id.clone(),
            external_url: c.external_url.clone(),
            support_ticket_conversation_id: c.support_ticket_conversation_id.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            project_id: c.project_id.clone(),
            integration_id: c.integration_id.clone(),
            properties: object(c.properties.clone()),
            user_properties: user_properties(c.user_properties.as_ref())?,
            tags: c.tags.clone(),
            visibility: visibility(c.visibility.as_ref())?,
            messages: $messages,
        }
    }};
}

fn draft(request: &types::CreateConversation) -> Result<Draft, Problem> {
    Ok(match request {
        types::CreateConversation::OpenAi(c) => {
            let messages = c
                .messages
                .iter()
                .enumerate()
                .map(|(index, message)| openai_message(index, message))
                .collect::<Result<Vec<_>, _>>()?;
            draft!(c, Kind::OpenAi, messages)
        }
        types::CreateConversation::SupportTicket(c) => {
            let messages = c
                .messages
                .iter()
                .map(support_message)
                .collect::<Result<Vec<_>, _>>()?;
            draft!(c, Kind::SupportTicket, messages)
        }
        types::CreateConversation::SupportCopilot(c) => {
            let messages = c
                .messages
                .iter()
                .map(support_message)
                .collect::<Result<Vec<_>, _>>()?;
            draft!(c, Kind::SupportCopilot, messages)
        }
        types::CreateConversation::Unknown(value) => {
            return Err(Problem::unprocessable(match value.get("type") {
                Some(kind) => format!(
                    "type: {kind} is not one of `openai`, `support_ticket`, `support_copilot`"
                ),
                None => "type: required; one of `openai`, `support_ticket`, `support_copilot`"
                    .to_string(),
            }));
        }
    })
}

/// `POST /conversations`: logs a conversation, or replaces the one with the same id (an upsert).
///
/// On an update, fields the request leaves out keep their stored value; the messages are
/// replaced by the request's. A message sent without an id keeps the id of the stored message at
/// the same position when the roles match, so resending a conversation does not orphan its
/// feedback.
pub(crate) fn log_conversation(
    store: &mut Store,
    request: &types::CreateConversation,
    now: DateTime<Utc>,
) -> Result<Arc<Conversation>, Problem> {
    let draft = draft(request)?;
    if draft.messages.is_empty() {
        return Err(Problem::unprocessable(
            "messages: a conversation needs at least one message; always send all of them",
        ));
    }
    let existing = draft.id.as_deref().and_then(|id| store.conversation(id));
    if let Some(existing) = &existing
        && existing.kind != draft.kind
    {
        return Err(Problem::unprocessable(format!(
            "type: conversation `{}` is of type `{}` and cannot be logged again as `{}`",
            existing.id,
            existing.kind.as_str(),
            draft.kind.as_str()
        )));
    }
    let id = match draft.id {
        Some(id) => id,
        None => store.new_id("conv"),
    };
    let created_at = draft
        .created_at
        .map(timestamp)
        .or_else(|| existing.as_ref().map(|c| c.created_at.clone()))
        .unwrap_or_else(|| timestamp(now));
    // New messages without a time are placed at the conversation's start when it is new, and
    // now when they are added to a stored conversation; a millisecond apart, to keep their order.
    let base = match &existing {
        Some(_) => now,
        None => draft.created_at.unwrap_or(now),
    };
    let mut seen = HashSet::new();
    let mut messages = Vec::with_capacity(draft.messages.len());
    for (index, message) in draft.messages.into_iter().enumerate() {
        let previous = existing
            .as_ref()
            .and_then(|c| c.messages.get(index))
            .filter(|m| m.role == message.role);
        let message_id = match (&message.id, previous) {
            (Some(id), _) => id.clone(),
            (None, Some(previous)) => previous.id.clone(),
            (None, None) => store.new_id("msg"),
        };
        if !seen.insert(message_id.clone()) {
            return Err(Problem::unprocessable(format!(
                "messages[{index}].id: `{message_id}` is used by more than one message"
            )));
        }
        if let Some(owner) = store.conversation_of_message(&message_id)
            && owner.id != id
        {
            return Err(Problem::unprocessable(format!(
                "messages[{index}].id: `{message_id}` is a message of conversation `{}`",
                owner.id
            )));
        }
        let reused = previous.filter(|p| p.id == message_id);
        let offset = Duration::milliseconds(i64::try_from(index).unwrap_or(0));
        let message_created = message
            .created_at
            .map(timestamp)
            .or_else(|| reused.map(|p| p.created_at.clone()))
            .unwrap_or_else(|| timestamp(base + offset));
        let message_updated = message
            .updated_at
            .map(timestamp)
            .unwrap_or_else(|| message_created.clone());
        messages.push(Message {
            id: message_id,
            kind: draft.kind,
            external_id: message.external_id,
            external_url: message.external_url,
            conversation_id: id.clone(),
            created_at: message_created,
            updated_at: message_updated,
            role: message.role,
            content: message.content,
            name: message.name,
            links: message.links,
            properties: message.properties,
            user_properties: message.user_properties,
            tool_calls: message.tool_calls,
        });
    }
    let keep = |new: Option<String>, old: fn(&Conversation) -> &Option<String>| {
        new.or_else(|| existing.as_deref().and_then(|c| old(c).clone()))
    };
    let mut conversation = Conversation {
        external_id: keep(draft.external_id, |c| &c.external_id),
        external_url: keep(draft.external_url, |c| &c.external_url),
        support_ticket_conversation_id: keep(draft.support_ticket_conversation_id, |c| {
            &c.support_ticket_conversation_id
        }),
        project_id: keep(draft.project_id, |c| &c.project_id),
        integration_id: keep(draft.integration_id, |c| &c.integration_id),
        visibility: keep(draft.visibility, |c| &c.visibility),
        properties: draft
            .properties
            .or_else(|| existing.as_ref().and_then(|c| c.properties.clone())),
        user_properties: draft
            .user_properties
            .or_else(|| existing.as_ref().and_then(|c| c.user_properties.clone())),
        tags: draft
            .tags
            .or_else(|| existing.as_ref().and_then(|c| c.tags.clone())),
        id,
        kind: draft.kind,
        created_at,
        updated_at: timestamp(draft.updated_at.unwrap_or(now)),
        messages,
        messages_openai_format: None,
        topic: None,
    };
    conversation.refresh_openai_format();
    Ok(store.put_conversation(conversation))
}

/// `POST /feedback`: records feedback on an existing message, or replaces the one with the same id.
pub(crate) fn log_feedback(
    store: &mut Store,
    input: &types::FeedbackInput,
    now: DateTime<Utc>,
) -> Result<Arc<Feedback>, Problem> {
    known(
        "type",
        input.type_.as_str(),
        input.type_.is_other(),
        types::FeedbackType::KNOWN,
    )?;
    let Some(conversation) = store.conversation_of_message(&input.message_id) else {
        return Err(Problem::unprocessable(format!(
            "messageId: `{}` is not a message of any conversation",
            input.message_id
        )));
    };
    if let Some(sources) = &input.sources {
        for (index, source) in sources.iter().enumerate() {
            if let Some(kind) = &source.type_ {
                known(
                    &format!("sources[{index}].type"),
                    kind.as_str(),
                    kind.is_other(),
                    types::FeedbackSourceType::KNOWN,
                )?;
            }
        }
    }
    let existing = input.id.as_ref().and_then(|id| store.feedback(id));
    let id = match &input.id {
        Some(id) => id.to_string(),
        None => store.new_id("fb"),
    };
    let created_at = input
        .created_at
        .map(timestamp)
        .or_else(|| existing.as_ref().map(|f| f.created_at.clone()))
        .unwrap_or_else(|| timestamp(now));
    let feedback = Feedback {
        id,
        kind: input.type_.as_str().to_string(),
        message_id: input.message_id.clone(),
        created_at,
        updated_at: timestamp(input.updated_at.unwrap_or(now)),
        reasons: input.reasons.as_ref().map(to_json).transpose()?,
        details: input.details.clone(),
        properties: object(input.properties.clone()),
        user_properties: user_properties(input.user_properties.as_ref())?,
        sources: input.sources.as_ref().map(to_json).transpose()?,
        conversation_id: conversation.id.clone(),
    };
    Ok(store.put_feedback(feedback))
}

/// `POST /events`: logs an event; logging again with the id of a stored event returns it unchanged.
pub(crate) fn log_event(
    store: &mut Store,
    input: &types::InsertEvent,
    now: DateTime<Utc>,
) -> Result<Arc<Event>, Problem> {
    macro_rules! common {
        ($e:expr, $entity:literal) => {{
            let e = $e;
            (
                e.id.as_ref().map(|id| id.to_string()),
                $entity,
                e.type_.clone(),
                e.created_at,
                e.project_id.clone(),
                e.integration_id.clone(),
                object(e.properties.clone()),
                user_properties(e.user_properties.as_ref())?,
            )
        }};
    }
    let (id, entity, kind, created_at, project_id, integration_id, properties, user_props) =
        match input {
            types::InsertEvent::Message(e) => common!(e, "message"),
            types::InsertEvent::Conversation(e) => common!(e, "conversation"),
            types::InsertEvent::Search(e) => common!(e, "search"),
            types::InsertEvent::Unknown(value) => {
                return Err(Problem::unprocessable(match value.get("entityType") {
                    Some(kind) => format!(
                        "entityType: {kind} is not one of `message`, `conversation`, `search`"
                    ),
                    None => "entityType: required; one of `message`, `conversation`, `search`"
                        .to_string(),
                }));
            }
        };
    if let Some(existing) = id.as_deref().and_then(|id| store.event(id)) {
        return Ok(existing);
    }
    if kind.trim().is_empty() {
        return Err(Problem::unprocessable(
            "type: must say what happened, such as `conversation_shared`",
        ));
    }
    let id = match id {
        Some(id) => id,
        None => store.new_id("evt"),
    };
    let mut event = Event {
        id,
        entity_type: entity.to_string(),
        kind,
        message_id: None,
        conversation_id: None,
        search_query: None,
        created_at: timestamp(created_at.unwrap_or(now)),
        project_id,
        integration_id,
        properties,
        user_properties: user_props,
    };
    match input {
        types::InsertEvent::Message(e) => event.message_id = Some(e.message_id.clone()),
        types::InsertEvent::Conversation(e) => {
            event.conversation_id = Some(e.conversation_id.clone());
        }
        types::InsertEvent::Search(e) => event.search_query = Some(e.search_query.clone()),
        types::InsertEvent::Unknown(_) => {}
    }
    Ok(store.put_event(event))
}
