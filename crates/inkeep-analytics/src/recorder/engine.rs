//! The recorder's engine: what recording calls, the worker and the callers that wait share
//! ([`Shared`]), kept apart from the public [`Recorder`](super::Recorder) and its builder.
//!
//! # Parts
//!
//! - `queue`, a mutex over the [`Queue`]: what is held in memory, its order, bounds and schedule.
//! - `changed`, a condvar on the queue's mutex, and `progress`, a `watch` channel: how blocking and
//!   async waiters (`flush`, `shutdown`, the calls that wait for room) learn that the queue or the
//!   spool's backlog moved or the worker ended. [`Shared::progressed`] signals both after taking
//!   and releasing the queue's lock, so that no wake-up is lost and no waiter polls.
//! - `wake`, a `Notify`: wakes the worker on its own thread and runtime; it keeps a permit when the
//!   worker is not waiting. Recording calls skip it while the worker could not send more anyway.
//! - `spool` (feature `spool`), a mutex over the SQLite spool: a recording call commits under it.
//! - Atomics: `alive`, `closed`, `closing` and `aborted`, the lifecycle, read by recording calls and
//!   waiters without a lock; `next_seq`, the order of recording; `failures`, the worker's count of
//!   server failures in a row, for the recorder-wide pause. Two mirror the spool and stay on
//!   purpose: `first_spilled` and `spilled_now`, which waiters read under the queue's lock, where
//!   taking the spool's lock would reverse the lock order; and `spool_bytes`, which the spool's
//!   checkpoint thread publishes so that `stats` never waits for a commit.
//! - `dropping`, `spool_failing`, `sampled_out` and `stop_at`: small mutexes for one warning per
//!   burst, one warning per spool failure, sampling's memory and the drop deadline.
//!
//! # Invariants
//!
//! - A record with a spool is committed to it before its recording call returns, and queued in
//!   the same critical section, so that the worker cannot deliver (and delete) it before it is
//!   written; records held by the spool only go before newer ones.
//! - A conversation has at most one write in flight, and a version older than one pending, in
//!   flight or accepted is never sent; feedback and events wait for the write holding what they
//!   name, and are dead-lettered with it.
//! - Recording calls never wait for the network, the worker or a checkpoint: the only lock they
//!   wait for is held for a commit or a queue operation.
//!
//! # Lock order
//!
//! The spool's lock, then the queue's, then the client's window of requests in flight (which the
//! worker reads under the queue's lock); nothing takes them the other way round. The small
//! mutexes are leaves: taken with at most these held, they take nothing.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::queue::{self, Enqueued, Item, Queue};
use super::record::Prepared;
#[cfg(feature = "spool")]
use super::spool;
use super::stats::Counters;
use super::{
    BeforeSend, DeadLetterFn, FlushReport, MAX_REPORTED_IDS, Outcome, Record, RecordId, Recorded,
    RecorderStats, RetryBudget,
};
use crate::Client;
use crate::error::{Error, Result};

