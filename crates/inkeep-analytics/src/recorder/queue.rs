//! The recorder's queue: per-conversation coalescing, dependency ordering, bounds and scheduling,
//! with no I/O and no clock of its own, so that every rule can be tested on its own.
//!
//! A conversation has at most one write in flight and at most one pending version; a newer
//! version replaces the pending one, and a version older than one already pending, in flight or
//! accepted is never sent. Feedback and events that name a message or conversation with a
//! version not yet accepted wait beside that conversation until a write containing it is.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The queue looks ids up on every recording call, under its lock; std's SipHash cost more than the
/// rest of a lookup. foldhash is seeded per process, so ids chosen by end users cannot be made to collide.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What a record is, which decides the operation it is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `POST /conversations`.
    Conversation,
    /// `POST /feedback`.
    Feedback,
    /// `POST /events`.
    Event,
}

impl Kind {
    /// `conversation`, `feedback` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Conversation => "conversation",
            Kind::Feedback => "feedback",
            Kind::Event => "event",
        }
    }

    /// The spec's operation that stores it.
    pub(crate) fn operation_id(self) -> &'static str {
        match self {
            Kind::Conversation => "logConversation",
            Kind::Feedback => "logFeedback",
            Kind::Event => "logEvent",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a feedback item or event must wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dep {
    None,
    /// A message, by id.
    Message(String),
    /// A conversation, by id.
    Conversation(String),
}

/// One record as the queue holds it: its JSON body as it will be sent, and what scheduling needs.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// Its place in the order of recording (also its sequence number in the spool).
    pub seq: u64,
    pub kind: Kind,
    /// The conversation's, feedback item's or event's id.
    pub id: String,
    /// Taken over from the buffer it was written into, without a copy.
    pub body: Bytes,
    /// For a conversation, the ids of its messages that have one.
    pub messages: MessageIds,
    pub dep: Dep,
    /// Its transient failures so far that were its own (not the server's), for its retry budget.
    pub attempts: u32,
    /// When it first failed, for the age part of its retry budget.
    pub first_failure: Option<Instant>,
}

/// The ids of a conversation's messages, in one buffer that its clones share: a chat re-sends every
/// message on each turn, and a string apiece cost a recording call more than its queueing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MessageIds {
    joined: Arc<str>,
    /// Where each id ends in `joined`.
    ends: Arc<[usize]>,
}

impl MessageIds {
    /// The ids, of which there are about `count` (the number of messages).
    pub(crate) fn collect<'a>(ids: impl Iterator<Item = &'a str>, count: usize) -> Self {
        // Room for ids of a usual length, so that most calls do not grow the buffers.
        let mut joined = String::with_capacity(count * 24);
        let mut ends = Vec::with_capacity(count);
        for id in ids {
            joined.push_str(id);
            ends.push(joined.len());
        }
        Self {
            joined: joined.into(),
            ends: ends.into(),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let id = self.joined.get(start..end).unwrap_or_default();
            start = end;
            id
        })
    }
}

impl Item {
    fn bytes(&self) -> usize {
        self.body.len()
    }
}

/// The bounds and pacing of a queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_records: usize,
    pub max_bytes: usize,
    pub max_in_flight: usize,
    pub min_interval: Duration,
}

/// What became of a record handed to [`Queue::enqueue`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// It waits to be sent.
    Queued,
    /// It replaced an older pending version of its conversation (whose sequence number is given).
    Replaced(u64),
    /// A newer version of its conversation is already pending, in flight or accepted.
    Stale,
    /// The queue is full; the record was not taken. Only the spool's path answers it: without a
    /// spool, a full queue gives the record back to its caller instead.
    #[cfg_attr(
        not(any(test, feature = "spool")),
        allow(dead_code, reason = "constructed by the spool's path only")
    )]
    Full,
}

/// How a write ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The API accepted it.
    Delivered,
    /// It failed for now for a reason of its own: it alone waits until `at`, while the other
    /// records keep going, then goes again behind what is ready by then.
    Retry { at: Instant },
    /// It failed for now because of the server (429, 503, `Retry-After`, an outage): every write
    /// pauses for `wait`, then it goes first again.
    Paused { wait: Duration },
    /// Dropped before sending (by `before_send`): it leaves the queue, and what waits on it is
    /// sent for the server to decide, since an earlier version may hold what it names.
    Dropped,
    /// Refused for good or out of its retry budget: it leaves the queue, and so does what waits
    /// on it, which would be refused for naming what was never stored.
    DeadLettered,
}

