//! The in-memory data of a sandbox: conversations, feedback and events, kept in the order the API serves them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::config::ConcurrentInserts;
use crate::content::Content;
use crate::records::{Conversation, Event, Feedback};
use crate::rng::Rng;
use crate::seed::{Generator, Seeded, history_start};

/// The stream of the seed that server-assigned ids are drawn from.
const ID_STREAM: u64 = 2;

/// Conversations are served newest first: by `createdAt` descending, then by id.
type ConversationKey = (Reverse<String>, String);

/// Feedback is served newest first too.
type FeedbackKey = (Reverse<String>, String);

/// Everything the sandbox holds.
pub(crate) struct Store {
    conversations: BTreeMap<ConversationKey, Arc<Conversation>>,
    conversation_keys: HashMap<String, ConversationKey>,
    /// Message id to conversation id.
    messages: HashMap<String, String>,
    positive: BTreeMap<FeedbackKey, Arc<Feedback>>,
    negative: BTreeMap<FeedbackKey, Arc<Feedback>>,
    feedback_keys: HashMap<String, (FeedbackKey, bool)>,
    events: Vec<Arc<Event>>,
    event_ids: HashMap<String, usize>,
    /// Ids the server assigns to what clients log without one.
    ids: Rng,
    /// Continues the seeded history for concurrent inserts.
    generator: Generator,
    /// The text of the seed, which the semantic threads view reads topics from.
    content: &'static Content,
    list_requests: u64,
}

/// A consistent copy of the data, for the query operations to read without holding the lock.
pub(crate) struct Snapshot {
    /// Newest first.
    pub conversations: Vec<Arc<Conversation>>,
    /// Newest first.
    pub feedback: Vec<Arc<Feedback>>,
    /// In the order they were logged.
    pub events: Vec<Arc<Event>>,
    /// The text of the seed.
    pub content: &'static Content,
}

impl Store {
    /// A store seeded with `conversations` conversations (and their feedback and events) from `seed`.
    pub(crate) fn seeded(seed: u64, conversations: usize, content: &'static Content) -> Self {
        let mut generator = Generator::new(seed, content);
        let history = generator.history(conversations);
        let mut store = Self {
            conversations: BTreeMap::new(),
            conversation_keys: HashMap::new(),
            messages: HashMap::new(),
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
            feedback_keys: HashMap::new(),
            events: Vec::new(),
            event_ids: HashMap::new(),
            ids: Rng::stream(seed, ID_STREAM),
            content,
            generator,
            list_requests: 0,
        };
        for seeded in history {
            store.add_seeded(seeded);
        }
        store
    }

    fn add_seeded(&mut self, seeded: Seeded) {
        self.put_conversation(seeded.conversation);
        for feedback in seeded.feedback {
            self.put_feedback(feedback);
        }
        for event in seeded.events {
            self.put_event(event);
        }
    }

