//! What the wrapper remembers between turns, within fixed bounds: each conversation it logged
//! recently, as stored (so that a turn that sends only a window of the chat is merged into the
//! whole of it without a read), and which message each completion became (so that feedback takes
//! the completion alone).
//!
//! A conversation is `Ready` (its stored state is known) or `Loading` (the wrapper does not
//! remember it and is reading it back from the API, in the background): the turns and feedback
//! that come meanwhile wait in it, in order, and are merged and recorded once the read-back ends.
//! Everything happens under the one lock of [`Memory`], recording included, so that two turns of
//! one conversation are recorded in the order they were merged (the recorder's calls do not wait
//! on the network).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use super::convert::{PROPERTIES_KEY, Turn, typed};
use super::stored::Stored;
use crate::recorder::{Outcome, Recorded, Recorder};
use crate::types::{FeedbackInput, FeedbackType, InsertConversationEvent};

/// How many conversations the wrapper remembers by default.
pub const DEFAULT_MEMORY_CONVERSATIONS: usize = 1024;
/// How many bytes of conversations (their JSON) the wrapper remembers by default, all together.
pub const DEFAULT_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// How many completions' message ids are remembered for feedback.
const MAX_COMPLETIONS: usize = 16_384;

/// A turn whose conversation is being read back.
#[derive(Debug)]
pub(crate) struct PendingTurn {
    pub turn: Turn,
    pub completion_id: Option<String>,
    /// The failure's details, for a call that failed.
    pub failure: Option<Value>,
}

#[derive(Debug)]
enum Slot {
    Ready {
        stored: Stored,
        weight: usize,
        used: u64,
    },
    Loading {
        turns: Vec<PendingTurn>,
        feedback: Vec<(String, FeedbackType)>,
    },
}

/// Which message a completion became, once known.
#[derive(Clone, Debug)]
struct Target {
    conversation_id: String,
    message_id: Option<String>,
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// The sum of the ready slots' weights.
    bytes: usize,
    clock: u64,
    completions: HashMap<String, Target>,
    completion_order: VecDeque<String>,
    /// Conversations forgotten recently (as many as the memory holds), oldest first.
    forgotten: VecDeque<String>,
    forgotten_set: HashSet<String>,
}

/// Shared by the clones of one wrapper.
#[derive(Debug)]
pub(crate) struct Memory {
    inner: Mutex<Inner>,
    max_conversations: usize,
    max_bytes: usize,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_CONVERSATIONS, DEFAULT_MEMORY_BYTES)
    }
}

/// What [`Memory::begin`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// The conversation is remembered, or already being read back.
    Known,
    /// It was not: the caller must read it back and hand the result to [`Memory::loaded`].
    ReadBack {
        /// This wrapper forgot it recently, so a version of it may still wait in the recorder's
        /// queue: flush the recorder before reading, or the read would miss that version.
        flush_first: bool,
    },
}

/// The feedback id for a completion: one per completion, known before its message's id is.
pub(crate) fn feedback_id(conversation_id: &str, completion_id: &str) -> String {
    format!("{conversation_id}:{completion_id}:feedback")
}