#[derive(Debug, Default)]
struct Slot {
    pending: Option<Item>,
    /// The in-flight version's sequence number and message ids.
    in_flight: Option<(u64, MessageIds)>,
    /// Whether the slot is in `ready` or `timed`.
    queued: bool,
    ever_accepted: bool,
    /// How many of `Queue::unaccepted` name this conversation, so that one that goes idle looks
    /// for what is left only when something is: a scan of every unaccepted message, under the
    /// lock recording calls take, at each delivery would make them wait.
    unaccepted_messages: usize,
    /// The newest sequence number seen, pending, in flight or accepted.
    newest: u64,
    last_sent: Option<Instant>,
}

impl Slot {
    fn is_idle(&self) -> bool {
        self.pending.is_none() && self.in_flight.is_none()
    }
}

#[derive(Debug)]
enum Entry {
    Conversation(String),
    Other(Item),
}

/// A record the queue holds, as a report names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub seq: u64,
    pub kind: Kind,
    pub id: String,
}

/// How a conversation's write left the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    Accepted,
    Dropped,
    DeadLettered,
}

/// Counts of what the queue did that [`super::Stats`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub coalesced: u64,
    pub delivered: u64,
    pub retried: u64,
    pub gone: u64,
}

/// How many ids one generation of [`DeadIds`] holds: two generations bound its memory, a few MB
/// at most, and a dependent recorded that long after its conversation was dead-lettered is sent
/// for the server to decide, as before.
const DEAD_IDS_GENERATION: usize = 50_000;

/// Conversations dead-lettered with no newer version, and their messages (with the conversation
/// that held them), so that feedback and events recorded after the fact are dead-lettered with
/// the same reason instead of being sent to a certain 422. In two generations, so that memory
/// stays bounded.
#[derive(Debug, Default)]
struct DeadIds {
    current: HashMap<String, DeadId>,
    previous: HashMap<String, DeadId>,
}

/// What a dead id is: keys of messages and conversations share one map, told apart by this.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DeadId {
    /// A conversation's id.
    Conversation,
    /// A message's id, with its conversation's.
    Message(String),
}

impl DeadIds {
    fn key(kind: &str, id: &str) -> String {
        let mut key = String::with_capacity(kind.len() + id.len());
        key.push_str(kind);
        key.push_str(id);
        key
    }

    fn insert(&mut self, key: String, dead: DeadId) {
        if self.current.len() >= DEAD_IDS_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, dead);
    }

    fn remove(&mut self, key: &str) {
        self.current.remove(key);
        self.previous.remove(key);
    }

    fn get(&self, key: &str) -> Option<&DeadId> {
        if self.current.is_empty() && self.previous.is_empty() {
            return None;
        }
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// A conversation dead-lettered with no version left to store it: it and its messages are dead.
    fn conversation_died(&mut self, item: &Item) {
        for message in item.messages.iter() {
            self.insert(Self::key("m", message), DeadId::Message(item.id.clone()));
        }
        self.insert(Self::key("c", &item.id), DeadId::Conversation);
    }

    /// A conversation recorded again may be stored after all.
    fn conversation_recorded(&mut self, id: &str) {
        if !self.current.is_empty() || !self.previous.is_empty() {
            self.remove(&Self::key("c", id));
        }
    }

    /// A conversation's version was stored: its messages are no longer dead.
    fn conversation_accepted(&mut self, item: &Item) {
        if self.current.is_empty() && self.previous.is_empty() {
            return;
        }
        self.remove(&Self::key("c", &item.id));
        for message in item.messages.iter() {
            self.remove(&Self::key("m", message));
        }
    }

    /// The dead-lettered conversation a dependent names, if it names one.
    fn dependency(&self, dep: &Dep) -> Option<String> {
        match dep {
            Dep::None => None,
            Dep::Message(message) => match self.get(&Self::key("m", message)) {
                Some(DeadId::Message(conversation)) => Some(conversation.clone()),
                _ => None,
            },
            Dep::Conversation(id) => self
                .get(&Self::key("c", id))
                .filter(|dead| **dead == DeadId::Conversation)
                .map(|_| id.clone()),
        }
    }
}