/// What the recording calls and the worker share.
pub(crate) struct Shared {
    pub(super) queue: Mutex<Queue>,
    /// Signalled on every change that a blocking `flush` may wait for.
    pub(super) changed: Condvar,
    /// Bumped on the same changes, for an async `flush` on any runtime.
    pub(super) progress: watch::Sender<u64>,
    /// Wakes the worker: a permit is kept when it is not waiting, so no wake-up is lost.
    pub(super) wake: Notify,
    pub(super) counters: Counters,
    pub(super) next_seq: AtomicU64,
    /// Transient failures in a row, for the recorder-wide backoff.
    pub(super) failures: AtomicU32,
    pub(super) alive: AtomicBool,
    /// No more records are taken.
    pub(super) closed: AtomicBool,
    /// The worker stops once the queue is empty.
    pub(super) closing: AtomicBool,
    /// The worker stops now.
    pub(super) aborted: AtomicBool,
    /// The worker stops at this time: the last handle was dropped without a shutdown.
    pub(super) stop_at: Mutex<Option<Instant>>,
    pub(super) drop_timeout: Duration,
    /// Drops in the current burst, for one warning per burst.
    pub(super) dropping: Mutex<Option<u64>>,
    pub(super) policy: crate::config::RetryPolicy,
    pub(super) retry_budget: RetryBudget,
    pub(super) client: Client,
    pub(super) before_send: Option<Arc<BeforeSend>>,
    pub(super) dead_letter: Option<Arc<DeadLetterFn>>,
    /// The spool, taken out when the recorder stops so that its lock is released.
    #[cfg(feature = "spool")]
    pub(super) spool: Mutex<Option<spool::Spool>>,
    /// Why the spool cannot take records now, warned about once.
    #[cfg(feature = "spool")]
    pub(super) spool_failing: Mutex<Option<String>>,
    /// A spool was asked for but its disk was full when the recorder started: what is recorded
    /// is kept in memory only, and counted as such.
    #[cfg(feature = "spool")]
    pub(super) spool_unavailable: bool,
    /// The place of the first record held by the spool only (`u64::MAX` for none), read without
    /// its lock.
    pub(super) first_spilled: AtomicU64,
    pub(super) spilled_now: AtomicU64,
    /// The size of the spool's files, published by its checkpoints.
    pub(super) spool_bytes: Arc<AtomicU64>,
    pub(super) sample_rate: f64,
    pub(super) sampled_out: Mutex<SampledOut>,
    /// Makes the worker panic, so that tests can check what a dead worker leaves behind.
    #[cfg(test)]
    pub(super) crash: AtomicBool,
}

/// Messages of conversations left out by sampling, in two generations so that memory stays
/// bounded, as 64-bit hashes so that it does not grow with the ids' length: about 5 MB at most.
/// A collision (odds of one in 2^64 / 500,000 per lookup) would leave one feedback item out.
#[derive(Debug, Default)]
pub(super) struct SampledOut {
    hasher: foldhash::fast::RandomState,
    current: std::collections::HashSet<u64, foldhash::fast::RandomState>,
    previous: std::collections::HashSet<u64, foldhash::fast::RandomState>,
}

/// How many message ids one generation of [`SampledOut`] holds.
const SAMPLED_OUT_GENERATION: usize = 250_000;

