//! What a recorder has done, counted with atomics so that reading the numbers never waits on the worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::queue::Kind;

/// How many ids of each fate (pending, dropped, dead-lettered) a [`FlushReport`] names at most;
/// its counts cover the rest.
pub const MAX_REPORTED_IDS: usize = 100;

/// Counters shared by the recording calls and the worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub recorded: AtomicU64,
    pub sampled_out: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_spool_full: AtomicU64,
    pub dropped_spool_unwritable: AtomicU64,
    pub memory_only: AtomicU64,
    pub spool_set_aside: AtomicU64,
    pub dropped_before_send: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub spilled: AtomicU64,
    /// The first records dropped and dead-lettered, by id.
    pub named: Named,
}

/// The ids of the first [`MAX_REPORTED_IDS`] records dropped and dead-lettered, for reports; a
/// lock taken only when a record is lost, never on a recording call that queues.
#[derive(Debug, Default)]
pub(crate) struct Named {
    dropped: Mutex<Vec<RecordId>>,
    dead_lettered: Mutex<Vec<RecordId>>,
}

impl Named {
    fn note(list: &Mutex<Vec<RecordId>>, kind: Kind, id: &str) {
        let mut list = list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.len() < MAX_REPORTED_IDS {
            list.push(RecordId {
                kind,
                id: id.to_owned(),
            });
        }
    }

    pub(crate) fn note_dropped(&self, kind: Kind, id: &str) {
        Self::note(&self.dropped, kind, id);
    }

    pub(crate) fn note_dead_lettered(&self, kind: Kind, id: &str) {
        Self::note(&self.dead_lettered, kind, id);
    }

    pub(crate) fn dropped(&self) -> Vec<RecordId> {
        self.dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn dead_lettered(&self) -> Vec<RecordId> {
        self.dead_lettered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A record named in a [`FlushReport`]: its kind and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RecordId {
    /// A conversation, feedback or an event.
    pub kind: Kind,
    /// Its id: the caller's, or the one the recorder gave it.
    pub id: String,
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A snapshot of what a recorder has done since it was built; see [`crate::recorder::Recorder::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderStats {
    /// Records taken by a recording call (sampled out and dropped ones included).
    pub recorded: u64,
    /// Conversation versions that were never sent because a newer version replaced them.
    pub coalesced: u64,
    /// Writes the API accepted.
    pub sent: u64,
    /// Writes sent again after a transient failure (a timeout, a dropped connection, 408, 429, 5XX).
    pub retried: u64,
    /// Records left out by sampling (not counted as dropped).
    pub sampled_out: u64,
    /// Records dropped because the queue was full and there was no spool to hold them.
    pub dropped_queue_full: u64,
    /// Records dropped because the queue was full and the spool was at its size limit.
    pub dropped_spool_full: u64,
    /// Records dropped because the queue was full and the spool could not write them (no space
    /// left on the device, an I/O error, or a damaged spool being replaced).
    pub dropped_spool_unwritable: u64,
    /// Records kept in memory only because the spool could not write them: they are delivered
    /// while the process runs, but a crash loses them.
    pub memory_only: u64,
    /// Damaged spool databases set aside and replaced (the log says what was recovered).
    pub spool_set_aside: u64,
    /// Records dropped by the `before_send` hook, or because it panicked.
    pub dropped_before_send: u64,
    /// Records refused for good (400, 401, 403, 404, 413, 422), past their retry budget, or
    /// depending on a conversation that was, handed to the dead-letter callback.
    pub dead_lettered: u64,
    /// Records that went to the spool only, because the queue in memory was full; they are sent later.
    pub spilled: u64,
    /// Records in memory not yet delivered: pending, waiting for a dependency, or in flight.
    pub pending: u64,
    /// Writes in flight.
    pub in_flight: u64,
    /// The bytes of the records in memory.
    pub pending_bytes: u64,
    /// The size of the spool's files, 0 without a spool.
    pub spool_bytes: u64,
}

impl RecorderStats {
    /// Every record dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_spool_full
            + self.dropped_spool_unwritable
            + self.dropped_before_send
    }
}

/// What [`crate::recorder::Recorder::flush`] and [`crate::recorder::Recorder::shutdown`] found when they returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Whether everything recorded before the call left the queue (delivered, dead-lettered or
    /// dropped) before the deadline.
    pub complete: bool,
    /// Writes the API accepted since the recorder was built.
    pub delivered: u64,
    /// Records not delivered yet (in memory; with a spool, also still in its journal).
    pub pending: u64,
    /// Records dropped since the recorder was built, whatever the reason.
    pub dropped: u64,
    /// Records dead-lettered since the recorder was built (see [`RecorderStats::dead_lettered`]).
    pub dead_lettered: u64,
    /// Whether the worker was still running (false after it stopped, or if it died).
    pub worker_running: bool,
    /// The records in memory not delivered yet, oldest first: at most [`MAX_REPORTED_IDS`] of
    /// them (`pending` counts them all, and those held in the spool only, which are not named).
    pub pending_ids: Vec<RecordId>,
    /// The first records dropped, at most [`MAX_REPORTED_IDS`] of them (`dropped` counts them all).
    pub dropped_ids: Vec<RecordId>,
    /// The first records dead-lettered, at most [`MAX_REPORTED_IDS`] of them (`dead_lettered`
    /// counts them all).
    pub dead_lettered_ids: Vec<RecordId>,
}

impl FlushReport {
    /// Whether every record was delivered: nothing pending, dropped or dead-lettered, and
    /// everything recorded before the call left the queue in time.
    pub fn all_delivered(&self) -> bool {
        self.complete && self.pending == 0 && self.dropped == 0 && self.dead_lettered == 0
    }
}
