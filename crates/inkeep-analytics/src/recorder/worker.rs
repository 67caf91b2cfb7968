//! The recorder's worker: a thread of its own with a single-threaded tokio runtime, which sends
//! the queue's writes, as many at a time as the client's window of requests in flight allows,
//! and paces the whole recorder after a failure.
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

use super::queue::{Ended, Item};
use super::record::Record;
use super::stats::Counters;
use super::{DeadLetter, Shared};
use crate::Client;
use crate::error::Error;

/// How a write ended, as the worker sees it.
enum Sent {
    Delivered,
    Transient(Option<Duration>),
    Refused(Error),
    DroppedByHook,
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
        let wake = {
            let mut queue = shared.lock();
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
            {
                break;
            }
            queue.next_wake(now)
        };
        let sleep = wake
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(3600))
            .min(shared.until_stop(now));
        tokio::select! {
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, sent) = match joined {
                    Ok((id, sent)) => (id, sent),
                    // A send that panicked is a bug; its record is not lost, it is sent again.
                    Err(error) => (error.id(), Sent::Transient(None)),
                };
                if let Some(item) = sending.remove(&id) {
                    finish(&shared, item, sent);
                }
            }
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Applies how a write ended to the queue, the spool, the counters and the callbacks.
fn finish(shared: &Shared, item: Item, sent: Sent) {
    let now = Instant::now();
    let ended = match &sent {
        Sent::Delivered => Ended::Delivered,
        Sent::Transient(retry_after) => {
            let failures = shared.failures.fetch_add(1, Ordering::SeqCst) + 1;
            let wait = shared.backoff(failures, *retry_after);
            tracing::info!(
                kind = item.kind.as_str(),
                id = %item.id,
                wait_ms = wait.as_millis() as u64,
                "recorder: a write failed for now; pausing every write"
            );
            Ended::Transient { wait }
        }
        Sent::Refused(_) | Sent::DroppedByHook => Ended::Gone,
    };
    if matches!(sent, Sent::Delivered) {
        shared.failures.store(0, Ordering::SeqCst);
    }
    if !matches!(sent, Sent::Transient(_)) {
        shared.acknowledge(&item);
    }
    {
        let mut queue = shared.lock();
        queue.complete(item.clone(), ended, now);
    }
    match sent {
        Sent::Refused(error) => {
            Counters::add(&shared.counters.dead_lettered);
            tracing::warn!(
                kind = item.kind.as_str(),
                id = %item.id,
                error = %error,
                "recorder: the API refused a record for good; it goes to the dead letters"
            );
            if let Some(callback) = &shared.dead_letter {
                let letter = DeadLetter {
                    record: Record::from_body(item.kind, &item.body).ok(),
                    body: item.body.to_vec(),
                    id: item.id.clone(),
                    error,
                };
                // A panicking callback must not stop the worker.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| callback(letter)));
            }
        }
        Sent::DroppedByHook => Counters::add(&shared.counters.dropped_before_send),
        Sent::Delivered | Sent::Transient(_) => {}
    }
    shared.progressed();
}

/// Sends one write: decodes the body, runs `before_send`, and classifies the answer.
async fn send(client: Client, shared: Arc<Shared>, item: Item) -> Sent {
    let record = match Record::from_body(item.kind, &item.body) {
        Ok(record) => record,
        Err(error) => {
            return Sent::Refused(Error::invalid_input(format!(
                "the recorded {} cannot be read back: {error}",
                item.kind.as_str()
            )));
        }
    };
    let record = match &shared.before_send {
        None => record,
        Some(hook) => match std::panic::catch_unwind(AssertUnwindSafe(|| hook(record))) {
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
        },
    };
    tracing::debug!(kind = item.kind.as_str(), id = %item.id, bytes = item.body.len(), "recorder: sending");
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
        Err(_) => Sent::Transient(None),
    }
}

/// Whether a failed write may succeed later.
fn classify(error: Error) -> Sent {
    if let Some(status) = error.status() {
        return match status.as_u16() {
            // The write was stored; only the answer did not match the spec.
            200..=299 => Sent::Delivered,
            408 | 425 | 429 | 500..=599 => Sent::Transient(error.retry_after()),
            _ => Sent::Refused(error),
        };
    }
    match error {
        Error::Transport { .. } | Error::Timeout { .. } => Sent::Transient(None),
        // Stored; the answer alone was too large.
        Error::ResponseTooLarge { .. } => Sent::Delivered,
        other => Sent::Refused(other),
    }
}