impl Memory {
    pub(crate) fn new(max_conversations: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                bytes: 0,
                clock: 0,
                completions: HashMap::new(),
                completion_order: VecDeque::new(),
                forgotten: VecDeque::new(),
                forgotten_set: HashSet::new(),
            }),
            max_conversations: max_conversations.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change below leaves the maps consistent, so a panic elsewhere loses nothing here.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called when a call starts: a conversation the wrapper made up itself (`fresh`) is new and
    /// needs no read-back; any other one it does not remember is marked as being read back.
    pub(crate) fn begin(&self, conversation_id: &str, fresh: bool) -> Begin {
        let mut inner = self.lock();
        if inner.slots.contains_key(conversation_id) {
            return Begin::Known;
        }
        if fresh {
            inner.clock += 1;
            let used = inner.clock;
            inner.slots.insert(
                conversation_id.to_string(),
                Slot::Ready {
                    stored: Stored::default(),
                    weight: 0,
                    used,
                },
            );
            self.evict(&mut inner, conversation_id);
            return Begin::Known;
        }
        inner.slots.insert(
            conversation_id.to_string(),
            Slot::Loading {
                turns: Vec::new(),
                feedback: Vec::new(),
            },
        );
        Begin::ReadBack {
            flush_first: inner.forgotten_set.contains(conversation_id),
        }
    }

    /// Merges a turn into its conversation and records it, or queues it behind the read-back;
    /// [`Begin::ReadBack`] when the conversation was forgotten since its call began, and the
    /// caller must read it back now.
    pub(crate) fn turn(
        &self,
        recorder: &Recorder,
        conversation_id: &str,
        pending: PendingTurn,
    ) -> Begin {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if matches!(inner.slots.get(conversation_id), Some(Slot::Loading { .. })) {
            if let Some(completion) = &pending.completion_id {
                remember(&mut inner, completion, conversation_id, None);
            }
            if let Some(Slot::Loading { turns, .. }) = inner.slots.get_mut(conversation_id) {
                turns.push(pending);
            }
            return Begin::Known;
        }
        let Some(Slot::Ready {
            mut stored,
            weight: old_weight,
            ..
        }) = inner.slots.remove(conversation_id)
        else {
            // Forgotten since its call began (the bounds are small for the traffic): the turn
            // waits for a read-back, as on a first call.
            if let Some(completion) = &pending.completion_id {
                remember(&mut inner, completion, conversation_id, None);
            }
            inner.slots.insert(
                conversation_id.to_string(),
                Slot::Loading {
                    turns: vec![pending],
                    feedback: Vec::new(),
                },
            );
            return Begin::ReadBack { flush_first: true };
        };
        inner.bytes = inner.bytes.saturating_sub(old_weight);
        apply(&mut inner, recorder, conversation_id, &mut stored, pending);
        let weight = stored.weight();
        inner.bytes += weight;
        inner.slots.insert(
            conversation_id.to_string(),
            Slot::Ready {
                stored,
                weight,
                used: now,
            },
        );
        self.evict(&mut inner, conversation_id);
        Begin::Known
    }

    /// Ends a read-back: `stored` is what the API holds (`Ok(None)`: nothing yet), or why it
    /// could not be read. The turns that waited are merged in order and recorded; when the API
    /// could not be read, they are recorded, whole, into a conversation of their own
    /// (`{conversation}:unmerged:{uuid}`), so that nothing they carry is lost and the stored
    /// history is not replaced by a window of it.
    pub(crate) fn loaded(
        &self,
        recorder: &Recorder,
        conversation_id: &str,
        stored: Result<Option<Stored>, String>,
    ) {
        let mut inner = self.lock();
        let Some(Slot::Loading { turns, feedback }) = inner.slots.remove(conversation_id) else {
            return;
        };
        match stored {
            Ok(stored) => {
                let mut stored = stored.unwrap_or_default();
                for turn in turns {
                    apply(&mut inner, recorder, conversation_id, &mut stored, turn);
                }
                for (completion, kind) in feedback {
                    // Its failure is logged where it happens; no caller waits for it here.
                    let _ = record_feedback(&inner, recorder, &completion, kind);
                }
                inner.clock += 1;
                let used = inner.clock;
                let weight = stored.weight();
                inner.bytes += weight;
                inner.slots.insert(
                    conversation_id.to_string(),
                    Slot::Ready {
                        stored,
                        weight,
                        used,
                    },
                );
                self.evict(&mut inner, conversation_id);
            }
            Err(why) => {
                tracing::warn!(conversation = %conversation_id, %why, "openai: cannot read the conversation back; its new turns are logged into a conversation of their own");
                if turns.is_empty() {
                    return;
                }
                let side = format!("{conversation_id}:unmerged:{}", uuid::Uuid::new_v4());
                let mut stored = Stored::default();
                stored.fields.insert(
                    "properties".into(),
                    json!({ PROPERTIES_KEY: {"unmerged_from": conversation_id, "read_back_error": why} }),
                );
                for turn in turns {
                    apply(&mut inner, recorder, &side, &mut stored, turn);
                }
                for (completion, kind) in feedback {
                    // Its failure is logged where it happens; no caller waits for it here.
                    let _ = record_feedback(&inner, recorder, &completion, kind);
                }
            }
        }
    }

    /// Records feedback on the message a completion became, now, or once its conversation is
    /// read back. `None` when this wrapper did not log the completion (or forgot it).
    pub(crate) fn feedback(
        &self,
        recorder: &Recorder,
        completion_id: &str,
        kind: FeedbackType,
    ) -> Option<crate::error::Result<Recorded>> {
        let mut inner = self.lock();
        let target = inner.completions.get(completion_id)?.clone();
        if target.message_id.is_some() {
            return Some(record_feedback(&inner, recorder, completion_id, kind));
        }
        match inner.slots.get_mut(&target.conversation_id) {
            Some(Slot::Loading { feedback, .. }) => {
                feedback.push((completion_id.to_string(), kind));
                Some(Ok(Recorded {
                    id: feedback_id(&target.conversation_id, completion_id),
                    outcome: Outcome::Queued,
                }))
            }
            _ => None,
        }
    }

    /// The feedback body for a completion whose message is known.
    pub(crate) fn feedback_input(
        &self,
        completion_id: &str,
        kind: FeedbackType,
    ) -> Option<crate::error::Result<FeedbackInput>> {
        let inner = self.lock();
        let target = inner.completions.get(completion_id)?;
        let message_id = target.message_id.clone()?;
        Some(
            FeedbackInput::new(kind, message_id)
                .with_id(feedback_id(&target.conversation_id, completion_id)),
        )
    }

    /// Whether a conversation is being read back, for [`super::LoggedClient::flush`].
    pub(crate) fn loading(&self) -> usize {
        self.lock()
            .slots
            .values()
            .filter(|slot| matches!(slot, Slot::Loading { .. }))
            .count()
    }

    /// Forgets the least recently used ready conversations until both bounds hold; `keep` goes
    /// last, and goes too when it alone is over the byte bound.
    fn evict(&self, inner: &mut Inner, keep: &str) {
        loop {
            let over_count = inner.slots.len() > self.max_conversations;
            let over_bytes = inner.bytes > self.max_bytes;
            if !over_count && !over_bytes {
                return;
            }
            let oldest = inner
                .slots
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Ready { used, .. } if id != keep => Some((*used, id.clone())),
                    _ => None,
                })
                .min();
            let victim = match oldest {
                Some((_, id)) => id,
                None if over_bytes && matches!(inner.slots.get(keep), Some(Slot::Ready { .. })) => {
                    keep.to_string()
                }
                // Only conversations being read back are left; they are not forgotten.
                None => return,
            };
            if let Some(Slot::Ready { weight, .. }) = inner.slots.remove(&victim) {
                inner.bytes = inner.bytes.saturating_sub(weight);
            }
            if inner.forgotten_set.insert(victim.clone()) {
                inner.forgotten.push_back(victim.clone());
                if inner.forgotten.len() > self.max_conversations
                    && let Some(oldest) = inner.forgotten.pop_front()
                {
                    inner.forgotten_set.remove(&oldest);
                }
            }
            if victim == keep {
                return;
            }
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.slots.len(), inner.bytes)
    }
}

