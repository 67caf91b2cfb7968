//! The write path for live services: [`Recorder`] takes conversations, feedback and events
//! without ever waiting on the network, and delivers them in the background in an order the API
//! can store, within bounds, through outages.

mod delivery;
mod queue;
mod record;
#[cfg(feature = "spool")]
mod spool;
mod stats;
mod worker;

#[cfg(feature = "spool")]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

pub use delivery::DeliveryCheck;
pub use queue::Kind as RecordKind;
use record::Prepared;
pub use record::{MessageIdList, Record, RecordableConversation};
#[cfg(feature = "spool")]
pub use spool::{DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy, SpoolStatus};
pub use stats::{FlushReport, MAX_REPORTED_IDS, RecordId, RecorderStats};

use self::queue::{Enqueued, Item, Limits, Queue};
use self::stats::Counters;
use crate::Client;
use crate::error::{Error, Result};

/// How many records a recorder holds in memory by default.
pub const DEFAULT_MAX_PENDING_RECORDS: usize = 10_000;

/// How many bytes of records a recorder holds in memory by default.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// How many writes a recorder has in flight at most, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// How many times a record may fail for a reason of its own before it is dead-lettered, by
/// default (see [`RecorderBuilder::max_attempts`]).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// How long after its first failure a record may keep being retried for failures of its own
/// before it is dead-lettered, by default (see [`RecorderBuilder::max_retry_age`]).
pub const DEFAULT_MAX_RETRY_AGE: Duration = Duration::from_secs(10 * 60);

/// A record's retry budget, for failures of its own (an outage costs it nothing).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryBudget {
    pub max_attempts: u32,
    pub max_age: Duration,
}

/// How long a recorder keeps delivering after its last clone is dropped without
/// [`Recorder::shutdown`], by default; see [`RecorderBuilder::drop_timeout`].
pub const DEFAULT_DROP_TIMEOUT: Duration = Duration::from_secs(5);

/// What became of a recorded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Queued for sending.
    Queued,
    /// Queued in place of an older pending version of the same conversation, which will not be sent.
    Coalesced,
    /// A newer version of the same conversation was already recorded; this one will not be sent.
    Superseded,
    /// Written to the spool only, because the queue in memory is full; it is sent when there is room.
    Spilled,
    /// Left out by sampling.
    SampledOut,
    /// Dropped because the queue was full and there is no spool (counted, and warned about once per burst).
    DroppedQueueFull,
    /// Dropped because the queue was full and the spool is at its size limit.
    DroppedSpoolFull,
    /// Dropped because the queue was full and the spool could not write it (no space left on
    /// the device, an I/O error, or a damaged spool being replaced).
    DroppedSpoolUnwritable,
}

/// The answer of a recording call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded {
    /// The record's id: the caller's, or the one the recorder gave it (a UUID), so that every
    /// delivery of it, retries and replays from the spool included, is an upsert.
    pub id: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// A record that will never be sent again, handed to [`RecorderBuilder::dead_letter`]'s callback:
/// the API refused it for good (400, 401, 403, 404, 413, 422, or it was refused locally), it
/// failed past its retry budget, or it depends on a conversation that was dead-lettered.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The record's id.
    pub id: String,
    /// The record, when its body still decodes.
    pub record: Option<Record>,
    /// The JSON body as it was recorded (before `before_send`).
    pub body: Vec<u8>,
    /// Why it was refused: the API's answer, its last failure, or what it depended on.
    pub error: Error,
    /// Which of the three it was.
    pub reason: DeadLetterReason,
}

/// Why a record was dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The API refused it for good, or it could not be sent at all.
    Refused,
    /// It kept failing for now, for reasons of its own, past its retry budget
    /// ([`RecorderBuilder::max_attempts`], [`RecorderBuilder::max_retry_age`]).
    RetryBudget {
        /// How many times it failed.
        attempts: u32,
        /// How long after its first failure it was given up.
        age: Duration,
    },
    /// It names a message or conversation whose write was dead-lettered: the API would refuse it.
    Dependency {
        /// The kind of the record it depends on.
        kind: RecordKind,
        /// The id of the record it depends on.
        id: String,
    },
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused => f.write_str("refused"),
            Self::RetryBudget { attempts, age } => write!(
                f,
                "out of its retry budget after {attempts} failures over {} ms",
                age.as_millis()
            ),
            Self::Dependency { kind, id } => write!(f, "depends on {kind} {id}, dead-lettered"),
        }
    }
}

// No `RefUnwindSafe` bound: the worker catches a panic of either and drops what the call held,
// so no state it could leave half-changed is used afterwards.
type BeforeSend = dyn Fn(Record) -> Option<Record> + Send + Sync;
type DeadLetterFn = dyn Fn(DeadLetter) + Send + Sync;

/// Settings of a [`Recorder`]; start from [`Recorder::builder`].
pub struct RecorderBuilder {
    client: Client,
    limits: Limits,
    retry_budget: RetryBudget,
    before_send: Option<Arc<BeforeSend>>,
    dead_letter: Option<Arc<DeadLetterFn>>,
    #[cfg(feature = "spool")]
    spool: Option<PathBuf>,
    #[cfg(feature = "spool")]
    max_spool_bytes: u64,
    #[cfg(feature = "spool")]
    fsync: FsyncPolicy,
    sample_rate: f64,
    drop_timeout: Duration,
}