/// A record that depends on a conversation that was dead-lettered before it was recorded: the
/// worker dead-letters it too, with the conversation's id as its reason.
#[derive(Debug)]
pub(crate) struct Doomed {
    pub item: Item,
    /// The dead-lettered conversation it names (directly or through one of its messages).
    pub conversation: String,
}

/// The queue of one recorder.
#[derive(Debug)]
pub(crate) struct Queue {
    limits: Limits,
    slots: HashMap<String, Slot>,
    /// Messages of conversation versions not yet accepted, with their conversation's id.
    unaccepted: HashMap<String, String>,
    /// Feedback and events waiting for a conversation, by its id.
    waiting: HashMap<String, Vec<Item>>,
    ready: VecDeque<Entry>,
    /// Conversations held back by the minimum interval, and records waiting out a backoff of
    /// their own, by the time they may go.
    timed: BTreeMap<(Instant, u64), Entry>,
    /// Feedback and events in flight (a conversation in flight is in its slot), for reports.
    flying: HashMap<u64, (Kind, String)>,
    /// Conversations dead-lettered, and their messages, for what is recorded after them.
    dead: DeadIds,
    /// Feedback and events that name one of them, for the worker to dead-letter.
    doomed: Vec<Doomed>,
    /// Sequence numbers of the records held, pending, waiting or in flight.
    live: BTreeSet<u64>,
    bytes: usize,
    in_flight: usize,
    paused_until: Option<Instant>,
    /// Whether the worker, when it last took jobs, stopped because it could send no more: its
    /// window of writes in flight was full, or writes were paused. It looks at the queue again by
    /// itself when a write ends or the pause is over, so a record readied meanwhile need not wake it.
    worker_saturated: bool,
    pub(crate) counts: Counts,
}

