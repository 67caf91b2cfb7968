//! The records a recorder takes, checked and turned into the JSON body they are sent as, on the calling thread.

use serde::{Deserialize, Serialize};

use super::queue::{Dep, Item, Kind, MessageIds};
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

impl Prepared {
    /// The queue's item for the record, at `seq` in the order of recording; the body is handed
    /// over without a copy.
    pub(crate) fn into_item(self, seq: u64) -> Item {
        Item {
            seq,
            kind: self.kind,
            id: self.id,
            body: bytes::Bytes::from(self.body),
            messages: self.messages,
            dep: self.dep,
            attempts: 0,
            first_failure: None,
        }
    }
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

mod sealed {
    pub trait Sealed {}
}

/// A conversation a recorder can serialize from a reference, with
/// [`Recorder::record_conversation_ref`](super::Recorder::record_conversation_ref): the three
/// known kinds and [`types::CreateConversation`]. The trait is sealed; the recorder reads a
/// conversation's ids through it.
pub trait RecordableConversation: Serialize + sealed::Sealed {
    /// The conversation's id, when it has a usable one.
    #[doc(hidden)]
    fn recorded_id(&self) -> Option<&str>;
    /// The ids of its messages, in order, and how many messages it has.
    #[doc(hidden)]
    fn recorded_messages(&self) -> (MessageIdList<'_>, usize);
    /// An owned copy, for a conversation that needs an id given to it.
    #[doc(hidden)]
    fn to_create_conversation(&self) -> types::CreateConversation;
}

/// The message ids of a conversation as [`RecordableConversation`] hands them to the recorder.
#[doc(hidden)]
pub struct MessageIdList<'a>(Box<dyn Iterator<Item = &'a str> + 'a>);

/// The three known kinds give their ids alike; their types share no trait, hence a macro.
macro_rules! recordable_kind {
    ($type:ty, $variant:ident) => {
        impl sealed::Sealed for $type {}

        impl RecordableConversation for $type {
            fn recorded_id(&self) -> Option<&str> {
                self.id.as_ref().map(|id| id.as_str())
            }

            fn recorded_messages(&self) -> (MessageIdList<'_>, usize) {
                let ids = self
                    .messages
                    .iter()
                    .filter_map(|m| m.id.as_ref().map(|id| id.as_str()));
                (MessageIdList(Box::new(ids)), self.messages.len())
            }

            fn to_create_conversation(&self) -> types::CreateConversation {
                types::CreateConversation::$variant(self.clone())
            }
        }
    };
}

recordable_kind!(types::CreateOpenAiConversation, OpenAi);
recordable_kind!(types::CreateSupportTicketConversation, SupportTicket);
recordable_kind!(types::CreateSupportCopilotConversation, SupportCopilot);

impl sealed::Sealed for types::CreateConversation {}

impl RecordableConversation for types::CreateConversation {
    fn recorded_id(&self) -> Option<&str> {
        use types::CreateConversation as C;
        match self {
            C::OpenAi(c) => c.recorded_id(),
            C::SupportTicket(c) => c.recorded_id(),
            C::SupportCopilot(c) => c.recorded_id(),
            C::Unknown(value) => value
                .get("id")
                .and_then(serde_json::Value::as_str)
                .filter(|id| !id.trim().is_empty()),
        }
    }

