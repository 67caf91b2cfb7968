//! The records a recorder takes, checked and turned into the JSON body they are sent as, on the calling thread.

use serde::{Deserialize, Serialize};

use super::queue::{Dep, Kind, MessageIds};
use crate::error::{Error, Result};
use crate::transport::MAX_REQUEST_BODY_BYTES;
use crate::types;

/// One write for the recorder: the body of `POST /conversations`, `POST /feedback` or `POST /events`.
///
/// As JSON (the lines `inkeep-analytics record` reads), it is `{"conversation": <body>}`,
/// `{"feedback": <body>}` or `{"event": <body>}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Record {
    /// A conversation, sent whole: the API replaces the stored messages with these.
    Conversation(types::CreateConversation),
    /// Feedback on a message.
    Feedback(types::FeedbackInput),
    /// An event about a message, a conversation or a search.
    Event(types::InsertEvent),
}

/// A record checked and ready for the queue.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub kind: Kind,
    pub id: String,
    pub body: Vec<u8>,
    pub messages: MessageIds,
    pub dep: Dep,
    /// The conversation whose sampling decision the record follows, when it names one.
    pub conversation: Option<String>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn non_empty(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!("{what} must not be empty")));
    }
    Ok(())
}

/// Sets a JSON object's `id` when it has none, and returns it.
fn json_id(value: &mut serde_json::Value) -> Result<String> {
    let Some(object) = value.as_object_mut() else {
        return Err(Error::invalid_input("a record must be a JSON object"));
    };
    match object.get("id") {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => Ok(id.clone()),
        None | Some(serde_json::Value::Null) => {
            let id = new_id();
            object.insert("id".into(), serde_json::Value::String(id.clone()));
            Ok(id)
        }
        Some(_) => Err(Error::invalid_input("`id` must be a non-empty string")),
    }
}

fn message_ids<'a>(ids: impl ExactSizeIterator<Item = Option<&'a str>>) -> MessageIds {
    let count = ids.len();
    MessageIds::collect(ids.flatten(), count)
}

/// The three known conversation kinds are prepared alike: the id set when missing, the message
/// ids collected, and at least one message required. Their types share no trait, hence a macro.
macro_rules! known_kind {
    ($variant:ident, $conversation:expr) => {{
        let mut c = $conversation;
        let id = match &c.id {
            Some(id) => id.to_string(),
            None => {
                let id = new_id();
                c = c.with_id(id.clone())?;
                id
            }
        };
        let messages = message_ids(
            c.messages
                .iter()
                .map(|m| m.id.as_ref().map(|id| id.as_str())),
        );
        check_count(c.messages.len())?;
        (types::CreateConversation::$variant(c), id, messages)
    }};
}