impl Queue {
    /// How many entries wait for their turn; it grows when a record gives the worker new work.
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len() + self.doomed.len()
    }

    /// The records that name a dead-lettered conversation, for the worker to dead-letter; they
    /// leave the queue.
    pub(crate) fn take_doomed(&mut self) -> Vec<Doomed> {
        let doomed = std::mem::take(&mut self.doomed);
        for record in &doomed {
            self.counts.gone += 1;
            self.forget(&record.item);
        }
        doomed
    }

    /// Whether a record that gave the worker new work should wake it: not while the worker cannot
    /// send it anyway (see [`Queue::note_worker_room`]).
    pub(crate) fn worker_needs_waking(&self) -> bool {
        !self.worker_saturated
    }

    /// The worker's note, after it took what jobs it could, of whether it could have taken more:
    /// `window_full` when its window of writes in flight is.
    pub(crate) fn note_worker_room(&mut self, window_full: bool, now: Instant) {
        self.worker_saturated = window_full || self.holds_writes(now);
    }

    /// Whether no write may start now: the recorder's own limit is reached, or writes are paused.
    fn holds_writes(&self, now: Instant) -> bool {
        self.in_flight >= self.limits.max_in_flight
            || self.paused_until.is_some_and(|until| until > now)
    }

    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            slots: HashMap::default(),
            unaccepted: HashMap::default(),
            waiting: HashMap::default(),
            ready: VecDeque::new(),
            timed: BTreeMap::new(),
            flying: HashMap::default(),
            dead: DeadIds::default(),
            doomed: Vec::new(),
            live: BTreeSet::new(),
            bytes: 0,
            in_flight: 0,
            paused_until: None,
            worker_saturated: false,
            counts: Counts::default(),
        }
    }

    /// How many records are held (pending, waiting or in flight).
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The bytes of the bodies held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether every record with a sequence number up to `mark` has left the queue.
    pub(crate) fn done_through(&self, mark: u64) -> bool {
        self.live.first().is_none_or(|first| *first > mark)
    }

    /// Whether there is room for a little more (refilling from the spool waits for half).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn has_room_for_refill(&self) -> bool {
        self.live.len() < self.limits.max_records.div_ceil(2)
            && self.bytes < self.limits.max_bytes / 2
    }

    fn fits(&self, extra_records: usize, extra_bytes: usize, freed_bytes: usize) -> bool {
        self.live.len() + extra_records <= self.limits.max_records
            && (self.bytes - freed_bytes) + extra_bytes <= self.limits.max_bytes
    }

    /// Takes a record, coalescing a conversation with its pending version; the tests' shorthand
    /// for [`Queue::try_enqueue`], whose callers keep what a full queue gives back.
    #[cfg(test)]
    pub(crate) fn enqueue(&mut self, item: Item) -> Enqueued {
        self.try_enqueue(item).unwrap_or(Enqueued::Full)
    }

    /// Takes a record, coalescing a conversation with its pending version, or gives it back when the queue is full, for a
    /// caller that waits for room.
    /// The item comes back boxed: only a full queue pays for that.
    pub(crate) fn try_enqueue(&mut self, item: Item) -> Result<Enqueued, Box<Item>> {
        match item.kind {
            Kind::Conversation => self.enqueue_conversation(item),
            Kind::Feedback | Kind::Event => self.enqueue_dependent(item),
        }
    }

    fn enqueue_conversation(&mut self, item: Item) -> Result<Enqueued, Box<Item>> {
        let (replaced_bytes, replaced) = match self.slots.get(&item.id) {
            Some(slot) if item.seq <= slot.newest => {
                self.counts.coalesced += 1;
                return Ok(Enqueued::Stale);
            }
            Some(slot) => slot
                .pending
                .as_ref()
                .map_or((0, None), |old| (old.bytes(), Some(old.seq))),
            None => (0, None),
        };
        let extra_records = usize::from(replaced.is_none());
        if !self.fits(extra_records, item.bytes(), replaced_bytes) {
            return Err(Box::new(item));
        }
        // A chat re-sends every earlier message on each turn: only the new ones cost an allocation.
        let mut owned = 0;
        for message in item.messages.iter() {
            match self.unaccepted.get(message) {
                Some(owner) if *owner == item.id => {}
                _ => {
                    owned += 1;
                    // A message moved from another conversation no longer counts for it.
                    if let Some(previous) =
                        self.unaccepted.insert(message.to_owned(), item.id.clone())
                        && let Some(slot) = self.slots.get_mut(&previous)
                    {
                        slot.unaccepted_messages = slot.unaccepted_messages.saturating_sub(1);
                    }
                }
            }
        }
        self.dead.conversation_recorded(&item.id);
        let slot = self.slots.entry(item.id.clone()).or_default();
        slot.newest = item.seq;
        slot.unaccepted_messages += owned;
        self.bytes = self.bytes - replaced_bytes + item.bytes();
        self.live.insert(item.seq);
        if let Some(old) = replaced {
            self.live.remove(&old);
            self.counts.coalesced += 1;
        }
        let id = item.id.clone();
        slot.pending = Some(item);
        if !slot.queued && slot.in_flight.is_none() {
            slot.queued = true;
            self.ready.push_back(Entry::Conversation(id));
        }
        Ok(match replaced {
            Some(old) => Enqueued::Replaced(old),
            None => Enqueued::Queued,
        })
    }

    /// The conversation a feedback item or event must wait for, if any.
    fn blocker(&self, dep: &Dep) -> Option<String> {
        match dep {
            Dep::None => None,
            Dep::Message(message) => self.unaccepted.get(message).cloned(),
            Dep::Conversation(id) => self
                .slots
                .get(id)
                .filter(|slot| !slot.ever_accepted && !slot.is_idle())
                .map(|_| id.clone()),
        }
    }

    fn enqueue_dependent(&mut self, item: Item) -> Result<Enqueued, Box<Item>> {
        if !self.fits(1, item.bytes(), 0) {
            return Err(Box::new(item));
        }
        self.bytes += item.bytes();
        self.live.insert(item.seq);
        match self.blocker(&item.dep) {
            Some(conversation) => self.waiting.entry(conversation).or_default().push(item),
            None => match self.dead.dependency(&item.dep) {
                Some(conversation) => self.doomed.push(Doomed { item, conversation }),
                None => self.ready.push_back(Entry::Other(item)),
            },
        }
        Ok(Enqueued::Queued)
    }

    /// When the queue next has something to do by the clock alone: the end of a pause, or the
    /// end of a conversation's minimum interval.
    pub(crate) fn next_wake(&self, now: Instant) -> Option<Instant> {
        let timed = self.timed.keys().next().map(|(at, _)| *at);
        match self.paused_until.filter(|until| *until > now) {
            Some(until) => Some(until),
            None => timed,
        }
    }

    /// The next write to send, if the pause, the in-flight limit and the minimum interval allow one.
    pub(crate) fn next_job(&mut self, now: Instant) -> Option<Item> {
        if self.holds_writes(now) {
            return None;
        }
        while let Some(entry) = self.timed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let entry = entry.remove();
            self.ready.push_back(entry);
        }
        while let Some(entry) = self.ready.pop_front() {
            match entry {
                Entry::Other(item) => {
                    self.in_flight += 1;
                    self.flying.insert(item.seq, (item.kind, item.id.clone()));
                    return Some(item);
                }
                Entry::Conversation(id) => {
                    let Some(slot) = self.slots.get_mut(&id) else {
                        continue;
                    };
                    slot.queued = false;
                    if slot.in_flight.is_some() {
                        continue;
                    }
                    let Some(pending) = slot.pending.as_ref() else {
                        continue;
                    };
                    if let Some(last) = slot.last_sent {
                        let due = last + self.limits.min_interval;
                        if due > now {
                            slot.queued = true;
                            self.timed
                                .insert((due, pending.seq), Entry::Conversation(id));
                            continue;
                        }
                    }
                    let item = slot.pending.take()?;
                    slot.in_flight = Some((item.seq, item.messages.clone()));
                    slot.last_sent = Some(now);
                    self.in_flight += 1;
                    return Some(item);
                }
            }
        }
        None
    }

    /// Records how a write sent by [`Queue::next_job`] ended, and returns the records that
    /// waited on it and leave with it, dead-lettered.
    pub(crate) fn complete(&mut self, item: Item, ended: Ended, now: Instant) -> Vec<Item> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if item.kind != Kind::Conversation {
            self.flying.remove(&item.seq);
        }
        match ended {
            Ended::Retry { at } => {
                self.counts.retried += 1;
                self.put_back(item, Some(at));
                vec![]
            }
            Ended::Paused { wait } => {
                self.counts.retried += 1;
                let until = now + wait;
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                self.put_back(item, None);
                vec![]
            }
            Ended::Delivered => {
                // A pause the server asked for lasts its whole time, even when a write sent
                // before it succeeds meanwhile.
                self.counts.delivered += 1;
                self.forget(&item);
                if item.kind == Kind::Conversation {
                    self.conversation_done(&item, Done::Accepted)
                } else {
                    vec![]
                }
            }
            Ended::Dropped | Ended::DeadLettered => {
                self.counts.gone += 1;
                self.forget(&item);
                let done = if matches!(ended, Ended::Dropped) {
                    Done::Dropped
                } else {
                    Done::DeadLettered
                };
                if item.kind == Kind::Conversation {
                    self.conversation_done(&item, done)
                } else {
                    vec![]
                }
            }
        }
    }

    fn forget(&mut self, item: &Item) {
        if self.live.remove(&item.seq) {
            self.bytes = self.bytes.saturating_sub(item.bytes());
        }
    }

    /// A write that failed for now goes again: at `at` behind what is ready then, or first once
    /// the recorder-wide pause is over (`None`); a newer version of its conversation that
    /// arrived meanwhile replaces it.
    fn put_back(&mut self, item: Item, at: Option<Instant>) {
        if item.kind != Kind::Conversation {
            match at {
                Some(at) => {
                    self.timed.insert((at, item.seq), Entry::Other(item));
                }
                None => self.ready.push_front(Entry::Other(item)),
            }
            return;
        }
        let id = item.id.clone();
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.in_flight = None;
        // A retry waits for its backoff or the pause, not for the minimum interval.
        slot.last_sent = None;
        if let Some(newer) = slot.pending.as_mut() {
            // The conversation's budget carries over to its newer version, which waits out the
            // same backoff: one the API keeps failing ends dead-lettered even while it is updated.
            newer.attempts = newer.attempts.max(item.attempts);
            newer.first_failure = newer.first_failure.or(item.first_failure);
            if self.live.remove(&item.seq) {
                self.bytes = self.bytes.saturating_sub(item.bytes());
            }
            self.counts.coalesced += 1;
        } else {
            slot.pending = Some(item);
        }
        if !slot.queued {
            slot.queued = true;
            match (at, slot.pending.as_ref()) {
                (Some(at), Some(pending)) => {
                    self.timed
                        .insert((at, pending.seq), Entry::Conversation(id));
                }
                _ => self.ready.push_front(Entry::Conversation(id)),
            }
        }
    }

    /// After a conversation's write left the queue: its messages stop blocking, dependents whose
    /// message it held go, and a newer pending version is scheduled. When it was dead-lettered
    /// and no newer version is pending, what waits on it is dead-lettered with it and returned.
    fn conversation_done(&mut self, item: &Item, done: Done) -> Vec<Item> {
        let accepted = done == Done::Accepted;
        let mut dead = vec![];
        let Some(slot) = self.slots.get_mut(&item.id) else {
            return dead;
        };
        slot.in_flight = None;
        slot.ever_accepted |= accepted;
        let idle = slot.pending.is_none();
        if !idle && !slot.queued {
            slot.queued = true;
            self.ready.push_back(Entry::Conversation(item.id.clone()));
        }
        if accepted {
            self.dead.conversation_accepted(item);
            for message in item.messages.iter() {
                if self.unaccepted.get(message) == Some(&item.id) {
                    self.unaccepted.remove(message);
                    slot.unaccepted_messages = slot.unaccepted_messages.saturating_sub(1);
                }
            }
        }
        if idle && slot.unaccepted_messages > 0 {
            // No version is left to carry the messages that are still unaccepted (a message left
            // out of the last version, or a write refused for good): nothing else will release
            // what waits on them, so the server decides.
            slot.unaccepted_messages = 0;
            self.unaccepted.retain(|_, owner| *owner != item.id);
        }
        if idle && done == Done::DeadLettered {
            self.dead.conversation_died(item);
        }
        if let Some(waiting) = self.waiting.remove(&item.id) {
            if idle && done == Done::DeadLettered {
                // What they name was never stored here, and no version is left to store it.
                for dependent in waiting {
                    self.counts.gone += 1;
                    self.forget(&dependent);
                    dead.push(dependent);
                }
            } else {
                let (go, stay): (Vec<_>, Vec<_>) = waiting
                    .into_iter()
                    .partition(|dependent| idle || self.blocker(&dependent.dep).is_none());
                for dependent in go {
                    self.ready.push_back(Entry::Other(dependent));
                }
                if !stay.is_empty() {
                    self.waiting.insert(item.id.clone(), stay);
                }
            }
        }
        let min_interval = self.limits.min_interval;
        if let Some(slot) = self.slots.get(&item.id)
            && slot.is_idle()
            && !slot.queued
            && min_interval.is_zero()
        {
            self.slots.remove(&item.id);
        }
        if !min_interval.is_zero() && self.slots.len() > 2 * self.live.len() + 64 {
            self.prune(Instant::now());
        }
        dead
    }

    /// The records held (pending, waiting, in flight), oldest first, at most `max` of them.
    pub(crate) fn held(&self, max: usize) -> Vec<Held> {
        let mut held: Vec<Held> = Vec::with_capacity(self.live.len().min(max));
        let mut add = |seq: u64, kind: Kind, id: &str| {
            held.push(Held {
                seq,
                kind,
                id: id.to_owned(),
            });
        };
        for (id, slot) in &self.slots {
            if let Some(pending) = &slot.pending {
                add(pending.seq, Kind::Conversation, id);
            }
            if let Some((seq, _)) = &slot.in_flight {
                add(*seq, Kind::Conversation, id);
            }
        }
        let others = self.waiting.values().flatten();
        let ready = self.ready.iter().chain(self.timed.values());
        for item in others.chain(ready.filter_map(|entry| match entry {
            Entry::Other(item) => Some(item),
            Entry::Conversation(_) => None,
        })) {
            add(item.seq, item.kind, &item.id);
        }
        for (seq, (kind, id)) in &self.flying {
            add(*seq, *kind, id);
        }
        held.sort_by_key(|held| held.seq);
        held.truncate(max);
        held
    }

    /// Forgets idle conversations whose minimum interval has passed.
    fn prune(&mut self, now: Instant) {
        let min_interval = self.limits.min_interval;
        self.slots.retain(|_, slot| {
            !slot.is_idle()
                || slot.queued
                || slot.last_sent.is_some_and(|last| last + min_interval > now)
        });
    }

    /// Everything held, in order, for a report of what is left.
    #[cfg(test)]
    pub(crate) fn live(&self) -> Vec<u64> {
        self.live.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_records: 100,
            max_bytes: 1 << 20,
            max_in_flight: 8,
            min_interval: Duration::ZERO,
        }
    }

    fn conversation(seq: u64, id: &str, messages: &[&str]) -> Item {
        Item {
            seq,
            kind: Kind::Conversation,
            id: id.into(),
            body: Bytes::from(format!("{{\"v\":{seq}}}").into_bytes()),
            messages: MessageIds::collect(messages.iter().copied(), messages.len()),
            dep: Dep::None,
            attempts: 0,
            first_failure: None,
        }
    }

    fn feedback(seq: u64, message: &str) -> Item {
        Item {
            seq,
            kind: Kind::Feedback,
            id: format!("fb{seq}"),
            body: Bytes::from_static(b"{}"),
            messages: MessageIds::default(),
            dep: Dep::Message(message.into()),
            attempts: 0,
            first_failure: None,
        }
    }

    #[test]
    fn a_newer_pending_version_replaces_the_older_and_one_write_is_in_flight() {
        let now = Instant::now();
        let mut queue = Queue::new(limits());
        assert_eq!(
            queue.enqueue(conversation(1, "c", &["m1"])),
            Enqueued::Queued
        );
        let first = queue.next_job(now).map(|item| item.seq);
        assert_eq!(first, Some(1));
        assert_eq!(
            queue.enqueue(conversation(2, "c", &["m1", "m2"])),
            Enqueued::Queued
        );
        assert_eq!(
            queue.enqueue(conversation(3, "c", &["m1", "m2", "m3"])),
            Enqueued::Replaced(2)
        );
        // Version 3 waits while version 1 is in flight.
        assert!(queue.next_job(now).is_none());
        // An older version arriving late is never sent.
        assert_eq!(
            queue.enqueue(conversation(2, "c", &["m1"])),
            Enqueued::Stale
        );
        queue.complete(conversation(1, "c", &["m1"]), Ended::Delivered, now);
        assert_eq!(queue.next_job(now).map(|item| item.seq), Some(3));
        assert_eq!(queue.live(), vec![3]);
        assert_eq!(queue.counts.coalesced, 2);
    }

    #[test]
    fn a_failed_write_is_replaced_by_a_newer_version_or_sent_again_first() {
        let now = Instant::now();
        let mut queue = Queue::new(limits());
        queue.enqueue(conversation(1, "c", &["m1"]));
        queue.enqueue(conversation(2, "d", &["n1"]));
        let Some(first) = queue.next_job(now) else {
            panic!("a job");
        };
        queue.complete(
            first,
            Ended::Paused {
                wait: Duration::from_millis(10),
            },
            now,
        );
        assert!(queue.next_job(now).is_none(), "the whole queue pauses");
        let later = now + Duration::from_millis(11);
        let Some(again) = queue.next_job(later) else {
            panic!("the retried write");
        };
        assert_eq!(again.seq, 1, "the failed write goes first again");
        assert_eq!(queue.next_job(later).map(|item| item.seq), Some(2));
        queue.enqueue(conversation(3, "c", &["m1", "m2"]));
        queue.complete(
            again,
            Ended::Paused {
                wait: Duration::ZERO,
            },
            later,
        );
        assert_eq!(queue.next_job(later).map(|item| item.seq), Some(3));
        assert_eq!(queue.live(), vec![2, 3]);
    }

    #[test]
    fn a_write_that_fails_on_its_own_waits_alone_and_goes_behind_the_others() {
        let now = Instant::now();
        let mut queue = Queue::new(limits());
        queue.enqueue(conversation(1, "poison", &["p1"]));
        queue.enqueue(feedback(2, "p1"));
        queue.enqueue(conversation(3, "d", &["n1"]));
        let Some(first) = queue.next_job(now) else {
            panic!("a job");
        };
        assert_eq!(first.seq, 1);
        let later = now + Duration::from_secs(5);
        assert!(
            queue
                .complete(first, Ended::Retry { at: later }, now)
                .is_empty()
        );
        assert_eq!(
            queue.next_job(now).map(|item| item.seq),
            Some(3),
            "the others go on meanwhile"
        );
        assert!(queue.next_job(now).is_none(), "the feedback waits");
        assert_eq!(queue.next_wake(now), Some(later));
        let Some(again) = queue.next_job(later) else {
            panic!("the retried write");
        };
        assert_eq!(again.seq, 1);
        assert_eq!(
            queue.held(10),
            vec![
                Held {
                    seq: 1,
                    kind: Kind::Conversation,
                    id: "poison".into()
                },
                Held {
                    seq: 2,
                    kind: Kind::Feedback,
                    id: "fb2".into()
                },
                Held {
                    seq: 3,
                    kind: Kind::Conversation,
                    id: "d".into()
                },
            ]
        );
        let dead = queue.complete(again, Ended::DeadLettered, later);
        assert_eq!(
            dead.iter().map(|item| item.seq).collect::<Vec<_>>(),
            vec![2],
            "the feedback on its message goes with it"
        );
        assert_eq!(queue.live(), vec![3]);
        assert!(queue.next_job(later).is_none());
    }

    #[test]
    fn feedback_waits_for_the_write_that_holds_its_message() {
        let now = Instant::now();
        let mut queue = Queue::new(limits());
        queue.enqueue(conversation(1, "c", &["m1"]));
        queue.enqueue(feedback(2, "m1"));
        queue.enqueue(feedback(3, "elsewhere"));
        let Some(write) = queue.next_job(now) else {
            panic!("the conversation");
        };
        assert_eq!(
            queue.next_job(now).map(|item| item.seq),
            Some(3),
            "an unknown message does not wait"
        );
        assert!(queue.next_job(now).is_none(), "feedback on m1 waits");
        queue.complete(write, Ended::Delivered, now);
        assert_eq!(queue.next_job(now).map(|item| item.seq), Some(2));
    }

    #[test]
    fn the_queue_is_bounded_in_records_and_bytes() {
        let mut queue = Queue::new(Limits {
            max_records: 2,
            max_bytes: 20,
            ..limits()
        });
        assert_eq!(queue.enqueue(conversation(1, "a", &[])), Enqueued::Queued);
        assert_eq!(queue.enqueue(conversation(2, "b", &[])), Enqueued::Queued);
        assert_eq!(queue.enqueue(conversation(3, "c", &[])), Enqueued::Full);
        // Replacing a pending version needs no extra room.
        assert_eq!(
            queue.enqueue(conversation(4, "a", &[])),
            Enqueued::Replaced(1)
        );
        let mut small = Queue::new(Limits {
            max_bytes: 10,
            ..limits()
        });
        assert_eq!(small.enqueue(conversation(1, "a", &[])), Enqueued::Queued);
        assert_eq!(small.enqueue(conversation(2, "b", &[])), Enqueued::Full);
    }

    #[test]
    fn the_minimum_interval_holds_back_the_next_version() {
        let now = Instant::now();
        let mut queue = Queue::new(Limits {
            min_interval: Duration::from_secs(1),
            ..limits()
        });
        queue.enqueue(conversation(1, "c", &[]));
        let Some(first) = queue.next_job(now) else {
            panic!("the first version");
        };
        queue.complete(first, Ended::Delivered, now);
        queue.enqueue(conversation(2, "c", &[]));
        queue.enqueue(conversation(3, "c", &[]));
        assert!(queue.next_job(now).is_none());
        assert_eq!(queue.next_wake(now), Some(now + Duration::from_secs(1)));
        let Some(latest) = queue.next_job(now + Duration::from_secs(1)) else {
            panic!("the latest version after the interval");
        };
        assert_eq!(latest.seq, 3);
    }
}
