//! The recorder's worker: a thread of its own with a single-threaded tokio runtime, which sends
//! the queue's writes, as many at a time as the client's window of requests in flight allows,
//! and paces each record after a failure of its own, and the whole recorder after a failure of the server's.
//!
//! A record that fails for now for a reason of its own (a 500, a timeout) waits out its own backoff
//! while the others go on, and is dead-lettered past its retry budget, with what depends on it.
//! The whole recorder pauses only when the server says it is overloaded (429, 503, `Retry-After`),
//! cannot be reached at all, or several different records fail in a row ([`OUTAGE_RECORDS`]): an
//! outage, which costs no record its budget.
//!
//! A thread of its own means that recording works from code with no runtime, that `flush` and
//! `shutdown` can wait for it from any runtime flavour (a current-thread runtime blocked in them
//! cannot starve it), and that a deadline is always met: the caller stops waiting, not the worker.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::{Id, JoinSet};

use super::queue::{Doomed, Ended, Item};
use super::record::Record;
use super::stats::Counters;
use super::{DeadLetter, DeadLetterReason, Shared};
use crate::Client;
use crate::error::Error;

/// How a write ended, as the worker sees it.
enum Sent {
    Delivered,
    /// It may succeed later. `overload` when the failure is about the server rather than the
    /// record: it said it is overloaded (429, 503 or a `Retry-After`) or could not be reached at
    /// all, which pauses every write rather than this one and costs the record nothing.
    Transient {
        error: Error,
        retry_after: Option<Duration>,
        overload: bool,
    },
    Refused(Error),
    DroppedByHook,
}

/// How many different records failing in a row, with no success between them, tell that the
/// server (or the way to it) is failing rather than each record: a timeout or a 500 of one record
/// is that record's own, the same of three in a row an outage, which pauses every write and
/// costs no record its retry budget.
const OUTAGE_RECORDS: usize = 3;

/// What the worker remembers between writes.
#[derive(Default)]
struct Failing {
    /// The records that failed for now since the last success.
    records: std::collections::HashSet<(super::queue::Kind, String)>,
}

/// Starts the worker thread.
pub(crate) fn spawn(shared: Arc<Shared>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("inkeep-analytics-recorder".into())
        .spawn(move || {
            let _alive = Alive(Arc::clone(&shared));
            runtime.block_on(run(Arc::clone(&shared)));
            // Requests still in flight after an abandoned shutdown end with the runtime here.
            runtime.shutdown_background();
        })?;
    Ok(())
}

/// Marks the worker as stopped when its thread ends, also by a panic, and wakes every waiter.
struct Alive(Arc<Shared>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::SeqCst);
        self.0.release_spool();
        self.0.progressed();
    }
}

async fn run(shared: Arc<Shared>) {
    // The recorder paces and retries its writes itself, recorder-wide.
    let client = shared.client.with_max_retries(0);
    let mut tasks: JoinSet<Sent> = JoinSet::new();
    let mut sending: std::collections::HashMap<Id, Item> = std::collections::HashMap::new();
    let mut failing = Failing::default();
    loop {
        let now = Instant::now();
        if shared.must_stop(now) {
            break;
        }
        #[cfg(test)]
        if shared.crash.load(Ordering::SeqCst) {
            panic!("the worker is made to crash by a test");
        }
        shared.refill();
        let (wake, doomed) = {
            let mut queue = shared.lock();
            let doomed = queue.take_doomed();
            // The client's window of requests in flight, shared with its listings and exports,
            // bounds the writes under way as well as the recorder's own limit does: it grows while
            // writes come back fast and clean, and halves on 429, 503 and timeouts.
            let window = client.concurrency_window();
            while tasks.len() < window
                && let Some(item) = queue.next_job(now)
            {
                let handle = tasks.spawn(send(client.clone(), Arc::clone(&shared), item.clone()));
                sending.insert(handle.id(), item);
            }
            // Recording calls skip waking a worker that could not send what they add: it takes
            // the queue again when one of its writes ends.
            queue.note_worker_room(tasks.len() >= window, now);
            if shared.closing.load(Ordering::SeqCst)
                && queue.is_empty()
                && tasks.is_empty()
                && !shared.has_spilled()
                && doomed.is_empty()
            {
                break;
            }
            (queue.next_wake(now), doomed)
        };
        if !doomed.is_empty() {
            dead_letter_doomed(&shared, doomed);
            continue;
        }
        let sleep = wake
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(3600))
            .min(shared.until_stop(now));
        tokio::select! {
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, sent) = match joined {
                    Ok((id, sent)) => (id, sent),
                    // A send that panicked is a bug; its record is not lost, it is sent again.
                    Err(error) => (error.id(), panicked()),
                };
                if let Some(item) = sending.remove(&id) {
                    finish(&shared, &mut failing, item, sent);
                }
            }
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// The failure of a send that panicked, which counts as the record's own.
fn panicked() -> Sent {
    Sent::Transient {
        error: Error::invalid_input("sending the record panicked"),
        retry_after: None,
        overload: false,
    }
}