impl std::fmt::Debug for RecorderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("RecorderBuilder");
        debug
            .field("client", &self.client)
            .field("limits", &self.limits);
        #[cfg(feature = "spool")]
        debug
            .field("spool", &self.spool)
            .field("fsync", &self.fsync);
        debug.finish_non_exhaustive()
    }
}

impl RecorderBuilder {
    /// At most this many records in memory (default [`DEFAULT_MAX_PENDING_RECORDS`], at least 1).
    /// A newer version of a pending conversation takes the older one's place and counts once.
    pub fn max_pending_records(mut self, records: usize) -> Self {
        self.limits.max_records = records.max(1);
        self
    }

    /// At most this many bytes of records (as JSON) in memory (default [`DEFAULT_MAX_PENDING_BYTES`]).
    pub fn max_pending_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_bytes = bytes.max(1);
        self
    }

    /// At most this many writes in flight at once (default [`DEFAULT_MAX_IN_FLIGHT`], at least 1).
    /// One conversation never has more than one.
    pub fn max_in_flight(mut self, writes: usize) -> Self {
        self.limits.max_in_flight = writes.max(1);
        self
    }

    /// Sends a conversation at most once per `interval` (default zero: as soon as possible).
    /// A fast chat's full copy is then sent less often, always its latest version.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.limits.min_interval = interval;
        self
    }

    /// A hook that sees every record just before it is sent, off the request path, and may change
    /// it (redact a field) or drop it (`None`). A panic in it drops the record and counts it:
    /// it fails closed, never sending what it did not finish with.
    pub fn before_send(
        mut self,
        hook: impl Fn(Record) -> Option<Record> + Send + Sync + 'static,
    ) -> Self {
        self.before_send = Some(Arc::new(hook));
        self
    }

    /// A callback for records the API refused for good. It runs on the worker's thread, so it
    /// should be quick (a panic in it is caught).
    pub fn dead_letter(mut self, callback: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letter = Some(Arc::new(callback));
        self
    }

    /// A record that fails for now for a reason of its own (a 500 or a timeout while other
    /// records go through) is dead-lettered after this many failures (default
    /// [`DEFAULT_MAX_ATTEMPTS`], at least 1), with what depends on it. Failures of the server's
    /// (429, 503, `Retry-After`, several records failing in a row) do not count.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry_budget.max_attempts = attempts.max(1);
        self
    }

    /// A record that fails for now for a reason of its own is dead-lettered, with what depends on
    /// it, once this long has passed since its first failure (default [`DEFAULT_MAX_RETRY_AGE`]).
    pub fn max_retry_age(mut self, age: Duration) -> Self {
        self.retry_budget.max_age = age;
        self
    }

    /// Keeps this share of conversations (0 to 1; default 1, all of them), chosen by their id, so
    /// that the same conversation is kept or left out on every turn and in every process. Its
    /// feedback and events follow its decision: those naming a conversation by id always, those
    /// naming one of its messages when the conversation was recorded through this recorder (the
    /// last half million messages left out are remembered, as 8-byte hashes).
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = if rate.is_nan() {
            1.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self
    }

    /// How long the worker keeps delivering after the last clone of the recorder is dropped
    /// without [`Recorder::shutdown`] (default [`DEFAULT_DROP_TIMEOUT`], 5 s). Past it, the worker
    /// stops even with the API down: writes in flight are abandoned, its thread and client are
    /// released, and so is the spool, which keeps what was not delivered for the next recorder on
    /// its directory. Without a spool, what was not delivered by then is lost.
    pub fn drop_timeout(mut self, timeout: Duration) -> Self {
        self.drop_timeout = timeout;
        self
    }

    /// Keeps every record in a crash-safe spool in `dir` (a SQLite database, created readable by
    /// its owner only) before the recording call returns, so that a process killed at any point
    /// loses nothing it recorded: a recorder started later on the same directory delivers what
    /// was left, in order, before newer versions of the same conversations. When the queue in
    /// memory is full, records stay in the spool only and are read back when there is room,
    /// instead of being dropped. A second process on the same directory is refused.
    ///
    /// A damaged database is set aside (kept for inspection) and replaced by a new one with the
    /// records that could be read; a full disk keeps records in memory, within the queue's bounds,
    /// with a warning. The crate's documentation ("Recording from a live service") gives the
    /// database's schema, for `sqlite3`.
    #[cfg(feature = "spool")]
    pub fn spool(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool = Some(dir.into());
        self
    }

    /// The size limit of the spool's database (default [`DEFAULT_MAX_SPOOL_BYTES`]); past it, a
    /// record the queue cannot take either is dropped and counted.
    #[cfg(feature = "spool")]
    pub fn max_spool_bytes(mut self, bytes: u64) -> Self {
        self.max_spool_bytes = bytes;
        self
    }

    /// When the spool is forced to the disk (default [`FsyncPolicy::Interval`] of one second).
    #[cfg(feature = "spool")]
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Starts the recorder and its worker thread, replaying what the spool holds.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the worker thread cannot be started, or the spool cannot be
    /// opened (another process holds it, or it cannot be created or read).
    pub fn build(self) -> Result<Recorder> {
        let spool_bytes = Arc::new(AtomicU64::new(0));
        #[cfg(feature = "spool")]
        let (spool, spool_opened) = match &self.spool {
            Some(dir) => match spool::Spool::open(
                dir,
                self.max_spool_bytes,
                self.fsync,
                Arc::clone(&spool_bytes),
            ) {
                Ok((spool, opened)) => (Some(spool), opened),
                // A full disk is no configuration error: records are kept in memory, within the
                // queue's bounds, as when the disk fills later.
                Err(error) if spool::is_no_space(&error) => {
                    tracing::warn!(
                        spool = %dir.display(),
                        error = %error,
                        "recorder: the spool cannot take records (no space left on device); they stay in memory, within its bounds, and a crash would lose them; see Recorder::stats"
                    );
                    (None, spool::Opened::default())
                }
                Err(error) => return Err(error),
            },
            None => (None, spool::Opened::default()),
        };
        #[cfg(feature = "spool")]
        let (next_seq, first_spilled, spilled_now) =
            spool.as_ref().map_or((1, u64::MAX, 0), |spool| {
                (
                    spool.next_seq(),
                    spool.first_spilled().unwrap_or(u64::MAX),
                    spool.spilled(),
                )
            });
        #[cfg(not(feature = "spool"))]
        let (next_seq, first_spilled, spilled_now) = (1, u64::MAX, 0);
        let (progress, _) = watch::channel(0u64);
        let counters = Counters::default();
        #[cfg(feature = "spool")]
        if spool_opened.set_aside.is_some() || spool_opened.damaged_log {
            Counters::add(&counters.spool_set_aside);
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(self.limits)),
            changed: Condvar::new(),
            progress,
            wake: Notify::new(),
            counters,
            next_seq: AtomicU64::new(next_seq),
            #[cfg(feature = "spool")]
            spool: Mutex::new(spool),
            #[cfg(feature = "spool")]
            spool_failing: Mutex::new(None),
            first_spilled: AtomicU64::new(first_spilled),
            spilled_now: AtomicU64::new(spilled_now),
            spool_bytes,
            failures: AtomicU32::new(0),
            alive: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            stop_at: Mutex::new(None),
            drop_timeout: self.drop_timeout,
            dropping: Mutex::new(None),
            policy: self.client.retry_policy().clone(),
            retry_budget: self.retry_budget,
            client: self.client,
            before_send: self.before_send,
            dead_letter: self.dead_letter,
            sample_rate: self.sample_rate,
            sampled_out: Mutex::new(SampledOut::default()),
            #[cfg(test)]
            crash: AtomicBool::new(false),
        });
        worker::spawn(Arc::clone(&shared)).map_err(|error| {
            Error::configuration_with_source("cannot start the recorder's worker thread", error)
        })?;
        Ok(Recorder {
            handle: Arc::new(Handle { shared }),
        })
    }
}