fn remember(
    inner: &mut Inner,
    completion_id: &str,
    conversation_id: &str,
    message_id: Option<String>,
) {
    if !inner.completions.contains_key(completion_id) {
        if inner.completions.len() >= MAX_COMPLETIONS
            && let Some(oldest) = inner.completion_order.pop_front()
        {
            inner.completions.remove(&oldest);
        }
        inner.completion_order.push_back(completion_id.to_string());
    }
    inner.completions.insert(
        completion_id.to_string(),
        Target {
            conversation_id: conversation_id.to_string(),
            message_id,
        },
    );
}

/// Merges one turn into `stored` and records the conversation (and, for a failed call, the
/// failure on it and its event).
fn apply(
    inner: &mut Inner,
    recorder: &Recorder,
    conversation_id: &str,
    stored: &mut Stored,
    pending: PendingTurn,
) {
    let (mut conversation, reply_id) = stored.apply(conversation_id, pending.turn);
    if let Some(completion) = &pending.completion_id {
        remember(inner, completion, conversation_id, reply_id);
    }
    if let Some(details) = &pending.failure
        && let Some(object) = conversation.as_object_mut()
    {
        let mut properties = object
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        properties.insert(PROPERTIES_KEY.into(), details.clone());
        object.insert("properties".into(), Value::Object(properties));
    }
    let recorded = typed(conversation).and_then(|c| recorder.record_conversation(c));
    if let Err(error) = recorded {
        tracing::warn!(%error, conversation = %conversation_id, "openai: a chat completion is not logged");
        return;
    }
    if let Some(details) = pending.failure {
        let mut event =
            InsertConversationEvent::new(conversation_id.to_string(), super::FAILED_EVENT_TYPE);
        if let Value::Object(details) = json!({ PROPERTIES_KEY: details }) {
            event.properties = Some(details);
        }
        if let Err(error) = recorder.record_event(event) {
            tracing::warn!(%error, "openai: cannot record a failed call's event");
        }
    }
}