/// Applies how a write ended to the queue, the spool, the counters and the callbacks.
fn finish(shared: &Shared, failing: &mut Failing, mut item: Item, sent: Sent) {
    let now = Instant::now();
    let mut letter = None;
    let ended = match sent {
        Sent::Delivered => {
            shared.failures.store(0, Ordering::SeqCst);
            failing.records.clear();
            Ended::Delivered
        }
        Sent::Transient {
            error,
            retry_after,
            overload,
        } => {
            failing.records.insert((item.kind, item.id.clone()));
            if overload || failing.records.len() >= OUTAGE_RECORDS {
                let failures = shared.failures.fetch_add(1, Ordering::SeqCst) + 1;
                let wait = shared.backoff(failures, retry_after);
                tracing::info!(
                    kind = item.kind.as_str(),
                    id = %item.id,
                    error = %error,
                    wait_ms = wait.as_millis() as u64,
                    "recorder: the server is failing or overloaded; pausing every write"
                );
                Ended::Paused { wait }
            } else {
                item.attempts = item.attempts.saturating_add(1);
                let first_failure = *item.first_failure.get_or_insert(now);
                let age = now.saturating_duration_since(first_failure);
                let budget = &shared.retry_budget;
                if item.attempts >= budget.max_attempts || age >= budget.max_age {
                    letter = Some((
                        error,
                        DeadLetterReason::RetryBudget {
                            attempts: item.attempts,
                            age,
                        },
                    ));
                    Ended::DeadLettered
                } else {
                    let wait = shared.backoff(item.attempts, None);
                    tracing::info!(
                        kind = item.kind.as_str(),
                        id = %item.id,
                        error = %error,
                        attempts = item.attempts,
                        wait_ms = wait.as_millis() as u64,
                        "recorder: a write failed for now; it alone waits, the others go on"
                    );
                    Ended::Retry { at: now + wait }
                }
            }
        }
        Sent::Refused(error) => {
            letter = Some((error, DeadLetterReason::Refused));
            Ended::DeadLettered
        }
        Sent::DroppedByHook => {
            Counters::add(&shared.counters.dropped_before_send);
            shared.counters.named.note_dropped(item.kind, &item.id);
            Ended::Dropped
        }
    };
    let leaves = matches!(
        ended,
        Ended::Delivered | Ended::Dropped | Ended::DeadLettered
    );
    if leaves {
        shared.acknowledge(&item);
    }
    let dependents = {
        let mut queue = shared.lock();
        queue.complete(item.clone(), ended, now)
    };
    if let Some((error, reason)) = letter {
        for dependent in dependents {
            shared.acknowledge(&dependent);
            let error = Error::invalid_input(format!(
                "it depends on {} {}, which was dead-lettered",
                item.kind.as_str(),
                item.id
            ));
            dead_letter(
                shared,
                &dependent,
                error,
                DeadLetterReason::Dependency {
                    kind: item.kind,
                    id: item.id.clone(),
                },
            );
        }
        dead_letter(shared, &item, error, reason);
    }
    shared.progressed();
}