/// What the recording calls and the worker share.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    /// Signalled on every change that a blocking `flush` may wait for.
    changed: Condvar,
    /// Bumped on the same changes, for an async `flush` on any runtime.
    progress: watch::Sender<u64>,
    /// Wakes the worker: a permit is kept when it is not waiting, so no wake-up is lost.
    wake: Notify,
    counters: Counters,
    next_seq: AtomicU64,
    /// Transient failures in a row, for the recorder-wide backoff.
    failures: AtomicU32,
    alive: AtomicBool,
    /// No more records are taken.
    closed: AtomicBool,
    /// The worker stops once the queue is empty.
    closing: AtomicBool,
    /// The worker stops now.
    aborted: AtomicBool,
    /// The worker stops at this time: the last handle was dropped without a shutdown.
    stop_at: Mutex<Option<Instant>>,
    drop_timeout: Duration,
    /// Drops in the current burst, for one warning per burst.
    dropping: Mutex<Option<u64>>,
    policy: crate::RetryPolicy,
    retry_budget: RetryBudget,
    client: Client,
    before_send: Option<Arc<BeforeSend>>,
    dead_letter: Option<Arc<DeadLetterFn>>,
    /// The spool, taken out when the recorder stops so that its lock is released.
    #[cfg(feature = "spool")]
    spool: Mutex<Option<spool::Spool>>,
    /// Why the spool cannot take records now, warned about once.
    #[cfg(feature = "spool")]
    spool_failing: Mutex<Option<String>>,
    /// The place of the first record held by the spool only (`u64::MAX` for none), read without
    /// its lock.
    first_spilled: AtomicU64,
    spilled_now: AtomicU64,
    /// The size of the spool's files, published by its checkpoints.
    spool_bytes: Arc<AtomicU64>,
    sample_rate: f64,
    sampled_out: Mutex<SampledOut>,
    /// Makes the worker panic, so that tests can check what a dead worker leaves behind.
    #[cfg(test)]
    crash: AtomicBool,
}

/// Messages of conversations left out by sampling, in two generations so that memory stays
/// bounded, as 64-bit hashes so that it does not grow with the ids' length: about 5 MB at most.
/// A collision (odds of one in 2^64 / 500,000 per lookup) would leave one feedback item out.
#[derive(Debug, Default)]
struct SampledOut {
    hasher: foldhash::fast::RandomState,
    current: std::collections::HashSet<u64, foldhash::fast::RandomState>,
    previous: std::collections::HashSet<u64, foldhash::fast::RandomState>,
}

/// How many message ids one generation of [`SampledOut`] holds.
const SAMPLED_OUT_GENERATION: usize = 250_000;