    /// A new id such as `conv_...`.
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        self.ids.id(prefix, 20)
    }

    // Conversations.

    pub(crate) fn conversation_count(&self) -> usize {
        self.conversations.len()
    }

    /// One page, newest first.
    pub(crate) fn conversation_page(&self, limit: usize, offset: usize) -> Vec<Arc<Conversation>> {
        self.conversations
            .values()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    pub(crate) fn conversation(&self, id: &str) -> Option<Arc<Conversation>> {
        let key = self.conversation_keys.get(id)?;
        self.conversations.get(key).cloned()
    }

    /// The newest conversation with this external id.
    pub(crate) fn conversation_by_external_id(
        &self,
        external_id: &str,
    ) -> Option<Arc<Conversation>> {
        self.conversations
            .values()
            .find(|c| c.external_id.as_deref() == Some(external_id))
            .cloned()
    }

    /// The conversation a message belongs to.
    pub(crate) fn conversation_of_message(&self, message_id: &str) -> Option<Arc<Conversation>> {
        let conversation_id = self.messages.get(message_id)?;
        self.conversation(conversation_id)
    }

    /// Stores a conversation, replacing the one with the same id.
    pub(crate) fn put_conversation(&mut self, conversation: Conversation) -> Arc<Conversation> {
        let replaced = self.remove_conversation_record(&conversation.id);
        // Feedback on messages the new version no longer has is gone with them.
        if let Some(old) = replaced {
            for message in &old.messages {
                if conversation.message(&message.id).is_none() {
                    self.remove_feedback_on_message(&message.id);
                }
            }
        }
        for message in &conversation.messages {
            self.messages
                .insert(message.id.clone(), conversation.id.clone());
        }
        let key = (
            Reverse(conversation.created_at.clone()),
            conversation.id.clone(),
        );
        let conversation = Arc::new(conversation);
        self.conversation_keys
            .insert(conversation.id.clone(), key.clone());
        self.conversations.insert(key, Arc::clone(&conversation));
        conversation
    }

    fn remove_conversation_record(&mut self, id: &str) -> Option<Arc<Conversation>> {
        let key = self.conversation_keys.remove(id)?;
        let conversation = self.conversations.remove(&key)?;
        for message in &conversation.messages {
            self.messages.remove(&message.id);
        }
        Some(conversation)
    }

    /// Deletes a conversation and the feedback on its messages; `false` when there is none.
    pub(crate) fn delete_conversation(&mut self, id: &str) -> bool {
        let Some(conversation) = self.remove_conversation_record(id) else {
            return false;
        };
        for message in &conversation.messages {
            self.remove_feedback_on_message(&message.id);
        }
        true
    }

    /// Called after each `GET /conversations` has been answered: inserts new conversations every
    /// `every` requests, newer than every stored one.
    pub(crate) fn after_list_request(&mut self, inserts: Option<ConcurrentInserts>) {
        let Some(inserts) = inserts else {
            return;
        };
        self.list_requests += 1;
        if !self
            .list_requests
            .is_multiple_of(u64::from(inserts.every.max(1)))
        {
            return;
        }
        let newest = self
            .conversations
            .keys()
            .next()
            .and_then(|(Reverse(created_at), _)| DateTime::parse_from_rfc3339(created_at).ok())
            .map_or_else(history_start, |at| at.with_timezone(&Utc));
        for index in 0..inserts.count {
            let minutes = i64::try_from(index).unwrap_or(0).saturating_add(1);
            let seeded = self
                .generator
                .conversation(newest + Duration::minutes(minutes));
            self.add_seeded(seeded);
        }
    }

    // Feedback.

    pub(crate) fn feedback(&self, id: &str) -> Option<Arc<Feedback>> {
        let (key, positive) = self.feedback_keys.get(id)?;
        let list = if *positive {
            &self.positive
        } else {
            &self.negative
        };
        list.get(key).cloned()
    }

    /// Stores feedback, replacing the one with the same id.
    pub(crate) fn put_feedback(&mut self, feedback: Feedback) -> Arc<Feedback> {
        self.delete_feedback(&feedback.id);
        let key = (Reverse(feedback.created_at.clone()), feedback.id.clone());
        let positive = feedback.is_positive();
        let feedback = Arc::new(feedback);
        self.feedback_keys
            .insert(feedback.id.clone(), (key.clone(), positive));
        let list = if positive {
            &mut self.positive
        } else {
            &mut self.negative
        };
        list.insert(key, Arc::clone(&feedback));
        feedback
    }

    pub(crate) fn delete_feedback(&mut self, id: &str) -> bool {
        let Some((key, positive)) = self.feedback_keys.remove(id) else {
            return false;
        };
        let list = if positive {
            &mut self.positive
        } else {
            &mut self.negative
        };
        list.remove(&key).is_some()
    }

    fn remove_feedback_on_message(&mut self, message_id: &str) {
        let ids: Vec<String> = self
            .positive
            .values()
            .chain(self.negative.values())
            .filter(|f| f.message_id == message_id)
            .map(|f| f.id.clone())
            .collect();
        for id in ids {
            self.delete_feedback(&id);
        }
    }

    /// One page of each list, newest first, with the totals of each.
    pub(crate) fn feedback_page(&self, limit: usize, offset: usize) -> FeedbackPage {
        let page = |list: &BTreeMap<FeedbackKey, Arc<Feedback>>| -> Vec<Arc<Feedback>> {
            list.values().skip(offset).take(limit).cloned().collect()
        };
        FeedbackPage {
            positive_total: self.positive.len(),
            negative_total: self.negative.len(),
            positive: page(&self.positive),
            negative: page(&self.negative),
        }
    }

    // Events.

    pub(crate) fn event(&self, id: &str) -> Option<Arc<Event>> {
        self.event_ids
            .get(id)
            .and_then(|index| self.events.get(*index))
            .cloned()
    }

    pub(crate) fn put_event(&mut self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.event_ids.insert(event.id.clone(), self.events.len());
        self.events.push(Arc::clone(&event));
        event
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            conversations: self.conversations.values().cloned().collect(),
            feedback: {
                let mut all: Vec<Arc<Feedback>> = self
                    .positive
                    .values()
                    .chain(self.negative.values())
                    .cloned()
                    .collect();
                all.sort_by(|a, b| {
                    b.created_at
                        .cmp(&a.created_at)
                        .then_with(|| a.id.cmp(&b.id))
                });
                all
            },
            events: self.events.clone(),
            content: self.content,
        }
    }
}

/// One page of `GET /feedback`.
pub(crate) struct FeedbackPage {
    pub positive_total: usize,
    pub negative_total: usize,
    pub positive: Vec<Arc<Feedback>>,
    pub negative: Vec<Arc<Feedback>>,
}
