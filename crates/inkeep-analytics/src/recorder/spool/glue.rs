//! What the recorder does with its spool: a recording call commits its record (and only
//! commits), the worker reads spilled records back, deletes delivered ones and replaces a damaged
//! database, and the last of them releases the spool.
//!
//! Lock order: the spool's lock, then the queue's; nothing takes them the other way round.

use std::ops::ControlFlow;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{Spool, Unwritable, read_spilled};
use crate::error::Error;
use crate::recorder::queue::{Enqueued, Item};
use crate::recorder::record::{Prepared, Record};
use crate::recorder::stats::Counters;
use crate::recorder::{Outcome, Recorded, Shared};

/// How many spilled records one read back takes at most.
const READ_BACK: usize = 256;

impl Shared {
    fn lock_spool(&self) -> std::sync::MutexGuard<'_, Option<Spool>> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes what flush and stats read of the spool without taking its lock.
    fn publish_spool(&self, spool: &Spool) {
        self.first_spilled
            .store(spool.first_spilled().unwrap_or(u64::MAX), Ordering::SeqCst);
        self.spilled_now.store(spool.spilled(), Ordering::SeqCst);
    }

    pub(in crate::recorder) fn has_spilled(&self) -> bool {
        self.first_spilled.load(Ordering::SeqCst) != u64::MAX
    }

    /// Warns once when the spool stops taking records, and again only when the reason changes.
    fn spool_cannot_write(&self, why: &Unwritable) {
        let reason = why.reason();
        let mut failing = self
            .spool_failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if failing.as_deref() != Some(reason.as_str()) {
            tracing::warn!(
                reason = %reason,
                "recorder: the spool cannot take records ({reason}); they stay in memory, within its bounds, and a crash would lose them until it can; see Recorder::stats"
            );
            *failing = Some(reason);
        }
    }

    /// Notes that the spool took a record, ending a warning about it.
    fn spool_wrote(&self) {
        let mut failing = self
            .spool_failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if failing.take().is_some() {
            tracing::warn!("recorder: the spool takes records again");
        }
    }

    /// The recording call with a spool: the record is committed to it (and queued when the queue
    /// has room and nothing waits in the spool before it), under the spool's lock, so that the
    /// worker cannot delete it before it is written. It gives the record back (`Continue`) when
    /// there is no spool.
    pub(in crate::recorder) fn record_spooled(
        &self,
        prepared: Prepared,
    ) -> ControlFlow<Recorded, Prepared> {
        let mut guard = self.lock_spool();
        let Some(spool) = guard.as_mut() else {
            return ControlFlow::Continue(prepared);
        };
        let id = prepared.id.clone();
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let item = prepared.into_item(seq);
        let (kind, body) = (item.kind, item.body.clone());
        // Records held by the spool only go first: a newer one waits behind them.
        let (mut held_back, queued) = if spool.has_spilled() {
            (Some(item), None)
        } else {
            (None, Some(self.enqueue(item)))
        };
        let spill = matches!(queued, None | Some((Enqueued::Full, _)));
        let written = match queued {
            // A newer version is already held: writing this one would replace it.
            Some((Enqueued::Stale, _)) => Ok(()),
            _ => spool.write(kind, &id, seq, &body, spill),
        };
        let (enqueued, readied) = match (written, queued) {
            (Ok(()), Some(queued)) if !spill => {
                self.spool_wrote();
                queued
            }
            (Ok(()), _) => {
                self.spool_wrote();
                Counters::add(&self.counters.spilled);
                self.publish_spool(spool);
                drop(guard);
                self.wake.notify_one();
                return ControlFlow::Break(Recorded {
                    id,
                    outcome: Outcome::Spilled,
                });
            }
            (Err(why), queued) => {
                self.spool_cannot_write(&why);
                let queued = match queued {
                    Some((Enqueued::Full, _)) => None,
                    // Not written, and waiting behind spilled records: memory is all that is left.
                    None => held_back.take().map(|item| self.enqueue(item)),
                    queued => queued,
                };
                match queued {
                    Some(queued) if queued.0 != Enqueued::Full => {
                        Counters::add(&self.counters.memory_only);
                        queued
                    }
                    _ => {
                        self.publish_spool(spool);
                        drop(guard);
                        let (counter, outcome, reason) = match why {
                            Unwritable::Full => (
                                &self.counters.dropped_spool_full,
                                Outcome::DroppedSpoolFull,
                                "the queue and the spool are full",
                            ),
                            _ => (
                                &self.counters.dropped_spool_unwritable,
                                Outcome::DroppedSpoolUnwritable,
                                "the queue is full and the spool cannot write",
                            ),
                        };
                        Counters::add(counter);
                        self.counters.named.note_dropped(kind, &id);
                        self.note_drop(reason);
                        return ControlFlow::Break(Recorded { id, outcome });
                    }
                }
            }
        };
        self.publish_spool(spool);
        drop(guard);
        ControlFlow::Break(self.taken(id, enqueued, readied))
    }