impl SampledOut {
    fn hash(&self, id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    fn insert(&mut self, id: &str) {
        if self.current.len() >= SAMPLED_OUT_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        let hash = self.hash(id);
        self.current.insert(hash);
    }

    fn contains(&self, id: &str) -> bool {
        let hash = self.hash(id);
        self.current.contains(&hash) || self.previous.contains(&hash)
    }
}

/// Whether a conversation is kept at `rate`: FNV-1a of its id, a hash that is the same in every
/// process and version, scaled to [0, 1).
fn sampled_in(id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((hash >> 11) as f64 / (1u64 << 53) as f64) < rate
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue's rules keep it consistent between calls; a panic elsewhere while it was
        // held leaves nothing half-done that matters more than losing the recorder would.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes whoever waits for the queue to move. The queue's lock is taken and released first:
    /// a blocking waiter checks its condition under that lock, so it is either waiting already or
    /// will see the change, and no wake-up is lost; an async waiter subscribed to `progress`
    /// before it checked. So neither needs to poll. It is never called with the queue's lock held.
    fn progressed(&self) {
        drop(self.lock());
        self.changed.notify_all();
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The pause after `failures` transient failures in a row (of the server's, for a pause of
    /// every write; of one record, for its own): the server's `Retry-After` when it sent one,
    /// else the client's own backoff with jitter (the transport's, so that the two pace alike),
    /// capped at its `max_backoff` either way.
    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(after) => after.min(self.policy.max_backoff),
            None => self.policy.delay(failures.max(1), None),
        }
    }

    /// The sampling decision of a record, which its conversation's decides.
    fn keeps(&self, prepared: &Prepared) -> bool {
        if self.sample_rate >= 1.0 {
            return true;
        }
        if let Some(conversation) = &prepared.conversation {
            let keep = sampled_in(conversation, self.sample_rate);
            if !keep && prepared.kind == queue::Kind::Conversation {
                let mut out = self
                    .sampled_out
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for message in prepared.messages.iter() {
                    out.insert(message);
                }
            }
            return keep;
        }
        match &prepared.dep {
            queue::Dep::Message(message) => !self
                .sampled_out
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(message),
            _ => true,
        }
    }

    /// Counts a dropped record and warns once at the start of a burst of drops.
    fn note_drop(&self, reason: &'static str) {
        let mut dropping = self.dropping.lock().unwrap_or_else(PoisonError::into_inner);
        match dropping.as_mut() {
            Some(count) => *count += 1,
            None => {
                tracing::warn!(
                    reason,
                    "recorder: dropping records ({reason}); one warning per burst, see Recorder::stats"
                );
                *dropping = Some(1);
            }
        }
    }

    /// Ends a burst of drops, saying how many there were.
    fn note_taken(&self) {
        let mut dropping = self.dropping.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = dropping.take() {
            tracing::warn!(
                dropped = count,
                "recorder: records are taken again after a burst of drops"
            );
        }
    }

    fn record(&self, record: Record) -> Result<Recorded> {
        self.record_prepared(|| record.prepare())
    }

    fn record_prepared(&self, prepare: impl FnOnce() -> Result<Prepared>) -> Result<Recorded> {
        Ok(match self.try_record(prepare)? {
            Ok(recorded) => recorded,
            Err(item) => self.drop_queue_full(*item),
        })
    }

    /// Counts and names a record the queue had no room for, without a spool to hold it.
    fn drop_queue_full(&self, item: Item) -> Recorded {
        Counters::add(&self.counters.dropped_queue_full);
        self.counters.named.note_dropped(item.kind, &item.id);
        self.note_drop("the queue is full");
        Recorded {
            id: item.id,
            outcome: Outcome::DroppedQueueFull,
        }
    }

    /// Queues an item, or gives it back when the queue is full; also says whether the worker
    /// should be woken for it.
    fn enqueue_locked(
        queue: &mut Queue,
        item: Item,
    ) -> std::result::Result<(Enqueued, bool), Box<Item>> {
        // Whether the record gave the worker something new to send that it can send now. A newer
        // version of a conversation that is already waiting or in flight does not: the worker
        // finds it when it takes the conversation's turn; nor does a record that comes while the
        // worker's window is full: it takes the queue again when a write ends. Waking the worker
        // then would cost the call a system call (an `eventfd` write) for nothing.
        let ready_before = queue.ready_len();
        let enqueued = queue.try_enqueue(item)?;
        let readied = queue.ready_len() > ready_before && queue.worker_needs_waking();
        Ok((enqueued, readied))
    }

    /// Queues an item as [`Shared::enqueue_locked`] does, answering [`Enqueued::Full`] when the
    /// queue has no room (the caller keeps what it needs of the item, as the spool keeps its body).
    #[cfg(feature = "spool")]
    fn enqueue(&self, item: Item) -> (Enqueued, bool) {
        Self::enqueue_locked(&mut self.lock(), item).unwrap_or((Enqueued::Full, false))
    }

    /// The answer for a record the queue took, waking the worker when it has something new.
    fn taken(&self, id: String, enqueued: Enqueued, readied: bool) -> Recorded {
        let outcome = match enqueued {
            Enqueued::Queued => Outcome::Queued,
            Enqueued::Replaced(_) => Outcome::Coalesced,
            Enqueued::Stale => Outcome::Superseded,
            Enqueued::Full => Outcome::DroppedQueueFull,
        };
        self.note_taken();
        if readied {
            self.wake.notify_one();
        }
        Recorded { id, outcome }
    }

    /// Waits, blocking the thread, until the queue takes `item` or `deadline` passes (then it is
    /// dropped and counted as the non-waiting calls drop it).
    fn wait_for_room_blocking(&self, item: Box<Item>, deadline: Instant) -> Recorded {
        let mut item = item;
        let mut queue = self.lock();
        loop {
            let id = item.id.clone();
            match Self::enqueue_locked(&mut queue, *item) {
                Ok((enqueued, readied)) => {
                    drop(queue);
                    return self.taken(id, enqueued, readied);
                }
                Err(back) => item = back,
            }
            let now = Instant::now();
            if now >= deadline
                || !self.alive.load(Ordering::SeqCst)
                || self.closed.load(Ordering::SeqCst)
            {
                drop(queue);
                return self.drop_queue_full(*item);
            }
            // The worker's end, the shutdown and every move of the queue call `progressed`.
            queue = match self.changed.wait_timeout(queue, deadline - now) {
                Ok((queue, _)) => queue,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// [`Shared::wait_for_room_blocking`] for async code: it awaits instead of blocking.
    async fn wait_for_room(&self, item: Box<Item>, deadline: Instant) -> Recorded {
        let mut item = item;
        let mut progress = self.progress.subscribe();
        loop {
            let id = item.id.clone();
            let offered = Self::enqueue_locked(&mut self.lock(), *item);
            match offered {
                Ok((enqueued, readied)) => return self.taken(id, enqueued, readied),
                Err(back) => item = back,
            }
            let now = Instant::now();
            if now >= deadline
                || !self.alive.load(Ordering::SeqCst)
                || self.closed.load(Ordering::SeqCst)
            {
                return self.drop_queue_full(*item);
            }
            let _ = tokio::time::timeout(deadline - now, progress.changed()).await;
        }
    }

    /// Records as [`Shared::record_prepared`] does, but gives the item back instead of dropping
    /// it when the queue is full and there is no spool to hold it.
    fn try_record(
        &self,
        prepare: impl FnOnce() -> Result<Prepared>,
    ) -> Result<std::result::Result<Recorded, Box<Item>>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::invalid_input(
                "the recorder is shut down; it takes no more records",
            ));
        }
        let prepared = prepare()?;
        Counters::add(&self.counters.recorded);
        let id = prepared.id.clone();
        if !self.keeps(&prepared) {
            Counters::add(&self.counters.sampled_out);
            return Ok(Ok(Recorded {
                id,
                outcome: Outcome::SampledOut,
            }));
        }
        #[cfg(feature = "spool")]
        let prepared = match self.record_spooled(prepared) {
            std::ops::ControlFlow::Break(recorded) => return Ok(Ok(recorded)),
            std::ops::ControlFlow::Continue(prepared) => prepared,
        };
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        match Self::enqueue_locked(&mut self.lock(), prepared.into_item(seq)) {
            Ok((enqueued, readied)) => Ok(Ok(self.taken(id, enqueued, readied))),
            Err(item) => Ok(Err(item)),
        }
    }

    fn report(&self, complete: bool) -> FlushReport {
        let stats = self.stats();
        let pending_ids = self.lock().held(MAX_REPORTED_IDS);
        FlushReport {
            complete,
            delivered: stats.sent,
            pending: stats.pending,
            dropped: stats.dropped(),
            dead_lettered: stats.dead_lettered,
            worker_running: self.alive.load(Ordering::SeqCst),
            pending_ids: pending_ids
                .into_iter()
                .map(|held| RecordId {
                    kind: held.kind,
                    id: held.id,
                })
                .collect(),
            dropped_ids: self.counters.named.dropped(),
            dead_lettered_ids: self.counters.named.dead_lettered(),
        }
    }

    fn stats(&self) -> RecorderStats {
        let (counts, pending, in_flight, bytes) = {
            let queue = self.lock();
            (queue.counts, queue.len(), queue.in_flight(), queue.bytes())
        };
        let c = &self.counters;
        RecorderStats {
            recorded: Counters::get(&c.recorded),
            coalesced: counts.coalesced,
            sent: counts.delivered,
            retried: counts.retried,
            sampled_out: Counters::get(&c.sampled_out),
            dropped_queue_full: Counters::get(&c.dropped_queue_full),
            dropped_spool_full: Counters::get(&c.dropped_spool_full),
            dropped_spool_unwritable: Counters::get(&c.dropped_spool_unwritable),
            memory_only: Counters::get(&c.memory_only),
            spool_set_aside: Counters::get(&c.spool_set_aside),
            dropped_before_send: Counters::get(&c.dropped_before_send),
            dead_lettered: Counters::get(&c.dead_lettered),
            spilled: Counters::get(&c.spilled),
            pending: pending as u64 + self.spilled_now.load(Ordering::SeqCst),
            in_flight: in_flight as u64,
            pending_bytes: bytes as u64,
            spool_bytes: self.spool_bytes.load(Ordering::SeqCst),
        }
    }

    /// Whether a wait for everything up to `mark` is over: done, or nothing more will happen.
    fn settled(&self, mark: u64) -> bool {
        !self.alive.load(Ordering::SeqCst) || self.done_through(mark)
    }

    /// Whether every record up to `mark` left the queue and the spool's backlog.
    fn done_through(&self, mark: u64) -> bool {
        self.spilled_done_through(mark) && self.lock().done_through(mark)
    }

    /// Whether the spool holds nothing recorded up to `mark` that is not in memory.
    fn spilled_done_through(&self, mark: u64) -> bool {
        let first = self.first_spilled.load(Ordering::SeqCst);
        first == u64::MAX || first > mark
    }

    fn mark(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst).saturating_sub(1)
    }