/// Dead-letters feedback and events recorded after the conversation they name was dead-lettered:
/// the API would refuse them.
fn dead_letter_doomed(shared: &Shared, doomed: Vec<Doomed>) {
    for Doomed { item, conversation } in doomed {
        shared.acknowledge(&item);
        let error = Error::invalid_input(format!(
            "it depends on conversation {conversation}, which was dead-lettered"
        ));
        dead_letter(
            shared,
            &item,
            error,
            DeadLetterReason::Dependency {
                kind: super::queue::Kind::Conversation,
                id: conversation,
            },
        );
    }
    shared.progressed();
}

/// Counts a record dead-lettered, names it for reports, warns, and hands it to the callback.
fn dead_letter(shared: &Shared, item: &Item, error: Error, reason: DeadLetterReason) {
    Counters::add(&shared.counters.dead_lettered);
    shared
        .counters
        .named
        .note_dead_lettered(item.kind, &item.id);
    tracing::warn!(
        kind = item.kind.as_str(),
        id = %item.id,
        error = %error,
        reason = %reason,
        "recorder: a record is dead-lettered; it will not be sent again"
    );
    if let Some(callback) = &shared.dead_letter {
        let letter = DeadLetter {
            record: Record::from_body(item.kind, &item.body).ok(),
            body: item.body.to_vec(),
            id: item.id.clone(),
            error,
            reason,
        };
        // A panicking callback must not stop the worker.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| callback(letter)));
    }
}

/// Sends one write: the recorded bytes as they are, or, with a `before_send` hook, the record
/// the hook returns; and classifies the answer.
async fn send(client: Client, shared: Arc<Shared>, item: Item) -> Sent {
    let Some(hook) = &shared.before_send else {
        tracing::debug!(kind = item.kind.as_str(), id = %item.id, bytes = item.body.len(), "recorder: sending");
        let result = AssertUnwindSafe(client.post_recorded(item.kind.operation_id(), item.body))
            .catch_unwind()
            .await;
        return match result {
            Ok(Ok(())) => Sent::Delivered,
            Ok(Err(error)) => classify(error),
            Err(_) => panicked(),
        };
    };
    let record = match Record::from_body(item.kind, &item.body) {
        Ok(record) => record,
        Err(error) => {
            return Sent::Refused(Error::invalid_input(format!(
                "the recorded {} cannot be read back: {error}",
                item.kind.as_str()
            )));
        }
    };
    let record = match std::panic::catch_unwind(AssertUnwindSafe(|| hook(record))) {
        Ok(Some(record)) => record,
        Ok(None) => return Sent::DroppedByHook,
        Err(_) => {
            tracing::warn!(
                kind = item.kind.as_str(),
                id = %item.id,
                "recorder: before_send panicked; the record is dropped"
            );
            return Sent::DroppedByHook;
        }
    };
    tracing::debug!(kind = item.kind.as_str(), id = %item.id, "recorder: sending what before_send returned");
    let result = AssertUnwindSafe(async {
        match record {
            Record::Conversation(c) => client.log_conversation(c).await.map(drop),
            Record::Feedback(f) => client.log_feedback(f).await.map(drop),
            Record::Event(e) => client.log_event(e).await.map(drop),
        }
    })
    .catch_unwind()
    .await;
    match result {
        Ok(Ok(())) => Sent::Delivered,
        Ok(Err(error)) => classify(error),
        Err(_) => panicked(),
    }
}

/// Whether a failed write may succeed later.
fn classify(error: Error) -> Sent {
    if let Some(status) = error.status() {
        return match status.as_u16() {
            // The write was stored; only the answer did not match the spec.
            200..=299 => Sent::Delivered,
            408 | 425 | 429 | 500..=599 => Sent::Transient {
                retry_after: error.retry_after(),
                overload: matches!(status.as_u16(), 429 | 503) || error.retry_after().is_some(),
                error,
            },
            _ => Sent::Refused(error),
        };
    }
    match error {
        Error::Transport { ref source, .. } | Error::Timeout { ref source, .. } => {
            // No connection at all says nothing about the record: the API is down or unreachable.
            let unreachable = source.is_connect();
            Sent::Transient {
                error,
                retry_after: None,
                overload: unreachable,
            }
        }
        // Stored; the answer alone was too large.
        Error::ResponseTooLarge { .. } => Sent::Delivered,
        other => Sent::Refused(other),
    }
}