impl SampledOut {
    pub(super) fn hash(&self, id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    pub(super) fn insert(&mut self, id: &str) {
        if self.current.len() >= SAMPLED_OUT_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        let hash = self.hash(id);
        self.current.insert(hash);
    }

    pub(super) fn contains(&self, id: &str) -> bool {
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
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue's rules keep it consistent between calls; a panic elsewhere while it was
        // held leaves nothing half-done that matters more than losing the recorder would.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes whoever waits for the queue to move. The queue's lock is taken and released first:
    /// a blocking waiter checks its condition under that lock, so it is either waiting already or
    /// will see the change, and no wake-up is lost; an async waiter subscribed to `progress`
    /// before it checked. So neither needs to poll. It is never called with the queue's lock held.
    pub(super) fn progressed(&self) {
        drop(self.lock());
        self.changed.notify_all();
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The pause after `failures` transient failures in a row (of the server's, for a pause of
    /// every write; of one record, for its own): the server's `Retry-After` when it sent one,
    /// else the crate's one backoff, with half of it random so that a pause never collapses to
    /// nothing, capped at its `max_backoff` either way.
    pub(super) fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.policy.backoff(
            failures.max(1),
            retry_after,
            crate::transport::retry::Jitter::Half,
        )
    }

    /// The sampling decision of a record, which its conversation's decides.
    pub(super) fn keeps(&self, prepared: &Prepared) -> bool {
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
    pub(super) fn note_drop(&self, reason: &'static str) {
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
    pub(super) fn note_taken(&self) {
        let mut dropping = self.dropping.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = dropping.take() {
            tracing::warn!(
                dropped = count,
                "recorder: records are taken again after a burst of drops"
            );
        }
    }

    pub(super) fn record(&self, record: Record) -> Result<Recorded> {
        self.record_prepared(|| record.prepare())
    }

    pub(super) fn record_prepared(
        &self,
        prepare: impl FnOnce() -> Result<Prepared>,
    ) -> Result<Recorded> {
        Ok(match self.try_record(prepare)? {
            Ok(recorded) => recorded,
            Err(item) => self.drop_queue_full(*item),
        })
    }

    /// Counts and names a record the queue had no room for, without a spool to hold it.
    pub(super) fn drop_queue_full(&self, item: Item) -> Recorded {
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
    pub(super) fn enqueue_locked(
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
    pub(super) fn enqueue(&self, item: Item) -> (Enqueued, bool) {
        Self::enqueue_locked(&mut self.lock(), item).unwrap_or((Enqueued::Full, false))
    }

    /// The answer for a record the queue took, waking the worker when it has something new.
    pub(super) fn taken(&self, id: String, enqueued: Enqueued, readied: bool) -> Recorded {
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
    pub(super) fn wait_for_room_blocking(&self, item: Box<Item>, deadline: Instant) -> Recorded {
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
    pub(super) async fn wait_for_room(&self, item: Box<Item>, deadline: Instant) -> Recorded {
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
    pub(super) fn try_record(
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
            Ok((enqueued, readied)) => {
                #[cfg(feature = "spool")]
                if self.spool_unavailable {
                    Counters::add(&self.counters.memory_only);
                }
                Ok(Ok(self.taken(id, enqueued, readied)))
            }
            Err(item) => Ok(Err(item)),
        }
    }

    pub(super) fn report(&self, complete: bool) -> FlushReport {
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

    pub(super) fn stats(&self) -> RecorderStats {
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
    pub(super) fn settled(&self, mark: u64) -> bool {
        !self.alive.load(Ordering::SeqCst) || self.done_through(mark)
    }

    /// Whether every record up to `mark` left the queue and the spool's backlog.
    pub(super) fn done_through(&self, mark: u64) -> bool {
        self.spilled_done_through(mark) && self.lock().done_through(mark)
    }

    /// Whether the spool holds nothing recorded up to `mark` that is not in memory.
    pub(super) fn spilled_done_through(&self, mark: u64) -> bool {
        let first = self.first_spilled.load(Ordering::SeqCst);
        first == u64::MAX || first > mark
    }

    pub(super) fn mark(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst).saturating_sub(1)
    }

    pub(super) fn wait_blocking(&self, mark: u64, deadline: Instant) -> bool {
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

    pub(super) async fn wait(&self, mark: u64, deadline: Instant) -> bool {
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

    pub(super) fn begin_shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        // Callers waiting for room stop waiting.
        self.progressed();
    }

    /// Tells the worker to stop now. It releases the spool as it ends (see `worker::Alive`).
    pub(super) fn end_shutdown(&self) {
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

    pub(super) fn stop_at(&self) -> Option<Instant> {
        *self.stop_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits a little for the worker to stop after [`Shared::end_shutdown`], so that the spool's
    /// lock is released when `shutdown` returns; on the executor, it awaits and never blocks it.
    pub(super) async fn wait_stopped(&self) {
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
    pub(super) fn wait_stopped_blocking(&self) {
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
pub(super) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// How long `shutdown` waits for the worker to stop after its deadline: a stopped worker has
/// released the spool (it abandons writes in flight at once).
const WORKER_STOP_WAIT: Duration = Duration::from_millis(100);

/// Without the `spool` feature, a recorder has no spool: these are its no-ops.
#[cfg(not(feature = "spool"))]
impl Shared {
    pub(super) fn has_spilled(&self) -> bool {
        false
    }

    pub(super) fn refill(&self) {}

    pub(super) fn acknowledge(&self, _item: &Item) {}

    pub(super) fn release_spool(&self) {}
}
