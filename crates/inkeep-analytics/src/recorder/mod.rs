//! The write path for live services: [`Recorder`] takes conversations, feedback and events
//! without ever waiting on the network, and delivers them in the background in an order the API
//! can store, within bounds, through outages.

mod delivery;
mod engine;
mod queue;
mod record;
#[cfg(feature = "spool")]
mod spool;
mod stats;
mod worker;

#[cfg(feature = "spool")]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

pub use delivery::DeliveryCheck;
pub use queue::Kind as RecordKind;
pub use record::{Record, RecordableConversation};
#[cfg(feature = "spool")]
pub use spool::{DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy, SpoolStatus};
pub use stats::{FlushReport, MAX_REPORTED_IDS, RecordId, RecorderStats};

use self::engine::{SampledOut, Shared, deadline_after};
use self::queue::{Limits, Queue};
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
        let mut spool_unavailable = false;
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
                    spool_unavailable = true;
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
            #[cfg(feature = "spool")]
            spool_unavailable,
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
/// use inkeep_analytics::{Client, recorder::Recorder};
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
    use std::sync::atomic::Ordering;

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
