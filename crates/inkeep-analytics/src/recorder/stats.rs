//! What a recorder has done, counted with atomics so that reading the numbers never waits on the worker.

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A snapshot of what a recorder has done since it was built; see [`crate::Recorder::stats`].
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
    /// Records the API refused for good (400, 401, 403, 404, 413, 422), handed to the dead-letter callback.
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

/// What [`crate::Recorder::flush`] and [`crate::Recorder::shutdown`] found when they returned.
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
    /// Records the API refused for good since the recorder was built.
    pub dead_lettered: u64,
    /// Whether the worker was still running (false after it stopped, or if it died).
    pub worker_running: bool,
}