    fn wait_blocking(&self, mark: u64, deadline: Instant) -> bool {
        let mut queue = self.lock();
        loop {
            if queue.done_through(mark) && self.spilled_done_through(mark) {
                return true;
            }
            if !self.alive.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // The worker's end and every move of the queue or the spool call `progressed`.
            queue = match self.changed.wait_timeout(queue, deadline - now) {
                Ok((queue, _)) => queue,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    async fn wait(&self, mark: u64, deadline: Instant) -> bool {
        let mut progress = self.progress.subscribe();
        loop {
            if self.settled(mark) {
                return self.done_through(mark);
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(deadline - now, progress.changed()).await;
        }
    }

    fn begin_shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        // Callers waiting for room stop waiting.
        self.progressed();
    }

    /// Tells the worker to stop now. It releases the spool as it ends (see `worker::Alive`).
    fn end_shutdown(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Whether the worker must stop now: told to, or its deadline after a drop has passed.
    pub(crate) fn must_stop(&self, now: Instant) -> bool {
        self.aborted.load(Ordering::SeqCst) || self.stop_at().is_some_and(|at| now >= at)
    }

    /// How long the worker may wait before it must look at its deadline again.
    pub(crate) fn until_stop(&self, now: Instant) -> Duration {
        self.stop_at()
            .map_or(Duration::MAX, |at| at.saturating_duration_since(now))
    }

    fn stop_at(&self) -> Option<Instant> {
        *self.stop_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits a little for the worker to stop after [`Shared::end_shutdown`], so that the spool's
    /// lock is released when `shutdown` returns; on the executor, it awaits and never blocks it.
    async fn wait_stopped(&self) {
        let deadline = Instant::now() + WORKER_STOP_WAIT;
        let mut progress = self.progress.subscribe();
        while self.alive.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            // The worker's last act is to bump `progress`.
            let _ = tokio::time::timeout(deadline - now, progress.changed()).await;
        }
    }

    /// [`Shared::wait_stopped`] for a caller without a runtime.
    fn wait_stopped_blocking(&self) {
        let deadline = Instant::now() + WORKER_STOP_WAIT;
        let mut queue = self.lock();
        while self.alive.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            // The worker's end calls `progressed`, which takes the queue's lock.
            queue = match self.changed.wait_timeout(queue, deadline - now) {
                Ok((queue, _)) => queue,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The instant `timeout` from now, or about a century from now for a timeout too large to add.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// How long `shutdown` waits for the worker to stop after its deadline: a stopped worker has
/// released the spool (it abandons writes in flight at once).
const WORKER_STOP_WAIT: Duration = Duration::from_millis(100);

/// The owner of a recorder's worker: when the last [`Recorder`] clone is dropped, the worker is
/// told to deliver what it holds and stop, by the drop timeout at the latest.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let shared = &self.shared;
        let deadline = Instant::now().checked_add(shared.drop_timeout);
        *shared
            .stop_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = deadline;
        shared.begin_shutdown();
    }
}

/// Without the `spool` feature, a recorder has no spool: these are its no-ops.
#[cfg(not(feature = "spool"))]
impl Shared {
    fn has_spilled(&self) -> bool {
        false
    }

    fn refill(&self) {}

    fn acknowledge(&self, _item: &Item) {}

    fn release_spool(&self) {}
}

/// Records conversations, feedback and events from a live service, and delivers them in the background.
///
/// - **Never blocks.** `record_*` is a synchronous call that checks the record, serializes it and
///   queues it; it never waits on the network, from async or sync code, on any runtime flavour.
///   The worker is a thread of its own with its own runtime.
/// - **Per-conversation order.** At most one write per conversation id is in flight; a newer
///   version replaces a pending older one, and an older version is never sent after a newer one.
/// - **Dependencies.** Feedback and events that name a message or conversation recorded here wait
///   until a write containing it was accepted. Give messages ids to attach feedback to them.
/// - **Bounded.** At most [`RecorderBuilder::max_pending_records`] records and
///   [`RecorderBuilder::max_pending_bytes`] bytes in memory; when full, the newest record is
///   dropped and counted, with one warning per burst.
/// - **Polite, without head-of-line blocking.** Several writes in flight. A record that fails for
///   now for a reason of its own (a 500, a dropped connection, a timeout, while other records go
///   through) waits out a backoff of its own while the others go on, and is dead-lettered past
///   its retry budget ([`RecorderBuilder::max_attempts`], [`RecorderBuilder::max_retry_age`]),
///   with the feedback and events that depend on it. Signals about the server (429, 503,
///   `Retry-After`, several records failing in a row) pause every write instead, for the
///   server's `Retry-After` or the client's backoff, and cost no record its budget. Records
///   refused for good go to the dead-letter callback, are counted and named in reports.
/// - **Deadlines.** [`Recorder::flush`] and [`Recorder::shutdown`] return a [`FlushReport`] by
///   their deadline, whatever the network or the worker does.
///
/// Dropping the last clone without [`Recorder::shutdown`] tells the worker to deliver what it
/// holds and stop, without waiting for it; it stops by [`RecorderBuilder::drop_timeout`] at the
/// latest, even with the API down, and releases its thread, client and spool. Records still held
/// when the process exits, or at that deadline, are lost without a spool (a spool keeps them for
/// the next run). Call `shutdown` (or `shutdown_blocking`) before exiting.
///
/// ```no_run
/// use std::time::Duration;
/// use inkeep_analytics::types::{CreateOpenAiConversation, CreateOpenAiMessage, FeedbackInput};
/// use inkeep_analytics::{Client, Recorder};
///
/// # fn demo() -> inkeep_analytics::Result<()> {
/// let recorder = Recorder::builder(Client::from_env()?)
///     .min_interval(Duration::from_secs(2))
///     .dead_letter(|letter| eprintln!("refused {}: {}", letter.id, letter.error))
///     .build()?;
///
/// // On every turn of a chat, record the whole conversation: only the latest version is sent.
/// let conversation = CreateOpenAiConversation::new(vec![
///     CreateOpenAiMessage::user("How do I rotate a key?").with_id("msg_1")?,
///     CreateOpenAiMessage::assistant("Open Settings, then Keys.").with_id("msg_2")?,
/// ])
/// .with_id("conv_1")?;
/// recorder.record_conversation(conversation)?;
/// // Sent once conv_1's write holding msg_2 was accepted.
/// recorder.record_feedback(FeedbackInput::positive("msg_2"))?;
///
/// let report = recorder.shutdown_blocking(Duration::from_secs(5));
/// assert!(report.complete, "{} records not delivered", report.pending);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Recorder {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Settings for a recorder that sends through `client` (its key, base URL, timeouts and backoff).
    pub fn builder(client: Client) -> RecorderBuilder {
        RecorderBuilder {
            client,
            limits: Limits {
                max_records: DEFAULT_MAX_PENDING_RECORDS,
                max_bytes: DEFAULT_MAX_PENDING_BYTES,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                min_interval: Duration::ZERO,
            },
            retry_budget: RetryBudget {
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_age: DEFAULT_MAX_RETRY_AGE,
            },
            before_send: None,
            dead_letter: None,
            #[cfg(feature = "spool")]
            spool: None,
            #[cfg(feature = "spool")]
            max_spool_bytes: DEFAULT_MAX_SPOOL_BYTES,
            #[cfg(feature = "spool")]
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
            sample_rate: 1.0,
            drop_timeout: DEFAULT_DROP_TIMEOUT,
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Records a conversation, whole, as `POST /conversations` takes it; call it again on every
    /// turn with every message.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] at once for a conversation without messages, one over the API's
    /// body limit, or after [`Recorder::shutdown`].
    pub fn record_conversation(
        &self,
        conversation: impl Into<crate::types::CreateConversation>,
    ) -> Result<Recorded> {
        self.shared()
            .record(Record::Conversation(conversation.into()))
    }

    /// Records a conversation the caller keeps, as a chat keeps its history between turns: it is
    /// serialized from the reference, so that the call neither needs a copy of it nor drops one
    /// on the request path. It takes any of the three kinds or a
    /// [`CreateConversation`](crate::types::CreateConversation).
    ///
    /// A conversation without an id is copied once to be given one, as
    /// [`Recorder::record_conversation`] gives it; give it an id to record it without a copy.
    ///
    /// # Errors
    ///
    /// As [`Recorder::record_conversation`].
    pub fn record_conversation_ref<C: RecordableConversation + ?Sized>(
        &self,
        conversation: &C,
    ) -> Result<Recorded> {
        self.shared()
            .record_prepared(|| match record::prepare_borrowed(conversation)? {
                Some(prepared) => Ok(prepared),
                None => record::prepare_owned(conversation.to_create_conversation()),
            })
    }

    /// Records feedback on a message, as `POST /feedback` takes it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] at once for an empty message id, or after [`Recorder::shutdown`].
    pub fn record_feedback(&self, feedback: crate::types::FeedbackInput) -> Result<Recorded> {
        self.shared().record(Record::Feedback(feedback))
    }

    /// Records an event, as `POST /events` takes it. The recorder gives it an id when it has
    /// none, and relies on the API returning the stored event when the same id is sent again
    /// (an assumption: the API documents upserts for conversations and feedback only).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] at once for an empty type or id, or after [`Recorder::shutdown`].
    pub fn record_event(&self, event: impl Into<crate::types::InsertEvent>) -> Result<Recorded> {
        self.shared().record(Record::Event(event.into()))
    }

    /// Records any of the three kinds.
    ///
    /// # Errors
    ///
    /// As the call for its kind.
    pub fn record(&self, record: Record) -> Result<Recorded> {
        self.shared().record(record)
    }

    /// The client the recorder sends through, for the OpenAI wrapper's read-back of a
    /// conversation it does not remember.
    #[cfg(feature = "async-openai")]
    pub(crate) fn client(&self) -> &Client {
        &self.shared().client
    }

    /// Records any of the three kinds, waiting for room when the queue in memory is full and
    /// there is no spool to hold the record, for at most `timeout`: for batches, where a full
    /// queue should slow the reader down rather than drop. Past the timeout, or once the worker
    /// has stopped, the record is dropped and counted as [`Recorder::record`] drops it. With a
    /// spool it never waits: the spool holds what the queue has no room for.
    ///
    /// Not for a request path, which must not wait: use [`Recorder::record`] there. It needs a
    /// tokio runtime with its timer enabled; from code without one, use
    /// [`Recorder::record_when_room_blocking`].
    ///
    /// # Errors
    ///
    /// As [`Recorder::record`].
    pub async fn record_when_room(&self, record: Record, timeout: Duration) -> Result<Recorded> {
        let deadline = deadline_after(timeout);
        let shared = self.shared();
        match shared.try_record(|| record.prepare())? {
            Ok(recorded) => Ok(recorded),
            Err(item) => Ok(shared.wait_for_room(item, deadline).await),
        }
    }

    /// [`Recorder::record_when_room`] for code without an async runtime: it blocks the calling
    /// thread for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Recorder::record`].
    pub fn record_when_room_blocking(&self, record: Record, timeout: Duration) -> Result<Recorded> {
        let deadline = deadline_after(timeout);
        let shared = self.shared();
        match shared.try_record(|| record.prepare())? {
            Ok(recorded) => Ok(recorded),
            Err(item) => Ok(shared.wait_for_room_blocking(item, deadline)),
        }
    }

    /// What the recorder has done so far.
    pub fn stats(&self) -> RecorderStats {
        self.shared().stats()
    }

    /// Waits until everything recorded before the call has left the queue (delivered,
    /// dead-lettered or dropped), or until `timeout` has passed, whichever comes first.
    ///
    /// It needs a tokio runtime with its timer enabled, of either flavour; from code without
    /// one, use [`Recorder::flush_blocking`].
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let deadline = Instant::now() + timeout;
        let shared = self.shared();
        let mark = shared.mark();
        shared.wake.notify_one();
        let complete = shared.wait(mark, deadline).await;
        shared.report(complete)
    }

    /// [`Recorder::flush`] for code without an async runtime: it blocks the calling thread.
    pub fn flush_blocking(&self, timeout: Duration) -> FlushReport {
        let deadline = Instant::now() + timeout;
        let shared = self.shared();
        let mark = shared.mark();
        shared.wake.notify_one();
        let complete = shared.wait_blocking(mark, deadline);
        shared.report(complete)
    }

    /// Stops taking records, delivers what is held until `timeout` has passed, then stops the
    /// worker. Writes still in flight at the deadline are abandoned and counted as pending.
    /// Recording afterwards returns an error; every clone of this recorder is shut down.
    ///
    /// It needs a tokio runtime with its timer enabled; from code without one, use
    /// [`Recorder::shutdown_blocking`].
    pub async fn shutdown(&self, timeout: Duration) -> FlushReport {
        let deadline = Instant::now() + timeout;
        let shared = self.shared();
        shared.begin_shutdown();
        let complete = shared.wait(u64::MAX, deadline).await;
        shared.end_shutdown();
        shared.wait_stopped().await;
        shared.report(complete)
    }

    /// [`Recorder::shutdown`] for code without an async runtime: it blocks the calling thread.
    pub fn shutdown_blocking(&self, timeout: Duration) -> FlushReport {
        let deadline = Instant::now() + timeout;
        let shared = self.shared();
        shared.begin_shutdown();
        let complete = shared.wait_blocking(u64::MAX, deadline);
        shared.end_shutdown();
        shared.wait_stopped_blocking();
        shared.report(complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CreateOpenAiConversation, CreateOpenAiMessage};

    /// Dropped without a shutdown while the server never answers, the worker stops by its drop
    /// timeout and lets go of everything it shared (its thread, the client, the spool if any).
    #[test]
    fn a_dropped_recorder_ends_its_worker_by_its_drop_timeout() -> Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::configuration_with_source("bind", e))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::configuration_with_source("addr", e))?
        );
        let client = Client::builder()
            .api_key("sk-test")
            .base_url(url)
            .timeout(Duration::from_secs(60))
            .build()?;
        let recorder = Recorder::builder(client)
            .drop_timeout(Duration::from_millis(200))
            .build()?;
        let conversation =
            CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]).with_id("c")?;
        recorder.record_conversation(conversation)?;
        let shared = Arc::downgrade(&recorder.handle.shared);
        let dropped = Instant::now();
        drop(recorder);
        // A loaded machine may take longer than the deadline; only a worker that never stops fails.
        while shared.strong_count() > 0 {
            assert!(
                dropped.elapsed() < Duration::from_secs(30),
                "the worker never stopped"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(dropped.elapsed() >= Duration::from_millis(150));
        drop(listener);
        Ok(())
    }

    /// Flush and shutdown return at once, with what is left, when the worker died.
    #[test]
    fn a_dead_worker_does_not_hold_flush_or_shutdown() -> Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::configuration_with_source("bind", e))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::configuration_with_source("addr", e))?
        );
        let client = Client::builder().api_key("sk-test").base_url(url).build()?;
        let recorder = Recorder::builder(client).build()?;
        recorder.shared().crash.store(true, Ordering::SeqCst);
        recorder.shared().wake.notify_one();
        let started = Instant::now();
        while recorder.shared().alive.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the worker did not stop"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let conversation =
            CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]).with_id("c")?;
        recorder.record_conversation(conversation)?;
        let started = Instant::now();
        let report = recorder.flush_blocking(Duration::from_secs(30));
        assert!(
            !report.complete && !report.worker_running && report.pending == 1,
            "{report:?}"
        );
        let report = recorder.shutdown_blocking(Duration::from_secs(30));
        assert!(!report.complete && report.pending == 1, "{report:?}");
        // Far below the 30 s they were given: they did not wait for a dead worker.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        drop(listener);
        Ok(())
    }
}