    fn recorded_messages(&self) -> (MessageIdList<'_>, usize) {
        use types::CreateConversation as C;
        match self {
            C::OpenAi(c) => c.recorded_messages(),
            C::SupportTicket(c) => c.recorded_messages(),
            C::SupportCopilot(c) => c.recorded_messages(),
            C::Unknown(value) => {
                let list = value
                    .get("messages")
                    .and_then(serde_json::Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                let ids = list
                    .iter()
                    .filter_map(|m| m.get("id").and_then(serde_json::Value::as_str));
                (MessageIdList(Box::new(ids)), list.len())
            }
        }
    }

    fn to_create_conversation(&self) -> types::CreateConversation {
        self.clone()
    }
}

/// A conversation with an id, checked and serialized from a reference: what the owned and the
/// borrowed recording calls share.
fn prepare_conversation<C: RecordableConversation + ?Sized>(
    conversation: &C,
    id: &str,
) -> Result<Prepared> {
    let (ids, count) = conversation.recorded_messages();
    check_count(count)?;
    let messages = MessageIds::collect(ids.0, count);
    let body = to_body(conversation)?;
    checked_size(Kind::Conversation, &body)?;
    Ok(Prepared {
        kind: Kind::Conversation,
        id: id.to_owned(),
        body,
        messages,
        dep: Dep::None,
        conversation: Some(id.to_owned()),
    })
}

/// Prepares a conversation the caller keeps. `None` when it has no id: the recorder must give it
/// one, which takes a copy.
pub(crate) fn prepare_borrowed<C: RecordableConversation + ?Sized>(
    conversation: &C,
) -> Result<Option<Prepared>> {
    match conversation.recorded_id() {
        Some(id) => prepare_conversation(conversation, id).map(Some),
        None => Ok(None),
    }
}

fn checked_size(kind: Kind, body: &[u8]) -> Result<()> {
    if body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(Error::invalid_input(format!(
            "the {} is {} bytes as JSON; the API accepts at most {MAX_REQUEST_BODY_BYTES}",
            kind.as_str(),
            body.len()
        )));
    }
    Ok(())
}

/// The known kinds are given an id when they have none, then prepared from a reference.
macro_rules! known_kind {
    ($conversation:expr) => {{
        let mut c = $conversation;
        let id = match &c.id {
            Some(id) => id.to_string(),
            None => {
                let id = new_id();
                c = c.with_id(id.clone())?;
                id
            }
        };
        prepare_conversation(&c, &id)
    }};
}

/// Prepares a conversation the recorder owns: given an id when it has none, then prepared from a
/// reference as a borrowed one is.
pub(crate) fn prepare_owned(conversation: types::CreateConversation) -> Result<Prepared> {
    use types::CreateConversation as C;
    match conversation {
        C::OpenAi(c) => known_kind!(c),
        C::SupportTicket(c) => known_kind!(c),
        C::SupportCopilot(c) => known_kind!(c),
        C::Unknown(mut value) => {
            let id = json_id(&mut value)?;
            prepare_conversation(&C::Unknown(value), &id)
        }
    }
}

impl Record {
    /// Checks the record, gives it an id when it has none (so that every send of it is an upsert),
    /// and serializes it.
    pub(crate) fn prepare(self) -> Result<Prepared> {
        use types::InsertEvent as E;
        let (kind, id, messages, dep, conversation, body) = match self {
            Record::Conversation(conversation) => return prepare_owned(conversation),
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
                    to_body(&feedback)?,
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
                    to_body(&event)?,
                )
            }
        };
        checked_size(kind, &body)?;
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

fn check_count(messages: usize) -> Result<()> {
    if messages == 0 {
        return Err(Error::invalid_input(
            "a conversation needs at least one message; always record all of its messages",
        ));
    }
    Ok(())
}

/// `value` as compact JSON, by serde_json, in a buffer of its exact size: written into a buffer
/// the thread keeps, then copied once, instead of grown by doubling and shrunk (copied again), so
/// that the queue, which bounds the bytes it holds, holds no more than the body.
fn to_body<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH
        .with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                let written = serde_json::to_writer(&mut *buffer, value).map(|()| buffer.to_vec());
                // One very large record must not keep its buffer for the thread's life.
                if buffer.capacity() > MAX_KEPT_SCRATCH_BYTES {
                    *buffer = Vec::new();
                }
                written
            }
            // Taken only by a record whose `Serialize` records another from inside itself.
            Err(_) => serde_json::to_vec(value),
        })
        .map_err(|error| Error::invalid_input(format!("the record cannot be serialized: {error}")))
}

/// The largest scratch buffer a thread keeps between records.
const MAX_KEPT_SCRATCH_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CreateConversation, CreateOpenAiConversation, CreateOpenAiMessage};

    fn chat(id: Option<&str>) -> Result<CreateOpenAiConversation> {
        let conversation = CreateOpenAiConversation::new(vec![
            CreateOpenAiMessage::user("a \"quoted\" question\n").with_id("m1")?,
            CreateOpenAiMessage::assistant("an answer").with_id("m2")?,
            CreateOpenAiMessage::assistant("no id"),
        ]);
        match id {
            Some(id) => conversation.with_id(id),
            None => Ok(conversation),
        }
    }

    fn same(a: &Prepared, b: &Prepared) {
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.id, b.id);
        assert_eq!(a.body, b.body);
        assert_eq!(
            a.messages.iter().collect::<Vec<_>>(),
            b.messages.iter().collect::<Vec<_>>()
        );
        assert_eq!(a.conversation, b.conversation);
    }

    /// The borrowed and the owned recording calls queue the same bytes, id and message ids.
    #[test]
    fn a_borrowed_conversation_is_prepared_as_an_owned_one() -> Result<()> {
        let conversation = chat(Some("c1"))?;
        let owned = Record::Conversation(conversation.clone().into()).prepare()?;
        let borrowed = prepare_borrowed(&conversation)?.expect("it has an id");
        same(&borrowed, &owned);
        assert_eq!(
            borrowed.messages.iter().collect::<Vec<_>>(),
            vec!["m1", "m2"]
        );
        let wrapped = CreateConversation::from(conversation);
        same(&prepare_borrowed(&wrapped)?.expect("it has an id"), &owned);

        let unknown = CreateConversation::Unknown(serde_json::json!({
            "id": "u1",
            "type": "voice",
            "messages": [{"id": "v1", "role": "user"}, {"role": "agent"}],
        }));
        let owned = Record::Conversation(unknown.clone()).prepare()?;
        same(&prepare_borrowed(&unknown)?.expect("it has an id"), &owned);
        assert_eq!(owned.messages.iter().collect::<Vec<_>>(), vec!["v1"]);
        Ok(())
    }

    /// A conversation without an id needs one given, which the borrowed path leaves to the owned.
    #[test]
    fn a_borrowed_conversation_without_an_id_takes_the_owned_path() -> Result<()> {
        assert!(prepare_borrowed(&chat(None)?)?.is_none());
        let unknown =
            CreateConversation::Unknown(serde_json::json!({"type": "voice", "messages": [{}]}));
        assert!(prepare_borrowed(&unknown)?.is_none());
        // And the checks are the owned path's: no messages is refused at once.
        let empty = CreateOpenAiConversation::new(vec![]).with_id("e")?;
        assert!(matches!(
            prepare_borrowed(&empty),
            Err(Error::InvalidInput { .. })
        ));
        Ok(())
    }
}