    /// Reads records held by the spool only back into the queue, in order, once the queue has
    /// room for them, and replaces a damaged database. The reads use a connection of their own,
    /// without the spool's lock, which recording calls take: they wait for neither.
    pub(in crate::recorder) fn refill(&self) {
        self.replace_damaged_spool();
        if let Some(spool) = self.lock_spool().as_mut() {
            spool.retry_deletions();
        }
        if !self.has_spilled() || !self.lock().has_room_for_refill() {
            return;
        }
        let database = {
            let guard = self.lock_spool();
            match guard.as_ref() {
                // Marking what was read back would fail like the writes do: wait for the disk.
                Some(spool) if !spool.is_damaged() && !self.spool_is_failing() => {
                    spool.database().to_path_buf()
                }
                _ => return,
            }
        };
        let rows = match read_spilled(&database, READ_BACK) {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(error = %error, "spool: cannot read records back");
                if super::read_failed_from_damage(&error)
                    && let Some(spool) = self.lock_spool().as_mut()
                {
                    spool.mark_damaged();
                }
                return;
            }
        };
        let prepared: Vec<_> = rows
            .into_iter()
            .map(|row| {
                let prepared = row
                    .kind
                    .ok_or_else(|| Error::invalid_input("a record of an unknown kind"))
                    .and_then(|kind| {
                        Record::from_body(kind, &row.body)
                            .map_err(|e| Error::invalid_input(e.to_string()))
                    })
                    .and_then(Record::prepare);
                (row, prepared)
            })
            .collect();
        let mut guard = self.lock_spool();
        // Shut down meanwhile: the records stay in the spool, for the next start.
        let Some(spool) = guard.as_mut() else {
            return;
        };
        let mut taken = vec![];
        let mut unsendable = vec![];
        for (row, prepared) in prepared {
            match prepared {
                Ok(prepared) => {
                    if self.enqueue(prepared.into_item(row.seq)).0 == Enqueued::Full {
                        break;
                    }
                    // Counted in memory now: stats should not count it twice until the
                    // spool's count is published below.
                    let _ =
                        self.spilled_now
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                    taken.push((row.position, row.seq));
                }
                Err(error) => {
                    // Nothing can send it, now or later: it leaves the spool, counted.
                    tracing::warn!(error = %error, id = %row.id, "spool: a record cannot be read back; it is dead-lettered");
                    Counters::add(&self.counters.dead_lettered);
                    unsendable.push((row.position, row.seq));
                }
            }
        }
        if let Err(why) = spool.read_back_done(&taken, &unsendable) {
            self.spool_cannot_write(&why);
        }
        self.publish_spool(spool);
        drop(guard);
        self.progressed();
    }

    fn spool_is_failing(&self) -> bool {
        self.spool_failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Sets a damaged database aside and puts a new one in its place, without the spool's lock
    /// while the files are copied: recording calls keep their records in memory meanwhile.
    fn replace_damaged_spool(&self) {
        let replacement = match self.lock_spool().as_mut() {
            Some(spool) => spool.start_replacement(),
            None => None,
        };
        let Some(replacement) = replacement else {
            return;
        };
        let replaced = replacement.run();
        if replaced.is_ok() {
            Counters::add(&self.counters.spool_set_aside);
        }
        if let Some(spool) = self.lock_spool().as_mut() {
            spool.finish_replacement(replaced);
            self.publish_spool(spool);
        }
        self.progressed();
    }

    /// Deletes a record that left the queue for good from the spool.
    pub(in crate::recorder) fn acknowledge(&self, item: &Item) {
        let mut guard = self.lock_spool();
        let Some(spool) = guard.as_mut() else {
            return;
        };
        if let Err(why) = spool.acknowledge(item.kind, item.seq, &item.id) {
            tracing::warn!(reason = %why.reason(), kind = item.kind.as_str(), id = %item.id, "spool: cannot delete a delivered record; a later start may send it again");
        }
    }

    /// Closes the spool and releases its lock, once the worker is done with it: what it holds
    /// stays for the next recorder on the directory.
    pub(in crate::recorder) fn release_spool(&self) {
        drop(self.lock_spool().take());
    }
}