fn record_feedback(
    inner: &Inner,
    recorder: &Recorder,
    completion_id: &str,
    kind: FeedbackType,
) -> crate::error::Result<Recorded> {
    let Some(target) = inner.completions.get(completion_id) else {
        return Err(crate::error::Error::invalid_input(format!(
            "completion {completion_id} was forgotten before its feedback was recorded"
        )));
    };
    let Some(message_id) = target.message_id.clone() else {
        return Err(crate::error::Error::invalid_input(format!(
            "completion {completion_id} has no message: its call failed"
        )));
    };
    let input = FeedbackInput::new(kind, message_id)
        .with_id(feedback_id(&target.conversation_id, completion_id))?;
    let result = recorder.record_feedback(input);
    if let Err(error) = &result {
        tracing::warn!(%error, completion = %completion_id, "openai: feedback is not logged");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;

    fn recorder() -> Recorder {
        let client = Client::builder()
            .api_key("sk-test")
            .base_url("http://127.0.0.1:9")
            .build();
        let Ok(client) = client else {
            panic!("a client");
        };
        match Recorder::builder(client).build() {
            Ok(recorder) => recorder,
            Err(error) => panic!("{error}"),
        }
    }

    fn turn(text: &str) -> PendingTurn {
        PendingTurn {
            turn: Turn {
                messages: vec![
                    json!({"role": "user", "content": text, "properties": {"openai": {}}}),
                ],
                has_reply: false,
            },
            completion_id: None,
            failure: None,
        }
    }

    #[tokio::test]
    async fn both_bounds_hold_and_the_oldest_conversation_goes_first() {
        let recorder = recorder();
        let memory = Memory::new(2, 1_000);
        for id in ["a", "b", "c"] {
            assert_eq!(memory.begin(id, true), Begin::Known);
            memory.turn(&recorder, id, turn("hello"));
        }
        let (count, bytes) = memory.remembered();
        assert_eq!(count, 2);
        assert!(bytes <= 1_000);
        // "a" was forgotten: a turn on it now needs a read-back.
        assert_eq!(
            memory.begin("a", false),
            Begin::ReadBack { flush_first: true }
        );
        assert_eq!(
            memory.begin("never-seen", false),
            Begin::ReadBack { flush_first: false }
        );
        // One conversation over the byte bound is not kept at all.
        let big = "x".repeat(2_000);
        assert_eq!(memory.begin("big", true), Begin::Known);
        memory.turn(&recorder, "big", turn(&big));
        assert_eq!(
            memory.begin("big", false),
            Begin::ReadBack { flush_first: true }
        );
        assert!(memory.remembered().1 <= 1_000);
        recorder
            .shutdown(std::time::Duration::from_millis(10))
            .await;
    }
}