impl Record {
    /// Checks the record, gives it an id when it has none (so that every send of it is an upsert),
    /// and serializes it.
    pub(crate) fn prepare(self) -> Result<Prepared> {
        use types::CreateConversation as C;
        use types::InsertEvent as E;
        let (kind, id, messages, dep, conversation, body) = match self {
            Record::Conversation(conversation) => {
                let (conversation, id, messages) = match conversation {
                    C::OpenAi(c) => known_kind!(OpenAi, c),
                    C::SupportTicket(c) => known_kind!(SupportTicket, c),
                    C::SupportCopilot(c) => known_kind!(SupportCopilot, c),
                    C::Unknown(mut value) => {
                        let id = json_id(&mut value)?;
                        let list = value.get("messages").and_then(serde_json::Value::as_array);
                        check_count(list.map_or(0, Vec::len))?;
                        let messages = message_ids(
                            list.map_or(&[][..], Vec::as_slice)
                                .iter()
                                .map(|m| m.get("id").and_then(serde_json::Value::as_str)),
                        );
                        (C::Unknown(value), id, messages)
                    }
                };
                let body = to_body(&conversation, CONVERSATION_CAPACITY)?;
                let conversation = Some(id.clone());
                (
                    Kind::Conversation,
                    id,
                    messages,
                    Dep::None,
                    conversation,
                    body,
                )
            }
            Record::Feedback(feedback) => {
                non_empty("the feedback's message id", &feedback.message_id)?;
                let (feedback, id) = match &feedback.id {
                    Some(id) => {
                        let id = id.to_string();
                        (feedback, id)
                    }
                    None => {
                        let id = new_id();
                        (feedback.with_id(id.clone())?, id)
                    }
                };
                let dep = Dep::Message(feedback.message_id.clone());
                (
                    Kind::Feedback,
                    id,
                    MessageIds::default(),
                    dep,
                    None,
                    to_body(&feedback, 512)?,
                )
            }
            Record::Event(event) => {
                let (event, id, dep, conversation) = match event {
                    E::Message(e) => {
                        non_empty("the event's message id", &e.message_id)?;
                        non_empty("the event's type", &e.type_)?;
                        let dep = Dep::Message(e.message_id.clone());
                        let (e, id) = event_id(
                            e.id.as_ref().map(|id| id.as_str().to_owned()),
                            e,
                            |e, id| e.with_id(id),
                        )?;
                        (E::Message(e), id, dep, None)
                    }
                    E::Conversation(e) => {
                        non_empty("the event's conversation id", &e.conversation_id)?;
                        non_empty("the event's type", &e.type_)?;
                        let conversation = e.conversation_id.clone();
                        let dep = Dep::Conversation(conversation.clone());
                        let (e, id) = event_id(
                            e.id.as_ref().map(|id| id.as_str().to_owned()),
                            e,
                            |e, id| e.with_id(id),
                        )?;
                        (E::Conversation(e), id, dep, Some(conversation))
                    }
                    E::Search(e) => {
                        non_empty("the event's type", &e.type_)?;
                        let (e, id) = event_id(
                            e.id.as_ref().map(|id| id.as_str().to_owned()),
                            e,
                            |e, id| e.with_id(id),
                        )?;
                        (E::Search(e), id, Dep::None, None)
                    }
                    E::Unknown(mut value) => {
                        let id = json_id(&mut value)?;
                        (E::Unknown(value), id, Dep::None, None)
                    }
                };
                (
                    Kind::Event,
                    id,
                    MessageIds::default(),
                    dep,
                    conversation,
                    to_body(&event, 512)?,
                )
            }
        };
        if body.len() > MAX_REQUEST_BODY_BYTES {
            return Err(Error::invalid_input(format!(
                "the {} is {} bytes as JSON; the API accepts at most {MAX_REQUEST_BODY_BYTES}",
                kind.as_str(),
                body.len()
            )));
        }
        Ok(Prepared {
            kind,
            id,
            body,
            messages,
            dep,
            conversation,
        })
    }

    /// Decodes a body the recorder serialized (or a spool kept) back into a record.
    pub(crate) fn from_body(kind: Kind, body: &[u8]) -> serde_json::Result<Self> {
        Ok(match kind {
            Kind::Conversation => Record::Conversation(serde_json::from_slice(body)?),
            Kind::Feedback => Record::Feedback(serde_json::from_slice(body)?),
            Kind::Event => Record::Event(serde_json::from_slice(body)?),
        })
    }
}

/// The event with an id: the one it has, or a fresh one. Sending an event again with its id
/// returning the first is assumed, not documented by the API.
fn event_id<T>(
    existing: Option<String>,
    event: T,
    with_id: impl FnOnce(T, String) -> Result<T>,
) -> Result<(T, String)> {
    match existing {
        Some(id) => Ok((event, id)),
        None => {
            let id = new_id();
            Ok((with_id(event, id.clone())?, id))
        }
    }
}

/// Where a conversation's body starts: a few turns of a chat, so that most are written without the
/// buffer growing and being copied again.
const CONVERSATION_CAPACITY: usize = 4096;

fn check_count(messages: usize) -> Result<()> {
    if messages == 0 {
        return Err(Error::invalid_input(
            "a conversation needs at least one message; always record all of its messages",
        ));
    }
    Ok(())
}

fn to_body<T: Serialize>(value: &T, capacity: usize) -> Result<Vec<u8>> {
    let mut body = super::json::to_vec(value, capacity).map_err(|error| {
        Error::invalid_input(format!("the record cannot be serialized: {error}"))
    })?;
    // The queue bounds the bytes of the bodies it holds; what it holds must not be much more.
    if body.capacity() - body.len() > 1024 {
        body.shrink_to_fit();
    }
    Ok(body)
}
